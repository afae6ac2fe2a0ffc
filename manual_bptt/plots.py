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
