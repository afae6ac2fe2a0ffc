"""bptt verify MODULE:OBJECT: property-test your own BPTT against autograd.

Hypothesis draws random sizes, timesteps, truncation lengths and seeds, runs your
code and the autograd twin on each, and compares every gradient. On a failure it
shrinks the problem to a minimal one and prints: the sizes and options, which gradient
is wrong, its worst entries (expected against got), and one line that reproduces it.
It also fails code that changes its inputs or its own parameters. Exit code 0 when
every example passes, 1 on a failure, 2 when the code cannot be loaded.

Styles:
  project   a function with manual_bptt.bptt's signature:
            f(params, x, y, *, h0, mask, activation, truncate, chunk, reduction)
            returning an object with .grads {"U", "W", "V", "b", "c", "h0"[, "x"]}.
  tutorial  the classic tutorial's class: Cls(word_dim, hidden_dim, bptt_truncate) with
            U (H, D), V (D, H), W (H, H) and bptt(x, y) -> [dU, dV, dW] for one sequence
            of token ids; no biases, zero initial state, tanh; bptt_truncate = k means
            the loss at step t reaches steps t, t-1, ..., max(0, t-k).

Example: bptt verify manual_bptt.checking.gallery:ForgetsTanhDerivative --style tutorial
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from manual_bptt.checking.verify import STYLES, describe, load, reproduction, verify
from manual_bptt.cli.arguments import add_command, positive_int


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "verify",
        "property-test your own BPTT (a function or a tutorial-style class)",
        __doc__,
        run,
    )
    p.add_argument(
        "target", metavar="MODULE:OBJECT", help="e.g. mycode:MyRNN or path/to/file.py:bptt"
    )
    p.add_argument("--style", choices=STYLES, default="project", help="interface (default project)")
    p.add_argument(
        "--examples", type=positive_int, default=200, help="problems to try (default 200)"
    )
    p.add_argument("--seed", type=int, default=0, help="Hypothesis seed (default 0)")


def run(args: argparse.Namespace) -> int:
    try:
        target = load(args.target)
    except (ImportError, ValueError) as err:
        print(f"bptt verify: cannot load {args.target}: {err}", file=sys.stderr)
        return 2
    report = verify(
        target,
        style=args.style,
        max_examples=args.examples,
        random_seed=args.seed,
        name=args.target,
        show_progress=None,
    )
    if report.failure is None:
        print(
            f"{args.target} ({args.style} style): all {report.examples} examples agree "
            "with autograd, and no call changed its inputs"
        )
        return 0
    print(
        f"{args.target} ({args.style} style): FAILED; {report.examples} calls in all, "
        "finding the failure and shrinking it"
    )
    print("minimal counterexample, shrunk by Hypothesis:")
    print(describe(report.failure))
    print("reproduce:")
    print(reproduction(report))
    hint = style_hint(target, args.style)
    if hint:
        print(f"hint: {hint}")
    return 1


def style_hint(target: Any, style: str) -> str:
    """A line for when the target's kind does not fit --style (a common slip)."""
    if style == "project" and isinstance(target, type):
        return (
            "the target is a class; for the tutorial's interface (Cls(word_dim, "
            "hidden_dim, bptt_truncate) with .bptt(x, y)) add --style tutorial"
        )
    if style == "tutorial" and not isinstance(target, type):
        return (
            "the target is not a class; for a function with manual_bptt.bptt's "
            "signature use --style project (the default)"
        )
    return ""
