"""Pictures (PNG files) drawn with matplotlib, an optional extra: pip install "manual-bptt[plot]"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from manual_bptt.gradcheck import StepSizeErrors

MISSING_MATPLOTLIB = (
    "plots need matplotlib, which is an optional extra: "
    'pip install -c constraints.txt -e ".[plot]"  (or: pip install matplotlib)'
)


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend; ImportError with the fix if missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError(MISSING_MATPLOTLIB) from err
    return plt


def epsilon_plot(errors: StepSizeErrors, path: str | Path, *, title: str = "") -> Path:
    """The step-size picture: |error| of each numerical derivative against ε, log–log.

    Forward differences fall as ε (slope 1) and central differences as ε² (slope 2)
    until round-off, which grows as u·|f|/ε, takes over: the V. The complex step has
    no subtraction, so it stays at round-off for every small h.
    """
    plt = pyplot()
    floor = np.finfo(np.float64).tiny  # an exact 0 cannot be drawn on a log axis
    fig, ax = plt.subplots(figsize=(7, 5.4), dpi=110)
    ax.loglog(errors.eps, np.maximum(errors.forward, floor), "o-", ms=3, label="forward difference")
    ax.loglog(errors.eps, np.maximum(errors.central, floor), "s-", ms=3, label="central difference")
    if errors.complex is not None:
        ax.loglog(errors.eps, np.maximum(errors.complex, floor), "^-", ms=3, label="complex step")
    u = np.finfo(np.float64).eps / 2
    ax.axhline(u * abs(errors.reference), color="grey", ls=":", lw=1,
               label="u·|⟨∇L, v⟩| (round-off level)")  # fmt: skip
    ax.set_ylim(max(1e-18, u * abs(errors.reference) / 100), None)
    ax.set_xlabel("step size ε (h for the complex step)")
    ax.set_ylabel("|numerical − analytic| of ⟨∇L, v⟩")
    ax.set_title(title or "Error of numerical derivatives against step size")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=9)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def contribution_heatmap(norms: np.ndarray, path: str | Path, *, title: str, param: str) -> Path:
    """‖∂E_t/∂θ via step k‖ as a (T, T) image on a log colour scale; blank where zero."""
    plt = pyplot()
    from matplotlib.colors import LogNorm

    T = norms.shape[0]
    shown = np.where(norms > 0, norms, np.nan)
    finite = shown[np.isfinite(shown)]
    fig, ax = plt.subplots(figsize=(6.4, 5.4), dpi=110)
    image = ax.imshow(shown, origin="lower", cmap="viridis", interpolation="nearest",
                      norm=LogNorm(vmin=finite.min(), vmax=finite.max()),
                      extent=(-0.5, T - 0.5, -0.5, T - 0.5))  # fmt: skip
    fig.colorbar(image, ax=ax, label=f"‖∂E_t/∂{param} via step k‖ (log scale)")
    ax.set_xlabel("step k where the parameter is used")
    ax.set_ylabel("loss E_t at step t")
    ax.set_title(title)
    return _save(fig, plt, path)


def decay_plot(curves: dict[str, dict[str, np.ndarray]], path: str | Path, *, title: str) -> Path:
    """One panel per activation: median ‖contribution‖ against the lag t − k, one line per
    σ_max(W) setting, normalised to lag 0 so that the slopes compare."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 4.2), dpi=110, sharey=True)
    for ax, (activation, lines) in zip(np.atleast_1d(axes), curves.items(), strict=True):
        for label, values in lines.items():
            ax.semilogy(np.arange(len(values)), values / values[0], "o-", ms=3, label=label)
        ax.set_title(activation)
        ax.set_xlabel("lag t − k (steps back from the loss)")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8)
    np.atleast_1d(axes)[0].set_ylabel("median ‖∂E_t/∂U via step k‖, relative to lag 0")
    fig.suptitle(title)
    return _save(fig, plt, path)


def jacobian_plot(lines: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path, *,
                  title: str) -> Path:  # fmt: skip
    """‖∂h_t/∂h_k‖₂ (solid) and its product bound (dashed) against the lag t − k."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.8), dpi=110)
    for i, (label, (norms, bounds)) in enumerate(lines.items()):
        color = f"C{i}"
        lags = np.arange(len(norms))
        ax.semilogy(lags, norms, "-", color=color, label=f"{label}: ‖∂h_t/∂h_k‖₂")
        ax.semilogy(lags, bounds, "--", color=color, label=f"{label}: bound Π‖diag φ'‖·‖W‖₂")
    ax.set_xlabel("lag t − k")
    ax.set_ylabel("spectral norm")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, plt, path)


def _save(fig: Any, plt: Any, path: str | Path) -> Path:
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
