"""bptt vanishing: the vanishing (and exploding) gradient problem, measured and drawn.

Writes to the output folder (--out, default ./vanishing):
  heatmap.png    ‖∂E_t/∂θ via step k‖ for every loss t and step k, log colour scale
                 (θ = U unless --param says otherwise), tanh, the usual initialisation
  decay.png      the median of that norm against the lag t − k for tanh, sigmoid and
                 relu, with σ_max(W) = 0.6/γ (below the critical value 1/γ), 1.6/γ and
                 3/γ (above it)
  jacobians.png  ‖∂h_t/∂h_k‖₂ against the lag for the same nine networks, with the
                 product bound Π_j ‖diag φ'(a_j)‖₂·‖W‖₂
  report.md      the numbers behind every picture, the conditions shown on examples, the
                 classic 3-step worked example and, with --experiment, the long-range
                 table (about a minute more on two cores)
  *.csv          the full matrices and curves behind the pictures

γ = sup φ' (1 for tanh and relu, 1/4 for sigmoid). σ_max(W) < 1/γ is sufficient for
the gradients from far-back steps to vanish; σ_max(W) > 1/γ is necessary (not
sufficient) for them to explode (Pascanu, Mikolov & Bengio 2013). Needs matplotlib:
pip install -c constraints.txt -e ".[plot]" in a checkout (or: pip install matplotlib).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from manual_bptt.cli.arguments import existing_parent, in_range, nonnegative_int

MAX_T = 500  # the nine Jacobian rows and contribution maps stay well under a second each
DRAWN = ("U", "W", "b", "x")  # the parameters used at every step, whose parts can decay


def register(sub: Any) -> None:
    p = sub.add_parser(
        "vanishing",
        help="measure and plot vanishing/exploding gradients into a folder",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", default="vanishing", type=existing_parent,
                   help="output folder, made if its parent exists (default ./vanishing)")  # fmt: skip
    p.add_argument("--T", type=in_range(2, MAX_T), default=40,
                   help=f"steps, 2 to {MAX_T} (default 40)")  # fmt: skip
    p.add_argument("--seed", type=nonnegative_int, default=0,
                   help="seed of the network and inputs, ≥ 0 (default 0)")  # fmt: skip
    p.add_argument("--param", default="U", choices=DRAWN,
                   help="θ whose contributions are drawn (default U); V and c are used by "
                   "their own step's loss only and h0 at step 0 only, so they have no "
                   "decay to draw")  # fmt: skip
    p.add_argument("--experiment", action="store_true",
                   help="also run the long-range experiment (about a minute)")  # fmt: skip
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from manual_bptt.cli import plots
    from manual_bptt.progress import Progress
    from manual_bptt.vanishing import study as vanishing
    from manual_bptt.vanishing.decomposition import contribution_norms
    from manual_bptt.vanishing.jacobians import sigma_max

    plots.pyplot()  # fail now, with the fix, if matplotlib is missing
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(f"bptt vanishing: --out must be a folder; {out} is a file", file=sys.stderr)
        return 2
    out.mkdir(exist_ok=True)  # its parent exists (existing_parent)
    bar = Progress(1 + len(vanishing.FACTORS) * len(vanishing.STUDY_ACTIVATIONS),
                   "bptt vanishing")  # fmt: skip
    case = vanishing.study_case(args.T, "tanh", args.seed)
    norms = contribution_norms(case.params, case.x, case.y, param=args.param)
    sigma = sigma_max(case.params.W)
    bar.update()
    regimes = vanishing.regimes(args.T, args.seed, param=args.param, progress=bar)
    bar.close()
    plots.contribution_heatmap(norms, out / "heatmap.png", param=args.param,
                               title=f"How much of each loss's gradient comes from step k\n"
                               f"tanh RNN, T = {args.T}, σ_max(W) = {sigma:.2f}")  # fmt: skip
    plots.decay_plot(regimes, out / "decay.png", param=args.param,
                     title="How far back a loss's gradient reaches")  # fmt: skip
    plots.jacobian_plot(regimes, out / "jacobians.png",
                        title=f"∂h_t/∂h_k for t = {args.T - 1} and its bound")  # fmt: skip
    _write_csvs(out, norms, regimes)
    report = _report(args, norms, sigma, regimes, vanishing.worked_example(args.seed))
    if args.experiment:
        report += _experiment_section(args.seed)
    (out / "report.md").write_text("\n".join(report) + "\n")
    print(f"wrote {out}/heatmap.png, decay.png, jacobians.png, report.md and the CSV files")
    return 0


def _report(args: argparse.Namespace, norms: np.ndarray, sigma: float, regimes: list,
            example: Any) -> list[str]:  # fmt: skip
    T, p = args.T, args.param
    step = max(1, T // 8)
    return [
        f"# Vanishing and exploding gradients (T = {T}, seed {args.seed})",
        "",
        (
            "The network: float inputs x ~ N(0, 1), D = K = 8, H = 32, N = 4 sequences, "
            "weights by init_params (uniform, bound 1/√n_in), biases in (−1, 1)."
        ),
        "",
        (
            "Conditions (Pascanu, Mikolov & Bengio 2013, §2.1), γ = sup φ': since "
            "‖∂h_t/∂h_k‖₂ ≤ Π_j ‖diag φ'(a_j)‖₂·‖W‖₂ ≤ (γ σ_max(W))^(t−k), σ_max(W) < 1/γ "
            "is sufficient for the Jacobians and the long-range gradients to vanish; "
            "σ_max(W) > 1/γ is necessary, not sufficient, for them to explode."
        ),
        "",
        _gamma_table(),
        "",
        "## The conditions on examples",
        "",
        (
            f"Sequence 0, t = {T - 1}, k = 0. The rate is ‖∂h_t/∂h_0‖₂^(1/(t−k)), the "
            "mean factor per step back."
        ),
        "",
        _conditions_table(regimes),
        "",
        _conditions_summary(regimes),
        "",
        f"## heatmap.png: ‖∂E_t/∂{p} via step k‖, tanh, σ_max(W) = {sigma:.3f}",
        "",
        f"Rows t (loss), columns k (step){_every(step)}; the whole matrix is in heatmap.csv.",
        "",
        _matrix_table(norms, step),
        "",
        f"## decay.png: median over t of ‖∂E_t/∂{p} via step t − lag‖, relative to lag 0",
        "",
        "All lags in decay.csv.",
        "",
        _lag_table(regimes, lambda r: [r.decay / r.decay[0]]),
        "",
        f"## jacobians.png: ‖∂h_{T - 1}/∂h_k‖₂ and its product bound, against lag {T - 1} − k",
        "",
        "All lags in jacobians.csv.",
        "",
        _lag_table(regimes, lambda r: [r.jacobian, r.bound], ["‖∂h_t/∂h_k‖₂", "bound"]),
        "",
        *_example_section(example),
    ]


def _gamma_table() -> str:
    from manual_bptt.vanishing.jacobians import critical_sigma

    rows = [[a, f"{1 / critical_sigma(a):g}", f"{critical_sigma(a):g}"]
            for a in ("tanh", "sigmoid", "relu")]  # fmt: skip
    return _table(["activation", "γ", "critical σ_max(W) = 1/γ"], rows)


def _conditions_table(regimes: list) -> str:
    rows = []
    for r in regimes:
        lag = len(r.jacobian) - 1
        rows.append([r.activation, f"{r.sigma:.3g} ({r.factor:g}/γ)", f"{r.gamma * r.sigma:.3g}",
                     f"{r.jacobian[lag]:.2e}", f"{r.bound[lag]:.2e}",
                     f"{(r.gamma * r.sigma) ** lag:.2e}", f"{r.rate:.3f}", r.verdict])  # fmt: skip
    head = ["activation", "σ_max(W)", "γ·σ_max", "‖∂h_t/∂h_0‖₂", "Π bound",
            "(γσ)^(t−k)", "rate per step", "verdict"]  # fmt: skip
    return _table(head, rows)


def _conditions_summary(regimes: list) -> str:
    below = [r for r in regimes if r.below_critical]
    above = [r for r in regimes if not r.below_critical]
    all_vanish = all(r.verdict == "vanishes" for r in below)
    exploding = ", ".join(f"{r.activation} at {r.factor:g}/γ" for r in above
                          if r.verdict == "explodes") or "none"  # fmt: skip
    vanishing = ", ".join(f"{r.activation} at {r.factor:g}/γ" for r in above
                          if r.verdict == "vanishes") or "none"  # fmt: skip
    below_text = (
        "every network vanishes, as the bound guarantees"
        if all_vanish
        else "NOT every network vanishes, which the bound forbids: a bug"
    )
    return (
        f"Below 1/γ {below_text}. Above 1/γ, exploding: {exploding}; still vanishing: "
        f"{vanishing} (saturation and relu's zeros keep ‖diag φ'(a_j)‖ below γ, so "
        "σ_max(W) > 1/γ alone does not make gradients explode)."
    )


def _example_section(example: Any) -> list[str]:
    lines = [
        "## The 3-step worked example",
        "",
        (
            "The classic tutorial splits ∂E_3/∂U (steps counted from 1) into one part per "
            "step at which U was used. Here steps count from 0, so the last loss is E_2: "
            f"tanh, token inputs x = {example.x.tolist()}, targets y = "
            f"{example.y.tolist()}, D = K = 4, H = 3, h_(−1) = 0. ∂E_2/∂U via step k = "
            "δ^(2)_k x_kᵀ with δ^(2)_2 = Vᵀ(ŷ_2 − y_2) ⊙ φ'(a_2) and δ^(2)_k = "
            "Wᵀ δ^(2)_(k+1) ⊙ φ'(a_k):"
        ),
        "",
    ]
    for k, (part, norm) in enumerate(zip(example.components, example.norms, strict=True)):
        lines += [f"via step {k} (‖·‖_F = {norm:.6g}):", "", "```",
                  np.array2string(part, precision=5, suppress_small=True), "```", ""]  # fmt: skip
    T = example.parts.shape[0]
    per_loss = [[f"E_{t}"] + [f"{np.linalg.norm(example.parts[t, k]):.4g}" if k <= t else ""
                              for k in range(T)] for t in range(T)]  # fmt: skip
    lines += [
        "‖∂E_t/∂U via step k‖ for every loss:",
        "",
        _table(["loss \\ via step", *map(str, range(T))], per_loss),
        "",
        (
            "All components of all losses sum to bptt's ∂L/∂U: max |Σ_{t,k} − ∂L/∂U| = "
            f"{example.total_error:.1e}."
        ),
    ]
    return lines


def _experiment_section(seed: int) -> list[str]:
    from manual_bptt.vanishing.experiment import Task, run_experiment, table

    task = Task(seed=seed)
    start = time.perf_counter()
    rows = run_experiment(task)
    wall = time.perf_counter() - start
    return ["", "## The long-range experiment", "", table(rows, task), "",
            f"Wall time {wall:.0f} s."]  # fmt: skip


def _write_csvs(out: Path, norms: np.ndarray, regimes: list) -> None:
    np.savetxt(out / "heatmap.csv", norms, fmt="%.6e", delimiter=",",
               header="row t (loss), column k (step): ‖∂E_t/∂θ via step k‖")  # fmt: skip
    lags = np.arange(len(regimes[0].decay))
    names = [f"{r.activation} {r.factor:g}/γ" for r in regimes]
    np.savetxt(out / "decay.csv", np.column_stack([lags] + [r.decay for r in regimes]),
               fmt="%.6e", delimiter=",", header="lag," + ",".join(names))  # fmt: skip
    columns = [c for r in regimes for c in (r.jacobian, r.bound)]
    head = ",".join(f"{n} {q}" for n in names for q in ("norm", "bound"))
    np.savetxt(out / "jacobians.csv", np.column_stack([lags, *columns]), fmt="%.6e",
               delimiter=",", header="lag," + head)  # fmt: skip


def _every(step: int) -> str:
    if step == 1:
        return ""
    return f", every {step}{'nd' if step == 2 else 'rd' if step == 3 else 'th'} of each"


def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _matrix_table(norms: np.ndarray, step: int) -> str:
    idx = list(range(0, norms.shape[0], step))
    rows = [[str(t)] + [f"{norms[t, k]:.1e}" if k <= t else "" for k in idx] for t in idx]
    return _table(["t \\ k", *map(str, idx)], rows)


def _lag_table(regimes: list, values: Any, quantities: list[str] | None = None) -> str:
    T = len(regimes[0].decay)
    lags = sorted({lag for lag in (0, 1, 2, 5, 10, 20, 30, 50, 100, 200) if lag < T} | {T - 1})
    quantities = quantities or [""]
    rows = []
    for r in regimes:
        for q, series in zip(quantities, values(r), strict=True):
            rows.append([r.activation, f"{r.factor:g}/γ = {r.sigma:.3g}", *([q] if q else []),
                         *(f"{series[lag]:.1e}" for lag in lags)])  # fmt: skip
    head = ["activation", "σ_max(W)", *(["quantity"] if quantities != [""] else []),
            *(f"lag {lag}" for lag in lags)]  # fmt: skip
    return _table(head, rows)
