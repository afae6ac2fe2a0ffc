"""bptt truncation: truncated and randomized BPTT against full BPTT, measured.

On the long-range experiment's delayed recall (the target at step t is the token shown
L steps earlier; by default its cell table's task: recall the first token at the last
step, T = L + 1, H = 32, batch 64, Adam lr 0.01, clipping at 1), for every cell in
--cells, at initialisation and after --steps of training with full BPTT, and for every
length k in --ks, each estimator's gradient against the full-BPTT gradient at the same
parameters on the same batch:

  window k        each loss reaches k steps back (truncate=k)
  chunk k         losses reach back to the start of their chunk of k (chunk=k)
  TBPTT(k/2, k)   every ⌊k/2⌋ steps, backpropagate k steps (tbptt=(⌊k/2⌋, k))
  d2l             d2l.ai §9.7's randomized truncation, π = 1 − 1/k (mean segment k)
  artbp           Tallec & Ollivier's, a = kπ^k/(1 − π^k): reaches k steps back as
                  often as d2l's

  bias      ‖E[g] − g_full‖ / ‖g_full‖ and cos(E[g], g_full)
  variance  E‖g − E[g]‖² / ‖g_full‖² (0 for the deterministic ones)
  cost      steps backpropagated per sequence

For d2l and artbp, bias and variance are exact (from the gradient through each step
and the exact moments of the links' weights), and also estimated from --draws draws,
as a user of the estimator would see them: the mean's bias ± its standard error, and
the sample variance.

Then trains every cell in --train-cells with each estimator at each k in --train-ks
(and full BPTT) for --steps steps per run, once per seed in --seeds (default: --seed),
and gives the held-out accuracy. The measured networks and batch use --seed.

Writes to --out (default ./truncation): truncation.md (the tables, also printed),
truncation.json (every number, the command and the machine) and truncation.png.
--quick runs a small version in seconds (L = 5, T = 6, H = 8, 40 steps, 10 draws).
Needs matplotlib: pip install -c constraints.txt -e ".[plot]" (or: pip install matplotlib).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from manual_bptt.cli.arguments import (
    add_command,
    existing_parent,
    in_range,
    nonnegative_int,
    positive_int,
)

MAX_L = 499  # T = L + 1 ≤ 500, as bptt vanishing's --T: minutes per training run there
DEFAULT_KS = (2, 5, 10, 20, 40)
QUICK_KS = (2, 3, 8)
DEFAULT_DRAWS = 100
QUICK_DRAWS = 10


def _at_least_two(why: str) -> Callable[[str], int]:
    """An argument type: an integer ≥ 2, the refusal saying ``why``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer ≥ 2; got {text!r}") from None
        if value < 2:
            raise argparse.ArgumentTypeError(f"must be an integer ≥ 2 ({why}); got {text}")
        return value

    return parse


# A length k ≥ 2 (d2l's π = 1 − 1/k must be > 0), and M ≥ 2 draws (a variance needs two).
length = _at_least_two("d2l's π = 1 − 1/k is 0 at k = 1")
draws = _at_least_two("a variance needs two draws")


def cell(text: str) -> str:
    """A registered cell's name (manual_bptt.cells.CELLS)."""
    from manual_bptt.cells import CELLS

    if text not in CELLS:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(CELLS)}; got {text!r}")
    return text


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "truncation",
        "measure the bias, variance and cost of truncated and randomized BPTT",
        __doc__,
        run,
    )
    p.add_argument(
        "--out",
        default="truncation",
        type=existing_parent,
        help="output folder, made if its parent exists (default ./truncation)",
    )
    p.add_argument(
        "--cells",
        type=cell,
        nargs="+",
        default=None,
        help="cells measured: rnn, lstm, gru (default rnn lstm)",
    )
    p.add_argument(
        "--ks", type=length, nargs="+", default=None, help="lengths k ≥ 2 (default 2 5 10 20 40)"
    )
    p.add_argument(
        "--L",
        type=in_range(1, MAX_L),
        default=None,
        help=f"the delay L, 1 to {MAX_L}; T = L + 1 (default 20)",
    )
    p.add_argument(
        "--steps",
        type=positive_int,
        default=None,
        help="training steps per run, and before the 'trained' measurement (default 3000)",
    )
    p.add_argument(
        "--draws",
        type=draws,
        default=None,
        help=f"M, draws per randomized estimator, ≥ 2 (default {DEFAULT_DRAWS})",
    )
    p.add_argument(
        "--train-cells",
        type=cell,
        nargs="*",
        default=None,
        help="cells trained with every estimator (default rnn; none: only measure)",
    )
    p.add_argument(
        "--train-ks", type=length, nargs="+", default=None, help="lengths trained with (default 10)"
    )
    p.add_argument(
        "--seed",
        type=nonnegative_int,
        default=0,
        help="seed of the measured networks, their batch and the links, ≥ 0 (default 0)",
    )
    p.add_argument(
        "--seeds",
        type=nonnegative_int,
        nargs="+",
        default=None,
        help="seeds of the training runs (default: --seed alone)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a small version that runs in seconds, for tests: L = 5, H = 8, batch 16, "
        f"40 steps, {QUICK_DRAWS} draws, k in {' '.join(map(str, QUICK_KS))}",
    )


def study_from(args: argparse.Namespace) -> Any:
    """The Study the arguments ask for: the defaults, or --quick's, then every option given."""
    from manual_bptt.vanishing import truncation_study as ts
    from manual_bptt.vanishing.experiment import cell_table_task

    seeds = tuple(dict.fromkeys(args.seeds)) if args.seeds else (args.seed,)
    task = cell_table_task(20, args.seed)
    if args.quick:
        task = ts.quick(task)
    if args.L is not None:
        task = replace(task, L=args.L, T=args.L + 1)
    if args.steps is not None:
        task = replace(task, steps=args.steps)
    return ts.Study(
        task=task,
        cells=tuple(dict.fromkeys(args.cells or ("rnn", "lstm"))),
        ks=tuple(sorted(set(args.ks or (QUICK_KS if args.quick else DEFAULT_KS)))),
        draws=args.draws or (QUICK_DRAWS if args.quick else DEFAULT_DRAWS),
        train_cells=tuple(
            dict.fromkeys(("rnn",) if args.train_cells is None else args.train_cells)
        ),
        train_ks=tuple(dict.fromkeys(args.train_ks or ((QUICK_KS[0],) if args.quick else (10,)))),
        seeds=seeds,
    )


def run(args: argparse.Namespace) -> int:
    from manual_bptt.cli import plots
    from manual_bptt.progress import Progress
    from manual_bptt.vanishing.experiment import machine, machine_line
    from manual_bptt.vanishing.truncation_study import run_study

    study = study_from(args)
    plots.pyplot()  # fail now, with the fix, if matplotlib is missing
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(f"bptt truncation: --out must be a folder; {out} is a file", file=sys.stderr)
        return 2
    out.mkdir(exist_ok=True)  # its parent exists (existing_parent)
    start = time.perf_counter()
    bar = Progress(study.units(), "bptt truncation", every=30.0)
    measured, trained = run_study(study, bar)
    bar.close()
    wall = time.perf_counter() - start
    record = machine()
    command = "bptt " + " ".join(sys.argv[1:]) if sys.argv[1:] else "bptt truncation"
    text = report(study, measured, trained)
    text += f"\nMachine: {machine_line(record)}. Wall time {wall:.0f} s.\n"
    (out / "truncation.md").write_text(text)
    (out / "truncation.json").write_text(
        json.dumps(
            {
                "command": command,
                "machine": record,
                "wall_seconds": wall,
                "settings": settings(study),
                "measured": measured,
                "trained": trained,
            },
            indent=1,
        )
        + "\n"
    )
    truncation_plot(study, measured, trained, out / "truncation.png")
    print(text, end="")
    print(f"wrote {out}/truncation.md, truncation.json and truncation.png")
    return 0


def settings(study: Any) -> dict[str, Any]:
    """The study's numbers, for the JSON."""
    task = study.task
    return {
        "task": {
            "L": task.L,
            "T": task.T,
            "symbols": task.symbols,
            "hidden": task.hidden,
            "batch": task.batch,
            "steps": task.steps,
            "optimizer": task.optimizer,
            "lr": task.lr,
            "max_norm": task.max_norm,
            "scored": task.scored,
            "seed": task.seed,
        },
        "cells": list(study.cells),
        "ks": list(study.ks),
        "draws": study.draws,
        "train_cells": list(study.train_cells),
        "train_ks": list(study.train_ks),
        "seeds": list(study.seeds),
    }


def describe(study: Any) -> str:
    """The settings in one line, for the table's head and the picture's title."""
    t = study.task
    scored = "the last step scored" if t.scored == "last" else "every step t ≥ L scored"
    return (
        f"delayed recall L = {t.L}, T = {t.T} ({scored}), {t.symbols} symbols, H = {t.hidden}, "
        f"batch {t.batch}, seed {t.seed}; 'trained' = after {t.steps} {t.optimizer} steps "
        f"(lr {t.lr}, clip {t.max_norm}) of full BPTT; M = {study.draws} draws"
    )


def report(study: Any, measured: list[dict[str, Any]], trained: list[dict[str, Any]]) -> str:
    """The tables as markdown."""
    lines = [
        "# Truncated and randomized BPTT against full BPTT",
        "",
        f"Settings: {describe(study)}.",
        "",
        (
            "g is every parameter's gradient of the mean loss on one batch, as one vector; "
            "g_full is full BPTT's at the same parameters. bias = ‖E[g] − g_full‖ / ‖g_full‖; "
            "variance = E‖g − E[g]‖² / ‖g_full‖². Deterministic estimators: E[g] = g, "
            "variance 0. Randomized ones (one pattern of links per batch): bias, cosine and "
            "variance exact, from the gradient through each step and the exact moments of "
            "the links' weights; then, from M = "
            f"{study.draws} draws, the mean's bias ± its standard error √(variance/M) and "
            "the variance as the draws estimate them. 'one draw' is the mean cosine of a "
            "single draw with g_full. Cost: steps backpropagated per sequence."
        ),
        "",
    ]
    for cell in dict.fromkeys(r["cell"] for r in measured):
        for state in ("initialisation", "trained"):
            rows = [r for r in measured if r["cell"] == cell and r["state"] == state]
            where = (
                "at initialisation"
                if state == "initialisation"
                else f"after {study.task.steps} steps of full BPTT"
            )
            where += f" (held-out accuracy {rows[0]['network_accuracy']:.1%})"
            lines += [f"## {cell}, {where}", "", measured_table(rows), ""]
    if trained:
        lines += [
            f"## Training with each estimator, L = {study.task.L}",
            "",
            (
                f"{study.task.steps} {study.task.optimizer} steps per run, one fresh batch "
                "of the task per step (the same batches for every estimator; randomized "
                "estimators draw fresh links each step); held-out accuracy on 512 fresh "
                f"sequences (chance {1 / study.task.symbols:.0%})."
            ),
            "",
            trained_table(trained),
            "",
        ]
    return "\n".join(lines)


def measured_table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| k | estimator | cost | bias | cos(E g, g_full) | variance | mean of M draws: "
        "bias ± s.e. | variance from M draws | cos(g, g_full), one draw |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["kind"] in RANDOMIZED_KINDS:
            sampled = (
                f"{r['sample_bias']:.2e} ± {r['standard_error']:.1e} | "
                f"{r['sample_variance']:.2e} | {r['cosine_one_draw']:.4f}"
            )
        else:
            sampled = f"— | — | {r['cosine_one_draw']:.4f}"
        lines.append(
            f"| {'—' if r['k'] is None else r['k']} | {r['estimator']} | {r['cost']} | "
            f"{r['bias']:.2e} | {r['cosine']:.4f} | {r['variance']:.2e} | {sampled} |"
        )
    return "\n".join(lines)


def trained_table(rows: list[dict[str, Any]]) -> str:
    seeds = sorted({r["seed"] for r in rows})
    lines = [
        "| cell | estimator | "
        + " | ".join(f"seed {s}" for s in seeds)
        + " | mean | final loss (mean) | s per run |",
        "|---|---|" + "---|" * (len(seeds) + 3),
    ]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["cell"], r["estimator"]), []).append(r)
    for (cell_name, estimator), group in groups.items():
        by_seed = {r["seed"]: r for r in group}
        accs = [f"{by_seed[s]['accuracy']:.1%}" if s in by_seed else "—" for s in seeds]
        mean = sum(r["accuracy"] for r in group) / len(group)
        loss = sum(r["loss"] for r in group) / len(group)
        secs = sum(r["seconds"] for r in group) / len(group)
        lines.append(
            f"| {cell_name} | {estimator} | "
            + " | ".join(accs)
            + f" | {mean:.1%} | {loss:.3f} | {secs:.0f} |"
        )
    return "\n".join(lines)


STYLE = {"window": "C0", "chunk": "C1", "tbptt": "C2", "d2l": "C3", "artbp": "C4"}
FLOOR = 1e-17  # an exact 0 cannot be drawn on a log axis: drawn here
STATES = (("initialisation", "-", "init"), ("trained", "--", "trained"))


def truncation_plot(
    study: Any, measured: list[dict[str, Any]], trained: list[dict[str, Any]], path: Path
) -> Path:
    """Bias and variance against k, a row per cell (solid: at initialisation; dashed:
    trained; dotted: a randomized estimator's standard error), then the cost against k
    and the training accuracies."""
    from manual_bptt.cli import plots

    plt = plots.pyplot()
    cells = list(dict.fromkeys(r["cell"] for r in measured))
    fig = plt.figure(figsize=(11, 3.4 * (len(cells) + 1) + 1.6), dpi=80)
    grid = fig.add_gridspec(
        len(cells) + 1, 2, hspace=0.5, wspace=0.28, top=1 - 1.5 / (3.4 * (len(cells) + 1) + 1.6)
    )

    def picked(cell_name: str, state: str, kind: str) -> list[dict[str, Any]]:
        return [
            r
            for r in measured
            if r["cell"] == cell_name and r["state"] == state and r["kind"] == kind
        ]

    for row, cell_name in enumerate(cells):
        bias_ax = fig.add_subplot(grid[row, 0])
        var_ax = fig.add_subplot(grid[row, 1])
        for kind, colour in STYLE.items():
            for state, style, short in STATES:
                rows = picked(cell_name, state, kind)
                ks = [r["k"] for r in rows]
                if kind in RANDOMIZED_KINDS:  # exact bias: round-off; drawn: M draws' mean
                    bias = [max(r["sample_bias"], FLOOR) for r in rows]
                    var_ax.plot(ks, [r["variance"] for r in rows], "o" + style, color=colour, ms=4)
                    var_ax.plot(ks, [r["sample_variance"] for r in rows], "x", color=colour, ms=6)
                else:
                    bias = [max(r["bias"], FLOOR) for r in rows]
                marker = "x" if kind in RANDOMIZED_KINDS else "o"
                bias_ax.plot(ks, bias, marker + style, color=colour, ms=5, label=f"{kind}, {short}")
        bias_ax.set_yscale("log")
        var_ax.set_yscale("log")
        for ax in (bias_ax, var_ax):
            _k_axis(ax, study.ks)
        bias_ax.set_ylabel("‖E[g] − g_full‖ / ‖g_full‖")
        bias_ax.set_title(
            f"{cell_name}: bias (d2l, artbp: of the mean of M draws; 0 drawn at {FLOOR:g})",
            fontsize=10,
        )
        var_ax.set_ylabel("E‖g − E[g]‖² / ‖g_full‖²")
        var_ax.set_title(
            f"{cell_name}: variance of d2l, artbp (o exact, x from M draws; others 0)",
            fontsize=10,
        )
        if row == 0:
            handles, labels = bias_ax.get_legend_handles_labels()
            fig.legend(
                handles,
                labels,
                loc="upper center",
                ncol=5,
                fontsize=8,
                frameon=False,
                bbox_to_anchor=(0.5, 1 - 0.75 / (3.4 * (len(cells) + 1) + 1.6)),
            )
    cost_ax = fig.add_subplot(grid[len(cells), 0])
    for kind, colour in STYLE.items():
        rows = picked(cells[0], "initialisation", kind)
        cost_ax.plot(
            [r["k"] for r in rows], [r["cost"] for r in rows], "o-", color=colour, ms=4, label=kind
        )
    cost_ax.axhline(study.task.T, color="grey", ls=":", lw=1, label="full BPTT (T)")
    _k_axis(cost_ax, study.ks)
    cost_ax.set_ylabel("steps backpropagated per sequence")
    cost_ax.set_title("cost (chunk, d2l, artbp and full BPTT: T)", fontsize=10)
    cost_ax.legend(fontsize=7)
    _accuracy_panel(fig.add_subplot(grid[len(cells), 1]), study, trained)
    fig.suptitle(
        "Truncated and randomized BPTT against full BPTT\n" + textwrap.fill(describe(study), 120),
        fontsize=10,
    )
    return plots._save(fig, plt, path, tight=False, colors=256)


RANDOMIZED_KINDS = ("d2l", "artbp")


def _k_axis(ax: Any, ks: tuple[int, ...]) -> None:
    """k on a log axis, ticked at the ks measured."""
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(list(ks))
    ax.set_xticklabels([str(k) for k in ks])
    ax.set_xlabel("k")
    ax.grid(True, which="major", alpha=0.3)


def _accuracy_panel(ax: Any, study: Any, trained: list[dict[str, Any]]) -> None:
    """A bar per (cell, estimator): the mean held-out accuracy over the seeds."""
    if not trained:
        ax.axis("off")
        ax.text(0.5, 0.5, "no training asked for (--train-cells)", ha="center")
        return
    groups: dict[str, list[float]] = {}
    for r in trained:
        groups.setdefault(f"{r['cell']}: {r['estimator']}", []).append(r["accuracy"])
    means = [sum(v) / len(v) for v in groups.values()]
    ax.barh(range(len(groups)), means, color="C7", alpha=0.6)
    for i, (label, mean) in enumerate(zip(groups, means, strict=True)):
        ax.text(0.01, i, f"{label}: {mean:.0%}", va="center", fontsize=8)
    ax.set_yticks([])
    ax.invert_yaxis()
    ax.axvline(1 / study.task.symbols, color="k", ls=":", lw=1)
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"held-out accuracy after {study.task.steps} steps (dotted: chance)")
    seeds = len(study.seeds)
    ax.set_title(
        f"training, L = {study.task.L}, {'mean of ' if seeds > 1 else ''}{seeds} "
        f"seed{'s' if seeds > 1 else ''}",
        fontsize=10,
    )
