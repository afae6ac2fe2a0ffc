"""Pictures (PNG files) drawn with matplotlib, an optional extra: pip install "manual-bptt[plot]"."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from manual_bptt.checking.gradcheck import StepSizeErrors

if TYPE_CHECKING:
    from manual_bptt.vanishing.cells import CellStudy
    from manual_bptt.vanishing.study import Regime

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
    ax.axhline(
        u * abs(errors.reference), color="grey", ls=":", lw=1, label="u·|⟨∇L, v⟩| (round-off level)"
    )
    ax.set_ylim(max(1e-18, u * abs(errors.reference) / 100), None)
    ax.set_xlabel("step size ε (h for the complex step)")
    ax.set_ylabel("|numerical − analytic| of ⟨∇L, v⟩")
    ax.set_title(title or "Error of numerical derivatives against step size")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=9)
    return _save(fig, plt, path, colors=256)


def contribution_heatmap(norms: np.ndarray, path: str | Path, *, title: str, param: str) -> Path:
    """‖∂E_t/∂θ via step k‖ as a (T, T) image on a log colour scale; blank where zero."""
    plt = pyplot()
    from matplotlib.colors import LogNorm

    T = norms.shape[0]
    shown = np.where(norms > 0, norms, np.nan)
    finite = shown[np.isfinite(shown)]
    if finite.size == 0:
        raise ValueError("every contribution is zero: there is nothing to draw on a log scale")
    fig, ax = plt.subplots(figsize=(6.4, 5.4), dpi=100)
    image = ax.imshow(
        shown,
        origin="lower",
        cmap="viridis",
        interpolation="nearest",
        norm=LogNorm(vmin=finite.min(), vmax=finite.max()),
        extent=(-0.5, T - 0.5, -0.5, T - 0.5),
    )
    fig.colorbar(image, ax=ax, label=f"‖∂E_t/∂{param} via step k‖ (log scale)")
    ax.set_xlabel(f"step k where {param} is used")
    ax.set_ylabel("loss E_t at step t")
    ax.set_title(title)
    return _save(fig, plt, path, colors=256)


def decay_plot(
    regimes: Sequence[Regime], path: str | Path, *, title: str, param: str = "U"
) -> Path:
    """One panel per activation: median ‖∂E_t/∂θ via step t − ℓ‖ against the lag ℓ, one
    line per σ_max(W), each relative to its lag 0 so that the slopes compare."""
    plt = pyplot()
    fig, panels = _panels(plt, regimes)
    for ax, rows in panels:
        for i, r in enumerate(rows):
            ax.semilogy(
                np.arange(len(r.decay)),
                r.decay / r.decay[0],
                "-",
                color=f"C{i}",
                lw=1.8,
                label=_factor_label(r),
            )
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
        ax.set_xlabel("lag t − k (steps back from the loss)")
    panels[0][0].set_ylabel(f"median ‖∂E_t/∂{param} via step k‖ / lag 0")
    return _finish(fig, plt, panels, title, path)


def jacobian_plot(regimes: Sequence[Regime], path: str | Path, *, title: str) -> Path:
    """One panel per activation: ‖∂h_t/∂h_k‖₂ (solid) and its product bound
    Π ‖diag φ'(a_j)‖₂·‖W‖₂ (dashed, same colour) against the lag t − k."""
    plt = pyplot()
    fig, panels = _panels(plt, regimes)
    for ax, rows in panels:
        for i, r in enumerate(rows):
            lags = np.arange(len(r.jacobian))
            ax.semilogy(lags, r.jacobian, "-", color=f"C{i}", lw=1.8, label=_factor_label(r))
            ax.semilogy(lags, r.bound, "--", color=f"C{i}", lw=1.2)
        ax.set_xlabel("lag t − k")
    ax = panels[0][0]
    ax.plot([], [], "k-", lw=1.8, label="‖∂h_t/∂h_k‖₂")
    ax.plot([], [], "k--", lw=1.2, label="its bound Π_j ‖diag φ'(a_j)‖₂·‖W‖₂")
    ax.set_ylabel("spectral norm")
    return _finish(fig, plt, panels, title, path)


def cells_plot(studies: Sequence[CellStudy], path: str | Path, *, title: str) -> Path:
    """The cells side by side: a heatmap of ‖∂E_t/∂U via step k‖ per cell (a row for
    the initial networks, one for the trained ones), and below, the decay with the lag
    of every cell relative to lag 0 (the LSTM's carousel Π f dotted)."""
    plt = pyplot()
    from matplotlib.colors import LogNorm

    states = list(dict.fromkeys(s.label.rsplit(", ", 1)[1] for s in studies))  # initial, trained
    names = list(dict.fromkeys(s.label.rsplit(", ", 1)[0] for s in studies))
    by_key = {(s.label.rsplit(", ", 1)[0], s.label.rsplit(", ", 1)[1]): s for s in studies}
    shown = [s.norms[s.norms > 0] for s in studies]
    lo = min(float(v.min()) for v in shown if v.size)
    hi = max(float(v.max()) for v in shown if v.size)
    lo = max(lo, hi * 1e-30)  # beyond 30 decades below the largest, colours say nothing
    columns = max(len(names), len(states))  # the decay panels need a column each
    fig = plt.figure(figsize=(3.3 * columns + 0.8, 3.0 * len(states) + 3.8), dpi=90)
    grid = fig.add_gridspec(
        len(states) + 1, columns, height_ratios=[1] * len(states) + [1.25], hspace=0.6
    )
    image = None
    for row, state in enumerate(states):
        for col, name in enumerate(names):
            ax = fig.add_subplot(grid[row, col])
            study = by_key[(name, state)]
            T = study.norms.shape[0]
            image = ax.imshow(
                np.where(study.norms > 0, np.maximum(study.norms, lo), np.nan),
                origin="lower",
                cmap="viridis",
                interpolation="nearest",
                norm=LogNorm(vmin=lo, vmax=hi),
                extent=(-0.5, T - 0.5, -0.5, T - 0.5),
            )
            ax.set_title(f"{name}\n{state}", fontsize=9)
            ax.set_xlabel("step k", fontsize=8)
            if col == 0:
                ax.set_ylabel("loss E_t", fontsize=8)
    fig.colorbar(image, ax=fig.axes, label="‖∂E_t/∂U via step k‖", shrink=0.6)
    for col, state in enumerate(states):
        ax = fig.add_subplot(
            grid[len(states), col * columns // len(states) : (col + 1) * columns // len(states)]
        )
        for i, name in enumerate(names):
            study = by_key[(name, state)]
            lags = np.arange(len(study.decay))
            ax.semilogy(lags, study.decay / study.decay[0], "-", color=f"C{i}", lw=1.8, label=name)
            if study.carousel is not None:
                ax.semilogy(lags, study.carousel, ":", color=f"C{i}", lw=1.4, label=f"{name}: Π f")
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
        ax.set_ylim(max(ax.get_ylim()[0], 1e-30), None)
        ax.set_xlabel("lag t − k", fontsize=8)
        ax.set_ylabel("median ‖∂E_t/∂U via t − lag‖ / lag 0", fontsize=8)
        ax.set_title(f"decay with the lag, {state}", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    return _save(fig, plt, path, tight=False, colors=256)


def _panels(plt: Any, regimes: Sequence[Regime]) -> tuple[Any, list[tuple[Any, list[Regime]]]]:
    """A row of panels, one per activation, titled with γ and the σ_max(W) values."""
    groups: dict[str, list[Regime]] = {}
    for r in regimes:
        groups.setdefault(r.activation, []).append(r)
    fig, axes = plt.subplots(
        1, len(groups), figsize=(4.0 * len(groups), 4.1), dpi=90, sharey=True, squeeze=False
    )
    panels = list(zip(axes[0], groups.values(), strict=True))
    for ax, rows in panels:
        sigmas = ", ".join(f"{r.sigma:g}" for r in rows)
        ax.set_title(
            f"{rows[0].activation}: γ = {rows[0].gamma:g}, σ_max(W) = {sigmas}", fontsize=10
        )
        ax.grid(True, which="major", alpha=0.3)
    return fig, panels


def _factor_label(r: Regime) -> str:
    side = "below" if r.below_critical else "above"
    return f"σ_max(W) = {r.factor:g}/γ ({side} the critical 1/γ)"


def _finish(
    fig: Any, plt: Any, panels: list[tuple[Any, list[Regime]]], title: str, path: str | Path
) -> Path:
    """One legend for all panels below them, decade ticks, the title; save."""
    for ax, _ in panels:
        _decade_ticks(ax)
    handles, labels = panels[0][0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="lower center", ncol=min(len(labels), 3), fontsize=8.5, frameon=False
    )
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.1 if len(labels) <= 3 else 0.14, 1, 1))
    return _save(fig, plt, path, tight=False)


def _decade_ticks(ax: Any) -> None:
    """Major ticks at 10^0 and every n-th power of ten from there (n so that about eight
    show), instead of matplotlib's steps that may start anywhere."""
    lo, hi = (np.log10(v) for v in ax.get_ylim())
    stride = max(1, int(np.ceil((hi - lo) / 8)))
    exponents = np.arange(np.ceil(lo / stride) * stride, hi + 1e-9, stride)
    ax.set_yticks(10.0**exponents)
    ax.set_yticklabels([f"$10^{{{int(e)}}}$" for e in exponents])
    ax.set_ylim(10.0**lo, 10.0**hi)


def png_path(path: str | Path) -> Path:
    """``path`` as a PNG file name: ".png" added when it has no suffix; any other suffix
    is refused, since every picture here is written as a PNG, and so is a folder (whose
    name with .png added would put the picture beside it, not in it)."""
    out = Path(path)
    if out.is_dir():
        raise ValueError(
            f"pictures are written as PNG: name a .png file; {str(path)!r} is a folder"
        )
    if out.suffix == "":
        return out.with_name(out.name + ".png")
    if out.suffix.lower() != ".png":
        raise ValueError(f"pictures are written as PNG: name a .png file; got {str(path)!r}")
    return out


def _save(fig: Any, plt: Any, path: str | Path, *, tight: bool = True, colors: int = 128) -> Path:
    """Save as PNG with an adaptive palette of ``colors`` colours: line plots and
    heatmaps look the same and the files are a third of the size (small enough to commit)."""
    from PIL import Image  # matplotlib depends on pillow

    if tight:
        fig.tight_layout()
    out = png_path(path)  # its folder must exist: the commands check --out first
    fig.savefig(out)
    plt.close(fig)
    with Image.open(out) as image:
        small = image.convert("RGB").quantize(colors=colors)
    small.save(out, optimize=True)
    return out
