"""Speed and memory of manual_bptt.bptt against PyTorch, measured in one process.

    python benchmarks/run.py                     # every row and the memory table
    python benchmarks/run.py --quick             # smoke run: every row, one round
    python benchmarks/run.py --rows full --dtype float32 --size 4
    python benchmarks/run.py --rows lstm,gru,memory   # the gated cells only
    python benchmarks/run.py --out table.md      # also write the markdown to a file

Rows (the sizes are in benchmarks/problems.py, shared with memory.py and profile_bptt.py)
  full      (T, N, D, H, K) = (20, 1, 8, 16, 8), (100, 32, 64, 128, 64),
            (256, 32, 128, 256, 128), (64, 64, 512, 1024, 512); float64 and float32.
            Contenders: manual, torch.nn (nn.RNN), twin.
  window    truncate=16, T=256, H=128, N=1 and N=32; D = K = 64 (the middle full
            size's input and output widths); float64. manual against naive.
  tutorial  the WildML tutorial's size: vocabulary D = K = 8000, H = 100, T = 30,
            bptt_truncate = 4, one sequence of token ids; float64. manual against naive.
  lstm, gru the gated cells at the four full sizes (--size picks them too), both
            dtypes; the GRU is torch's reset="after" variant. manual against torch.nn.
  memory    peak RSS of one forward + backward at the largest full size, manual
            against torch.nn, each in a fresh process (see below), for each cell whose
            rows are asked for (full, window, tutorial: the vanilla cell; lstm; gru),
            or the vanilla cell when memory is the only row asked for.

Contenders (all on the same weights, inputs and dtype; biases drawn non-zero)
  manual    manual_bptt.bptt: forward + backward by hand, NumPy in and out.
  torch.nn  the fastest plain PyTorch a user would write, shown as nn.RNN, nn.LSTM or
            nn.GRU by the row's cell: that module + nn.Linear +
            F.cross_entropy(reduction="sum"), then .backward() (torch_reference.nn's
            TorchNN); tensors made once, and x and the initial states (h0, and the
            LSTM's c0) require grad so that both sides compute the same gradients.
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
  Gated cells: U and W stack G gate blocks (G = 4 for the LSTM, 3 for the GRU), so
  every product with U or W is G times as large: 6·T·N·(G·DH + G·H² + HK).
  Token inputs: U x_t is a column lookup and ∂L/∂U a scatter-add, neither a product,
  and there is no ∂L/∂x: the DH terms are not counted. Window truncation with window k
  runs its δ recurrence lag by lag: lag ℓ = 1 … min(k, T−1) is one product over
  (T−ℓ)·N rows, so 2TNH² becomes 2NH²·(1 + Σ_ℓ (T−ℓ)).
  Elementwise work (φ, φ', softmax, the mask; about 10·T·N·(H + K) operations) is
  not counted: under 1% of the count except at the smallest size.
  "matmul" is the GFLOP/s of one plain matrix product of the recurrent shape,
  (N, H) @ (H, G·H), both C-ordered, in the row's dtype, timed as one more contender in
  the same rounds; "share" is manual's GFLOP/s over it (median over rounds).

Memory (benchmarks/memory.py, which says how): each path runs in a fresh Python
process, which makes its problem and reports its peak resident set size above the size
it had then, after the first call and after two more calls; the second figure is the
one to compare.

OpenBLAS: some machines here set OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) to work
around old OpenBLAS builds; they force a kernel and can slow a current numpy. The
header reports both variables and the kernel numpy's OpenBLAS actually runs
(threadpoolctl). --unset-openblas-env runs the benchmark again without them (this
command only; tests and CI are not affected).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from manual_bptt.progress import progress

import memory
from machine import OPENBLAS_VARS, Blas, cpu_name, match_torch_threads
from problems import (
    CONTENDERS,
    FULL_SIZES,
    MODULE_NAMES,
    TUTORIAL,
    WINDOWS,
    Contender,
    Problem,
    Size,
    contender_label,
    make_contender,
    make_problem,
)

PAUSE_S = 0.25  # before every sample: see "Timing" above
SAMPLE_S = 0.02  # a sample lasts at least this long (back-to-back calls)


# ---------------------------------------------------------------------------------------
# The rows, as data


@dataclass(frozen=True)
class RowKind:
    """One kind of row: its sizes, its contenders (manual first), its dtypes (None:
    those of --dtype) and its cell ("rnn", "lstm" or "gru")."""

    sizes: tuple[Size, ...]
    contenders: tuple[str, ...]
    dtypes: tuple[str, ...] | None = None
    cell: str = "rnn"


ROWS = {
    "full": RowKind(FULL_SIZES, ("manual", "torch.nn", "twin")),
    "window": RowKind(WINDOWS, ("manual", "naive"), ("float64",)),
    "tutorial": RowKind((TUTORIAL,), ("manual", "naive"), ("float64",)),
    "lstm": RowKind(FULL_SIZES, ("manual", "torch.nn"), cell="lstm"),
    "gru": RowKind(FULL_SIZES, ("manual", "torch.nn"), cell="gru"),
}
ROW_KINDS = (*ROWS, "memory")  # what --rows may name


@dataclass(frozen=True)
class Plan:
    """One row to measure: its kind, size, dtype, contenders and cell."""

    kind: str
    size: Size
    dtype: str
    contenders: tuple[str, ...]
    cell: str = "rnn"

    @property
    def label(self) -> str:
        """The row kind as the table shows it: "full", or with its window, "window k=16"."""
        k = self.size.truncate
        return self.kind if k is None else f"{self.kind} k={k}"


def planned_rows(args: argparse.Namespace) -> list[Plan]:
    """The rows the options ask for, in table order (--size picks the full sizes)."""
    plan = []
    for kind, rows in ROWS.items():
        if kind not in args.rows:
            continue
        numbered = rows.sizes == FULL_SIZES
        sizes = [rows.sizes[i - 1] for i in args.size] if numbered else rows.sizes
        for dtype in rows.dtypes or args.dtype:
            plan += [Plan(kind, size, dtype, rows.contenders, rows.cell) for size in sizes]
    return plan


def memory_cells(args: argparse.Namespace) -> list[str]:
    """The cells the memory table measures: those of the row kinds asked for (the
    vanilla cell's when only "memory" is)."""
    cells = dict.fromkeys(ROWS[kind].cell for kind in args.rows if kind in ROWS)
    return list(cells) or ["rnn"]


# ---------------------------------------------------------------------------------------
# The header


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
# Checking and timing


def recurrent_matmul(N: int, H: int, dtype: str, gates: int = 1) -> Callable[[], object]:
    """One plain (N, H) @ (H, G·H) product in numpy (G = ``gates``), both C-ordered,
    output preallocated: timed in the rounds beside the contenders, as the row's
    roofline."""
    rng = np.random.default_rng(1)
    a = rng.normal(size=(N, H)).astype(dtype)
    b = rng.normal(size=(H, gates * H)).astype(dtype)
    out = np.empty((N, gates * H), dtype)
    return lambda: np.matmul(a, b, out=out)


def worst_difference(p: Problem, contenders: dict[str, Contender]) -> float:
    """The largest ‖g − g_manual‖∞ / ‖g_manual‖∞ over every contender's gradients, and
    |L − L_manual| / |L_manual|; raises if manual's float32 results are not float32."""
    ref = contenders["manual"].result()
    bad = [k for k, g in ref.grads.items() if g.dtype != p.params.dtype]
    if bad:
        raise AssertionError(f"manual returned {bad} not in {p.params.dtype}")
    worst = 0.0
    for name, contender in contenders.items():
        if name == "manual":
            continue
        r = contender.result()
        worst = max(worst, abs(r.loss - ref.loss) / abs(ref.loss))
        for k, g in r.grads.items():
            scale = float(np.max(np.abs(ref.grads[k]))) or 1.0
            worst = max(worst, float(np.max(np.abs(g - ref.grads[k]))) / scale)
    return worst


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

    plan: Plan
    times: dict[str, float]  # median seconds per call
    samples: dict[str, list[float]]  # per round, for the ratios
    gflops: float  # manual's
    roofline: float  # GFLOP/s of the (N, H) @ (H, G·H) product in the same rounds
    share: float  # median over rounds of manual's GFLOP/s over the product's
    worst_diff: float
    skipped: dict[str, str] = field(default_factory=dict)  # contender → why


def run_row(plan: Plan, args: argparse.Namespace) -> Row:
    """Warm up, check that every contender computes manual's result, then time them in
    interleaved rounds beside the recurrent matmul; skip the twin where too slow."""
    p = make_problem(plan.size, plan.dtype, plan.cell)
    contenders = {name: make_contender(name, p) for name in plan.contenders}
    skipped = {}
    if "twin" in contenders:
        seconds = warm_up_seconds(contenders["twin"].call)
        if seconds > args.twin_limit:
            del contenders["twin"]
            skipped["twin"] = f"skipped: {seconds:.0f} s a call"
    worst = worst_difference(p, contenders)
    N, H, G = plan.size.N, plan.size.H, p.gates
    funcs = {name: c.call for name, c in contenders.items()}
    funcs["matmul"] = recurrent_matmul(N, H, plan.dtype, G)
    samples = time_interleaved(funcs, args.repeats)
    matmul = samples.pop("matmul")
    matmul_flops = 2 * N * H * G * H
    flops = plan.size.flops(G)
    # manual's GFLOP/s over the product's, round by round, as for the speed-ups.
    pairs = zip(samples["manual"], matmul, strict=True)
    shares = [(flops / m) / (matmul_flops / r) for m, r in pairs]
    times = {name: statistics.median(s) for name, s in samples.items()}
    return Row(
        plan=plan,
        times=times,
        samples=samples,
        gflops=flops / times["manual"] / 1e9,
        roofline=matmul_flops / statistics.median(matmul) / 1e9,
        share=statistics.median(shares),
        worst_diff=worst,
        skipped=skipped,
    )


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
    for name in CONTENDERS[1:]:
        if name in row.times:
            mid, low, high = ratio(row, name)
            spread = f" ({low:.2f}–{high:.2f})" if len(row.samples[name]) > 2 else ""
            parts.append(f"{mid:.2f}×{spread} {contender_label(name, row.plan.cell)}")
    return ", ".join(parts)


def table(rows: list[Row]) -> str:
    """The markdown table of all rows; the torch.nn column is headed by the modules
    it holds ("nn.RNN" for the vanilla rows alone)."""
    modules = dict.fromkeys(MODULE_NAMES[r.plan.cell] for r in rows if "torch.nn" in r.times)
    nn_column = " / ".join(modules) or "torch.nn"
    lines = [
        (
            f"| rows | dtype | size | manual | {nn_column} | twin | naive | manual is faster than "
            "| manual GFLOP/s | matmul GFLOP/s | share |"
        ),
        "|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        cells = []
        for name in CONTENDERS:
            cells.append(fmt_time(r.times[name]) if name in r.times else r.skipped.get(name, "–"))
        lines.append(
            f"| {r.plan.label} | {r.plan.dtype} | {r.plan.size.label()} | "
            + " | ".join(cells)
            + f" | {speedups(r)} | {r.gflops:.1f} | {r.roofline:.1f} | {r.share:.0%} |"
        )
    worsts = []
    for dtype in ("float64", "float32"):
        diffs = [r.worst_diff for r in rows if r.plan.dtype == dtype]
        if diffs:
            worsts.append(f"{max(diffs):.1e} in {dtype}")
    float32 = any(r.plan.dtype == "float32" for r in rows)
    checked = " manual's float32 results were float32." if float32 else ""
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
    p = row.plan
    return f"{p.label:<13} {p.dtype:<8} {p.size.label():<34} {speedups(row)}"


def memory_table(cells: list[str], dtypes: list[str]) -> str:
    """The peak-RSS table: each path in a fresh process (benchmarks/memory.py), per cell
    and dtype."""
    lines = [
        (
            f"Peak RSS above the RSS after setup, forward + backward at {memory.SIZE.label()}: "
            "a fresh process per path; the first call alone, and the peak over three calls "
            "in a row (the figure to compare):"
        ),
        "",
        "| path | dtype | first call | three calls |",
        "|---|---|---:|---:|",
    ]
    jobs = [(cell, dtype, path) for cell in cells for dtype in dtypes for path in memory.PATHS]
    for cell, dtype, path in progress(jobs, len(jobs), "memory"):
        m = memory.in_fresh_process(path, dtype, cell)
        label = contender_label(path, cell)
        lines.append(f"| {label} | {dtype} | {m['first']:.0f} MiB | {m['three']:.0f} MiB |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see --help)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--quick", action="store_true", help="one timed sample per contender")
    add("--repeats", type=int, default=7, help="timed samples (default 7)")
    add(
        "--rows",
        default=",".join(ROW_KINDS),
        help=f"comma-separated subset of {','.join(ROW_KINDS)} (default all)",
    )
    add(
        "--dtype",
        default="float64,float32",
        help="full, lstm and gru rows' dtypes, comma-separated (default float64,float32)",
    )
    add(
        "--size",
        default="1,2,3,4",
        help="full, lstm and gru rows' sizes by number 1-4, comma-separated (default all)",
    )
    add(
        "--twin-limit",
        type=float,
        default=30.0,
        help="skip the twin where one call takes longer (s; default 30)",
    )
    add("--out", help="also write the markdown (header and tables) here")
    add(
        "--unset-openblas-env",
        action="store_true",
        help="run without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE",
    )
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


def rerun_without_openblas_env(argv: list[str]) -> None:
    """Replace this process with a new run of this script, without OPENBLAS_VARS.

    numpy reads them when it loads OpenBLAS, at import, before the arguments are read:
    deleting them from os.environ now would change nothing, so a new process must start
    without them (the memory processes inherit the cleaned environment). Does not return.
    """
    env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_VARS}
    os.execve(sys.executable, [sys.executable, __file__, *argv], env)


def main(argv: list[str] | None = None) -> None:
    """Run the rows asked for, print them as they finish, then the table and memory."""
    args = parse_args(argv)
    set_vars = [v for v in OPENBLAS_VARS if v in os.environ]
    if args.unset_openblas_env and set_vars:
        rerun_without_openblas_env(argv if argv is not None else sys.argv[1:])
    blas = match_torch_threads()
    if set_vars:
        print(
            f"note: {' and '.join(set_vars)} set; numpy's OpenBLAS runs {blas.description}. "
            "--unset-openblas-env measures without them.",
            file=sys.stderr,
        )
    rows: list[Row] = []
    plan = planned_rows(args)
    for one in progress(plan, len(plan), "rows"):
        rows.append(run_row(one, args))
        print(summary(rows[-1]), file=sys.stderr)
    parts = [machine_header(blas, args.repeats)]
    if rows:
        parts.append(table(rows))
    if "memory" in args.rows:
        parts.append(memory_table(memory_cells(args), args.dtype))
    text = "\n\n".join(parts)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
