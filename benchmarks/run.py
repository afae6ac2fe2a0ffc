"""Speed and memory of manual_bptt.bptt against PyTorch, measured in one process.

    python benchmarks/run.py                     # every row and the memory table (~4 min)
    python benchmarks/run.py --quick             # smoke run: every row, one round
    python benchmarks/run.py --rows full --dtype float32 --size 4
    python benchmarks/run.py --out table.md      # also write the markdown to a file

Rows
  full      (T, N, D, H, K) = (20, 1, 8, 16, 8), (100, 32, 64, 128, 64),
            (256, 32, 128, 256, 128), (64, 64, 512, 1024, 512); float64 and float32.
            Contenders: manual, nn.RNN, twin.
  window    truncate=16, T=256, H=128, N=1 and N=32; D = K = 64 (the middle full
            size's input and output widths); float64. manual against naive.
  tutorial  the WildML tutorial's size: vocabulary D = K = 8000, H = 100, T = 30,
            bptt_truncate = 4, one sequence of token ids; float64. manual against naive.
  memory    peak RSS of one forward + backward at the largest full size, manual
            against nn.RNN, each in a fresh process (see below).

Contenders (all on the same weights, inputs and dtype; biases drawn non-zero)
  manual    manual_bptt.bptt: forward + backward by hand, NumPy in and out.
  nn.RNN    the fastest plain PyTorch a user would write: torch.nn.RNN + nn.Linear +
            F.cross_entropy(reduction="sum"), then .backward(); tensors made once, and x
            and h0 require grad so that both sides compute the same seven gradients.
  twin      torch_reference.bptt: autograd on the step-by-step PyTorch twin (NumPy in
            and out). Skipped, and marked so, where its warm-up call takes longer than
            --twin-limit seconds.
  naive     manual_bptt.naive_bptt: the per-sequence, per-loss, per-step loops.
Before timing, every contender's loss and gradients are compared with manual's; the
worst relative difference is printed under the table, so the rows are known to time
the same computation.

Timing: for each row the contenders run in rounds, one sample of each in turn,
--repeats rounds (default 7) after one warm-up call each. Times are the median sample;
a speed-up is the median over rounds of the two samples' ratio, with the lowest and
highest round in brackets (other programs on a shared machine change its speed from
one second to the next; within a round both contenders see about the same). A
sample is one call, or for calls under 20 ms as many back-to-back calls as fill
20 ms, divided by their number. Each sample starts after a 0.25 s pause: OpenBLAS's
and OpenMP's worker threads spin for a while after a call before they sleep, and on
two cores the spinning threads of the contender that just ran would slow the next one.
torch's thread count is set to the BLAS thread count numpy uses, read with
threadpoolctl (or, without it, from OPENBLAS_NUM_THREADS / OMP_NUM_THREADS / the CPU
count, and the header says so).

FLOPs (2 per multiply-add; matrix products only) of one forward + backward:
  forward   U x_t: 2TNDH      W h_{t−1}: 2TNH²         V h_t: 2TNHK
  backward  Vᵀ ∂L/∂o: 2TNKH   ∂L/∂V: 2TNKH             the δ recurrence's Wᵀ δ: 2TNH²
            (T products: T−1 between steps, one for ∂L/∂h0)   ∂L/∂W: 2TNH²
            ∂L/∂U: 2TNDH      ∂L/∂x: 2TNDH
  total     6·T·N·(DH + H² + HK).
  Token inputs: U x_t is a column lookup and ∂L/∂U a scatter-add, neither a product,
  and there is no ∂L/∂x: the DH terms are not counted. Window truncation with window k
  runs its δ recurrence lag by lag: lag ℓ = 1 … min(k, T−1) is one product over
  (T−ℓ)·N rows, so 2TNH² becomes 2NH²·(1 + Σ_ℓ (T−ℓ)).
  Elementwise work (φ, φ', softmax, the mask; about 10·T·N·(H + K) operations) is
  not counted: under 1% of the count except at the smallest size.
  "matmul" is the GFLOP/s of one plain matrix product of the recurrent shape,
  (N, H) @ (H, H), both C-ordered, in the row's dtype, timed as one more contender in
  the same rounds; "share" is manual's GFLOP/s over it (median over rounds).

Memory: each path runs in a fresh Python process, which makes its problem, resets its
peak resident set size (writing 5 to /proc/self/clear_refs; Linux) and reports the
peak (VmHWM in /proc/self/status) above the resident size it had then: after the first
call, and after two more calls. The second figure is the one to compare: a process
that keeps freed memory (torch's .grad tensors stay alive between calls, which keeps
glibc from returning the heap below them) shows it there, not in the first call.
Peak RSS rather than tracemalloc, because torch's allocations are invisible to
tracemalloc.

OpenBLAS: some machines here set OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) to work
around old OpenBLAS builds; they force a kernel and can slow a current numpy. The
header reports both variables and the kernel numpy's OpenBLAS actually runs
(threadpoolctl). --unset-openblas-env runs the benchmark again without them (this
command only; tests and CI are not affected).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

import manual_bptt
import torch_reference
from manual_bptt.progress import progress

FULL_SIZES = [  # (T, N, D, H, K)
    (20, 1, 8, 16, 8),
    (100, 32, 64, 128, 64),
    (256, 32, 128, 256, 128),
    (64, 64, 512, 1024, 512),
]
WINDOW_ROWS = [  # (T, N, D, H, K, k)
    (256, 1, 64, 128, 64, 16),
    (256, 32, 64, 128, 64, 16),
]
TUTORIAL = (30, 1, 8000, 100, 8000, 4)  # (T, N, D = vocabulary, H, K = vocabulary, k)
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
PAUSE_S = 0.25  # before every sample: see "Timing" above
SAMPLE_S = 0.02  # a sample lasts at least this long (back-to-back calls)
ROW_KINDS = ("full", "window", "tutorial", "memory")


# ---------------------------------------------------------------------------------------
# The machine


@dataclass(frozen=True)
class Blas:
    """numpy's BLAS as the header reports it: threads, and library/kernel or how found."""

    threads: int
    description: str  # library, version and kernel, or how the thread count was found


def numpy_blas() -> Blas:
    """numpy's BLAS: its thread count, and which library and kernel it runs."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
            if os.environ.get(var, "").isdigit():
                return Blas(int(os.environ[var]), f"threads read from {var} (no threadpoolctl)")
        count = os.cpu_count() or 1
        return Blas(count, "threads assumed = CPU count (no threadpoolctl, no *_NUM_THREADS)")
    for info in threadpool_info():
        if info.get("user_api") == "blas":
            kernel = info.get("architecture") or "kernel not reported"
            return Blas(
                int(info["num_threads"]),
                f"{info['internal_api']} {info['version']}, kernel {kernel} (threadpoolctl)",
            )
    return Blas(os.cpu_count() or 1, "no BLAS found by threadpoolctl; threads = CPU count")


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (or what platform knows)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_header(blas: Blas, repeats: int) -> str:
    """The markdown lines above the table: machine, numpy and its BLAS, torch, the method."""
    openblas_env = ", ".join(f"{v}={os.environ.get(v, 'unset')}" for v in OPENBLAS_VARS)
    return "\n".join(
        [
            (
                f"- Machine: {cpu_name()} ({platform.machine()}), {os.cpu_count()} logical CPUs, "
                f"Linux {platform.release()}; Python {platform.python_version()}."
            ),
            (
                f"- numpy {np.__version__}: {blas.description}, {blas.threads} threads; "
                f"{openblas_env}."
            ),
            (
                f"- torch {torch.__version__}: {torch.get_num_threads()} threads (set to the BLAS "
                f"count), CPU capability {torch.backends.cpu.get_cpu_capability()}, "
                f"MKL {'on' if torch.backends.mkl.is_available() else 'off'}."
            ),
            (
                f"- {repeats} rounds of interleaved samples after a warm-up call of each "
                f"contender, a {PAUSE_S} s pause before each sample; times are medians, "
                "speed-ups the median ratio within a round (lowest–highest round)."
            ),
        ]
    )


# ---------------------------------------------------------------------------------------
# FLOPs and the matrix-product roofline


def full_flops(T: int, N: int, D: int, H: int, K: int, *, tokens: bool = False) -> float:
    """Matrix-product FLOPs of forward + backward, full BPTT (see the module docstring)."""
    input_terms = 0 if tokens else 6 * T * N * D * H
    return float(input_terms + 6 * T * N * H * H + 6 * T * N * H * K)


def window_flops(T: int, N: int, D: int, H: int, K: int, k: int, *, tokens: bool) -> float:
    """As full_flops, with the δ recurrence run lag by lag for window k."""
    lag_rows = sum(T - lag for lag in range(1, min(k, T - 1) + 1))
    recurrence = 2 * N * H * H * (1 + lag_rows)
    return full_flops(T, N, D, H, K, tokens=tokens) - 2 * T * N * H * H + recurrence


def recurrent_matmul(N: int, H: int, dtype: str) -> Callable[[], object]:
    """One plain (N, H) @ (H, H) product in numpy, both C-ordered, output preallocated:
    timed in the rounds beside the contenders, as the row's roofline."""
    rng = np.random.default_rng(1)
    a = rng.normal(size=(N, H)).astype(dtype)
    b = rng.normal(size=(H, H)).astype(dtype)
    out = np.empty((N, H), dtype)
    return lambda: np.matmul(a, b, out=out)


# ---------------------------------------------------------------------------------------
# Problems and contenders


@dataclass(frozen=True)
class Problem:
    """One row's inputs: params (U, W, V, b, c), x (T, N, D) floats or (T, N) token ids,
    y (T, N), and the window k (None for full BPTT)."""

    params: manual_bptt.Params
    x: np.ndarray
    y: np.ndarray
    truncate: int | None = None


def make_problem(
    T: int, N: int, D: int, H: int, K: int, dtype: str, *, tokens: bool = False,
    truncate: int | None = None,
) -> Problem:  # fmt: skip
    """Seeded weights from init_params, biases in (−0.1, 0.1), x ~ N(0, 1) (T, N, D) or
    token ids (T, N) in [0, D), targets (T, N) in [0, K); all in ``dtype``."""
    rng = np.random.default_rng(0)
    p = manual_bptt.init_params(D, H, K, seed=0, dtype=dtype)
    params = manual_bptt.Params(
        U=p.U, W=p.W, V=p.V,
        b=rng.uniform(-0.1, 0.1, H).astype(dtype), c=rng.uniform(-0.1, 0.1, K).astype(dtype),
    )  # fmt: skip
    x = rng.integers(0, D, size=(T, N)) if tokens else rng.normal(size=(T, N, D)).astype(dtype)
    return Problem(params, x, rng.integers(0, K, size=(T, N)), truncate)


class NNRNNPath:
    """torch.nn.RNN + nn.Linear + F.cross_entropy(sum) + .backward(), tensors made once.

    weight_ih = U, weight_hh = W, bias_ih = b, bias_hh = 0, Linear = (V, c).
    """

    def __init__(self, p: Problem) -> None:
        dtype = torch.float64 if p.params.dtype == np.float64 else torch.float32
        H, D = p.params.U.shape
        self.K = p.params.K
        self.rnn = torch.nn.RNN(D, H, dtype=dtype)
        self.out = torch.nn.Linear(H, self.K, dtype=dtype)
        with torch.no_grad():
            self.rnn.weight_ih_l0.copy_(torch.from_numpy(p.params.U))
            self.rnn.weight_hh_l0.copy_(torch.from_numpy(p.params.W))
            self.rnn.bias_ih_l0.copy_(torch.from_numpy(p.params.b))
            self.rnn.bias_hh_l0.zero_()
            self.out.weight.copy_(torch.from_numpy(p.params.V))
            self.out.bias.copy_(torch.from_numpy(p.params.c))
        self.x = torch.tensor(p.x, requires_grad=True)
        self.y = torch.from_numpy(p.y).reshape(-1)
        self.h0 = torch.zeros(1, p.x.shape[1], H, dtype=dtype, requires_grad=True)
        self.leaves = [*self.rnn.parameters(), *self.out.parameters(), self.x, self.h0]

    def __call__(self) -> torch.Tensor:
        for t in self.leaves:
            t.grad = None
        hs, _ = self.rnn(self.x, self.h0)
        loss = F.cross_entropy(self.out(hs).reshape(-1, self.K), self.y, reduction="sum")
        loss.backward()
        return loss

    def result(self) -> tuple[float, dict[str, np.ndarray]]:
        """Loss and gradients under manual_bptt's names, after one call."""
        loss = float(self().detach())
        grads = {
            "U": self.rnn.weight_ih_l0.grad, "W": self.rnn.weight_hh_l0.grad,
            "b": self.rnn.bias_ih_l0.grad, "V": self.out.weight.grad, "c": self.out.bias.grad,
            "x": self.x.grad, "h0": self.h0.grad[0],
        }  # fmt: skip
        return loss, {k: v.numpy().copy() for k, v in grads.items()}


def manual_call(p: Problem) -> Callable[[], object]:
    """manual_bptt.bptt on p, as a call with no arguments."""
    return lambda: manual_bptt.bptt(p.params, p.x, p.y, truncate=p.truncate)


def contenders(p: Problem, names: list[str]) -> dict[str, Callable[[], object]]:
    """name → a call with no arguments, for the named contenders (see the module docstring)."""
    made: dict[str, Callable[[], object]] = {}
    for name in names:
        if name == "manual":
            made[name] = manual_call(p)
        elif name == "naive":
            made[name] = lambda: manual_bptt.naive_bptt(p.params, p.x, p.y, truncate=p.truncate)
        elif name == "twin":
            made[name] = lambda: torch_reference.bptt(p.params, p.x, p.y, truncate=p.truncate)
        elif name == "nn.RNN":
            made[name] = NNRNNPath(p)
    return made


def worst_difference(p: Problem, funcs: dict[str, Callable[[], object]]) -> float:
    """The largest ‖g − g_manual‖∞ / ‖g_manual‖∞ over every contender's gradients, and
    |L − L_manual| / |L_manual|; raises if manual's float32 results are not float32."""
    ref = manual_bptt.bptt(p.params, p.x, p.y, truncate=p.truncate)
    bad = [k for k, g in ref.grads.items() if g.dtype != p.params.dtype]
    if bad:
        raise AssertionError(f"manual returned {bad} not in {p.params.dtype}")
    worst = 0.0
    for name, f in funcs.items():
        if name == "manual":
            continue
        if isinstance(f, NNRNNPath):
            loss, grads = f.result()
        else:
            r = f()
            loss, grads = r.loss, r.grads  # type: ignore[attr-defined]
        worst = max(worst, abs(loss - ref.loss) / abs(ref.loss))
        for k, g in grads.items():
            scale = float(np.max(np.abs(ref.grads[k]))) or 1.0
            worst = max(worst, float(np.max(np.abs(g - ref.grads[k]))) / scale)
    return worst


# ---------------------------------------------------------------------------------------
# Timing


def time_interleaved(
    funcs: dict[str, Callable[[], object]], repeats: int, *, pause: float = PAUSE_S
) -> dict[str, list[float]]:
    """Seconds per call of each function, one sample per round: rounds interleave the
    functions, after a warm-up of each.

    The warm-up is one call, and for a function faster than SAMPLE_S, as many more as
    fill SAMPLE_S: a sample then makes that many calls (the first, cold, call would
    misjudge the count).
    """
    calls: dict[str, int] = {}
    for name, f in funcs.items():
        start = time.perf_counter()
        f()
        done = 0
        if time.perf_counter() - start < SAMPLE_S:
            start = time.perf_counter()
            while time.perf_counter() - start < SAMPLE_S:
                f()
                done += 1
        calls[name] = max(1, done)
    samples: dict[str, list[float]] = {name: [] for name in funcs}
    for _ in range(repeats):
        for name, f in funcs.items():
            time.sleep(pause)
            n = calls[name]
            start = time.perf_counter()
            for _ in range(n):
                f()
            samples[name].append((time.perf_counter() - start) / n)
    return samples


def warm_up_seconds(f: Callable[[], object]) -> float:
    """Run f once (the warm-up) and return how long it took."""
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


# ---------------------------------------------------------------------------------------
# Rows


@dataclass
class Row:
    """One measured row of the table (times in seconds, GFLOP/s, and what was skipped)."""

    kind: str
    dtype: str
    size: str
    baseline: str  # the contender manual is compared with first
    times: dict[str, float]  # median seconds per call
    samples: dict[str, list[float]]  # per round, for the ratios
    gflops: float  # manual's
    roofline: float  # GFLOP/s of the (N, H) @ (H, H) product in the same rounds
    share: float  # median over rounds of manual's GFLOP/s over the product's
    worst_diff: float
    skipped: dict[str, str] = field(default_factory=dict)  # contender → why


def run_row(
    kind: str, p: Problem, names: list[str], baseline: str, flops: float, size: str,
    args: argparse.Namespace,
) -> Row:  # fmt: skip
    """Warm up, check that every contender computes manual's result, then time them in
    interleaved rounds beside the recurrent matmul; skip the twin where too slow."""
    funcs = contenders(p, names)
    skipped = {}
    if "twin" in funcs:
        seconds = warm_up_seconds(funcs["twin"])
        if seconds > args.twin_limit:
            del funcs["twin"]
            skipped["twin"] = f"skipped: {seconds:.0f} s a call"
    worst = worst_difference(p, funcs)
    N, H = p.x.shape[1], p.params.H
    funcs["matmul"] = recurrent_matmul(N, H, str(p.params.dtype))
    samples = time_interleaved(funcs, args.repeats)
    matmul = samples.pop("matmul")
    matmul_flops = 2 * N * H * H
    # manual's GFLOP/s over the product's, round by round, as for the speed-ups.
    pairs = zip(samples["manual"], matmul, strict=True)
    shares = [(flops / m) / (matmul_flops / r) for m, r in pairs]
    times = {name: statistics.median(s) for name, s in samples.items()}
    return Row(
        kind=kind, dtype=str(p.params.dtype), size=size, baseline=baseline, times=times,
        samples=samples, gflops=flops / times["manual"] / 1e9,
        roofline=matmul_flops / statistics.median(matmul) / 1e9,
        share=statistics.median(shares), worst_diff=worst, skipped=skipped,
    )  # fmt: skip


def planned_rows(args: argparse.Namespace) -> list[Callable[[], Row]]:
    """One thunk per row the options ask for, in table order."""
    plan: list[Callable[[], Row]] = []
    if "full" in args.rows:
        for dtype in args.dtype:
            for index in args.size:
                T, N, D, H, K = FULL_SIZES[index - 1]

                def full(T=T, N=N, D=D, H=H, K=K, dtype=dtype) -> Row:
                    p = make_problem(T, N, D, H, K, dtype)
                    size = f"T={T} N={N} D={D} H={H} K={K}"
                    return run_row("full", p, ["manual", "nn.RNN", "twin"], "nn.RNN",
                                   full_flops(T, N, D, H, K), size, args)  # fmt: skip

                plan.append(full)
    if "window" in args.rows:
        for T, N, D, H, K, k in WINDOW_ROWS:

            def window(T=T, N=N, D=D, H=H, K=K, k=k) -> Row:
                p = make_problem(T, N, D, H, K, "float64", truncate=k)
                size = f"T={T} N={N} D={D} H={H} K={K}"
                return run_row(f"window k={k}", p, ["manual", "naive"], "naive",
                               window_flops(T, N, D, H, K, k, tokens=False), size, args)  # fmt: skip

            plan.append(window)
    if "tutorial" in args.rows:
        T, N, D, H, K, k = TUTORIAL

        def tutorial() -> Row:
            p = make_problem(T, N, D, H, K, "float64", tokens=True, truncate=k)
            size = f"T={T} N={N} vocab={D} H={H} (token ids)"
            return run_row(f"tutorial k={k}", p, ["manual", "naive"], "naive",
                           window_flops(T, N, D, H, K, k, tokens=True), size, args)  # fmt: skip

        plan.append(tutorial)
    return plan


# ---------------------------------------------------------------------------------------
# Output


def fmt_time(seconds: float) -> str:
    """Seconds as µs, ms or s, to three or four significant figures."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    return f"{seconds * 1e3:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def ratio(row: Row, other: str) -> tuple[float, float, float]:
    """other's time over manual's, round by round (the two samples of a round are
    seconds apart, so a change in the machine's load between rounds cancels): the
    median, and the lowest and highest round."""
    pairs = zip(row.samples[other], row.samples["manual"], strict=True)
    ratios = sorted(o / m for o, m in pairs)
    return statistics.median(ratios), ratios[0], ratios[-1]


def speedups(row: Row) -> str:
    """ "2.1× (1.8–2.5) nn.RNN, …": manual against each other contender, as in the table."""
    parts = []
    for name in ("nn.RNN", "twin", "naive"):
        if name in row.times:
            mid, low, high = ratio(row, name)
            spread = f" ({low:.2f}–{high:.2f})" if len(row.samples[name]) > 2 else ""
            parts.append(f"{mid:.2f}×{spread} {name}")
    return ", ".join(parts)


def table(rows: list[Row]) -> str:
    """The markdown table of all rows."""
    lines = [
        (
            "| rows | dtype | size | manual | nn.RNN | twin | naive | manual is faster than "
            "| manual GFLOP/s | matmul GFLOP/s | share |"
        ),
        "|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        cells = []
        for name in ("manual", "nn.RNN", "twin", "naive"):
            cells.append(fmt_time(r.times[name]) if name in r.times else r.skipped.get(name, "–"))
        lines.append(
            f"| {r.kind} | {r.dtype} | {r.size} | " + " | ".join(cells) + f" | {speedups(r)} "
            f"| {r.gflops:.1f} | {r.roofline:.1f} | {r.share:.0%} |"
        )
    worsts = []
    for dtype in ("float64", "float32"):
        diffs = [r.worst_diff for r in rows if r.dtype == dtype]
        if diffs:
            worsts.append(f"{max(diffs):.1e} in {dtype}")
    checked = (
        " manual's float32 results were float32." if any(r.dtype == "float32" for r in rows) else ""
    )
    lines += [
        "",
        (
            "Every contender computed the same loss and gradients as manual: worst "
            f"‖Δ‖∞/‖manual‖∞ {', '.join(worsts)}.{checked}"
        ),
    ]
    return "\n".join(lines)


def summary(row: Row) -> str:
    """One line per row, printed as the rows finish."""
    return f"{row.kind:<13} {row.dtype:<8} {row.size:<34} {speedups(row)}"


# ---------------------------------------------------------------------------------------
# Memory (each path in a fresh process)


def rss_kib(field_name: str) -> int:
    """A memory figure of this process from /proc/self/status, in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field_name} not in /proc/self/status")


def reset_peak() -> None:
    """Reset the process's peak RSS (VmHWM) to its current RSS."""
    # Writing 5 to clear_refs resets the peak (VmHWM) to the current RSS (Linux ≥ 4.0).
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def memory_child(path: str, dtype: str) -> None:
    """In a fresh process: print the peak RSS above the RSS after setup, in MiB, for the
    first call alone and over that call and two more."""
    T, N, D, H, K = FULL_SIZES[-1]
    p = make_problem(T, N, D, H, K, dtype)
    run = NNRNNPath(p) if path == "nn.RNN" else manual_call(p)
    before = rss_kib("VmRSS")
    reset_peak()
    run()
    first = (rss_kib("VmHWM") - before) / 1024
    run()
    run()
    three = (rss_kib("VmHWM") - before) / 1024
    print(json.dumps({"path": path, "dtype": dtype, "first": first, "three": three}))


def memory_table(dtypes: list[str]) -> str:
    """The peak-RSS table: each path in a fresh process (memory_child), per dtype."""
    T, N, D, H, K = FULL_SIZES[-1]
    lines = [
        (
            f"Peak RSS above the RSS after setup, forward + backward at T={T} N={N} D={D} "
            f"H={H} K={K}: a fresh process per path; the first call alone, and the peak "
            "over three calls in a row (the figure to compare):"
        ),
        "",
        "| path | dtype | first call | three calls |",
        "|---|---|---:|---:|",
    ]
    jobs = [(dtype, path) for dtype in dtypes for path in ("manual", "nn.RNN")]
    for dtype, path in progress(jobs, len(jobs), "memory"):
        out = subprocess.run(
            [sys.executable, __file__, "--memory-child", path, dtype],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        m = json.loads(out.stdout.strip().splitlines()[-1])
        lines.append(f"| {path} | {dtype} | {m['first']:.0f} MiB | {m['three']:.0f} MiB |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see --help)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="one timed sample per contender")
    parser.add_argument("--repeats", type=int, default=7, help="timed samples (default 7)")
    parser.add_argument("--rows", default=",".join(ROW_KINDS),
                        help=f"comma-separated subset of {','.join(ROW_KINDS)} (default all)")  # fmt: skip
    parser.add_argument("--dtype", default="float64,float32",
                        help="full rows' dtypes, comma-separated (default float64,float32)")  # fmt: skip
    parser.add_argument("--size", default="1,2,3,4",
                        help="full rows' sizes by number 1-4, comma-separated (default all)")  # fmt: skip
    parser.add_argument("--twin-limit", type=float, default=30.0,
                        help="skip the twin where one call takes longer (s; default 30)")  # fmt: skip
    parser.add_argument("--out", help="also write the markdown (header and tables) here")
    parser.add_argument("--unset-openblas-env", action="store_true",
                        help="run without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE")  # fmt: skip
    parser.add_argument("--memory-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.rows = [r for r in args.rows.split(",") if r]
    args.dtype = [d for d in args.dtype.split(",") if d]
    args.size = [int(s) for s in args.size.split(",") if s]
    for r in args.rows:
        if r not in ROW_KINDS:
            parser.error(f"--rows: unknown row kind {r!r}; choose from {', '.join(ROW_KINDS)}")
    for d in args.dtype:
        if d not in ("float64", "float32"):
            parser.error(f"--dtype: expected float64 or float32; got {d!r}")
    for s in args.size:
        if not 1 <= s <= len(FULL_SIZES):
            parser.error(f"--size: expected numbers 1 to {len(FULL_SIZES)}; got {s}")
    if args.quick:
        args.repeats = 1
    if args.repeats < 1:
        parser.error(f"--repeats must be ≥ 1; got {args.repeats}")
    return args


def main(argv: list[str] | None = None) -> None:
    """Run the rows asked for, print them as they finish, then the table and memory."""
    args = parse_args(argv)
    if args.unset_openblas_env and any(v in os.environ for v in OPENBLAS_VARS):
        # numpy reads these when it loads OpenBLAS, so run again in a clean process.
        env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_VARS}
        cmd = [sys.executable, __file__, *(argv if argv is not None else sys.argv[1:])]
        os.execve(sys.executable, cmd, env)
    blas = numpy_blas()
    torch.set_num_threads(blas.threads)
    if args.memory_child:
        memory_child(*args.memory_child)
        return
    set_vars = [v for v in OPENBLAS_VARS if v in os.environ]
    if set_vars:
        print(f"note: {' and '.join(set_vars)} set; numpy's OpenBLAS runs {blas.description}. "
              "--unset-openblas-env measures without them.", file=sys.stderr)  # fmt: skip
    rows: list[Row] = []
    plan = planned_rows(args)
    for make_row in progress(plan, len(plan), "rows"):
        rows.append(make_row())
        print(summary(rows[-1]), file=sys.stderr)
    parts = [machine_header(blas, args.repeats)]
    if rows:
        parts.append(table(rows))
    if "memory" in args.rows:
        parts.append(memory_table(args.dtype))
    text = "\n\n".join(parts)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
