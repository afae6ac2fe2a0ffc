"""Speed of manual_bptt.bptt against PyTorch, measured in one process.

    python benchmarks/bench_bptt.py              # the full table (a few minutes)
    python benchmarks/bench_bptt.py --quick      # every row once, small repeats
    python benchmarks/bench_bptt.py --out docs/performance-table.md
    python benchmarks/bench_bptt.py --memory     # peak memory, one subprocess per path

Method: for each row all contenders run on the same weights, inputs and dtype,
interleaved (one call of each in turn, each after a 0.25 s pause so that the other
library's worker threads have stopped spinning) and repeated; the table gives the median
of the repeats after one warm-up call each. torch's thread count is set to the BLAS thread
count numpy uses (read with threadpoolctl), so both sides get the same cores.

Contenders:
  manual      manual_bptt.bptt: forward + backward by hand (NumPy arrays in and out)
  nn.RNN      the fastest plain PyTorch a user would write: torch.nn.RNN + nn.Linear +
              F.cross_entropy(reduction="sum") and .backward(), on tensors made once
              (x requires grad too, so both sides compute the same seven gradients)
  twin        torch_reference.bptt: autograd on a step-by-step PyTorch network
  naive       manual_bptt.naive_bptt: the per-sequence, per-loss, per-step loops

FLOPs counted (multiply-adds × 2, elementwise work ignored) for forward + backward:
  forward  U x_t: 2TNDH, W h_{t−1}: 2TNH², V h_t: 2TNHK
  backward ∂L/∂h via V: 2TNKH, ∂L/∂V: 2TNKH, δ W: 2TNH², ∂L/∂W: 2TNH²,
           ∂L/∂U: 2TNDH, ∂L/∂x: 2TNDH
  total    6·T·N·(DH + H² + HK); for token inputs the U x_t and ∂L/∂x products are
  lookups, so the DH terms drop to 2TNDH (∂L/∂U only) and are counted as such.
  Window truncation with window k does min(k, T−1)+1 lags of the δ W product instead
  of one, so its count has 2·N·H²·Σ_ℓ (T−ℓ) in place of 2TNH².
The roofline column is the GFLOP/s of one plain (N, H) × (H, H) matrix product (the
recurrent shape) in the same dtype, measured in the same run with numpy.
"""

from __future__ import annotations

import argparse
import json
import platform
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
import torch_reference

FULL_SIZES = [  # (T, N, D, H, K)
    (20, 1, 8, 16, 8),
    (100, 32, 64, 128, 64),
    (256, 32, 128, 256, 128),
    (64, 64, 512, 1024, 512),
]
WINDOW_ROWS = [  # (T, N, D, H, K, k): D and K chosen at 64, the middle sizes' D and K
    (256, 1, 64, 128, 64, 16),
    (256, 32, 64, 128, 64, 16),
]
TUTORIAL = (30, 1, 8000, 100, 8000, 4)  # vocabulary 8000, H = 100, T = 30, bptt_truncate = 4


def blas_threads() -> tuple[int, str]:
    """Threads numpy's BLAS uses, and which library and kernel it is."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return torch.get_num_threads(), "unknown (pip install threadpoolctl to read it)"
    for info in threadpool_info():
        if info.get("user_api") == "blas":
            kernel = info.get("architecture", "?")
            return int(info["num_threads"]), f"{info['internal_api']} {info['version']} ({kernel})"
    return torch.get_num_threads(), "unknown"


def full_flops(T: int, N: int, D: int, H: int, K: int, tokens: bool = False) -> float:
    input_terms = 2 * T * N * D * H if tokens else 6 * T * N * D * H
    return input_terms + 6 * T * N * H * H + 6 * T * N * H * K


def window_flops(T: int, N: int, D: int, H: int, K: int, k: int, tokens: bool) -> float:
    lags = sum(T - lag for lag in range(min(k, T - 1) + 1))
    return full_flops(T, N, D, H, K, tokens) - 2 * T * N * H * H + 2 * N * H * H * lags


def matmul_gflops(N: int, H: int, dtype: np.dtype, seconds: float = 0.3) -> float:
    """GFLOP/s of (N, H) @ (H, H) in numpy, best of a few timed batches."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(N, H)).astype(dtype)
    b = rng.normal(size=(H, H)).astype(dtype)
    out = np.empty((N, H), dtype)
    reps = max(1, int(2e8 / (2 * N * H * H)))
    best = float("inf")
    deadline = time.perf_counter() + seconds
    while True:
        start = time.perf_counter()
        for _ in range(reps):
            np.matmul(a, b, out=out)
        best = min(best, (time.perf_counter() - start) / reps)
        if time.perf_counter() > deadline:
            break
    return 2 * N * H * H / best / 1e9


@dataclass
class Problem:
    params: manual_bptt.Params
    x: np.ndarray
    y: np.ndarray
    truncate: int | None = None


def make_problem(T: int, N: int, D: int, H: int, K: int, dtype: str, tokens: bool = False,
                 truncate: int | None = None) -> Problem:  # fmt: skip
    rng = np.random.default_rng(0)
    params = manual_bptt.init_params(D, H, K, seed=0, dtype=dtype)
    x = rng.integers(0, D, size=(T, N)) if tokens else rng.normal(size=(T, N, D)).astype(dtype)
    return Problem(params, x, rng.integers(0, K, size=(T, N)), truncate)


def nn_rnn_path(p: Problem) -> Callable[[], None]:
    """torch.nn.RNN + nn.Linear + F.cross_entropy(sum) + backward, tensors made once."""
    dtype = torch.float64 if p.params.dtype == np.float64 else torch.float32
    H, D = p.params.U.shape
    rnn = torch.nn.RNN(D, H, dtype=dtype)
    out = torch.nn.Linear(H, p.params.K, dtype=dtype)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.from_numpy(p.params.U))
        rnn.weight_hh_l0.copy_(torch.from_numpy(p.params.W))
        rnn.bias_ih_l0.copy_(torch.from_numpy(p.params.b))
        rnn.bias_hh_l0.zero_()
        out.weight.copy_(torch.from_numpy(p.params.V))
        out.bias.copy_(torch.from_numpy(p.params.c))
    x = torch.tensor(p.x, requires_grad=True)
    y = torch.from_numpy(p.y).reshape(-1)
    h0 = torch.zeros(1, p.x.shape[1], H, dtype=dtype, requires_grad=True)
    parameters = [*rnn.parameters(), *out.parameters(), x, h0]

    def run() -> None:
        for t in parameters:
            t.grad = None
        hs, _ = rnn(x, h0)
        loss = F.cross_entropy(out(hs).reshape(-1, p.params.K), y, reduction="sum")
        loss.backward()

    return run


def contenders(p: Problem, names: list[str]) -> dict[str, Callable[[], object]]:
    kw = {"truncate": p.truncate}
    table: dict[str, Callable[[], object]] = {
        "manual": lambda: manual_bptt.bptt(p.params, p.x, p.y, **kw),
        "naive": lambda: manual_bptt.naive_bptt(p.params, p.x, p.y, **kw),
        "twin": lambda: torch_reference.bptt(p.params, p.x, p.y, **kw),
    }
    if "nn.RNN" in names:
        table["nn.RNN"] = nn_rnn_path(p)
    return {name: table[name] for name in names}


# Both libraries' worker threads spin for a while after a call (OpenBLAS's pthreads for
# about 2^28 cycles, libgomp's for its spin count) before they sleep. On two cores the
# spinning threads of the contender that just ran slow the next one down by up to 2×,
# so every timed call starts after this pause, when the other side's threads are idle.
PAUSE_S = 0.25


def time_interleaved(
    funcs: dict[str, Callable[[], object]], repeats: int, pause: float = PAUSE_S
) -> dict[str, float]:
    """Median seconds per call of each function, calls interleaved, after a warm-up."""
    for f in funcs.values():
        f()
    times: dict[str, list[float]] = {name: [] for name in funcs}
    for _ in range(repeats):
        for name, f in funcs.items():
            time.sleep(pause)
            start = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def fmt_time(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def run_rows(args: argparse.Namespace) -> list[dict]:
    rows = []
    repeats = 1 if args.quick else args.repeats
    for dtype in ("float64", "float32"):
        for T, N, D, H, K in FULL_SIZES:
            p = make_problem(T, N, D, H, K, dtype)
            names = ["manual", "nn.RNN", "twin"]
            if args.no_twin and (T, N) == (64, 64):
                names.remove("twin")
            t = time_interleaved(contenders(p, names), repeats)
            flops = full_flops(T, N, D, H, K)
            rows.append({
                "kind": "full", "dtype": dtype, "size": f"T={T} N={N} D={D} H={H} K={K}",
                "times": t, "baseline": "nn.RNN",
                "gflops": flops / t["manual"] / 1e9, "roofline": matmul_gflops(N, H, dtype),
            })  # fmt: skip
            print(summary(rows[-1]), file=sys.stderr)
    for T, N, D, H, K, k in WINDOW_ROWS:
        p = make_problem(T, N, D, H, K, "float64", truncate=k)
        t = time_interleaved(contenders(p, ["manual", "naive"]), max(1, repeats // 2))
        rows.append({
            "kind": f"window k={k}", "dtype": "float64", "size": f"T={T} N={N} D={D} H={H} K={K}",
            "times": t, "baseline": "naive",
            "gflops": window_flops(T, N, D, H, K, k, False) / t["manual"] / 1e9,
            "roofline": matmul_gflops(N, H, np.dtype("float64")),
        })  # fmt: skip
        print(summary(rows[-1]), file=sys.stderr)
    T, N, D, H, K, k = TUTORIAL
    p = make_problem(T, N, D, H, K, "float64", tokens=True, truncate=k)
    t = time_interleaved(contenders(p, ["manual", "naive"]), repeats)
    rows.append({
        "kind": f"tutorial k={k}", "dtype": "float64", "size": f"T={T} N={N} V={D} H={H}",
        "times": t, "baseline": "naive",
        "gflops": window_flops(T, N, D, H, K, k, True) / t["manual"] / 1e9,
        "roofline": matmul_gflops(N, H, np.dtype("float64")),
    })  # fmt: skip
    print(summary(rows[-1]), file=sys.stderr)
    return rows


def summary(row: dict) -> str:
    t = row["times"]
    ratio = t[row["baseline"]] / t["manual"]
    return (
        f"{row['kind']:<14} {row['dtype']:<8} {row['size']:<28} {ratio:6.2f}× vs {row['baseline']}"
    )


def table(rows: list[dict], header: str) -> str:
    lines = [
        header,
        "",
        (
            "| rows | dtype | size | manual | nn.RNN | twin | naive | speed-up "
            "| manual GFLOP/s | matmul GFLOP/s | share |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t = r["times"]
        cells = [fmt_time(t[n]) if n in t else "–" for n in ("manual", "nn.RNN", "twin", "naive")]
        speedup = t[r["baseline"]] / t["manual"]
        lines.append(
            f"| {r['kind']} | {r['dtype']} | {r['size']} | "
            + " | ".join(cells)
            + f" | {speedup:.2f}× vs {r['baseline']} | {r['gflops']:.1f} | {r['roofline']:.1f} "
            f"| {r['gflops'] / r['roofline']:.0%} |"
        )
    return "\n".join(lines)


def peak_memory_child(path: str, dtype: str) -> None:
    """Run in a fresh process: print the peak RSS growth (MiB) of one forward + backward."""
    T, N, D, H, K = FULL_SIZES[-1]
    p = make_problem(T, N, D, H, K, dtype)
    run = nn_rnn_path(p) if path == "nn.RNN" else contenders(p, ["manual"])["manual"]
    before = rss_kib("VmRSS")
    # Writing 5 to clear_refs resets the peak (VmHWM) to the current RSS (Linux ≥ 4.0),
    # so the peak read afterwards is that of the call alone, setup excluded.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    run()
    growth = (rss_kib("VmHWM") - before) / 1024
    print(json.dumps({"path": path, "dtype": dtype, "peak_growth_mib": growth}))


def rss_kib(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure_memory() -> list[dict]:
    results = []
    for dtype in ("float64", "float32"):
        for path in ("manual", "nn.RNN"):
            out = subprocess.run(
                [sys.executable, __file__, "--memory-child", path, dtype],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="one timed call per row")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per contender (7)")
    parser.add_argument("--no-twin", action="store_true", help="skip the twin at the largest size")
    parser.add_argument("--memory", action="store_true", help="also measure peak memory")
    parser.add_argument("--out", help="also write the markdown table to this file")
    parser.add_argument("--memory-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    threads, blas = blas_threads()
    torch.set_num_threads(threads)
    if args.memory_child:
        peak_memory_child(*args.memory_child)
        return
    header = (
        f"Machine: {platform.machine()} {platform.processor() or ''}, {threads} threads; "
        f"numpy {np.__version__} with {blas}; torch {torch.__version__} "
        f"({torch.get_num_threads()} threads); Python {platform.python_version()}. "
        f"Median of {1 if args.quick else args.repeats} interleaved calls after a warm-up."
    )
    text = table(run_rows(args), header)
    if args.memory:
        mem = measure_memory()
        text += "\n\nPeak RSS growth during one forward + backward at the largest size "
        text += "(separate fresh process per path):\n\n| path | dtype | MiB |\n|---|---|---|\n"
        text += "\n".join(
            f"| {m['path']} | {m['dtype']} | {m['peak_growth_mib']:.0f} |" for m in mem
        )
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
