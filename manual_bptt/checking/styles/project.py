"""--style project: a function with manual_bptt.bptt's signature.

    f(params, x, y, *, h0, mask, activation, truncate, chunk, reduction) -> result

with ``result.grads`` a mapping {"U" (H, D), "W" (H, H), "V" (K, H), "b" (H,), "c" (K,),
"h0" ((N, H) or (H,)), and "x" ((T, N, D) or (T, D)) for float inputs} and, if it has
one, ``result.loss`` (L, equation (5)). Drawn over every option the project has.

With ``--cell lstm`` or ``--cell gru`` the params are LSTMParams or GRUParams (docs/derivation.md,
"The LSTM", "The GRU") and the gradients the cell's: LSTM {"U" (4H, D), "W" (4H, H),
"b" (4H,), "V", "c", "h0", "c0" (N, H), "x"}, GRU {"U" (3H, D), "W" (3H, H), "b" (3H,),
"bh" (3H,), "V", "c", "h0", "x"}; the LSTM's f is also called with ``c0=``, and
activation is always "tanh". The GRU's variant is the params' ``reset``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from manual_bptt.cases import Case
from manual_bptt.cells import CELLS
from manual_bptt.checking.strategies import Space
from manual_bptt.checking.styles.base import (
    Gradient,
    Observed,
    Style,
    Target,
    require_callable,
    type_name,
)

_NO_LOSS = object()


class ProjectStyle(Style):
    name = "project"
    summary = "f(params, x, y, *, h0, mask, activation, truncate, chunk, reduction) -> .grads"
    gradients = tuple(
        Gradient(key, f"d{key}", "f", f"grads[{key!r}]")
        for key in (
            "U",
            "W",
            "V",
            "b",
            "bh",
            "c",
            "h0",
            "c0",
            "x",
        )  # every cell's (GRU: bh, LSTM: c0)
    )
    space = Space(tbptt=True)  # manual_bptt.bptt's signature takes tbptt
    cells = tuple(CELLS)  # every registered cell

    OPTIONS = ("h0", "mask", "activation", "truncate", "chunk", "reduction")

    def bind(self, obj: Target, where: str) -> Target:
        options = dict.fromkeys(self.OPTIONS)
        return require_callable(
            obj, where, (None, None, None), "f(params, x, y, **options)", **options
        )

    def takes(self, target: Target, space: Space, where: str) -> None:
        """With TBPTT among the modes (--tbptt-only), f must take tbptt too."""
        if "tbptt" in space.modes:
            options = dict.fromkeys((*self.OPTIONS, "tbptt"))
            require_callable(
                target, where, (None, None, None), "f(params, x, y, **options)", **options
            )

    def observe(self, target: Target, case: Case, seen: Observed) -> Observed:
        import torch_reference

        twin = self.twin(
            target,
            case,
            lambda: torch_reference.bptt(case.params, case.x, case.y, **case.kwargs()),
        )
        with seen.attempt():
            result = seen.call(
                "f",
                target,
                case.params,
                case.x,
                case.y,
                names=("params", "x", "y"),
                **case.kwargs(),
            )
            grads: Any = seen.get("f's result", result, "grads")
            if not hasattr(grads, "keys"):
                message = f"f returned {type_name(result)}, not a result with .grads"
                seen.interface.append(message)
                seen.failures["f returned no .grads"] = message
                return seen
            missing = [k for k in twin.grads if k not in grads]
            if missing:
                message = f"f's .grads has no {', '.join(missing)}"
                seen.interface.append(message)
                seen.failures["f returned too few gradients"] = message
            for key, expected in twin.grads.items():
                if key in grads:
                    seen.gradients[key] = (grads[key], expected)
            loss = seen.get("f's result", result, "loss", _NO_LOSS)
            if loss is not _NO_LOSS:
                seen.outputs["loss"] = ("f's .loss", loss, np.asarray(twin.loss))
        return seen

    def arrays(self, case: Case) -> dict[str, np.ndarray]:
        shown = {"x": case.x, "y": case.y, "h0": case.h0, "mask": case.mask}
        shown.update(case.params.as_dict())
        return {k: v for k, v in shown.items() if v is not None}


STYLE = ProjectStyle
