"""bptt verify TARGET: property-test your own BPTT against autograd.

TARGET is MODULE[:NAME], FILE.py[:NAME] or NOTEBOOK.ipynb[:NAME]. A file or notebook is
not run: only its definitions are taken (imports, functions, classes, methods attached
to classes, simple constants), and what was skipped is said in one line.

Hypothesis draws random problems (sizes, options, seeds) that the style supports, runs
your code and the autograd twin on each, and compares every gradient. The report gives
a verdict per gradient: "agrees on all N examples", or WRONG with its own minimal
counterexample (each wrong gradient is shrunk separately), its worst entry (expected
against got), the arrays when small, and one line that reproduces it. Exceptions,
time-outs, changed inputs and wrong shapes are reported beside them.

Exit codes: 0 every gradient agrees on every example; 1 the code under test is wrong
(a wrong gradient, an exception or sys.exit, a changed input, a non-finite output, a
time-out); 2 a usage error (cannot import, not callable, no such name, a wrong
signature or interface on the first call, functions missing for the style), said in
one line before any search.

Styles:
  project       f(params, x, y, *, h0, mask, activation, truncate, chunk, reduction)
                returning .grads {"U", "W", "V", "b", "c", "h0"[, "x"]} (and .loss)
  tutorial      Cls(word_dim, hidden_dim, bptt_truncate) with U (H, D), V (D, H),
                W (H, H) and bptt(x, y) -> [dU, dV, dW]; token ids, no biases, tanh
  cs231n        a module with rnn_forward(x, h0, Wx, Wh, b) -> (h, cache) and
                rnn_backward(dh, cache) -> (dx, dh0, dWx, dWh, db), batch-major, and
                optionally rnn_step_forward / rnn_step_backward; checked with a random
                upstream dh
  cs231n-lstm   the same for the LSTM: lstm_forward(x, h0, Wx, Wh, b) and
                lstm_backward(dh, cache) -> (dx, dh0, dWx, dWh, db), Wx (D, 4H), gate
                blocks in the course's order (i, f, o, g), zero initial cell state, and
                optionally lstm_step_forward / lstm_step_backward (with dprev_c)
  layer         any layer: --forward F --backward B --shapes "x:N,T,D h0:N,H ...";
                B(dout, *rest) checked against the derivative of F(*inputs) itself
                (no twin; implied by --forward; docs/verify-generic.md)
  loss          any loss: --loss L --args "..." --params "..." [--object "RNN(V, H)"];
                L(*args) -> (loss, g_1, ..., g_k, ...) checked against the derivative
                of its own loss (implied by --loss). Both forms: a size as an int
                argument "vocab_size:=V", module globals set to sizes with --globals
                "vocab_size=V hidden_size=H", a function of another file OTHER.py:NAME
  min-char-rnn  lossFun(inputs, targets, hprev) -> loss, dWxh, dWhh, dWhy, dbh, dby,
                h_last, reading Wxh, Whh, Why, bh, by, vocab_size, hidden_size from its
                module's globals (verify sets them); expected gradients clipped to ±5
                as the original clips them (--clip-value none: unclipped)

Cells: --cell lstm or --cell gru (--style project; the GRU's --reset after|before, or
both drawn) gives f LSTMParams or GRUParams and expects the cell's gradients (LSTM: c0
too; GRU: bh too). Styles written for the vanilla cell refuse --cell lstm|gru.

Examples:
  bptt verify mycode:bptt --cell lstm
  bptt verify examples/rnn_layers.py --style cs231n
  bptt verify examples/lstm_layers.py --style cs231n-lstm
  bptt verify examples/min-char-rnn.py:lossFun --style min-char-rnn
  bptt verify examples/rnn_tutorial.ipynb:RNNNumpy --style tutorial
"""

from __future__ import annotations

import argparse
import json
import os
import string
import sys
from pathlib import Path
from typing import Any

from manual_bptt.cells import CELLS
from manual_bptt.checking.guard import DEFAULT_TIMEOUT
from manual_bptt.checking.styles import STYLES, UsageError, make_style
from manual_bptt.cli.arguments import add_command, positive_float, positive_int


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "verify",
        f"property-test your own BPTT (styles: {', '.join(STYLES)})",
        __doc__,
        run,
    )
    p.add_argument(
        "target", metavar="TARGET", help="MODULE[:NAME], FILE.py[:NAME] or NOTEBOOK.ipynb[:NAME]"
    )
    p.add_argument(
        "--style",
        choices=list(STYLES),
        help="interface (default project; for a module, verify says which its names suggest)",
    )
    p.add_argument(
        "--examples", type=positive_int, default=200, help="problems to try (default 200)"
    )
    p.add_argument("--seed", type=int, default=0, help="Hypothesis seed (default 0)")
    p.add_argument(
        "--timeout",
        type=positive_float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds allowed per call of your code (default {DEFAULT_TIMEOUT:g})",
    )
    p.add_argument(
        "--clip-value",
        metavar="C|none",
        help="min-char-rnn: clip the expected gradients to [-C, C] (default 5)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON (stdout: only it)")
    p.add_argument(
        "--strict-inputs",
        action="store_true",
        help="an argument changed in place is a failure (default: a warning, exit 0)",
    )
    p.add_argument(
        "--save-repro",
        type=Path,
        metavar="FILE.py",
        help="write a pytest file that reruns every counterexample",
    )
    narrow = p.add_argument_group("what to draw (a style never draws what it does not support)")
    narrow.add_argument("--activation", help="tanh, sigmoid, relu or identity")
    modes = narrow.add_mutually_exclusive_group()
    modes.add_argument(
        "--full", dest="modes", action="store_const", const="full", help="full BPTT only"
    )
    modes.add_argument(
        "--truncate-only",
        dest="modes",
        action="store_const",
        const="truncate",
        help="window truncation only",
    )
    modes.add_argument(
        "--chunk-only",
        dest="modes",
        action="store_const",
        const="chunk",
        help="chunked truncation only",
    )
    modes.add_argument(
        "--tbptt-only",
        dest="modes",
        action="store_const",
        const="tbptt",
        help="TBPTT(k1, k2) only, passed as tbptt=(k1, k2) (the project style: your "
        "function must take it)",
    )
    _pair(narrow, "batched", "--batched", "--unbatched", "with a batch axis", "one sequence")
    _pair(narrow, "tokens", "--tokens", "--dense", "token-id inputs", "float inputs")
    narrow.add_argument(
        "--no-biases", dest="biases", action="store_const", const=False, help="b = c = 0"
    )
    narrow.add_argument(
        "--no-h0", dest="h0", action="store_const", const=False, help="zero initial state"
    )
    narrow.add_argument(
        "--no-mask", dest="mask", action="store_const", const=False, help="every step counted"
    )
    narrow.add_argument("--reduction", choices=["sum", "mean"])
    narrow.add_argument(
        "--dtype",
        choices=["float64", "float32"],
        help="default float64 (float32: weight scale ≤ 1, T ≤ 20)",
    )
    narrow.add_argument(
        "--cell",
        choices=list(CELLS),
        help="the cell (default rnn; lstm and gru for --style project)",
    )
    narrow.add_argument(
        "--reset",
        choices=["after", "before"],
        help="the GRU's reset gate after or before the product (default: draw both)",
    )
    narrow.add_argument("--max-T", type=positive_int, help="longest sequence drawn")
    narrow.add_argument("--max-H", type=positive_int, help="largest hidden size drawn")
    _generic_arguments(p)


def _pair(group: Any, dest: str, yes: str, no: str, yes_help: str, no_help: str) -> None:
    both = group.add_mutually_exclusive_group()
    both.add_argument(yes, dest=dest, action="store_const", const=True, help=yes_help)
    both.add_argument(no, dest=dest, action="store_const", const=False, help=no_help)


CHOICES = {  # CLI argument → Space field
    "activation": "activations",
    "modes": "modes",
    "batched": "batched",
    "tokens": "tokens",
    "biases": "biases",
    "h0": "h0",
    "mask": "mask",
    "reduction": "reductions",
    "dtype": "dtypes",
    "max_T": "max_T",
    "max_H": "max_H",
    "cell": "cells",
    "reset": "resets",
}
FLAGS = {
    "activations": "--activation",
    "modes": "--full/--truncate-only/--chunk-only/--tbptt-only",
    "batched": "--batched/--unbatched",
    "tokens": "--tokens/--dense",
    "biases": "--no-biases",
    "h0": "--no-h0",
    "mask": "--no-mask",
    "reductions": "--reduction",
    "dtypes": "--dtype",
    "cells": "--cell",
    "resets": "--reset",
}


def _clip(text: str) -> float | None:
    if text.lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"--clip-value must be a number > 0 or none; got {text!r}") from None
    if not value > 0:
        raise UsageError(f"--clip-value must be a number > 0 or none; got {text}")
    return value


def run(args: argparse.Namespace) -> int:
    from manual_bptt.checking.explain import describe_report, report_json, repro_file
    from manual_bptt.checking.verify import verify
    from manual_bptt.checking.worker import Worker

    style_name = args.style or "project"
    target: Any = None
    try:
        generic = _generic_form(args)
        options = {} if args.clip_value is None else {"clip_value": _clip(args.clip_value)}
        if generic is not None:
            style_name, options = generic
        style = make_style(style_name, **options)
        choices = {
            field: getattr(args, arg)
            for arg, field in CHOICES.items()
            if getattr(args, arg) is not None
        }
        choices.update(_letter_bounds(args, generic is not None))
        if generic is not None:
            style.require_options()  # type: ignore[attr-defined]
        try:
            space = style.space_for(**choices)
        except UsageError as err:
            raise UsageError(f"{err} ({_flags(choices)})") from None
        if args.save_repro is not None:
            _writable(args.save_repro)
        with Worker(args.target, args.timeout) as worker:
            target = worker.start()
            if worker.note:
                print(worker.note, file=sys.stderr)
            if args.style is None and generic is None:
                chosen, why = detect_style(target, args.target)
                if chosen is None:
                    raise UsageError(f"{args.target} is a module: {why}")
                if chosen != style_name:
                    style_name, style = chosen, make_style(chosen, **options)
                    try:
                        space = style.space_for(**choices)
                    except UsageError as err:
                        raise UsageError(f"{err} ({_flags(choices)})") from None
                if why:
                    print(f"bptt verify: no --style given; {why}", file=sys.stderr)
            report = verify(
                target,
                style=style,
                max_examples=args.examples,
                random_seed=args.seed,
                name=args.target,
                show_progress=None,
                space=space,
                timeout=args.timeout,
                strict_inputs=args.strict_inputs,
            )
    except UsageError as err:
        hint = style_hint(target, style_name) if target is not None else ""
        print(f"bptt verify: {err}" + (f"; hint: {hint}" if hint else ""), file=sys.stderr)
        return 2
    cost = style.cost_line() if hasattr(style, "cost_line") else ""
    if args.json:
        print(json.dumps(report_json(report), indent=2))
    else:
        print(describe_report(report))
        hint = style_hint(target, style_name)
        if hint and not report.passed:
            print(f"hint: {hint}")
    if cost:
        print(cost, file=sys.stderr if args.json else sys.stdout)
    if args.save_repro is not None and report.passed:
        print(f"nothing written to {args.save_repro}: there is no counterexample", file=sys.stderr)
    elif args.save_repro is not None:
        args.save_repro.write_text(repro_file(report, args.target, args.save_repro))
        print(f"wrote {args.save_repro}: a pytest file with every counterexample", file=sys.stderr)
    return 0 if report.passed else 1


LAYER_FLAGS = ("forward", "backward", "shapes")
LOSS_FLAGS = ("loss", "args", "params", "object")
LETTERS = tuple(c for c in string.ascii_uppercase if c not in "TH")  # --max-T, --max-H above


def _generic_arguments(p: argparse.ArgumentParser) -> None:
    """The generic forms' flags (docs/verify-generic.md), and --max-LETTER for every size."""
    g = p.add_argument_group(
        "any layer or loss, its own forward the reference (--style layer or loss, implied)",
        "--max-LETTER N bounds the size LETTER of the shapes (default 4), e.g. --max-V 6",
    )
    g.add_argument(
        "--forward",
        metavar="[FILE.py:]NAME",
        help="the layer form: forward(*inputs) -> out[, *rest]",
    )
    g.add_argument(
        "--backward",
        metavar="[FILE.py:]NAME",
        help="backward(dout, *rest) -> a gradient per float input",
    )
    g.add_argument(
        "--shapes", metavar='"NAME:DIMS ..."', help='the inputs, e.g. "x:N,T,D h0:N,H Wx:D,H"'
    )
    g.add_argument(
        "--loss",
        metavar="[FILE.py:]NAME",
        help="the loss form: loss(*args) -> (loss, g_1, ..., g_k, ...)",
    )
    g.add_argument(
        "--args",
        metavar='"NAME:DIMS ..."',
        help='its arguments, e.g. "inputs:T:list<V hprev:H,1" (a size as an int: "n:=V")',
    )
    g.add_argument(
        "--params",
        metavar='"NAME:DIMS ..."',
        help="its parameters (module globals, or --object's attributes)",
    )
    g.add_argument(
        "--object", metavar="EXPR", help='the parameters are attributes of EXPR, e.g. "RNN(V, H)"'
    )
    g.add_argument(
        "--globals",
        metavar='"NAME=SIZE ..."',
        help='module globals of the file set to sizes, e.g. "vocab_size=V hidden_size=H"',
    )
    for letter in LETTERS:
        p.add_argument(f"--max-{letter}", type=positive_int, help=argparse.SUPPRESS)


def _generic_form(args: argparse.Namespace) -> tuple[str, dict[str, Any]] | None:
    """("layer" or "loss", its options) when a generic form's flags (or style) are given."""
    layer = [k for k in LAYER_FLAGS if getattr(args, k) is not None]
    loss = [k for k in LOSS_FLAGS if getattr(args, k) is not None]
    if layer and loss:
        raise UsageError(
            f"--{layer[0]} (the layer form) and --{loss[0]} (the loss form) cannot be given together"
        )
    if (layer or loss) and args.style not in (None, "layer", "loss"):
        raise UsageError(f"--style {args.style} takes no --{(layer or loss)[0]}")
    if (args.style == "layer" and loss) or (args.style == "loss" and layer):
        raise UsageError(f"--style {args.style} takes no --{(layer or loss)[0]}")
    shared = {"globals": args.globals}
    if layer or args.style == "layer":
        return "layer", {**{k: getattr(args, k) for k in LAYER_FLAGS}, **shared}
    if loss or args.style == "loss":
        return "loss", {**{k: getattr(args, k) for k in LOSS_FLAGS}, **shared}
    if args.globals is not None:
        raise UsageError(
            "--globals sets module globals for the layer or loss form; give --forward or --loss too"
        )
    return None


def _letter_bounds(args: argparse.Namespace, generic: bool) -> dict[str, int]:
    """{"max_V": 6, ...} from --max-LETTER; UsageError for a style without shapes."""
    given = {f"max_{c}": getattr(args, f"max_{c}") for c in LETTERS}
    given = {k: v for k, v in given.items() if v is not None}
    if given and not generic:
        flag = "--" + next(iter(given)).replace("_", "-")
        raise UsageError(f"{flag} bounds a size of --shapes, --args or --params; give them too")
    return given


def _writable(path: Path) -> None:
    """UsageError, before any search, if --save-repro cannot be written there."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UsageError(f"--save-repro {path} is a folder; give a file name such as repro_test.py")
    if not folder.is_dir():
        raise UsageError(f"--save-repro {path}: no such folder {folder}")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"--save-repro {path}: cannot write there")


# Which names suggest which style (all of them must be there), in the order tried.
SUGGESTIONS = (
    ("cs231n-lstm", ("lstm_forward", "lstm_backward")),
    ("cs231n", ("rnn_forward", "rnn_backward")),
    ("min-char-rnn", ("lossFun",)),
)


def detect_style(target: Any, spec: str) -> tuple[str | None, str]:
    """The style a target without --style is verified in, and a sentence saying why
    ("" for the default, project); (None, what to do) when it cannot be told.

    A module whose names are a known interface's (rnn_forward and rnn_backward, the
    LSTM's) is verified in that style; a class with bptt, in the tutorial's; a function
    named lossFun, in min-char-rnn's; any other function, in the project's. Otherwise
    the sentence lists what the module defines, with a filled-in command for each pair
    NAME_forward / NAME_backward (the layer form, its shapes left to fill in)."""
    from manual_bptt.checking.guard import CodeFailed

    if target.info.get("module"):
        try:
            names = target.names()
        except CodeFailed as err:  # its own __dir__ or attributes raised, or hung
            return None, f"{err.message}; give a name: MODULE:NAME"
        for style, needed in SUGGESTIONS[:2]:
            if all(n in names for n in needed):
                return style, f"its names ({', '.join(needed)}) are --style {style}'s"
        return None, suggest_style(target, spec)
    if target.info.get("class"):
        try:
            has_bptt = hasattr(target, "bptt")
        except CodeFailed:
            has_bptt = False
        if has_bptt:
            return "tutorial", "a class with bptt(x, y) is --style tutorial's"
    if spec.rpartition(":")[2] == "lossFun":
        return "min-char-rnn", "a function named lossFun is --style min-char-rnn's"
    return "project", ""


def suggest_style(target: Any, spec: str = "MODULE") -> str:
    """A sentence naming the style a module's names suggest, with the command's flags."""
    from manual_bptt.checking.guard import CodeFailed

    try:
        names = target.names()
    except CodeFailed as err:  # its own __dir__ or attributes raised, or hung
        return f"{err.message}; give a name: MODULE:NAME"
    for style, needed in SUGGESTIONS:
        if all(n in names for n in needed):
            extra = ":lossFun" if style == "min-char-rnn" else ""
            return (
                f"its names ({', '.join(needed)}) suggest "
                f"{(extra and 'TARGET' + extra + ' ') or ''}--style {style}"
            )
    classes = [n for n, f in names.items() if f.get("class")]
    functions = [n for n, f in names.items() if f.get("function")]
    pairs = [n[: -len("_forward")] for n in functions if n.endswith("_forward")]
    pairs = [p for p in pairs if f"{p}_backward" in functions]
    if pairs:
        commands = "; ".join(
            f'bptt verify {spec} --forward {p}_forward --backward {p}_backward --shapes "..."'
            for p in pairs[:3]
        )
        return f"it defines {', '.join(functions[:8])}; for the layer form: {commands}"
    if classes:
        return f"give a name: MODULE:{classes[0]} --style tutorial for a class with bptt(x, y)"
    if functions:
        return (
            "give a name: MODULE:FUNCTION for a function with manual_bptt.bptt's signature; "
            f"it defines {', '.join(functions[:6])}"
        )
    return "it defines no function or class to verify"


def _flags(choices: dict[str, Any]) -> str:
    return "given " + ", ".join(FLAGS.get(k, f"--{k.replace('_', '-')}") for k in choices)


def style_hint(target: Any, style: str) -> str:
    """A line for when the target's kind does not fit --style (a common slip)."""
    from manual_bptt.checking.styles.base import facts

    is_class = bool(facts(target)["class"])
    if style == "project" and is_class:
        return (
            "the target is a class; for the tutorial's interface (Cls(word_dim, "
            "hidden_dim, bptt_truncate) with .bptt(x, y)) add --style tutorial"
        )
    if style == "tutorial" and not is_class:
        return (
            "the target is not a class; for a function with manual_bptt.bptt's "
            "signature use --style project (the default)"
        )
    return ""
