"""bptt sweep: the Hypothesis property search of the test suite, from the command line.

Draws random problems (T up to 40, N up to 6, D, H, K up to 16, every activation,
float or token inputs, batched or not, h0, masks, both reductions, full BPTT, window
truncation and chunks, weight scales from 1e-3 to 4), runs manual_bptt.bptt and the
autograd twin on each, and compares loss and gradients under the tolerance policy of
manual_bptt/checking/compare.py. Prints how many examples ran and the comparison that came
closest to its tolerance; on a failure, the minimal (shrunk) counterexample and a line that reproduces it.
Exit code 0 when all agree, 1 otherwise.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import manual_bptt
from manual_bptt.checking.explain import describe_finding
from manual_bptt.checking.strategies import cases
from manual_bptt.checking.verify import verify
from manual_bptt.cli.arguments import positive_int

PROFILES = {"quick": 100, "ci": 500, "thorough": 5000}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "sweep",
        help="search many random problems for a manual-vs-autograd disagreement",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--examples", type=positive_int,
        help="problems to try (default: the profile's count)",
    )  # fmt: skip
    p.add_argument(
        "--profile", choices=list(PROFILES), default="quick",
        help=", ".join(f"{k}: {v} examples" for k, v in PROFILES.items()) + " (default quick)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="Hypothesis seed (default 0)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    examples = args.examples or PROFILES[args.profile]
    started = time.perf_counter()
    report = verify(
        manual_bptt.bptt, style="project", max_examples=examples, random_seed=args.seed,
        name="manual_bptt:bptt", show_progress=None, strategy=cases(),
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if report.failure is None:
        print(f"manual_bptt.bptt agrees with autograd on all {report.examples} examples "
              f"({seconds:.0f} s, seed {args.seed})")  # fmt: skip
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
