"""Argument types shared by the subcommands of ``bptt`` (one module each in manual_bptt/cli/).

The argument types below let argparse refuse a bad number with a one-line message
(``bptt check: error: argument --chunk: must be an integer ≥ 1; got 0``) before any
work starts, instead of a traceback from deep inside.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _bounded(
    kind: type[int | float], low: float, strict: bool, high: float | None = None
) -> Callable[[str], int | float]:
    noun = "an integer" if kind is int else "a finite number"
    what = f"{noun} {'>' if strict else '≥'} {low:g}"
    if high is not None:
        what = f"{noun} from {low:g} to {high:g}"

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}; got {text!r}") from None
        above = value > low if strict else value >= low
        below = high is None or value <= high
        if not (above and below and math.isfinite(value)):  # inf, also from 1e400; NaN
            raise argparse.ArgumentTypeError(f"must be {what}; got {text}")
        return value

    return parse


positive_int = _bounded(int, 1, strict=False)  # ≥ 1: sizes, chunk, example counts
nonnegative_int = _bounded(int, 0, strict=False)  # ≥ 0: truncate, seeds of numpy generators
positive_float = _bounded(float, 0, strict=True)  # > 0 and finite: weight scale


def length_pair(text: str) -> tuple[int, int]:
    """Two integers ≥ 1 written K1,K2: TBPTT(k1, k2)'s lengths."""
    parts = text.split(",")
    try:
        pair = tuple(int(part) for part in parts)
    except ValueError:
        pair = ()
    if len(pair) != 2 or min(pair) < 1:
        raise argparse.ArgumentTypeError(f"must be two integers ≥ 1 as K1,K2; got {text!r}")
    return pair[0], pair[1]


def finite_float(text: str) -> float:
    """Any finite number, of either sign (a bias): not inf, not NaN."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a finite number; got {text!r}") from None
    if not math.isfinite(value):  # inf, also from 1e400; NaN
        raise argparse.ArgumentTypeError(f"must be a finite number; got {text}")
    return value


def in_range(low: int, high: int) -> Callable[[str], int | float]:
    """An integer from low to high, both included."""
    return _bounded(int, low, strict=False, high=high)


def existing_parent(path: str) -> str:
    """An output path whose parent folder exists: nothing here creates folder trees."""
    parent = Path(path).expanduser().resolve().parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"the folder {str(parent)!r} does not exist; got {path}")
    return path


def add_command(
    sub: Any, name: str, summary: str, doc: str | None, run: Callable[[argparse.Namespace], int]
) -> argparse.ArgumentParser:
    """Add subcommand ``name`` to ``sub``: ``summary`` in ``bptt --help``, its module's
    docstring ``doc`` as ``bptt name --help``'s text (kept as written), and ``run``
    (args → exit code) as what it does. Returns its parser, for its arguments."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=summary, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.set_defaults(run=run)
    return parser
