"""Where manual_bptt.bptt spends its time, and how fast it could be: a profile and a roofline.

    python benchmarks/profile_bptt.py --size 4 --dtype float64 --products
    py-spy record -r 500 -f raw -o /tmp/bptt.txt -- python benchmarks/profile_bptt.py --size 4
    python benchmarks/profile_bptt.py --summarise /tmp/bptt.txt

--products   times every matrix product that bptt makes at this size, alone (same
             shapes, layouts and dtype, median of repeats), and prints the ceiling: the
             time bptt would take if each of its products ran at that isolated speed
             and nothing else took any time. Beside it, bptt's own median time and, for
             the full sizes, nn.RNN's (torch_reference.nn's TorchNN): how much faster than
             nn.RNN bptt is, and could at most be. Every product is also timed through
             torch.matmul on the same memory: torch's BLAS (MKL on x86 builds) against
             numpy's (OpenBLAS in the PyPI wheels), the difference nn.RNN's path gets
             for free.
(default)    runs bptt in a loop (--calls), for a sampling profiler to attach to.
--stages     times each stage of the vanilla cell's bptt (argument checks, forward,
             cross-entropy, backward, result and overflow scan) over --calls calls,
             with the minor page faults in each; naive_bptt runs once first unless
             --fresh (see stages()).
--summarise  reads py-spy's raw output and prints the share of samples per line of
             manual_bptt (the innermost manual_bptt frame of each sample), so that a
             line's share is the wall time spent in it, numpy and BLAS included.

Sizes are the benchmark's (problems.py): --size 1-4 picks a full size, --size tutorial
or window1/window32 the truncated rows.
"""

from __future__ import annotations

import argparse
import collections
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import manual_bptt
from manual_bptt.backward import backward
from manual_bptt.crossentropy import loss_and_dlogits
from manual_bptt.inputs import prepare
from manual_bptt.network import quiet, run_batch
from manual_bptt.result import BPTTResult

from machine import match_torch_threads
from problems import FULL_SIZES, TUTORIAL, WINDOWS, Problem, make_contender, make_problem

NAMED_SIZES = {"tutorial": TUTORIAL, "window1": WINDOWS[0], "window32": WINDOWS[1]}


def problem_for(size: str, dtype: str) -> Problem:
    """The benchmark's problem for --size: 1-4 (a full size, in ``dtype``), tutorial,
    window1 or window32 (float64, as in run.py's table)."""
    if size in NAMED_SIZES:
        return make_problem(NAMED_SIZES[size], "float64")
    return make_problem(FULL_SIZES[int(size) - 1], dtype)


def median_seconds(f: Callable[[], object], repeats: int = 9) -> float:
    """Median wall time of f over ``repeats`` calls, after one call to warm up."""
    f()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def settled_seconds(f: Callable[[], object]) -> float:
    """median_seconds after a 0.25 s pause, so that no BLAS thread is still spinning."""
    time.sleep(0.25)
    return median_seconds(f)


def products(p: Problem, lib: str = "numpy") -> list[tuple[str, int, Callable[[], object]]]:
    """(name, FLOPs, a call) for every matrix product of bptt on p, as bptt lays it out.

    A product bptt makes once per step is timed as all T of them in a row. With
    lib="torch" the same products, on the same memory and layouts (tensors made with
    torch.from_numpy, transposes as views), run through torch.matmul instead: the BLAS
    that nn.RNN's path uses, so that the two libraries' speeds compare product by product.
    """
    rng = np.random.default_rng(2)
    wrap: Callable[[np.ndarray], Any] = torch.from_numpy if lib == "torch" else np.asarray
    matmul: Callable[..., Any] = torch.matmul if lib == "torch" else np.matmul
    U, W, V = (wrap(a) for a in (p.params.U, p.params.W, p.params.V))
    H, D = U.shape
    K = V.shape[0]
    T, N = p.x.shape[0], p.x.shape[1]
    M = T * N
    dt = p.params.dtype

    def rand(*shape: int) -> Any:
        return wrap(rng.normal(size=shape).astype(dt))

    rows_x, rows_h, rows_d, rows_o = rand(M, D), rand(M, H), rand(M, H), rand(M, K)
    state, out_nh = rand(N, H), wrap(np.empty((N, H), dt))
    WT = wrap(np.ascontiguousarray(p.params.W.T))

    def per_step(f: Callable[[], object], steps: int) -> Callable[[], None]:
        def run() -> None:
            for _ in range(steps):
                f()

        return run

    out: list[tuple[str, int, Callable[[], object]]] = []
    tokens = p.x.ndim == 2
    if not tokens:
        out.append(("U x_t, all t: (TN, D) @ Uᵀ", 2 * M * D * H, lambda: rows_x @ U.T))
    out.append(
        ("W h_{t−1}, per step: (N, H) @ Wᵀ", 2 * M * H * H,
         per_step(lambda: matmul(state, WT, out=out_nh), T))
    )  # fmt: skip
    # Not a product bptt makes: the same with Wᵀ as a transposed view instead of the
    # C-ordered copy that run_forward takes, to show why it takes one.
    out.append(
        ("(not in bptt) the same, Wᵀ a view of W", 0,
         per_step(lambda: matmul(state, W.T, out=out_nh), T))
    )  # fmt: skip
    out.append(("V h_t, all t: (TN, H) @ Vᵀ", 2 * M * H * K, lambda: rows_h @ V.T))
    out.append(("Vᵀ ∂L/∂o: (TN, K) @ V", 2 * M * K * H, lambda: rows_o @ V))
    if p.truncate is None:
        out.append(
            ("Wᵀ δ, per step: (N, H) @ W", 2 * M * H * H,
             per_step(lambda: matmul(state, W, out=out_nh), T))
        )  # fmt: skip
    else:
        lags = range(1, min(p.truncate, T - 1) + 1)
        flops = sum(2 * (T - lag) * N * H * H for lag in lags)

        def window() -> None:
            for lag in lags:
                rows = (T - lag) * N
                matmul(rows_d[:rows], W, out=rows_h[:rows])

        out.append(("Wᵀ D^ℓ, per lag: ((T−ℓ)N, H) @ W", flops, window))
    out.append(("∂L/∂W = Δᵀ h_prev: (H, TN) @ (TN, H)", 2 * M * H * H, lambda: rows_d.T @ rows_h))
    out.append(("∂L/∂V = (hᵀ ∂L/∂o)ᵀ: (H, TN) @ (TN, K)", 2 * M * K * H, lambda: rows_h.T @ rows_o))
    # Not a product bptt makes: ∂L/∂V in the orientation it had before issue 22's second
    # round (backward.grad_V says why it changed).
    out.append(("(not in bptt) ∂L/∂V = ∂L/∂oᵀ h", 2 * M * K * H, lambda: rows_o.T @ rows_h))
    if not tokens:
        out.append(("∂L/∂U = Δᵀ x: (H, TN) @ (TN, D)", 2 * M * H * D, lambda: rows_d.T @ rows_x))
        out.append(("∂L/∂x = Δ U: (TN, H) @ U", 2 * M * H * D, lambda: rows_d @ U))
    return out


def roofline(p: Problem) -> None:
    """Print every product's time alone in numpy and in torch, the ceilings they add up
    to, bptt's own time, and (full sizes) nn.RNN's."""
    manual_bptt.bptt(p.params, p.x, p.y, truncate=p.truncate)  # BLAS threads and memory warm
    total_flops = 0
    ceiling = {"numpy": 0.0, "torch": 0.0}
    print(f"{'product':44} {'GFLOP':>7} {'numpy ms':>9} {'GFLOP/s':>8} {'torch ms':>9} "
          f"{'GFLOP/s':>8}")  # fmt: skip
    step_flops = 2 * p.x.shape[0] * p.x.shape[1] * p.params.H**2
    # All numpy products first, then all torch ones, each after a pause: one library's
    # BLAS threads spin for a while after a call, and would slow the other's (run.py
    # pauses for the same reason).
    listed = {lib: products(p, lib) for lib in ceiling}
    timed = {lib: [settled_seconds(f) for _, _, f in listed[lib]] for lib in ceiling}
    for i, (name, flops, _) in enumerate(listed["numpy"]):
        seconds = {lib: timed[lib][i] for lib in ceiling}
        counted = flops or step_flops
        cells = " ".join(
            f"{seconds[lib] * 1e3:9.2f} {counted / seconds[lib] / 1e9:8.1f}" for lib in ceiling
        )
        if name.startswith("(not in bptt)"):
            print(f"{name:44} {'':7} {cells}")
            continue
        total_flops += flops
        for lib in ceiling:
            ceiling[lib] += seconds[lib]
        print(f"{name:44} {flops / 1e9:7.2f} {cells}")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    call = median_seconds(lambda: manual_bptt.bptt(p.params, p.x, p.y, truncate=p.truncate))
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10  # 1 + 9 calls
    cells = " ".join(
        f"{ceiling[lib] * 1e3:9.2f} {total_flops / ceiling[lib] / 1e9:8.1f}" for lib in ceiling
    )
    print(f"{'all products, each at its own speed alone':44} {total_flops / 1e9:7.2f} {cells}")
    print(f"{'manual_bptt.bptt, one call':44} {'':7} {call * 1e3:9.2f} "
          f"{total_flops / call / 1e9:8.1f}")  # fmt: skip
    print(f"bptt takes {call / ceiling['numpy']:.2f}× its ceiling (the numpy products alone): "
          f"{(call - ceiling['numpy']) * 1e3:.1f} ms go to elementwise work, allocation and "
          f"the products' slowdown in context; {faults:.0f} minor page faults a call (memory "
          "the allocator had to map afresh). The same products in torch take "
          f"{ceiling['torch'] / ceiling['numpy']:.2f}× numpy's time.")  # fmt: skip
    if p.truncate is None and p.x.ndim == 3:
        rnn = median_seconds(make_contender("torch.nn", p).call)
        print(f"nn.RNN + Linear + cross_entropy + backward takes {rnn * 1e3:.2f} ms: bptt is "
              f"{rnn / call:.2f}× faster, and could be at most {rnn / ceiling['numpy']:.2f}× "
              "faster with every product at numpy's speed alone and no other work.")  # fmt: skip


def stages(p: Problem, calls: int, fresh: bool) -> None:
    """Time each stage of the vanilla cell's bptt (backward.bptt's plain path, stage by
    stage as it calls them) over ``calls`` calls, and count the minor page faults in each.

    Unless ``fresh``, naive_bptt runs once first, as it does between bptt's samples in
    run.py and ab_tutorial.py: the allocator then keeps the memory that bptt's 6.4 MB
    results need, where a process that never ran anything larger returns it to the
    kernel after every call and faults it in again (docs/performance.md).
    """
    if not fresh:
        manual_bptt.naive_bptt(p.params, p.x, p.y, truncate=p.truncate)
    now, faults = time.perf_counter, lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    spent: dict[str, list[float]] = collections.defaultdict(list)
    faulted: dict[str, list[int]] = collections.defaultdict(list)

    def timed(name: str, f: Callable[[], Any]) -> Any:
        f0, t0 = faults(), now()
        value = f()
        spent[name].append(now() - t0)
        faulted[name].append(faults() - f0)
        return value

    def one_call() -> None:
        batch = timed(
            "prepare (argument checks)", lambda: prepare(p.params, p.x, p.y, truncate=p.truncate)
        )
        cache = timed("forward (1)-(3), o = h Vᵀ + c", lambda: run_batch(p.params, batch))
        with quiet():
            loss, dO = timed("cross-entropy (4)-(6)", lambda: loss_and_dlogits(
                cache.o, batch.y, batch.mask, batch.loss_scale, out=cache.o))  # fmt: skip
            grads = timed("backward (7)-(12)", lambda: backward(p.params, batch, cache, dO))
            timed("result and overflow scan", lambda: BPTTResult.from_batched(batch, loss, grads))

    for _ in range(3):
        one_call()
    spent.clear()
    faulted.clear()
    whole = []
    for _ in range(calls):
        t0 = now()
        one_call()
        whole.append(now() - t0)
    for name, seconds in spent.items():
        print(f"{name:32} {statistics.median(seconds) * 1e3:7.3f} ms "
              f"{statistics.mean(faulted[name]):7.0f} page faults")  # fmt: skip
    print(f"{'one call, stage by stage':32} {statistics.median(whole) * 1e3:7.3f} ms (median)")


def summarise(raw: str, top: int) -> None:
    """Share of py-spy samples per innermost manual_bptt line."""
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in Path(raw).read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")
        ours = [f for f in frames if "manual_bptt/" in f]
        counts[ours[-1] if ours else "(outside manual_bptt)"] += int(n)
        total += int(n)
    for where, samples in counts.most_common(top):
        print(f"{100 * samples / total:5.1f}%  {where}")


def main() -> None:
    """--products, --summarise, or a loop of bptt calls for a profiler to attach to."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--size",
        default="4",
        choices=["1", "2", "3", "4", *NAMED_SIZES],
        help="1-4, tutorial, window1 or window32",
    )
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--calls", type=int, default=20, help="bptt calls to profile (20)")
    parser.add_argument("--products", action="store_true", help="print the roofline")
    parser.add_argument("--summarise", metavar="RAW", help="summarise py-spy raw output")
    parser.add_argument("--stages", action="store_true", help="time each stage (vanilla)")
    parser.add_argument(
        "--fresh", action="store_true", help="--stages without running naive_bptt first"
    )
    parser.add_argument("--top", type=int, default=15, help="lines to show (15)")
    args = parser.parse_args()
    if args.summarise:
        summarise(args.summarise, args.top)
        return
    p = problem_for(args.size, args.dtype)
    if args.products:
        match_torch_threads()  # as run.py does
        roofline(p)
        return
    if args.stages:
        stages(p, args.calls, args.fresh)
        return
    for _ in range(args.calls):
        manual_bptt.bptt(p.params, p.x, p.y, truncate=p.truncate)


if __name__ == "__main__":
    main()
