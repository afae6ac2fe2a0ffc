"""The interfaces ``bptt verify`` understands, one module each: a new style is one new
module here defining ``STYLE``, a :class:`~manual_bptt.checking.styles.base.Style`
subclass (base.py says what it must provide).

- project: a function with manual_bptt.bptt's signature.
- tutorial: the WildML tutorial's class, ``bptt(x, y) -> [dU, dV, dW]``.
- cs231n: CS231n's rnn_forward / rnn_backward (and the step pair), batch-major.
- cs231n-lstm: CS231n's lstm_forward / lstm_backward (and the step pair), gates (i, f, o, g).
- min-char-rnn: min-char-rnn's ``lossFun(inputs, targets, hprev)`` reading its globals.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from manual_bptt.checking.styles.base import Gradient, Observed, Style, Target
from manual_bptt.errors import UsageError


def _discover() -> dict[str, type[Style]]:
    found: dict[str, type[Style]] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        style = module.STYLE
        found[style.name] = style
    first = ("project", "tutorial")  # the original two, then the rest by name
    return {
        k: found[k]
        for k in sorted(
            found, key=lambda k: (k not in first, first.index(k) if k in first else 0, k)
        )
    }


STYLES: dict[str, type[Style]] = _discover()


def make_style(name: str, **options: Any) -> Style:
    """The style called ``name`` ("project", "tutorial", "cs231n", "cs231n-lstm", …)."""
    if name not in STYLES:
        raise UsageError(f"no style {name!r}; the styles are {', '.join(STYLES)}")
    return STYLES[name](**options)


__all__ = ["STYLES", "Gradient", "Observed", "Style", "Target", "UsageError", "make_style"]
