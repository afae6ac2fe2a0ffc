"""The twin's step of each registered cell (manual_bptt/cells.py), by the cell's name.

A gated cell's twin is one torch function per step, ``(state, t) -> state`` for the
state's parts (h; the LSTM's h and s), made from the cell's parameters and its leaf
tensors (network.CellLeaves); autograd, not anyone here, derives its backward pass.
The vanilla cell has its own twin (network.py, truncation.py). A new cell registers its
twin with :func:`register_twin`, beside ``manual_bptt.cells.register``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from manual_bptt.cells import cell_of
from manual_bptt.params import CellParams
from torch_reference import gru, lstm
from torch_reference.network import CellLeaves

State = tuple[torch.Tensor, ...]
TwinStep = Callable[[State, int], State]
MakeStep = Callable[[CellParams, CellLeaves], TwinStep]

TWINS: dict[str, MakeStep] = {}


def register_twin(name: str, make_step: MakeStep) -> None:
    """The twin of the cell registered as ``name``: ``make_step(params, leaves)`` gives
    its step ``(state, t) -> state``."""
    TWINS[name] = make_step


def twin_step(params: CellParams, leaves: CellLeaves) -> TwinStep:
    """The twin's step for the cell ``params`` belong to; TypeError if it has none."""
    name = cell_of(params).name
    if name not in TWINS:
        raise TypeError(
            f"the {name} cell has no twin: register one with torch_reference.cells.register_twin"
        )
    return TWINS[name](params, leaves)


register_twin("lstm", lambda params, leaves: lambda state, t: lstm.step(leaves, state, t))
register_twin(
    "gru",
    lambda params, leaves: lambda state, t: gru.step(leaves, str(params.reset), state, t),  # type: ignore[attr-defined]
)
