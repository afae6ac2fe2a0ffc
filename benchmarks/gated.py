"""Speed and memory of manual_bptt.bptt for the LSTM and the GRU against plain PyTorch.

    python benchmarks/gated.py                       # every row and the memory table
    python benchmarks/gated.py --quick               # smoke run: one round per row
    python benchmarks/gated.py --cells lstm --dtypes float64 --sizes 1,2

Rows: the four full-BPTT sizes of benchmarks/run.py, (T, N, D, H, K) = (20, 1, 8, 16, 8),
(100, 32, 64, 128, 64), (256, 32, 128, 256, 128), (64, 64, 512, 1024, 512), for each
cell (the GRU is torch's "after" variant) and dtype (float64, float32).

Contenders, on the same weights, float inputs and dtype (biases drawn non-zero):
  manual    manual_bptt.bptt: forward + backward by hand, NumPy in and out.
  torch     torch.nn.LSTM / torch.nn.GRU + nn.Linear + F.cross_entropy(reduction="sum"),
            then .backward(); tensors made once; x, h0 (and c0) require grad, so that
            both sides compute the same gradients (U, W, b, (bh,) V, c, h0, (c0,) x).
Before timing, the two sides' losses and gradients are compared; the worst relative
difference ‖Δ‖∞/‖torch‖∞ over all gradients is printed under the table.

Timing: rounds of one sample of each contender in turn, after one warm-up call each;
a sample is one call, or for calls under 20 ms as many back-to-back calls as fill
20 ms, divided by their number, after a 0.25 s pause (BLAS threads spin after a call).
Times are medians over rounds; the speed-up is the median over rounds of the two
samples' ratio, with the lowest and highest round in brackets. torch runs on as many
threads as numpy's BLAS (threadpoolctl, else the CPU count).

FLOPs (2 per multiply-add, matrix products only) of one forward + backward with G gate
blocks (4 for the LSTM, 3 for the GRU): forward U x_t 2TN·D·GH, W h_{t−1} 2TN·H·GH,
V h_t 2TNHK; backward the same three products twice each (∂L/∂U and ∂L/∂x; ∂L/∂W and
the recurrence; ∂L/∂V and Vᵀ∂L/∂o): 6·T·N·(G·DH + G·H² + HK) in all. "matmul" is the
GFLOP/s of one recurrent product (N, H) @ (H, GH) in the row's dtype, timed in the same
rounds; "share" is manual's GFLOP/s over it.

Memory: peak resident set size of one forward + backward at the largest size, each
contender in a fresh process (Linux: /proc/self/clear_refs and VmHWM), after the first
call and after two more; the second is the one to compare (torch keeps its .grad
tensors alive between calls).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

import manual_bptt

SIZES = [(20, 1, 8, 16, 8), (100, 32, 64, 128, 64), (256, 32, 128, 256, 128),
         (64, 64, 512, 1024, 512)]  # (T, N, D, H, K), benchmarks/run.py's full rows  # fmt: skip
GATES = {"lstm": 4, "gru": 3}
SAMPLE_SECONDS = 0.02
PAUSE_SECONDS = 0.25


@dataclass(frozen=True)
class Problem:
    """One benchmark problem: the cell's parameters and the data, in one dtype."""

    cell: str
    params: manual_bptt.LSTMParams | manual_bptt.GRUParams
    x: np.ndarray
    y: np.ndarray
    h0: np.ndarray
    c0: np.ndarray | None

    def kwargs(self) -> dict[str, np.ndarray]:
        return {"h0": self.h0} if self.c0 is None else {"h0": self.h0, "c0": self.c0}


def make_problem(cell: str, size: tuple[int, ...], dtype: str, seed: int = 0) -> Problem:
    """Weights by init_params, biases and initial states drawn, x normal, y uniform."""
    T, N, D, H, K = size
    rng = np.random.default_rng(seed)
    base = manual_bptt.init_params(D, H, K, cell=cell, seed=rng, dtype=dtype)
    biases = {k: rng.uniform(-0.5, 0.5, v.shape).astype(dtype)
              for k, v in base.as_dict().items() if k in ("b", "bh", "c")}  # fmt: skip
    params = base.with_arrays(**biases)
    x = rng.normal(size=(T, N, D)).astype(dtype)
    y = rng.integers(0, K, size=(T, N))
    h0 = rng.uniform(-1, 1, size=(N, H)).astype(dtype)
    c0 = rng.uniform(-1, 1, size=(N, H)).astype(dtype) if cell == "lstm" else None
    assert isinstance(params, manual_bptt.LSTMParams | manual_bptt.GRUParams)
    return Problem(cell, params, x, y, h0, c0)


class TorchPath:
    """nn.LSTM / nn.GRU + nn.Linear + F.cross_entropy + .backward(), tensors made once."""

    def __init__(self, p: Problem) -> None:
        prm = p.params
        dt = torch.float32 if prm.dtype == np.float32 else torch.float64
        kind = torch.nn.LSTM if p.cell == "lstm" else torch.nn.GRU
        self.rnn = kind(prm.D, prm.H, dtype=dt)
        self.out = torch.nn.Linear(prm.H, prm.K, dtype=dt)
        arrays = prm.as_dict()
        with torch.no_grad():
            self.rnn.weight_ih_l0.copy_(torch.from_numpy(arrays["U"]))
            self.rnn.weight_hh_l0.copy_(torch.from_numpy(arrays["W"]))
            self.rnn.bias_ih_l0.copy_(torch.from_numpy(arrays["b"]))
            bh = arrays.get("bh", np.zeros_like(arrays["b"]))  # the LSTM's b is the sum
            self.rnn.bias_hh_l0.copy_(torch.from_numpy(bh))
            self.out.weight.copy_(torch.from_numpy(arrays["V"]))
            self.out.bias.copy_(torch.from_numpy(arrays["c"]))
        self.x = torch.tensor(p.x, requires_grad=True)
        self.h0 = torch.tensor(p.h0[None], requires_grad=True)
        self.c0 = None if p.c0 is None else torch.tensor(p.c0[None], requires_grad=True)
        self.y = torch.from_numpy(p.y).reshape(-1)
        self.leaves = [*self.rnn.parameters(), *self.out.parameters(), self.x, self.h0]
        if self.c0 is not None:
            self.leaves.append(self.c0)

    def __call__(self) -> torch.Tensor:
        for leaf in self.leaves:
            leaf.grad = None
        state = self.h0 if self.c0 is None else (self.h0, self.c0)
        hs, _ = self.rnn(self.x, state)
        logits = self.out(hs)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), self.y, reduction="sum")
        loss.backward()
        return loss

    def grads(self) -> dict[str, np.ndarray]:
        """The gradients of the last call, in manual_bptt's naming."""
        r = self.rnn
        out = {"U": r.weight_ih_l0.grad, "W": r.weight_hh_l0.grad, "b": r.bias_ih_l0.grad,
               "V": self.out.weight.grad, "c": self.out.bias.grad, "x": self.x.grad}  # fmt: skip
        if isinstance(r, torch.nn.GRU):
            out["bh"] = r.bias_hh_l0.grad
        grads = {k: v.numpy() for k, v in out.items() if v is not None}
        assert self.h0.grad is not None
        grads["h0"] = self.h0.grad[0].numpy()
        if self.c0 is not None and self.c0.grad is not None:
            grads["c0"] = self.c0.grad[0].numpy()
        return grads


def worst_difference(p: Problem, path: TorchPath) -> float:
    """max over gradients of ‖manual − torch‖∞ / ‖torch‖∞, and the loss's."""
    manual = p.call(manual_bptt.bptt)
    loss = float(path().detach())
    theirs = path.grads()
    worst = abs(manual.loss - loss) / abs(loss)
    for name, g in theirs.items():
        diff = np.abs(np.asarray(manual.grads[name], np.float64) - g).max()
        worst = max(worst, float(diff / max(np.abs(g).max(), 1e-300)))
    return worst


def sample(f: Callable[[], object]) -> float:
    """Seconds per call: one call, or as many as fill SAMPLE_SECONDS."""
    time.sleep(PAUSE_SECONDS)
    calls, start = 0, time.perf_counter()
    while True:
        f()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= SAMPLE_SECONDS:
            return elapsed / calls


def flops(cell: str, size: tuple[int, ...]) -> float:
    T, N, D, H, K = size
    G = GATES[cell]
    return 6.0 * T * N * (G * D * H + G * H * H + H * K)


@dataclass(frozen=True)
class Row:
    cell: str
    size: tuple[int, ...]
    dtype: str
    manual: float
    torch: float
    ratios: list[float]
    share: float
    worst: float


def run_row(cell: str, size: tuple[int, ...], dtype: str, rounds: int) -> Row:
    p = make_problem(cell, size, dtype)
    path = TorchPath(p)
    worst = worst_difference(p, path)
    N, H = size[1], size[3]
    A = np.random.default_rng(1).normal(size=(N, H)).astype(dtype)
    B = np.random.default_rng(2).normal(size=(H, GATES[cell] * H)).astype(dtype)

    def manual() -> object:
        return p.call(manual_bptt.bptt)

    def matmul() -> object:
        return A @ B

    for f in (manual, path, matmul):
        f()  # warm-up
    samples: dict[str, list[float]] = {"manual": [], "torch": [], "matmul": []}
    for _ in range(rounds):
        for name, f in (("manual", manual), ("torch", path), ("matmul", matmul)):
            samples[name].append(sample(f))
    ratios = [t / m for m, t in zip(samples["manual"], samples["torch"], strict=True)]
    matmul_rate = 2.0 * N * H * GATES[cell] * H / statistics.median(samples["matmul"])
    manual_rate = flops(cell, size) / statistics.median(samples["manual"])
    return Row(cell, size, dtype, statistics.median(samples["manual"]),
               statistics.median(samples["torch"]), ratios, manual_rate / matmul_rate, worst)  # fmt: skip


def fmt_time(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def table(rows: list[Row]) -> str:
    header = (
        "| cell | (T, N, D, H, K) | dtype | manual | torch.nn | speed-up (min–max) "
        "| manual GFLOP/s | share of matmul | worst rel. diff |"
    )
    lines = [header, "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        rate = flops(r.cell, r.size) / r.manual / 1e9
        lines.append(
            f"| {r.cell} | {r.size} | {r.dtype} | {fmt_time(r.manual)} | {fmt_time(r.torch)} "
            f"| {statistics.median(r.ratios):.2f}× ({min(r.ratios):.2f}–{max(r.ratios):.2f}) "
            f"| {rate:.1f} | {r.share:.0%} | {r.worst:.1e} |"
        )
    return "\n".join(lines)


def peak_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def memory_child(cell: str, dtype: str, who: str) -> None:
    """In a fresh process: peak RSS above the baseline for 1 and then 3 calls, as JSON."""
    p = make_problem(cell, SIZES[-1], dtype)
    f: Callable[[], object]
    if who == "manual":

        def f() -> object:
            return p.call(manual_bptt.bptt)
    else:
        f = TorchPath(p)
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    base = rss_kib()
    f()
    first = peak_kib() - base
    f()
    f()
    print(json.dumps({"first": first, "three": peak_kib() - base}))


def memory_table(cells: list[str], dtypes: list[str]) -> str:
    lines = [f"Peak RSS above the baseline at {SIZES[-1]} (MiB; after 1 call / after 3 calls):",
             "", "| cell | dtype | manual | torch.nn |", "|---|---|---|---|"]  # fmt: skip
    for cell in cells:
        for dtype in dtypes:
            cells_out = []
            for who in ("manual", "torch"):
                out = subprocess.run(
                    [sys.executable, __file__, "--memory-child", cell, dtype, who],
                    capture_output=True, text=True, check=True,
                ).stdout  # fmt: skip
                m = json.loads(out.strip().splitlines()[-1])
                cells_out.append(f"{m['first'] / 1024:.0f} / {m['three'] / 1024:.0f}")
            lines.append(f"| {cell} | {dtype} | {cells_out[0]} | {cells_out[1]} |")
    return "\n".join(lines)


def main() -> None:
    """Run the rows asked for and print the tables (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--cells", default="lstm,gru")
    parser.add_argument("--dtypes", default="float64,float32")
    parser.add_argument("--sizes", default="1,2,3,4", help="numbers 1-4 (default all)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one round, no memory table")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--memory-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(*args.memory_child)
        return
    try:
        from threadpoolctl import threadpool_info

        threads = max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
    except (ImportError, ValueError):
        threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    cells, dtypes = args.cells.split(","), args.dtypes.split(",")
    sizes = [SIZES[int(s) - 1] for s in args.sizes.split(",")]
    rounds = 1 if args.quick else args.rounds
    print(f"numpy {np.__version__}, torch {torch.__version__}, {threads} thread(s), "
          f"{rounds} round(s), {os.cpu_count()} CPUs\n")  # fmt: skip
    rows = []
    for cell in cells:
        for dtype in dtypes:
            for size in sizes:
                rows.append(run_row(cell, size, dtype, rounds))
                print(f"  done {cell} {size} {dtype}", file=sys.stderr, flush=True)
    print(table(rows))
    if not (args.quick or args.no_memory):
        print()
        print(memory_table(cells, dtypes))


if __name__ == "__main__":
    main()
