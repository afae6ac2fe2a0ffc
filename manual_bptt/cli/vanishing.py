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
                 two classic worked examples and, with --experiment, the long-range
                 table (about a minute more on two cores)
  *.csv          the full matrices and curves behind the pictures

With --cell rnn|lstm|gru|all, also:
  cells.png      the cells side by side on the delayed-recall network (4 symbols,
                 H = 32, T = 61 unless --T): the heatmap of ‖∂E_t/∂U via step k‖ at
                 initialisation and after training (full BPTT, L = 20), and the decay
                 with the lag of every cell (the LSTM's carousel Π f dotted)
  report.md      gains the share of the gradient reaching lags 10, 20 and 40 per cell,
                 the state Jacobians' norms and the mean forget gate f (LSTM) and
                 update gate z (GRU); --forget-bias B adds an LSTM with b_f = B
  --experiment   then runs the long-range table for those cells instead: every L in
                 --lags, full BPTT and a window L/2 < L, every seed in --seeds, at the
                 fixed budget of experiment.cell_table_task (--steps overrides it);
                 report.md gets the table per seed and over seeds (runs that learned,
                 median, range), the checks of the conclusions of docs/experiment.md
                 (held, FAILED, or open when seeds are missing) and the machine; the
                 summary and the checks are printed too, and --record FILE writes every
                 run and the machine as JSON. Per-seed accuracies depend on the CPU and
                 its BLAS: compare counts over five seeds (--seeds 0 1 2 3 4), not seeds

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
from typing import TYPE_CHECKING, Any

import numpy as np

from manual_bptt.cli.arguments import (
    add_command,
    existing_parent,
    finite_float,
    in_range,
    nonnegative_int,
    positive_int,
)
from manual_bptt.errors import UsageError

if TYPE_CHECKING:
    from manual_bptt.vanishing.study import Regime

MAX_T = 500  # the nine Jacobian rows and contribution maps stay well under a second each
DRAWN = ("U", "W", "b", "x")  # the parameters used at every step, whose parts can decay
CELL_CHOICES = ("rnn", "lstm", "gru", "all")
CELLS_T = 61  # lags up to 60: the report's lag 40 is inside


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "vanishing",
        "measure and plot vanishing/exploding gradients into a folder",
        __doc__,
        run,
    )
    p.add_argument(
        "--out",
        default="vanishing",
        type=existing_parent,
        help="output folder, made if its parent exists (default ./vanishing)",
    )
    p.add_argument(
        "--T",
        type=in_range(2, MAX_T),
        default=None,
        help=f"steps, 2 to {MAX_T} (default 40; {CELLS_T} with --cell)",
    )
    p.add_argument(
        "--seed",
        type=nonnegative_int,
        default=0,
        help="seed of the network and inputs, ≥ 0 (default 0)",
    )
    p.add_argument(
        "--param",
        default="U",
        choices=DRAWN,
        help="θ whose contributions are drawn (default U); V and c are used by "
        "their own step's loss only and h0 at step 0 only, so they have no "
        "decay to draw",
    )
    p.add_argument(
        "--experiment",
        action="store_true",
        help="also run the long-range experiment (about a minute; with --cell, the "
        "table for those cells: one run of 10 s to 2 min per (L, setting, seed) on two "
        "cores, see --lags, --seeds, --steps)",
    )
    p.add_argument(
        "--cell",
        choices=CELL_CHOICES,
        default=None,
        help="also compare cells: rnn, lstm, gru or all three side by side (cells.png)",
    )
    p.add_argument(
        "--forget-bias",
        type=finite_float,
        default=0.0,
        help="with --cell lstm or all: also show an LSTM whose forget-gate bias b_f "
        "starts at this value (1 is the usual choice; default 0: not shown)",
    )
    p.add_argument(
        "--lags",
        type=positive_int,
        nargs="+",
        default=[10, 20, 40],
        help="with --cell and --experiment: the delays L (default 10 20 40)",
    )
    p.add_argument(
        "--seeds",
        type=nonnegative_int,
        nargs="+",
        default=None,
        help="with --cell and --experiment: the seeds (default: --seed alone; the "
        "conclusions are checked over five, 0 1 2 3 4)",
    )
    p.add_argument(
        "--record",
        type=existing_parent,
        default=None,
        help="with --cell and --experiment: also write every run, the command and the "
        "machine (CPU, numpy, its BLAS) to this JSON file",
    )
    p.add_argument(
        "--steps",
        type=positive_int,
        default=None,
        help="with --cell: training steps per run, for the trained networks and the "
        "experiment (default: the budget, 3000)",
    )


def run(args: argparse.Namespace) -> int:
    from manual_bptt.cli import plots
    from manual_bptt.params import Params
    from manual_bptt.progress import Progress
    from manual_bptt.vanishing import study as vanishing
    from manual_bptt.vanishing.decomposition import contribution_norms
    from manual_bptt.vanishing.jacobians import sigma_max

    if args.T is None:
        args.T = CELLS_T if args.cell else 40
    cells = _cells(args)
    plots.pyplot()  # fail now, with the fix, if matplotlib is missing
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(f"bptt vanishing: --out must be a folder; {out} is a file", file=sys.stderr)
        return 2
    out.mkdir(exist_ok=True)  # its parent exists (existing_parent)
    bar = Progress(1 + len(vanishing.FACTORS) * len(vanishing.STUDY_ACTIVATIONS), "bptt vanishing")
    case = vanishing.study_case(args.T, "tanh", args.seed)
    assert isinstance(case.params, Params)  # study_case builds vanilla cells
    norms = contribution_norms(case.params, case.x, case.y, param=args.param)
    sigma = sigma_max(case.params.W)
    bar.update()
    regimes = vanishing.regimes(args.T, args.seed, param=args.param, progress=bar)
    bar.close()
    plots.contribution_heatmap(
        norms,
        out / "heatmap.png",
        param=args.param,
        title=f"How much of each loss's gradient comes from step k\n"
        f"tanh RNN, T = {args.T}, σ_max(W) = {sigma:.2f}",
    )
    plots.decay_plot(
        regimes, out / "decay.png", param=args.param, title="How far back a loss's gradient reaches"
    )
    plots.jacobian_plot(
        regimes, out / "jacobians.png", title=f"∂h_t/∂h_k for t = {args.T - 1} and its bound"
    )
    _write_csvs(out, norms, regimes)
    report = _report(args, norms, sigma, regimes)
    report += _kravets_section(vanishing.kravets_example(args.seed))
    report += _tutorial_section(
        vanishing.tutorial_example(args.seed), vanishing.tutorial_example(args.seed, with_h0=True)
    )
    if cells:
        report += _cells_section(args, cells, out)
    printed = ""
    if args.experiment and cells:
        section, printed = _cell_experiment_section(args, cells)
        report += section
    elif args.experiment:
        report += _experiment_section(args.seed)
    (out / "report.md").write_text("\n".join(report) + "\n")
    extra = ", cells.png" if cells else ""
    print(f"wrote {out}/heatmap.png, decay.png, jacobians.png{extra}, report.md and the CSV files")
    if printed:
        print(printed)
    return 0


def _cells(args: argparse.Namespace) -> tuple[str, ...]:
    """The cells asked for, after checking the options that go with --cell (a UsageError
    for one that does not: exit 2). The numbers themselves are checked by argparse."""
    if args.cell is None:
        for flag, given in (
            ("--forget-bias", args.forget_bias),
            ("--seeds", args.seeds),
            ("--steps", args.steps),
        ):
            if given:
                raise UsageError(f"{flag} goes with --cell")
    if args.record and not (args.cell and args.experiment):
        raise UsageError("--record goes with --cell and --experiment")
    if args.record and Path(args.record).is_dir():
        raise UsageError(f"--record must be a file; {args.record} is a folder")
    if args.cell is None:
        return ()
    cells = ("rnn", "lstm", "gru") if args.cell == "all" else (args.cell,)
    if args.forget_bias and "lstm" not in cells:
        raise UsageError("--forget-bias is the LSTM's: use --cell lstm or all")
    return cells


def _cells_section(args: argparse.Namespace, cells: tuple[str, ...], out: Path) -> list[str]:
    from manual_bptt.cli import plots
    from manual_bptt.progress import Progress
    from manual_bptt.vanishing import cells as compare
    from manual_bptt.vanishing.experiment import cell_table_task

    task = cell_table_task(compare.TRAIN_L, args.seed)
    steps = task.steps if args.steps is None else args.steps
    bar = Progress(
        compare.progress_units(cells, args.forget_bias, True, steps), "bptt vanishing --cell"
    )
    studies = compare.compare_cells(
        cells, args.T, args.seed, forget_bias=args.forget_bias, train_steps=steps, progress=bar
    )
    bar.close()
    plots.cells_plot(
        studies,
        out / "cells.png",
        title=f"How far back each cell's gradient reaches (T = {args.T}, H = {task.hidden})",
    )
    lags = [lag for lag in compare.REACH_LAGS if lag < args.T]
    rows = []
    for s in studies:
        gate = "" if s.gate is None else f"{s.gate}: {s.gate_mean:.3f} ({s.gate_open:.0%})"
        rows.append(
            [
                s.label,
                gate,
                *(f"{s.reach(lag):.1e}" for lag in lags),
                *(f"{s.jacobian[lag]:.1e}" for lag in lags),
                *(f"{s.carousel[lag]:.1e}" if s.carousel is not None else "" for lag in lags),
            ]
        )
    head = [
        "cell",
        "mean gate (share > 0.9)",
        *(f"gradient at lag {lag}" for lag in lags),
        *(f"‖∂state/∂state‖₂ lag {lag}" for lag in lags),
        *(f"Π f lag {lag}" for lag in lags),
    ]
    return [
        "",
        "## The cells side by side (cells.png)",
        "",
        (
            f"The delayed-recall network of the long-range experiment (4 symbols, H = "
            f"{task.hidden}), {compare.N_MEASURED} token sequences of T = {args.T} steps, every "
            "loss scored, at initialisation (init_params: uniform weights, bound 1/√n_in, "
            "zero biases) and after training with full BPTT on recall over L = "
            f"{compare.TRAIN_L} ({steps} Adam steps, as the experiment's budget), seed "
            f"{args.seed}. 'gradient at lag ℓ' is the median over t of ‖∂E_t/∂U via step "
            "t − ℓ‖ divided by its value at lag 0: the share of a loss's gradient that "
            "reaches ℓ steps back. ‖∂state/∂state‖₂ is ‖∂state_(T−1)/∂state_(T−1−ℓ)‖₂ "
            "(the LSTM's state is [h; s]) for sequence 0; Π f the LSTM's carousel, the "
            "product of the forget gates over those ℓ steps, mean over units. The gate "
            "columns give the mean forget gate f (LSTM) or update gate z (GRU) over every "
            "step, sequence and unit, and the share of its entries above 0.9."
        ),
        "",
        _table(head, rows),
        "",
    ]


def _cell_experiment_section(
    args: argparse.Namespace, cells: tuple[str, ...]
) -> tuple[list[str], str]:
    """The long-range table for ``cells``: the report's section, and the text to print
    (the table over seeds and the checks). Writes --record's JSON if asked."""
    import json

    from manual_bptt.vanishing.experiment import (
        cell_table,
        check_report,
        machine,
        machine_line,
        run_cell_table,
        seed_summary,
    )

    seeds = tuple(args.seeds) if args.seeds else (args.seed,)
    start = time.perf_counter()
    rows = run_cell_table(
        tuple(args.lags), cells, seeds, forget_bias=args.forget_bias, steps=args.steps
    )
    wall = time.perf_counter() - start
    record = machine()
    checks = (
        check_report(rows)
        if args.steps is None
        else f"Not checked: the conclusions are about the budget's steps, not {args.steps}."
    )
    if args.record:
        command = ["bptt", *sys.argv[1:]] if sys.argv[1:] else ["bptt", "vanishing"]
        Path(args.record).write_text(
            json.dumps({"command": " ".join(command), "machine": record, "rows": rows}, indent=1)
            + "\n"
        )
    budget = "" if args.steps is None else f" ({args.steps} steps per run: a reduced budget)"
    summary = seed_summary(rows)
    section = [
        "",
        "## The long-range experiment, every cell",
        "",
        cell_table(rows),
        "",
        f"Over the seeds{budget}:",
        "",
        summary,
        "",
        (
            "Checks of the conclusions of docs/experiment.md (each a count over five "
            "seeds; 'open' while missing seeds could still decide it):"
        ),
        "",
        "```",
        checks,
        "```",
        "",
        (
            f"Machine: {machine_line(record)}. Wall time {wall:.0f} s in all. Per-seed "
            "accuracies depend on the CPU and its BLAS; compare the counts, not the seeds."
        ),
    ]
    printed = "\n".join([f"Over the seeds{budget}:", summary, "", "Checks:", checks])
    return section, printed


def _report(
    args: argparse.Namespace, norms: np.ndarray, sigma: float, regimes: list[Regime]
) -> list[str]:
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
    ]


def _gamma_table() -> str:
    from manual_bptt.vanishing.jacobians import critical_sigma

    rows = [
        [a, f"{1 / critical_sigma(a):g}", f"{critical_sigma(a):g}"]
        for a in ("tanh", "sigmoid", "relu")
    ]
    return _table(["activation", "γ", "critical σ_max(W) = 1/γ"], rows)


def _conditions_table(regimes: list[Regime]) -> str:
    rows = []
    for r in regimes:
        lag = len(r.jacobian) - 1
        rows.append(
            [
                r.activation,
                f"{r.sigma:.3g} ({r.factor:g}/γ)",
                f"{r.gamma * r.sigma:.3g}",
                f"{r.jacobian[lag]:.2e}",
                f"{r.bound[lag]:.2e}",
                f"{(r.gamma * r.sigma) ** lag:.2e}",
                f"{r.rate:.3f}",
                r.verdict,
            ]
        )
    head = [
        "activation",
        "σ_max(W)",
        "γ·σ_max",
        "‖∂h_t/∂h_0‖₂",
        "Π bound",
        "(γσ)^(t−k)",
        "rate per step",
        "verdict",
    ]
    return _table(head, rows)


def _conditions_summary(regimes: list[Regime]) -> str:
    below = [r for r in regimes if r.below_critical]
    above = [r for r in regimes if not r.below_critical]
    all_vanish = all(r.verdict == "vanishes" for r in below)
    exploding = (
        ", ".join(f"{r.activation} at {r.factor:g}/γ" for r in above if r.verdict == "explodes")
        or "none"
    )
    vanishing = (
        ", ".join(f"{r.activation} at {r.factor:g}/γ" for r in above if r.verdict == "vanishes")
        or "none"
    )
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


def _parts(example: Any, with_values: bool = True) -> list[str]:
    """Each part of the last loss's gradient with its norm (and its entries)."""
    t, name = len(example.components) - 1, example.param
    lines = []
    for k, (part, norm) in enumerate(zip(example.components, example.norms, strict=True)):
        lines += [f"∂E_{t}/∂{name} via step {k}: ‖·‖_F = {norm:.6g}", ""]
        if with_values:
            lines += ["```", np.array2string(part, precision=5, suppress_small=True), "```", ""]
    return lines


def _every_loss(example: Any) -> list[str]:
    T, name = example.parts.shape[0], example.param
    per_loss = [
        [f"E_{t}"]
        + [f"{np.linalg.norm(example.parts[t, k]):.4g}" if k <= t else "" for k in range(T)]
        for t in range(T)
    ]
    return [
        f"‖∂E_t/∂{name} via step k‖ for every loss:",
        "",
        _table(["loss \\ via step", *map(str, range(T))], per_loss),
        "",
        (
            f"All parts of all losses sum to bptt's ∂L/∂{name}: max |Σ_{{t,k}} − ∂L/∂{name}| "
            f"= {example.total_error:.1e}."
        ),
        "",
    ]


def _kravets_section(example: Any) -> list[str]:
    return [
        "## Kravets's 3-step example: ∂E/∂U over the three inputs",
        "",
        (
            'A. Kravets ("Backpropagation and Vanishing Gradient Problem in RNN") splits the '
            "loss at the third of three steps over the inputs X₁, X₂, X₃ with respect to "
            "W_xh, which is our U. Steps count from 1 there and from 0 here, so that loss is "
            f"E_2: tanh, token inputs x = {example.x.tolist()}, targets y = "
            f"{example.y.tolist()}, D = K = 4, H = 3, h_(−1) = 0. ∂E_2/∂U via step k = "
            "δ^(2)_k x_kᵀ with δ^(2)_2 = Vᵀ(ŷ_2 − y_2) ⊙ φ'(a_2) and δ^(2)_k = "
            "Wᵀ δ^(2)_(k+1) ⊙ φ'(a_k):"
        ),
        "",
        *_parts(example),
        *_every_loss(example),
    ]


def _tutorial_section(zero_h0: Any, with_h0: Any) -> list[str]:
    first = float(np.abs(zero_h0.components[0]).max())
    return [
        "## The tutorial's example: ∂E_3/∂W in four parts",
        "",
        (
            "The WildML tutorial (part 3) writes ∂E_3/∂W = Σ_(k=0)^(3) ∂E_3/∂ŷ_3 · ∂ŷ_3/∂s_3 · "
            "∂s_3/∂s_k · ∂s_k/∂W, with steps counted from 0 and its s our h: no biases, tanh, "
            f"tokens x = {zero_h0.x.tolist()}, targets y = {zero_h0.y.tolist()}, D = K = 4, "
            "H = 3. Part k is δ^(3)_k h_(k−1)ᵀ; the k = 0 part multiplies h_(−1), so with the "
            f"tutorial's zero initial state it is exactly zero (largest entry {first:g}):"
        ),
        "",
        *_parts(zero_h0, with_values=False),
        "With an initial state h_(−1) drawn in (−1, 1) the k = 0 part is no longer zero:",
        "",
        *_parts(with_h0, with_values=False),
        *_every_loss(with_h0),
    ]


def _experiment_section(seed: int) -> list[str]:
    from manual_bptt.vanishing.experiment import Task, machine, machine_line, run_experiment, table

    task = Task(seed=seed)
    start = time.perf_counter()
    rows = run_experiment(task)
    wall = time.perf_counter() - start
    return [
        "",
        "## The long-range experiment",
        "",
        table(rows, task),
        "",
        (
            f"Machine: {machine_line(machine())}. Wall time {wall:.0f} s. One seed's "
            "accuracies depend on the CPU and its BLAS (docs/experiment.md)."
        ),
    ]


def _write_csvs(out: Path, norms: np.ndarray, regimes: list[Regime]) -> None:
    np.savetxt(
        out / "heatmap.csv",
        norms,
        fmt="%.6e",
        delimiter=",",
        header="row t (loss), column k (step): ‖∂E_t/∂θ via step k‖",
    )
    lags = np.arange(len(regimes[0].decay))
    names = [f"{r.activation} {r.factor:g}/γ" for r in regimes]
    np.savetxt(
        out / "decay.csv",
        np.column_stack([lags] + [r.decay for r in regimes]),
        fmt="%.6e",
        delimiter=",",
        header="lag," + ",".join(names),
    )
    columns = [c for r in regimes for c in (r.jacobian, r.bound)]
    head = ",".join(f"{n} {q}" for n in names for q in ("norm", "bound"))
    np.savetxt(
        out / "jacobians.csv",
        np.column_stack([lags, *columns]),
        fmt="%.6e",
        delimiter=",",
        header="lag," + head,
    )


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


def _lag_table(regimes: list[Regime], values: Any, quantities: list[str] | None = None) -> str:
    T = len(regimes[0].decay)
    lags = sorted({lag for lag in (0, 1, 2, 5, 10, 20, 30, 50, 100, 200) if lag < T} | {T - 1})
    quantities = quantities or [""]
    rows = []
    for r in regimes:
        for q, series in zip(quantities, values(r), strict=True):
            rows.append(
                [
                    r.activation,
                    f"{r.factor:g}/γ = {r.sigma:.3g}",
                    *([q] if q else []),
                    *(f"{series[lag]:.1e}" for lag in lags),
                ]
            )
    head = [
        "activation",
        "σ_max(W)",
        *(["quantity"] if quantities != [""] else []),
        *(f"lag {lag}" for lag in lags),
    ]
    return _table(head, rows)
