"""bptt gallery [NAME]: the gallery's classic slips, as exercises.

With no NAME, lists every slip by style and cell, each with a one-line hint of where
to look (the name says what is wrong; the hint only where). With NAME:

  bptt gallery NAME            the slip's code, as it is in manual_bptt/checking/
  bptt gallery NAME --diff     its unified diff from the correct version: the answer
  bptt gallery NAME --check    bptt verify on it, in a worker process as verify runs
                               code (with --strict-inputs, so that a slip that only
                               changes an argument fails too): which gradients are
                               wrong, and the smallest problem each shrinks to

The correct version is the style's correct implementation in the gallery (the
tutorial's TutorialRNN, CS231n's RNNLayers and LSTMLayers, min-char-rnn's lossFun);
for the project-style and gated-cell slips, which are written out on their own, it is
the slip with its slipped lines put right (tests/test_gallery_cli.py verifies each).

Exit codes: 0 listed, shown or diffed; with --check, verify's (1: the slip was found,
as it should be); 2 no such slip (the message lists the near matches).

Examples:
  bptt gallery
  bptt gallery CurrentStateInDW
  bptt gallery CurrentStateInDW --diff
  bptt gallery CurrentStateInDW --check
"""

from __future__ import annotations

import argparse
import ast
import difflib
import inspect
import io
import re
import textwrap
import tokenize
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from manual_bptt.cli.arguments import add_command, positive_int
from manual_bptt.errors import UsageError

# Where to look, one line per slip, without saying what is wrong (the name says that).
HINTS = {
    # tutorial
    "ForgetsTanhDerivative": "carrying δ back one step: which factors does (7) apply?",
    "CurrentStateInDW": "dW's outer product: which state does W multiply in (1)?",
    "WindowOffByOne": "count the steps the inner loop visits for bptt_truncate = k",
    "DropsRecurrentTerm": "carrying δ back one step: what links a_t to h_{t−1}?",
    "OnlyLastLoss": "L = Σ_t E_t: which losses does the outer loop visit?",
    "SoftmaxWithoutMinusOne": "∂E_t/∂o_t for a softmax and cross-entropy, (6)",
    "WInsteadOfWTranspose": "carrying δ back one step: W or its transpose? (H = 1 hides it)",
    "AliasesTheOutput": "the gradients are right: look at the model after bptt returns",
    # project
    "bias_averaged_over_batch": "c is shared by every sequence: how do its parts combine?",
    "h0_gradient_without_W": "h0 enters the network through a_0 = b + W h0 + U x_0, (12)",
    # project, gated cells
    "lstm_drops_the_cell_state_carry": "what the step sends back to s_{t−1}, (18)",
    "lstm_forgets_tanh_derivative": "from h_t = q_t ⊙ tanh(s_t) back to s_t, (18)",
    "lstm_forget_gate_with_s_t": "δ^f_t: which cell state does f_t multiply in (15)?",
    "lstm_gate_blocks_in_wrong_order": "the order of δ_t's four blocks against U's rows, (23)",
    "gru_z_and_one_minus_z_swapped": "(27): which of z_t and 1 − z_t goes with n_t?",
    "gru_reset_differentiated_before_the_product": "where does r_t sit in this GRU's (26)?",
    # cs231n
    "TransposedWhInBackward": "the step backward's dprev_h: Wh or its transpose?",
    "Dh0FromWrongStep": "dh0 is the gradient leaving which step?",
    "UpstreamOnlyAtLastStep": "every h_t feeds the layer above: where does dh[:, t] enter?",
    "DbNotSummedOverBatch": "b is shared by every sequence: how do its parts combine?",
    "ChangesUpstreamInPlace": "the gradients are right: look at the caller's dh afterwards",
    # cs231n-lstm
    "CellStateCarryDropped": "what lstm_backward hands each step as dnext_c",
    "ForgetsTanhDerivativeOfC": "from h_t = o ⊙ tanh(c_t) back to c_t",
    "GatesInTorchOrder": "the order the gate gradients are stacked in, against the forward",
    "DnextCNotAdded": "the gradient reaching c_t comes from two places",
    "ForgetGateWithNextC": "df: which cell state does f multiply?",
    # min-char-rnn
    "tanh_derivative_at_wrong_step": "dhraw: tanh' taken at which state?",
    "dhnext_not_carried": "dh: everything that reaches h_t, from above and from step t + 1",
    "bias_gradient_before_tanh": "bh enters before the tanh: which gradient does it collect?",
    "loss_not_summed": "the gradients are right: look at the loss it returns",
}

# The slips with no line-for-line correct twin in the gallery (the project-style ones
# and the gated cells' backward steps): the replacements, each found exactly once in
# the slip's source, that put its slipped lines right. tests/test_gallery_cli.py
# verifies every corrected version.
FIXES: dict[str, tuple[tuple[str, str], ...]] = {
    "bias_averaged_over_batch": (
        (
            '"c": dO.sum(axis=0).mean(axis=0),  # slip: .sum(axis=0) over the batch',
            '"c": dO.sum(axis=(0, 1)),  # (9)',
        ),
    ),
    "h0_gradient_without_W": (
        (
            '"h0": delta[0].copy(),  # slip: delta[0] @ params.W',
            '"h0": delta[0] @ params.W,  # (12)',
        ),
    ),
    "lstm_drops_the_cell_state_carry": (
        (
            "es_prev = np.zeros_like(es)  # SLIP: (18) carries ε^s_t ⊙ f_t into s_{t−1}",
            "es_prev = es * f  # (18)",
        ),
    ),
    "lstm_forgets_tanh_derivative": (
        (
            "es = es_carried + eh * q  # SLIP: (18) needs ⊙ (1 − tanh²(s_t)), h_t = q_t ⊙ tanh(s_t)",
            "es = es_carried + eh * q * (1 - tanh_s**2)  # (18)",
        ),
    ),
    "lstm_forget_gate_with_s_t": (
        ("    s_new = f * cache.s_prev[lo:hi] + i * g  # s_t, recomputed by (15)\n", ""),
        (
            "es * s_new * f * (1 - f),  # SLIP: (21) multiplies by s_{t−1}",
            "es * cache.s_prev[lo:hi] * f * (1 - f),  # (21)",
        ),
    ),
    "lstm_gate_blocks_in_wrong_order": (
        (
            "[di, df, dq, dg], axis=-1)  # SLIP: torch's order is i, f, g, o",
            "[di, df, dg, dq], axis=-1)  # (23) torch's order: i, f, g, o",
        ),
    ),
    "gru_z_and_one_minus_z_swapped": (
        (
            "dn = eh * z * (1 - n**2)  # SLIP: (29) h_t = (1 − z_t) ⊙ n_t + …: the factor is 1 − z_t",
            "dn = eh * (1 - z) * (1 - n**2)  # (29)",
        ),
        (
            "eh_prev = eh * (1 - z)  # SLIP: (32) the direct path to h_{t−1} is z_t ⊙ ε_t",
            "eh_prev = eh * z  # (32)",
        ),
    ),
    "gru_reset_differentiated_before_the_product": (
        ("H, r, z, n, h_prev, _m = ", "H, r, z, n, h_prev, m = "),
        (
            (
                '    # SLIP: the forward applied r after W_n\'s product (26, "after"); this is (30b)-(32b),\n'
                '    # the backward of the "before" variant, with p_t = r_t ⊙ h_{t−1} rebuilt from the cache.\n'
                "    dp = rows_matmul(dn, params.W[2 * H :])\n"
                "    dr = dp * h_prev * r * (1 - r)\n"
            ),
            "    dr = dn * m * r * (1 - r)  # (30a)\n",
        ),
        (
            (
                "    eh_prev = eh * z + rows_matmul(delta[..., : 2 * H], params.W[: 2 * H]) + dp * r\n"
                "    return delta, delta, (eh_prev,)\n"
            ),
            (
                "    delta_h = np.concatenate([dr, dz, r * dn], axis=-1)  # (30a) δ̃_t\n"
                "    eh_prev = eh * z + rows_matmul(delta_h, params.W)  # (32a)\n"
                "    return delta, delta_h, (eh_prev,)\n"
            ),
        ),
    ),
}

CHECK_EXAMPLES = 200  # --check's default, verify's own


@dataclass(frozen=True)
class Slip:
    """One slip of the gallery: its object, where it lives, how verify checks it."""

    name: str
    style: str
    cell: str  # "rnn", "lstm" or "gru"
    obj: Any  # the class or function verify is given
    correct: Any  # the style's correct implementation, or None (FIXES puts it right)
    resets: tuple[str, ...] = ()  # a gated GRU slip: the variants it applies to

    @property
    def target(self) -> str:
        """The slip as ``bptt verify`` names it: MODULE:NAME."""
        return f"{self.obj.__module__}:{self.name}"

    @property
    def hint(self) -> str:
        return HINTS[self.name]

    def verify_argv(self, examples: int, seed: int) -> list[str]:
        """The ``bptt verify`` command line that checks it (without the leading bptt)."""
        argv = ["verify", self.target, "--style", self.style]
        if self.cell != "rnn" and self.style == "project":
            argv += ["--cell", self.cell]
        if len(self.resets) == 1:
            argv += ["--reset", self.resets[0]]
        return [*argv, "--strict-inputs", "--examples", str(examples), "--seed", str(seed)]


def slips() -> dict[str, Slip]:
    """Every slip in the gallery, by name, in the order listed: per style, then cell."""
    from manual_bptt.checking import (
        gallery,
        gallery_cs231n,
        gallery_cs231n_lstm,
        gallery_min_char_rnn,
    )

    found = [
        Slip(s.__name__, "tutorial", "rnn", s, gallery.TutorialRNN) for s in gallery.TUTORIAL_SLIPS
    ]
    found += [Slip(s.__name__, "project", "rnn", s, None) for s in gallery.PROJECT_SLIPS]
    for cell in ("lstm", "gru"):
        found += [
            Slip(fn.__name__, "project", c, fn, None, resets)
            for fn, c, resets in gallery.GATED_SLIPS
            if c == cell
        ]
    found += [
        Slip(s.__name__, "cs231n", "rnn", s, gallery_cs231n.RNNLayers)
        for s in gallery_cs231n.CS231N_SLIPS
    ]
    found += [
        Slip(s.__name__, "cs231n-lstm", "lstm", s, gallery_cs231n_lstm.LSTMLayers)
        for s in gallery_cs231n_lstm.CS231N_LSTM_SLIPS
    ]
    found += [
        Slip(s.__name__, "min-char-rnn", "rnn", s, gallery_min_char_rnn.lossFun)
        for s in gallery_min_char_rnn.MIN_CHAR_RNN_SLIPS
    ]
    return {slip.name: slip for slip in found}


def find(name: str) -> Slip:
    """The slip called ``name``; UsageError naming the near matches when there is none."""
    known = slips()
    if name in known:
        return known[name]
    correct = {s.correct.__name__: s for s in known.values() if s.correct is not None}
    if name in correct:
        slip = correct[name]
        raise UsageError(
            f"{name} is the correct implementation of --style {slip.style}, not a slip; "
            f"bptt verify {slip.correct.__module__}:{name} --style {slip.style} checks it"
        )
    lower = {n.lower(): n for n in known}
    key = name.strip().lower()
    near = difflib.get_close_matches(key, list(lower), n=3, cutoff=0.6) if key else []
    near += [n for n in lower if key and key in n and n not in near]  # a part of the name
    if near:
        names = ", ".join(lower[n] for n in near[:3])
        raise UsageError(f"no slip named {name!r}; near: {names}")
    raise UsageError(f"no slip named {name!r}; 'bptt gallery' lists all {len(known)}")


def parts(slip: Slip) -> list[Callable[..., Any] | type]:
    """The code that holds the slip: the class or function, and for a gated-cell slip
    first the backward step it hands to the project's harness."""
    if slip.style == "project" and slip.cell != "rnn":
        module = inspect.getmodule(slip.obj)
        step = re.search(r"_gated_with\((\w+)", inspect.getsource(slip.obj))
        assert step is not None, f"{slip.name} hands no step to _gated_with"
        return [getattr(module, step.group(1)), slip.obj]
    return [slip.obj]


def where(obj: Any) -> str:
    """``manual_bptt/checking/gallery.py:123``: the file (from the project's root) and line."""
    path = Path(inspect.getfile(obj))
    root = Path(__file__).parents[2]  # manual_bptt/cli/gallery.py → the project's root
    _, line = inspect.getsourcelines(obj)
    return f"{path.relative_to(root).as_posix()}:{line}"


def code(slip: Slip) -> str:
    """The slip's source, each part headed by where it is."""
    return "\n\n".join(f"# {where(p)}\n{inspect.getsource(p).rstrip()}" for p in parts(slip))


def without_docstrings(source: str) -> str:
    """``source`` (a function or class, dedented) without the docstrings of its
    functions and classes: what differs between a slip and its correct version is code."""
    tree = ast.parse(source)
    drop: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                drop.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    lines = source.splitlines(keepends=True)
    return "".join(line for number, line in enumerate(lines, 1) if number not in drop)


def without_comments(source: str) -> str:
    """``source`` without its comments (a line that was only a comment is dropped)."""
    cut: dict[int, int] = {}  # line → the column its comment starts at
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            cut[token.start[0]] = token.start[1]
    kept = []
    for number, line in enumerate(source.splitlines(), 1):
        if number not in cut:
            kept.append(line)
        elif line[: cut[number]].strip():
            kept.append(line[: cut[number]].rstrip())
    return "\n".join(kept) + "\n"


def _code_only(source: str) -> str:
    return without_comments(without_docstrings(source))


def _source(obj: Any) -> str:
    return textwrap.dedent(inspect.getsource(obj))


def pairs(slip: Slip) -> list[tuple[str, str, str, str]]:
    """(correct's label, correct's code, slip's label, slip's code) per part the slip
    changes; docstrings and comments left out, so that only code differs."""
    if slip.correct is None:  # put right by FIXES
        step = parts(slip)[0]
        wrong = _source(step)
        label = step.__name__
        return [
            (
                f"{label}, put right",
                _code_only(corrected(slip.name, wrong)),
                label,
                _code_only(wrong),
            )
        ]
    if inspect.isclass(slip.obj):  # the methods it defines, against the correct class's
        return [
            (
                f"{slip.correct.__name__}.{name}",
                _code_only(_source(getattr(slip.correct, name))),
                f"{slip.name}.{name}",
                _code_only(_source(getattr(slip.obj, name))),
            )
            for name in slip.obj.__dict__
            if not name.startswith("__") and callable(getattr(slip.obj, name))
        ]
    right, wrong = _source(slip.correct), _source(slip.obj)
    return [(slip.correct.__name__, _code_only(right), slip.name, _code_only(wrong))]


def corrected(name: str, source: str) -> str:
    """``source`` with FIXES[name] applied; each replaced text must be found exactly once."""
    for old, new in FIXES[name]:
        if source.count(old) != 1:
            raise AssertionError(
                f"FIXES[{name!r}]: {old!r} is in its source {source.count(old)} times"
            )
        source = source.replace(old, new)
    return source


def diff(slip: Slip) -> str:
    """The unified diff from the correct version to the slip, under the slip's docstring
    (which says what is wrong), docstrings and comments left out of the code."""
    said = inspect.getdoc(slip.obj) or ""
    chunks = [f"# {line}".rstrip() for line in said.splitlines()]
    for right_label, right, wrong_label, wrong in pairs(slip):
        chunks.extend(
            difflib.unified_diff(
                right.splitlines(),
                wrong.splitlines(),
                fromfile=f"{right_label} (correct)",
                tofile=f"{wrong_label} (the slip)",
                lineterm="",
            )
        )
    return "\n".join(chunks)


def listing() -> str:
    """Every slip, grouped by style and cell, each with its hint."""
    known = slips()
    width = max(len(name) for name in known)
    lines = [
        (
            f"The gallery: {len(known)} slips, each deliberately wrong in one place "
            "(the name says what; the hint, where to look)."
        ),
        (
            "bptt gallery NAME shows one; --diff, its difference from the correct version; "
            "--check, verify on it."
        ),
    ]
    group = None
    for slip in known.values():
        if (slip.style, slip.cell) != group:
            group = (slip.style, slip.cell)
            flag = f" --cell {slip.cell}" if slip.style == "project" and slip.cell != "rnn" else ""
            correct = f"; correct: {slip.correct.__name__}" if slip.correct is not None else ""
            lines += ["", f"--style {slip.style}{flag} ({slip.cell} cell{correct})"]
        lines.append(f"  {slip.name:<{width}}  {slip.hint}")
    return "\n".join(lines)


def register(sub: Any) -> None:
    p = add_command(
        sub, "gallery", "list, show, diff or verify the gallery's classic slips", __doc__, run
    )
    p.add_argument("name", metavar="NAME", nargs="?", help="a slip (none: list them all)")
    what = p.add_mutually_exclusive_group()
    what.add_argument(
        "--diff", action="store_true", help="its unified diff from the correct version"
    )
    what.add_argument(
        "--check", action="store_true", help="run bptt verify on it and show what it shrinks to"
    )
    p.add_argument(
        "--examples", type=positive_int, help="--check: problems to try (default 200, verify's)"
    )
    p.add_argument("--seed", type=int, help="--check: Hypothesis seed (default 0)")


def run(args: argparse.Namespace) -> int:
    if not args.check and (args.examples is not None or args.seed is not None):
        flag = "--examples" if args.examples is not None else "--seed"
        raise UsageError(f"{flag} goes with --check, which runs verify on the slip")
    if args.name is None:
        if args.diff or args.check:
            raise UsageError(
                f"--{'diff' if args.diff else 'check'} needs a NAME; 'bptt gallery' lists them"
            )
        print(listing())
        return 0
    slip = find(args.name)
    if args.diff:
        print(diff(slip))
        return 0
    if not args.check:
        print(code(slip))
        return 0
    from manual_bptt.cli import build_parser

    argv = slip.verify_argv(
        CHECK_EXAMPLES if args.examples is None else args.examples,
        0 if args.seed is None else args.seed,
    )
    print(f"running: bptt {' '.join(argv)}", flush=True)
    verify_args = build_parser().parse_args(argv)
    return int(verify_args.run(verify_args))
