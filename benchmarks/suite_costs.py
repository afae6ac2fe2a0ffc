"""Two costs the test suite pays thousands of times, each A/B in one process.

    OPENBLAS_NUM_THREADS=1 python benchmarks/suite_costs.py [--rounds 5]

- **The twin's bptt** (torch_reference.bptt) with the weights' own products made once
  per forward pass (``keep=True``, what bptt does: torch_reference/network.py, ``once``)
  against made at every step (``keep=False``), on 100 problems per cell drawn like the
  core property's (T ≤ 40 vanilla, ≤ 24 gated; N ≤ 6; D, H, K ≤ 16; full, window and
  chunk truncation; float and token inputs). Both give the same gradients (checked
  first, to 1e-12 relative).
- **A worker's start** (``Worker(spec).start()`` and ``close()``) forked by the spawner
  against a new process (``MANUAL_BPTT_SPAWNER=0``), for a target in this package.

Each round takes one sample of each contender in turn, the order alternating, with a
pause (0.25 s) before each. Printed: the median sample of each (ms per problem or per
start) with the lowest and highest in brackets, and the median over rounds of the
ratio within the round.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

import torch_reference
from manual_bptt.cases import Case, make_case
from torch_reference import backward as twin_backward

PAUSE = 0.25


def problems(per_cell: int) -> list[Case]:
    rng = random.Random(0)
    drawn = []
    for cell in ("rnn", "lstm", "gru"):
        for i in range(per_cell):
            T = rng.randint(1, 40 if cell == "rnn" else 24)
            mode, k = rng.choice(["full", "truncate", "chunk"]), rng.randint(0, T + 2)
            drawn.append(
                make_case(
                    T=T,
                    N=rng.randint(1, 6),
                    D=rng.randint(1, 16),
                    H=rng.randint(1, 16),
                    K=rng.randint(1, 16),
                    seed=i,
                    scale=1.0,
                    activation="tanh",
                    tokens=rng.random() < 0.5,
                    batched=True,
                    with_h0=True,
                    with_mask=True,
                    truncate=k if mode == "truncate" else None,
                    chunk=max(k, 1) if mode == "chunk" else None,
                    tbptt=None,
                    reduction="sum",
                    dtype="float64",
                    cell=cell,
                    reset=rng.choice(["after", "before"]) if cell == "gru" else "after",
                )
            )
    return drawn


def twin(cases: list[Case], keep: bool) -> list[dict[str, np.ndarray]]:
    """torch_reference.bptt on every case, its leaves made with ``keep``."""
    made, made_cell = twin_backward.make_leaves, twin_backward.make_cell_leaves

    def leaves(params: Any, batch: Any, **asked: Any) -> Any:
        return made(params, batch, keep=keep)  # whatever bptt asks

    def cell_leaves(params: Any, batch: Any, **asked: Any) -> Any:
        return made_cell(params, batch, keep=keep)

    twin_backward.make_leaves = leaves  # type: ignore[assignment]
    twin_backward.make_cell_leaves = cell_leaves  # type: ignore[assignment]
    try:
        return [case.call(torch_reference.bptt).grads for case in cases]
    finally:
        twin_backward.make_leaves, twin_backward.make_cell_leaves = made, made_cell


def worker_starts(n: int, spawner: bool) -> None:
    from manual_bptt.checking.worker import Worker

    os.environ["MANUAL_BPTT_SPAWNER"] = "1" if spawner else "0"
    for _ in range(n):
        with Worker("manual_bptt:bptt", 30) as worker:
            worker.start()


def sample(run: Callable[[], object], count: int) -> float:
    time.sleep(PAUSE)
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) / count * 1000


def compare(
    name: str, contenders: dict[str, Callable[[], object]], count: int, rounds: int
) -> None:
    samples: dict[str, list[float]] = {label: [] for label in contenders}
    ratios = []
    labels = list(contenders)
    for r in range(rounds):
        for label in labels if r % 2 == 0 else labels[::-1]:
            samples[label].append(sample(contenders[label], count))
        ratios.append(samples[labels[1]][-1] / samples[labels[0]][-1])
    for label, taken in samples.items():
        print(
            f"{name}, {label}: {statistics.median(taken):.2f} ms "
            f"[{min(taken):.2f}–{max(taken):.2f}]"
        )
    print(f"{name}: {labels[1]} / {labels[0]} = {statistics.median(ratios):.2f}×\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--problems", type=int, default=100, help="per cell")
    parser.add_argument("--starts", type=int, default=20, help="worker starts per sample")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cases = problems(args.problems)
    for kept, each in zip(twin(cases, True), twin(cases, False), strict=True):
        for key, value in each.items():
            scale = max(float(np.max(np.abs(value))), 1e-300) if value.size else 1.0
            assert float(np.max(np.abs(kept[key] - value), initial=0.0)) <= 1e-12 * scale, key
    for cell in ("rnn", "lstm", "gru"):
        these = [c for c in cases if c.params.CELL == cell]
        compare(
            f"twin bptt, {cell} (ms a problem)",
            {
                "kept once": lambda these=these: twin(these, True),
                "every step": lambda these=these: twin(these, False),
            },
            len(these),
            args.rounds,
        )
    before = os.environ.get("MANUAL_BPTT_SPAWNER")
    compare(
        "worker start (ms a start)",
        {
            "forked": lambda: worker_starts(args.starts, True),
            "new process": lambda: worker_starts(args.starts, False),
        },
        args.starts,
        args.rounds,
    )
    if before is None:
        os.environ.pop("MANUAL_BPTT_SPAWNER", None)
    else:
        os.environ["MANUAL_BPTT_SPAWNER"] = before


if __name__ == "__main__":
    main()
