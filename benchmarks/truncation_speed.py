"""Does TBPTT(k1, k2) keep the window's lag-batched speed? Ratios measured in one run.

For each cell and window k, on one problem (T = 100, N = 16, D = H = 64, K = 32, float
inputs, float64, one BLAS thread), the median time of manual_bptt.bptt with:

- ``truncate=k``: the window's own lag-by-lag form (truncation.cell_deltas_window);
- ``tbptt=(1, k+1)``: the same gradient by TBPTT's general form, all blocks batched per
  offset (truncation.cell_deltas_tbptt);
- ``chunk=k`` and ``tbptt=(k, k)``: the same pair for chunks (the chunk form runs one
  step at a time, T steps; TBPTT's runs k offsets over T/k blocks each);
- ``tbptt=(k, 2k)``: overlapping windows, which neither special form can express;
- ``per block``: TBPTT(1, k+1) one block at a time (T blocks of up to k+1 single
  steps), what the general form would cost without batching.

Rounds alternate the contenders, with a pause between, and each figure is a ratio to
``truncate=k`` within the run. Usage: python benchmarks/truncation_speed.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from functools import partial

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

import manual_bptt
from manual_bptt import truncation
from manual_bptt.cases import make_case


def per_block(case_kwargs: dict[str, object], k: int) -> Callable[[], object]:
    """TBPTT(1, k+1) with the batched form replaced by one block at a time."""
    original = truncation.cell_deltas_tbptt

    def one_block_at_a_time(step_on, g, parts, k1, k2):  # type: ignore[no-untyped-def]
        T, N, H = g.shape
        totals: list[np.ndarray] = []
        initial = [np.zeros((N, H), dtype=g.dtype) for _ in range(parts)]
        for start, end, first in truncation.tbptt_blocks(T, k1, k2):
            carry = tuple(np.zeros_like(g[:1]) for _ in range(parts))
            for t in range(end, first - 1, -1):
                if t >= start:
                    carry = (carry[0] + g[t : t + 1], *carry[1:])
                delta, delta_h, carry = step_on(slice(t, t + 1), carry)
                if not totals:
                    totals.append(np.zeros((T, *delta.shape[1:]), dtype=delta.dtype))
                    totals.append(totals[0] if delta_h is delta else np.zeros_like(totals[0]))
                totals[0][t] += delta[0]
                if totals[1] is not totals[0]:
                    totals[1][t] += delta_h[0]
            if first == 0:
                for init, part in zip(initial, carry, strict=True):
                    init += part[0]
        return totals[0], totals[1], tuple(initial)

    def run() -> object:
        truncation.cell_deltas_tbptt = one_block_at_a_time
        try:
            return manual_bptt.bptt(**case_kwargs, tbptt=(1, k + 1))  # type: ignore[arg-type]
        finally:
            truncation.cell_deltas_tbptt = original

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=3)
    args = parser.parse_args()
    print(
        f"one BLAS thread; median of {args.rounds} rounds × {args.calls} calls; ratio to truncate=k"
    )
    print(
        f"{'cell':5} {'k':>3}  {'truncate=k ms':>13}  {'tbptt=(1,k+1)':>13}  {'chunk=k':>8}  "
        f"{'tbptt=(k,k)':>11}  {'tbptt=(k,2k)':>12}  {'per block':>9}"
    )
    for cell in ("rnn", "lstm", "gru"):
        for k in (4, 16):
            case = make_case(T=100, N=16, D=64, H=64, K=32, seed=0, cell=cell)
            kwargs = {"params": case.params, "x": case.x, "y": case.y}
            call = partial(manual_bptt.bptt, **kwargs)
            contenders: dict[str, Callable[[], object]] = {
                "window": partial(call, truncate=k),
                "tbptt1": partial(call, tbptt=(1, k + 1)),
                "chunk": partial(call, chunk=k),
                "tbpttkk": partial(call, tbptt=(k, k)),
                "tbptt2k": partial(call, tbptt=(k, 2 * k)),
                "block": per_block(kwargs, k),
            }
            times: dict[str, list[float]] = {name: [] for name in contenders}
            for _ in range(args.rounds):
                for name, run in contenders.items():
                    run()  # warm
                    started = time.perf_counter()
                    for _ in range(args.calls):
                        run()
                    times[name].append((time.perf_counter() - started) / args.calls)
                    time.sleep(0.05)
            med = {name: statistics.median(v) for name, v in times.items()}
            base = med["window"]
            print(
                f"{cell:5} {k:>3}  {base * 1e3:>13.2f}  {med['tbptt1'] / base:>13.2f}  "
                f"{med['chunk'] / base:>8.2f}  {med['tbpttkk'] / base:>11.2f}  "
                f"{med['tbptt2k'] / base:>12.2f}  {med['block'] / base:>9.2f}"
            )


if __name__ == "__main__":
    main()
