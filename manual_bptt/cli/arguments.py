"""Argument types shared by the subcommands of ``bptt`` (one module each in manual_bptt/cli/).

The argument types below let argparse refuse a bad number with a one-line message
(``bptt check: error: argument --chunk: must be an integer ≥ 1; got 0``) before any
work starts, instead of a traceback from deep inside.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def _bounded(kind: type, low: float, strict: bool) -> Callable[[str], int | float]:
    what = f"{'an integer' if kind is int else 'a number'} {'>' if strict else '≥'} {low:g}"

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}; got {text!r}") from None
        if not (value > low if strict else value >= low):  # NaN fails both
            raise argparse.ArgumentTypeError(f"must be {what}; got {text}")
        return value

    return parse


positive_int = _bounded(int, 1, strict=False)  # ≥ 1: sizes, chunk, example counts
nonnegative_int = _bounded(int, 0, strict=False)  # ≥ 0: truncate
positive_float = _bounded(float, 0, strict=True)  # > 0: weight scale


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
