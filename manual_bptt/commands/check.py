"""``bptt check``: manual gradients against the autograd twin on one network.

Prints, for each truncation mode and each gradient (U, W, V, b, c, h0, x), the
gradient's norm, the largest absolute and relative difference from the twin, the
tolerance allowed, and pass/fail. Exit code 0 when everything passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from manual_bptt.activations import ACTIVATIONS
from manual_bptt.cases import Case, make_case
from manual_bptt.compare import Agreement, compare_grads, tolerance_for

DEFAULTS = {"T": 12, "N": 3, "D": 8, "H": 16, "K": 5}
DEFAULT_WINDOW = 3  # the truncations checked when none is asked for
DEFAULT_CHUNK = 4


def register(sub: Any) -> None:
    p = sub.add_parser(
        "check",
        help="compare manual gradients with autograd's on one network (the default)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for name, value in DEFAULTS.items():
        what = {"T": "steps", "N": "sequences", "D": "input size", "H": "hidden size",
                "K": "classes"}[name]  # fmt: skip
        p.add_argument(f"--{name}", type=int, default=value, help=f"{what} (default {value})")
    p.add_argument("--activation", choices=list(ACTIVATIONS), default="tanh")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--truncate", type=int, metavar="K",
        help="check only window truncation with this k (default: full, "
        f"truncate={DEFAULT_WINDOW} and chunk={DEFAULT_CHUNK})",
    )  # fmt: skip
    mode.add_argument("--chunk", type=int, metavar="K", help="check only chunks of this k")
    mode.add_argument("--full", action="store_true", help="check only full BPTT")
    p.add_argument("--seed", type=int, default=0, help="seed of weights and data (default 0)")
    p.add_argument("--scale", type=float, default=1.0, help="weight scale (default 1)")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.add_argument("--tokens", action="store_true", help="integer token inputs, not floats")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)


def modes(args: argparse.Namespace) -> list[tuple[str, dict[str, int | None]]]:
    """The (label, {truncate, chunk}) pairs to check."""
    if args.truncate is not None:
        return [(f"truncate={args.truncate}", {"truncate": args.truncate, "chunk": None})]
    if args.chunk is not None:
        return [(f"chunk={args.chunk}", {"truncate": None, "chunk": args.chunk})]
    full: list[tuple[str, dict[str, int | None]]] = [("full", {"truncate": None, "chunk": None})]
    if args.full:
        return full
    return [
        *full,
        (f"truncate={DEFAULT_WINDOW}", {"truncate": DEFAULT_WINDOW, "chunk": None}),
        (f"chunk={DEFAULT_CHUNK}", {"truncate": None, "chunk": DEFAULT_CHUNK}),
    ]


def check_case(case: Case) -> tuple[float, float, list[Agreement]]:
    """(manual loss, twin loss, one Agreement per gradient) for one case."""
    import manual_bptt
    import torch_reference

    manual = manual_bptt.bptt(case.params, case.x, case.y, **case.kwargs())
    twin = torch_reference.bptt(case.params, case.x, case.y, **case.kwargs())
    tol = tolerance_for(case.params.dtype)
    return manual.loss, twin.loss, compare_grads(manual.grads, twin.grads, tol)


def run(args: argparse.Namespace) -> int:
    sizes = {name: getattr(args, name) for name in DEFAULTS}
    results = []
    for label, trunc in modes(args):
        case = make_case(
            **sizes, seed=args.seed, scale=args.scale, activation=args.activation,
            tokens=args.tokens, with_h0=True, dtype=args.dtype, **trunc,
        )  # fmt: skip
        loss, twin_loss, rows = check_case(case)
        results.append({"mode": label, "loss": loss, "twin_loss": twin_loss, "grads": rows})
    ok = all(row.passed for r in results for row in r["grads"])
    if args.json:
        out = [{**r, "grads": [asdict(a) for a in r["grads"]]} for r in results]
        print(json.dumps({"sizes": sizes, "dtype": args.dtype, "passed": ok, "modes": out}))
    else:
        print_tables(sizes, args, results)
        print("all gradients agree" if ok else "SOME GRADIENTS DISAGREE")
    return 0 if ok else 1


def print_tables(sizes: dict[str, int], args: argparse.Namespace, results: list[dict]) -> None:
    tol = tolerance_for(args.dtype)
    print(
        "manual_bptt.bptt against torch_reference.bptt (autograd); "
        + ", ".join(f"{k}={v}" for k, v in sizes.items())
        + f", {args.activation}, {args.dtype}, seed {args.seed}"
    )
    print(f"tolerance: |Δ| ≤ {tol.atol:g} + {tol.rtol:g}·‖g‖∞ for every entry\n")
    for r in results:
        print(f"{r['mode']}: loss {r['loss']:.12g} (autograd {r['twin_loss']:.12g})")
        print(f"  {'grad':<5}{'‖g‖₂':>12}{'max |Δ|':>12}{'max rel':>12}{'allowed':>12}  result")
        for a in r["grads"]:
            print(
                f"  {a.name:<5}{a.norm:>12.4g}{a.max_abs:>12.2e}{a.max_rel:>12.2e}"
                f"{a.allowed:>12.2e}  {'pass' if a.passed else 'FAIL'}"
            )
        print()
