"""The tutorial size, A/B in one process: this checkout's bptt against another
checkout's (the code before a change), and both against the tutorial's own loops.

    git archive <commit> | tar -x -C /tmp/before        # the code before a change
    OPENBLAS_NUM_THREADS=1 python benchmarks/ab_tutorial.py --before /tmp/before

The other checkout's package is copied to a temporary directory as
``manual_bptt_before`` (its imports of manual_bptt renamed to match), so that both
versions run in the same process, on the same arrays, in turn. The problem is
problems.py's tutorial row: V = K = 8000, H = 100, T = 30, one sequence of token ids,
truncate = 4, float64. Both bptt versions are first checked against naive_bptt.

Each round takes one sample of each contender in turn, the order rotating from round
to round, with a pause (0.25 s) before each sample: bptt before, bptt after, and
naive_bptt (this checkout's; the tutorial's per-loss loops). A sample of a bptt is
--calls calls back to back, divided by their number; a sample of naive_bptt is one
call. Printed: the median sample of each with the lowest and highest in brackets;
naive/bptt for both versions and after/before, each the median over rounds of the
ratio within the round (below 1 is faster); and the minor page faults per call
(getrusage) of each, since fresh memory is a large part of a call at this size
(docs/performance.md).
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import manual_bptt

from machine import cpu_name, numpy_blas
from problems import TUTORIAL, make_problem


def import_renamed(root: Path, into: Path) -> object:
    """root/manual_bptt copied to into/manual_bptt_before, its imports renamed; imported."""
    target = into / "manual_bptt_before"
    shutil.copytree(root / "manual_bptt", target)
    for path in target.rglob("*.py"):
        text = path.read_text()
        path.write_text(re.sub(r"\bmanual_bptt\b", "manual_bptt_before", text))
    sys.path.insert(0, str(into))
    return importlib.import_module("manual_bptt_before")


def spread(values: list[float], fmt: str) -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}–{max(values):{fmt}})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", type=Path, required=True, help="the other checkout's root")
    parser.add_argument("--rounds", type=int, default=30, help="rounds (30)")
    parser.add_argument("--calls", type=int, default=3, help="bptt calls per sample (3)")
    parser.add_argument("--pause", type=float, default=0.25, help="seconds before a sample")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        before = import_renamed(args.before.resolve(), Path(tmp))
        run(before, args.rounds, args.calls, args.pause)


def run(before: object, rounds: int, calls: int, pause: float) -> None:
    p = make_problem(TUTORIAL, "float64")
    # The other package's own parameter class, with the same arrays.
    old_params = before.Params(**p.params.as_dict())  # type: ignore[attr-defined]
    funcs: dict[str, Callable[[], object]] = {
        "before": lambda: before.bptt(old_params, p.x, p.y, truncate=p.truncate),  # type: ignore[attr-defined]
        "after": lambda: manual_bptt.bptt(p.params, p.x, p.y, truncate=p.truncate),
        "naive": lambda: manual_bptt.naive_bptt(p.params, p.x, p.y, truncate=p.truncate),
    }
    reference = manual_bptt.naive_bptt(p.params, p.x, p.y, truncate=p.truncate)
    for side in ("before", "after"):
        result = funcs[side]()
        worst = max(
            float(np.max(np.abs(result.grads[k] - g)) / np.max(np.abs(g)))  # type: ignore[attr-defined]
            for k, g in reference.grads.items()
        )
        print(f"{side}: worst relative difference of a gradient from naive_bptt's: {worst:.1e}")
    print(
        f"{cpu_name()}, {os.cpu_count()} CPUs; numpy {np.__version__}, "
        f"{numpy_blas().description}, {numpy_blas().threads} BLAS thread(s); "
        f"load average at the start {os.getloadavg()[0]:.2f}"
    )
    times: dict[str, list[float]] = {name: [] for name in funcs}
    faults: dict[str, list[float]] = {name: [] for name in funcs}
    names = list(funcs)
    for f in funcs.values():
        f()  # warm-up
    for r in range(rounds):
        order = names[r % 3 :] + names[: r % 3]
        for name in order:
            n = 1 if name == "naive" else calls
            time.sleep(pause)
            minflt = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = time.perf_counter()
            for _ in range(n):
                funcs[name]()
            times[name].append((time.perf_counter() - start) / n)
            faults[name].append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - minflt) / n)
    print(f"load average at the end {os.getloadavg()[0]:.2f}; {rounds} rounds")
    for name in names:
        ms = [t * 1e3 for t in times[name]]
        print(
            f"{name:7s} {spread(ms, '.2f')} ms a call, "
            f"{statistics.median(faults[name]):.0f} minor page faults a call"
        )
    for side in ("before", "after"):
        ratios = [n / s for n, s in zip(times["naive"], times[side], strict=True)]
        print(f"naive/bptt {side}: {spread(ratios, '.2f')}×")
    ab = [a / b for a, b in zip(times["after"], times["before"], strict=True)]
    print(f"after/before: {spread(ab, '.3f')}")


if __name__ == "__main__":
    main()
