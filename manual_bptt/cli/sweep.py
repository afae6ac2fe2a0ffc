"""bptt sweep: the Hypothesis property search of the test suite, from the command line.

Draws random problems for one cell (--cell: the vanilla RNN by default, the LSTM, or
the GRU with both reset variants) (T up to 40, N up to 6, D, H, K up to 16, every activation,
float or token inputs, batched or not, h0, masks, both reductions, full BPTT, window
truncation, chunks and TBPTT(k1, k2), weight scales from 1e-3 to 4), runs manual_bptt.bptt and the
autograd twin on each, and compares loss and gradients under the tolerance policy of
manual_bptt/compare.py. Prints how many examples ran and the comparison that came
closest to its tolerance; on a failure, the minimal (shrunk) counterexample and a line that reproduces it.
Exit code 0 when all agree, 1 otherwise.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from manual_bptt.backward import bptt
from manual_bptt.cells import CELLS
from manual_bptt.checking.explain import describe_finding
from manual_bptt.checking.strategies import ALL_MODES, cases
from manual_bptt.checking.verify import verify
from manual_bptt.cli.arguments import add_command, positive_int

PROFILES = {"quick": 100, "ci": 500, "thorough": 5000}


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "sweep",
        "search many random problems for a manual-vs-autograd disagreement",
        __doc__,
        run,
    )
    p.add_argument(
        "--examples",
        type=positive_int,
        help="problems to try (default: the profile's count)",
    )
    p.add_argument(
        "--profile",
        choices=list(PROFILES),
        default="quick",
        help=", ".join(f"{k}: {v} examples" for k, v in PROFILES.items()) + " (default quick)",
    )
    p.add_argument("--seed", type=int, default=0, help="Hypothesis seed (default 0)")
    p.add_argument(
        "--cell",
        choices=list(CELLS),
        default="rnn",
        help="the vanilla RNN (default), the LSTM or the GRU (both variants)",
    )


def run(args: argparse.Namespace) -> int:
    examples = args.examples or PROFILES[args.profile]
    started = time.perf_counter()
    report = verify(
        bptt,
        style="project",
        max_examples=examples,
        random_seed=args.seed,
        name="manual_bptt:bptt",
        show_progress=None,
        strategy=cases(cell=args.cell, modes=ALL_MODES),
    )
    seconds = time.perf_counter() - started
    if report.failure is None:
        print(
            f"manual_bptt.bptt ({args.cell}) agrees with autograd on all {report.examples} "
            f"examples ({seconds:.0f} s, seed {args.seed})"
        )
        if report.closest is not None:
            print(f"closest to its tolerance: {report.closest.describe()}")
        return 0
    print(
        f"DISAGREEMENT ({report.calls} runs in all, finding it and shrinking it); "
        "minimal counterexample:"
    )
    for finding in report.findings:
        print("\n".join(describe_finding(report, finding)))
    return 1
