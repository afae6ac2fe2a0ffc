"""bptt vanishing: the vanishing (and exploding) gradient problem, measured and drawn.

Writes to the output folder:
  heatmap.png    ‖∂E_t/∂U via step k‖ for every loss t and step k, log colour scale
  decay.png      that norm against the lag t − k for tanh, sigmoid and relu, with
                 σ_max(W) below (0.6/γ) and above (1.6/γ) the critical value 1/γ
  jacobians.png  ‖∂h_t/∂h_k‖₂ against the lag, with the product bound Π ‖diag φ'‖·‖W‖₂
  report.md      the numbers behind every picture, the conditions, the 3-step example,
                 and with --experiment the long-range table (about 30 s more)
γ = sup φ' (1 for tanh and relu, 1/4 for sigmoid). σ_max(W) < 1/γ is sufficient for
the gradients from far-back steps to vanish; σ_max(W) > 1/γ is necessary (not
sufficient) for them to explode. Needs matplotlib.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from manual_bptt.jacobians import critical_sigma, sigma_max


def register(sub: Any) -> None:
    p = sub.add_parser(
        "vanishing",
        help="measure and plot vanishing/exploding gradients into a folder",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", default="vanishing", help="output folder (default ./vanishing)")
    p.add_argument("--T", type=int, default=40, help="steps (default 40)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--experiment", action="store_true", help="also run the long-range experiment")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from manual_bptt import plots, vanishing
    from manual_bptt.contributions import contribution_norms

    if args.T < 2:
        raise SystemExit(f"bptt vanishing: --T must be at least 2; got {args.T}")
    out = Path(args.out)
    case = vanishing.study_case(args.T, "tanh", args.seed)
    norms = contribution_norms(case.params, case.x, case.y, param="U")
    sigma = sigma_max(case.params.W)
    plots.contribution_heatmap(norms, out / "heatmap.png", param="U",
                               title=f"tanh RNN, T={args.T}, σ_max(W)={sigma:.2f}")  # fmt: skip
    curves = vanishing.decay_curves(args.T, args.seed)
    grouped: dict[str, dict[str, np.ndarray]] = {}
    for c in curves:
        side = "below" if c.below_critical else "above"
        grouped.setdefault(c.activation, {})[f"σ_max(W)={c.sigma:.2f} ({side} 1/γ)"] = c.by_lag
    plots.decay_plot(grouped, out / "decay.png",
                     title="How far back a loss's gradient reaches")  # fmt: skip
    lines = vanishing.jacobian_lines(args.T, args.seed)
    plots.jacobian_plot(lines, out / "jacobians.png",
                        title=f"tanh: ∂h_t/∂h_k for t = {args.T - 1}")  # fmt: skip
    example = vanishing.worked_example(args.seed)
    report = [
        f"# Vanishing and exploding gradients (T={args.T}, seed {args.seed})",
        "",
        (
            "Conditions (Pascanu, Mikolov & Bengio 2013, §2.1), γ = sup φ': σ_max(W) < 1/γ "
            "is sufficient for ‖∂h_t/∂h_k‖ and the long-range gradients to vanish; "
            "σ_max(W) > 1/γ is necessary, not sufficient, for them to explode."
        ),
        "",
        "| activation | γ | critical σ_max(W) = 1/γ |",
        "|---|---|---|",
        *(
            f"| {a} | {1 / critical_sigma(a):g} | {critical_sigma(a):g} |"
            for a in ("tanh", "sigmoid", "relu")
        ),
        "",
        f"## heatmap.png: ‖∂E_t/∂U via step k‖, tanh, σ_max(W) = {sigma:.3f}",
        "",
        "Rows t (loss), columns k (step); every 5th, as a table:",
        "",
        _matrix_table(norms, step=max(1, args.T // 8)),
        "",
        "## decay.png: median over t of ‖∂E_t/∂U via step t − lag‖, relative to lag 0",
        "",
        _decay_table(curves),
        "",
        f"## jacobians.png: ‖∂h_{{{args.T - 1}}}/∂h_k‖₂ and its bound, tanh",
        "",
        _jacobian_table(lines),
        "",
        "## The 3-step worked example",
        "",
        (
            "A 3-step tanh network (token inputs, D = K = 4, H = 3). The last loss's "
            "gradient ∂E/∂U splits into the parts entering via steps 0, 1 and 2:"
        ),
        "",
        "| via step | ‖component‖_F |",
        "|---|---|",
        *(f"| {k} | {n:.6g} |" for k, n in enumerate(example["norms"])),
        "",
        (
            "All components of all three losses sum to bptt's ∂L/∂U within "
            f"{example['total_error']:.1e}."
        ),
    ]
    if args.experiment:
        from manual_bptt.experiment import Task, run_experiment, table

        task = Task(seed=args.seed)
        report += ["", "## The long-range experiment", "", table(run_experiment(task), task)]
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text("\n".join(report) + "\n")
    print(f"wrote {out}/heatmap.png, decay.png, jacobians.png and report.md")
    return 0


def _matrix_table(norms: np.ndarray, step: int) -> str:
    idx = list(range(0, norms.shape[0], step))
    head = "| t \\ k | " + " | ".join(str(k) for k in idx) + " |"
    rule = "|---" * (len(idx) + 1) + "|"
    rows = [f"| {t} | " + " | ".join(f"{norms[t, k]:.1e}" if k <= t else "" for k in idx) + " |"
            for t in idx]  # fmt: skip
    return "\n".join([head, rule, *rows])


def _decay_table(curves: list) -> str:
    lags = [lag for lag in (0, 1, 2, 5, 10, 20, 30) if lag < len(curves[0].by_lag)]
    head = "| activation | σ_max(W) | " + " | ".join(f"lag {lag}" for lag in lags) + " |"
    rule = "|---" * (len(lags) + 2) + "|"
    rows = [
        f"| {c.activation} | {c.sigma:.2f} ({'below' if c.below_critical else 'above'} 1/γ) | "
        + " | ".join(f"{c.by_lag[lag] / c.by_lag[0]:.1e}" for lag in lags)
        + " |"
        for c in curves
    ]
    return "\n".join([head, rule, *rows])


def _jacobian_table(lines: dict) -> str:
    any_norms = next(iter(lines.values()))[0]
    lags = [lag for lag in (0, 1, 2, 5, 10, 20, 30) if lag < len(any_norms)]
    head = "| σ_max(W) | quantity | " + " | ".join(f"lag {lag}" for lag in lags) + " |"
    rule = "|---" * (len(lags) + 2) + "|"
    rows = []
    for label, (norms, bounds) in lines.items():
        rows.append(
            f"| {label} | ‖∂h_t/∂h_k‖₂ | " + " | ".join(f"{norms[lag]:.1e}" for lag in lags) + " |"
        )
        rows.append(
            f"| {label} | bound | " + " | ".join(f"{bounds[lag]:.1e}" for lag in lags) + " |"
        )
    return "\n".join([head, rule, *rows])
