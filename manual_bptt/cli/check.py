"""bptt check: manual gradients against autograd and against finite differences.

For full BPTT and both kinds of truncation (or the one you name), on one network (the
vanilla RNN by default; --cell lstm or --cell gru for the gated cells, the GRU with
--reset after (torch's, default) or before (Cho et al.'s)), prints a table per gradient
(U, W, V, b, c, h0, x; the LSTM's c0, the GRU's bh): its norm, the largest absolute
and relative difference from the autograd twin (torch_reference) and from central
differences, and pass/fail. Exit code 0 when everything passes, 1 when anything fails,
2 for a bad argument, 3 when the network overflows (a state or the logits become inf or
NaN), since then there is nothing to compare.

Finite differences check truncated gradients too: a truncated gradient is the exact
gradient of the loss with the states where the truncation cuts held constant (see
manual_bptt.checking.gradcheck.bptt_objective), and that function is what gets
differenced.

What finite differences can resolve: each estimate D(ε) = (f₊ − f₋)/2ε, f± = L(θ ± εv),
has an error of at most about B = c·u·(|f₊| + |f₋|)/2ε + |D(ε) − D(2ε)| (round-off, then
three times Richardson's truncation estimate; u = 1.1e-16, c = 64, see
manual_bptt/checking/gradcheck.py). An entry (or, with --fd fast, a direction) that
misses the tolerance below by no more than B is reported as "finite differences cannot
resolve this gradient at this scale", not as a disagreement: manual against autograd
decides. A loss of 9e35 (relu at --scale 1e3) has B ≈ 6e27.

Tolerances (manual_bptt/compare.py): every entry |Δ| ≤ atol + rtol·‖reference‖∞;
float64 vs autograd 1e-12 + 1e-10·‖g‖∞, float32 vs autograd 1e-6 + 1e-4·‖g‖∞,
against central differences (ε = 1e-6) 1e-7 + 1e-6·‖g‖∞.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from dataclasses import asdict
from typing import Any

from manual_bptt.activations import ACTIVATIONS
from manual_bptt.cases import Case, make_case
from manual_bptt.cells import CELLS
from manual_bptt.checking.gradcheck import (
    CANNOT_RESOLVE,
    FDAgreement,
    bptt_objective,
    directional_check,
    full_check,
)
from manual_bptt.cli.arguments import (
    add_command,
    length_pair,
    nonnegative_int,
    positive_float,
    positive_int,
)
from manual_bptt.compare import (
    FINITE_DIFFERENCE,
    FLOAT32,
    Agreement,
    compare_grads,
    tolerance_for,
)
from manual_bptt.errors import UsageError
from manual_bptt.gru import RESETS
from manual_bptt.network import OverflowWarning
from manual_bptt.progress import Progress

DEFAULTS = {"T": 12, "N": 3, "D": 8, "H": 16, "K": 5}
WHAT = {"T": "steps", "N": "sequences", "D": "input size", "H": "hidden size", "K": "classes"}
DEFAULT_WINDOW = 3  # the truncations checked when none is named
DEFAULT_CHUNK = 4
FLOAT32_DTYPE = "float32"
# Exit codes: 0 all agree, 1 some gradient disagrees, 2 a usage error (argparse's),
# 3 the network overflows (inf or NaN), so that nothing could be compared.
EXIT_OVERFLOW = 3


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "check",
        "manual gradients against autograd and finite differences (the default command)",
        __doc__,
        run,
    )
    for name, value in DEFAULTS.items():
        p.add_argument(
            f"--{name}", type=positive_int, default=value, help=f"{WHAT[name]} (default {value})"
        )
    p.add_argument(
        "--cell",
        choices=list(CELLS),
        default="rnn",
        help="the vanilla RNN (default), the LSTM or the GRU",
    )
    p.add_argument(
        "--reset",
        choices=list(RESETS),
        default=None,
        help="with --cell gru: the GRU's variant, reset gate after W_n's product (torch's, "
        "default) or before it (Cho et al.'s)",
    )
    p.add_argument(
        "--activation",
        choices=list(ACTIVATIONS),
        default="tanh",
        help="φ of the vanilla cell (default tanh); the gated cells have their own",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--truncate",
        type=nonnegative_int,
        metavar="K",
        help=f"check only window truncation with this k (default: full BPTT, "
        f"truncate={DEFAULT_WINDOW} and chunk={DEFAULT_CHUNK})",
    )
    mode.add_argument(
        "--chunk", type=positive_int, metavar="K", help="check only chunks of this length (≥ 1)"
    )
    mode.add_argument(
        "--tbptt",
        type=length_pair,
        metavar="K1,K2",
        help="check only TBPTT(k1, k2): every k1 steps backpropagate k2 steps (both ≥ 1)",
    )
    mode.add_argument("--full", action="store_true", help="check only full BPTT")
    p.add_argument(
        "--seed", type=nonnegative_int, default=0, help="seed of weights and data, ≥ 0 (default 0)"
    )
    p.add_argument(
        "--scale", type=positive_float, default=1.0, help="weight scale, > 0 (default 1)"
    )
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.add_argument("--tokens", action="store_true", help="integer token inputs, not floats")
    p.add_argument(
        "--fd",
        choices=["full", "fast", "off"],
        default="full",
        help="finite differences: every entry (full, default), one random direction per "
        "gradient (fast), or none",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print strict JSON (non-finite numbers as strings) instead of tables",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help=f"run even above the limits ({MAX_FD_EVALUATIONS:,} finite-difference "
        f"evaluations, {MAX_BYTES / 2**30:g} GiB of arrays)",
    )


def modes(args: argparse.Namespace) -> list[tuple[str, dict[str, Any]]]:
    """The (label, truncation options) pairs to check."""
    if args.truncate is not None:
        return [(f"truncate={args.truncate}", {"truncate": args.truncate})]
    if args.chunk is not None:
        return [(f"chunk={args.chunk}", {"chunk": args.chunk})]
    if args.tbptt is not None:
        k1, k2 = args.tbptt
        return [(f"tbptt=({k1}, {k2})", {"tbptt": (k1, k2)})]
    full: list[tuple[str, dict[str, Any]]] = [("full", {})]
    if args.full:
        return full
    return [
        *full,
        (f"truncate={DEFAULT_WINDOW}", {"truncate": DEFAULT_WINDOW}),
        (f"chunk={DEFAULT_CHUNK}", {"chunk": DEFAULT_CHUNK}),
    ]


def check_case(case: Case, fd: str = "full", bar: Progress | None = None) -> dict[str, Any]:
    """Manual against twin and against finite differences for one case.

    Returns {"loss", "twin_loss", "twin": [Agreement], "fd": [FDAgreement] or None,
    "overflow": the one-line verdict when the network overflows (then "fd" is None:
    inf and NaN cannot be differenced), else None}. An FDAgreement's ``unresolved``
    counts the entries finite differences cannot resolve (gradcheck's error bound).
    """
    import torch_reference
    from manual_bptt.backward import bptt

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", OverflowWarning)
        manual = case.call(bptt)
        twin = case.call(torch_reference.bptt)
    overflows = [w.message for w in caught if isinstance(w.message, OverflowWarning)]
    for w in caught:  # any other warning is passed on as it came
        if not isinstance(w.message, OverflowWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    result: dict[str, Any] = {
        "loss": manual.loss,
        "twin_loss": twin.loss,
        "twin": compare_grads(manual.grads, twin.grads, tolerance_for(case.params.dtype)),
        "fd": None,
        "overflow": overflow_verdict(overflows[0]) if overflows else None,
    }
    if fd != "off" and not overflows:  # inf or NaN cannot be differenced either
        objective = case.call(bptt_objective)
        grads = objective.batched_grads(manual.grads)
        # float32 gradients carry float32 rounding: judge them by the looser policy.
        tol = FLOAT32 if case.params.dtype == FLOAT32_DTYPE else FINITE_DIFFERENCE
        if fd == "full":
            result["fd"] = full_check(objective.f, grads, objective.arrays, tol=tol, progress=bar)
        else:
            result["fd"] = directional_check(objective.f, grads, objective.arrays, tol=tol)
    return result


def overflow_verdict(warning: OverflowWarning) -> str:
    """The one line that says why nothing could be compared."""
    if warning.step is None:
        return "the gradients overflow (inf or NaN); they cannot be compared"
    return f"the network overflows at step {warning.step}; the gradients cannot be compared"


# Gate blocks of U, W and b: H rows each.
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def fd_entries(sizes: dict[str, int], tokens: bool, cell: str = "rnn") -> int:
    """How many entries central differences perturb in one mode: every entry of U, W, V,
    b, c, h0 and (float inputs) x, and the GRU's bh or the LSTM's c0; the gated cells'
    U, W and b have G = 4 (LSTM) or 3 (GRU) gate blocks of H rows."""
    T, N, D, H, K = (sizes[k] for k in ("T", "N", "D", "H", "K"))
    G = GATES[cell]
    extra = {"rnn": 0, "lstm": N * H, "gru": G * H}[cell]  # c0, or bh
    return G * H * (D + H + 1) + K * H + K + N * H + extra + (0 if tokens else T * N * D)


def array_bytes(sizes: dict[str, int], itemsize: int = 8, cell: str = "rnn") -> int:
    """A generous estimate of the arrays one mode holds at once: the parameters three
    times (manual, twin, float64 copies for finite differences) and, for the manual
    pass, the twin's graph and the objective, about 16 (T, N, G·H) arrays, 4 (T, N, K)
    and 4 (T, N, D), with G = 1 (vanilla), 4 (LSTM) or 3 (GRU) gate blocks."""
    T, N, D, H, K = (sizes[k] for k in ("T", "N", "D", "H", "K"))
    G = GATES[cell]
    return itemsize * (3 * (G * (H * H + H * D) + K * H) + T * N * (G * 16 * H + 4 * K + 4 * D))


# Above these `bptt check` refuses to start unless --force. One finite-difference
# evaluation is one forward pass: the whole default check (T=12, N=3, D=8, H=16, three
# modes, 4,926 evaluations) took 6.7 s on two shared cores, so the limit is at least
# twenty minutes of work, and far more at larger sizes, where each pass costs more.
MAX_FD_EVALUATIONS = 1_000_000
MAX_BYTES = 2 * 2**30
# Above these the estimate is printed (on standard error) before the work starts.
SAY_FD_EVALUATIONS = 20_000
SAY_BYTES = 256 * 2**20
# Where standard error is not a terminal (a pipe, a CI log), a progress line every this
# many seconds (or each further 10%), the first after as long: short work stays quiet.
PROGRESS_EVERY = 10.0


def fd_evaluations(args: argparse.Namespace, sizes: dict[str, int], fd: str) -> int:
    """Finite-difference evaluations (calls of L) in one mode with --fd ``fd``: two per
    entry (full), two per gradient (fast: U, W, V, b, c, h0, the GRU's bh or the LSTM's
    c0, and x for float inputs), or none (off)."""
    if fd == "full":
        return 2 * fd_entries(sizes, args.tokens, args.cell)
    return 2 * (6 + (args.cell != "rnn") + (not args.tokens)) if fd == "fast" else 0


def _work(evaluations: int, sizes: dict[str, int], memory: int, took: str = "") -> str:
    return (
        f"about {evaluations:,} finite-difference evaluations (forward passes over "
        f"T·N = {sizes['T'] * sizes['N']:,} steps of H = {sizes['H']:,}{took}) and "
        f"{memory / 2**20:,.0f} MiB of arrays"
    )


def estimate(args: argparse.Namespace, sizes: dict[str, int], n_modes: int) -> tuple[int, int]:
    """(finite-difference evaluations, bytes) for the whole check; UsageError above the
    limits unless --force. Says nothing: :func:`announce` does, once the work is timed."""
    evaluations = n_modes * fd_evaluations(args, sizes, args.fd)
    memory = array_bytes(sizes, cell=args.cell)
    too_much = evaluations > MAX_FD_EVALUATIONS or memory > MAX_BYTES
    if too_much and not args.force:
        raise UsageError(
            f"this check needs {_work(evaluations, sizes, memory)}, above the limits of "
            f"{MAX_FD_EVALUATIONS:,} evaluations and {MAX_BYTES / 2**30:g} GiB: choose "
            "smaller sizes or --fd fast / --fd off, or add --force"
        )
    return evaluations, memory


def announce(
    args: argparse.Namespace,
    sizes: dict[str, int],
    evaluations: int,
    memory: int,
    seconds: float | None = None,
) -> str | None:
    """The line printed (on standard error) before large work starts, else None: the
    work, ``seconds`` as timed (:func:`time_evaluations`) and, with --fd full, the
    suggestion of --fd fast and what it would cost."""
    if evaluations <= SAY_FD_EVALUATIONS and memory <= SAY_BYTES:
        return None
    took = "" if seconds is None else f", about {duration(seconds)} as timed"
    line = f"bptt check: {_work(evaluations, sizes, memory, took)}"
    if args.fd == "full" and evaluations > SAY_FD_EVALUATIONS:
        fast = (
            evaluations // fd_evaluations(args, sizes, "full") * fd_evaluations(args, sizes, "fast")
        )
        line += (
            f"; --fd fast checks one random direction per gradient instead, in {fast:,} evaluations"
        )
    return line


def time_evaluations(cases: list[tuple[str, Case]], per_mode: int) -> float:
    """Seconds that ``per_mode`` evaluations of each case's objective take, from one timed
    evaluation of each (a truncated objective costs more: it reruns up to k steps)."""
    total = 0.0
    for _, case in cases:
        objective = case.call(bptt_objective)
        start = time.perf_counter()
        objective.f(objective.arrays)
        total += (time.perf_counter() - start) * per_mode
    return total


def duration(seconds: float) -> str:
    """ "40 s", "7 min" or "3 h 58 min"."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def strict_json(value: Any) -> Any:
    """value with every non-finite float replaced by the string "inf", "-inf" or "nan",
    so that json.dumps(..., allow_nan=False) gives JSON any parser accepts."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(v) for v in value]
    return value


def check_options(args: argparse.Namespace) -> None:
    """UsageError for options that do not go with the cell; then --reset gets its default."""
    if args.cell != "rnn" and args.activation != "tanh":
        raise UsageError(
            f"--activation is the vanilla cell's; --cell {args.cell} has its own "
            "nonlinearities (σ and tanh)"
        )
    if args.reset is not None and args.cell != "gru":
        raise UsageError(
            f"--reset chooses the GRU's variant; add --cell gru (got --cell {args.cell})"
        )
    if args.reset is None:
        args.reset = "after"


def run(args: argparse.Namespace) -> int:
    sizes = {name: getattr(args, name) for name in DEFAULTS}  # each ≥ 1 (positive_int)
    check_options(args)
    started = time.perf_counter()
    evaluations, memory = estimate(args, sizes, len(modes(args)))
    try:
        cases = [
            (
                label,
                make_case(
                    **sizes,
                    seed=args.seed,
                    scale=args.scale,
                    activation=args.activation,
                    tokens=args.tokens,
                    with_h0=True,
                    dtype=args.dtype,
                    cell=args.cell,
                    reset=args.reset,
                    **truncation,
                ),
            )
            for label, truncation in modes(args)
        ]
    except ValueError as err:  # a scale whose weights overflow, named by init_params
        raise UsageError(f"--scale {args.scale:g}: {err}") from None
    except OverflowError:  # numpy's uniform(−scale, scale) for the biases, past float64's range
        raise UsageError(
            f"--scale {args.scale:g}: the biases, drawn from (−scale, scale), overflow float64; "
            "choose a smaller scale"
        ) from None
    timed = None
    if args.fd == "full" and evaluations > SAY_FD_EVALUATIONS:
        timed = time_evaluations(cases, evaluations // len(cases))
    line = announce(args, sizes, evaluations, memory, timed)
    if line is not None:
        print(line, file=sys.stderr, flush=True)
    total = evaluations // 2 if args.fd == "full" else 0  # the bar counts entries: 2 calls each
    bar = Progress(
        total, "finite differences", enabled=None if total else False, every=PROGRESS_EVERY
    )
    results = []
    for label, case in cases:
        results.append({"mode": label, **check_case(case, args.fd, bar)})
    bar.close()
    overflow = next((f"{r['mode']}: {r['overflow']}" for r in results if r["overflow"]), None)
    ok = overflow is None and all(
        a.passed for r in results for key in ("twin", "fd") for a in (r[key] or [])
    )
    elapsed = time.perf_counter() - started
    if args.json:
        out = [
            {
                **r,
                "twin": [asdict(a) for a in r["twin"]],
                "fd": None if r["fd"] is None else [asdict(a) for a in r["fd"]],
            }
            for r in results
        ]
        report = {
            "sizes": sizes,
            "cell": cell_name(args),
            "activation": args.activation,
            "dtype": args.dtype,
            "seed": args.seed,
            "fd": args.fd,
            "passed": ok,
            "overflow": overflow,
            "seconds": elapsed,
            "modes": out,
        }
        print(json.dumps(strict_json(report), allow_nan=False))
    else:
        print_tables(sizes, args, results)
        print(f"{verdict(results, ok, overflow)} ({elapsed:.1f} s)")
    if overflow is not None:
        return EXIT_OVERFLOW
    return 0 if ok else 1


def verdict(results: list[dict[str, Any]], ok: bool, overflow: str | None) -> str:
    """The last line of the tables, without the time."""
    if not ok:
        return overflow or "SOME GRADIENTS DISAGREE"
    rows = [f for r in results for f in r["fd"] or []]
    unresolved = sum(1 for f in rows if f.unresolved)
    if unresolved:
        return (
            f"all gradients agree with autograd; finite differences cannot resolve "
            f"{unresolved} of the {len(rows)} at this scale"
        )
    return "all gradients agree"


def unresolved_note(name: str, f: FDAgreement, fd: str) -> str:
    """The line under a table for a gradient that finite differences cannot resolve."""
    n = f.unresolved
    which = "" if fd == "fast" else f"{n} {'entry' if n == 1 else 'entries'}, "
    return (
        f"  {name}: {CANNOT_RESOLVE} ({which}error bound {'up to ' if n > 1 else ''}"
        f"{f.bound:.1e} > allowed {f.allowed:.1e})"
    )


def _cells(a: Agreement | None) -> str:
    if a is None:
        return f"{'–':>10}{'–':>10}"
    return f"{a.max_abs:>10.1e}{a.max_rel:>10.1e}"


def cell_name(args: argparse.Namespace) -> str:
    """The cell as the tables and JSON name it: "rnn", "lstm", "gru" or "gru (reset before)"."""
    return f"gru (reset {args.reset})" if args.cell == "gru" else args.cell


def print_tables(
    sizes: dict[str, int], args: argparse.Namespace, results: list[dict[str, Any]]
) -> None:
    tol = tolerance_for(args.dtype)
    gru_variant = f" (reset {args.reset})" if args.cell == "gru" else ""
    what = args.activation if args.cell == "rnn" else args.cell.upper() + gru_variant
    print(
        "manual_bptt.bptt against torch_reference.bptt (autograd) and central differences\n"
        + ", ".join(f"{k}={v}" for k, v in sizes.items())
        + f", {what}, {args.dtype}, {'token' if args.tokens else 'float'} inputs, "
        f"seed {args.seed}, weight scale {args.scale:g}"
    )
    fd_tol = FLOAT32 if args.dtype == FLOAT32_DTYPE else FINITE_DIFFERENCE
    print(
        f"pass: every entry |Δ| ≤ {tol.atol:g} + {tol.rtol:g}·‖g‖∞ against autograd, "
        f"≤ {fd_tol.atol:g} + {fd_tol.rtol:g}·‖g‖∞ against finite differences\n"
    )
    for r in results:
        print(f"{r['mode']}: loss {r['loss']:.12g} (autograd {r['twin_loss']:.12g})")
        print(f"  {'':<5}{'':>10}{'vs autograd':>20}{'vs finite diff.':>20}")
        print(f"  {'grad':<5}{'‖g‖₂':>10}" + f"{'max |Δ|':>10}{'max rel':>10}" * 2 + "  result")
        fd_rows = {a.name: a for a in r["fd"] or []}
        notes = []
        for a in r["twin"]:
            f = fd_rows.get(a.name)
            passed = a.passed and (f is None or f.passed)
            result = "pass" if passed else "FAIL"
            if f is not None and f.unresolved:
                result += " (autograd only)" if passed else ""
                notes.append(unresolved_note(a.name, f, args.fd))
            print(f"  {a.name:<5}{a.norm:>10.4g}{_cells(a)}{_cells(f)}  {result}")
        for note in notes:
            print(note)
        print()
