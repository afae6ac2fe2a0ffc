"""The tutorial size, A/B: this checkout's bptt against another checkout's, and each
against the tutorial's own loops (naive_bptt), in alternating processes.

    git archive <commit> | tar -x -C /tmp/before        # the code before a change
    OPENBLAS_NUM_THREADS=1 python benchmarks/ab_tutorial.py --before /tmp/before

Each round runs one process per checkout (which goes first alternates), with a pause
before each. A process builds the tutorial problem (problems.py: V = K = 8000, H = 100,
T = 30, token ids, truncate = 4, float64), checks that bptt agrees with naive_bptt,
then takes --samples samples of each in turn (a sample of bptt is as many calls as
fill 20 ms, divided by their number; a sample of naive_bptt is one call; 0.25 s pause
before each) and reports the median of each. Printed per round: both checkouts'
bptt times, naive_bptt's, each checkout's ratio naive/bptt (the speed-up over the
tutorial's code, within its own process), and after/before (the A/B ratio of bptt's
times in the same round; below 1 is faster). The summary gives the median over
rounds with the lowest and highest round in brackets.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(samples: int) -> None:
    """Time this process's manual_bptt (from PYTHONPATH) against naive_bptt; print JSON."""
    import numpy as np

    import manual_bptt
    from problems import TUTORIAL, make_problem

    p = make_problem(TUTORIAL, "float64")
    fast = manual_bptt.bptt(p.params, p.x, p.y, truncate=p.truncate)
    slow = manual_bptt.naive_bptt(p.params, p.x, p.y, truncate=p.truncate)
    worst = max(
        float(np.max(np.abs(fast.grads[k] - slow.grads[k])) / max(np.max(np.abs(slow.grads[k])), 1e-300))
        for k in slow.grads
    )

    def manual_sample() -> float:
        calls, start = 0, time.perf_counter()
        while True:
            manual_bptt.bptt(p.params, p.x, p.y, truncate=p.truncate)
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= 0.02:
                return elapsed / calls

    def naive_sample() -> float:
        start = time.perf_counter()
        manual_bptt.naive_bptt(p.params, p.x, p.y, truncate=p.truncate)
        return time.perf_counter() - start

    manual_sample(), naive_sample()  # warm-up
    manual_times, naive_times = [], []
    for _ in range(samples):
        time.sleep(0.25)
        manual_times.append(manual_sample())
        time.sleep(0.25)
        naive_times.append(naive_sample())
    print(
        json.dumps(
            {
                "file": manual_bptt.__file__,
                "worst": worst,
                "manual": statistics.median(manual_times),
                "naive": statistics.median(naive_times),
            }
        )
    )


def run_side(root: Path, samples: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(HERE)])}
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--samples", str(samples)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    if not str(result["file"]).startswith(str(root)):
        raise SystemExit(f"the child imported {result['file']}, not the checkout at {root}")
    return result


def spread(values: list[float], fmt: str) -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}–{max(values):{fmt}})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", type=Path, help="the other checkout's root (A)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (5)")
    parser.add_argument("--samples", type=int, default=7, help="samples per process (7)")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds before a process (2)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.samples)
        return
    if args.before is None:
        parser.error("--before is required: the root of the checkout to compare against")
    sides = {"before": args.before.resolve(), "after": HERE.parent}
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "unset (OpenBLAS picks the CPU count)")
    print(f"OPENBLAS_NUM_THREADS={threads}; load average {os.getloadavg()}")
    rows: list[dict[str, dict[str, float]]] = []
    for r in range(args.rounds):
        order = ["before", "after"] if r % 2 == 0 else ["after", "before"]
        row = {}
        for side in order:
            time.sleep(args.pause)
            row[side] = run_side(sides[side], args.samples)
        rows.append(row)
        b, a = row["before"], row["after"]
        print(
            f"round {r + 1}: bptt before {b['manual'] * 1e3:.2f} ms, after "
            f"{a['manual'] * 1e3:.2f} ms (after/before {a['manual'] / b['manual']:.3f}); "
            f"naive {b['naive'] * 1e3:.1f} / {a['naive'] * 1e3:.1f} ms; naive/bptt before "
            f"{b['naive'] / b['manual']:.2f}×, after {a['naive'] / a['manual']:.2f}×; "
            f"worst relative difference from naive {b['worst']:.1e} / {a['worst']:.1e}",
            flush=True,
        )
    print(f"load average {os.getloadavg()}")
    for side in ("before", "after"):
        print(
            f"{side}: bptt {spread([row[side]['manual'] * 1e3 for row in rows], '.2f')} ms, "
            f"naive {spread([row[side]['naive'] * 1e3 for row in rows], '.1f')} ms, "
            f"naive/bptt {spread([row[side]['naive'] / row[side]['manual'] for row in rows], '.2f')}×"
        )
    ab = [row["after"]["manual"] / row["before"]["manual"] for row in rows]
    print(f"after/before (bptt): {spread(ab, '.3f')}")


if __name__ == "__main__":
    main()
