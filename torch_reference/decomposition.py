"""Per-(loss, step) contributions by autograd: the twin of manual_bptt/vanishing/decomposition.py.

Independent of the manual code: θ is given one copy per step, θ_k, each used at its own
step only, so ∂E_t/∂θ_k (one autograd call per loss) is exactly the part of ∂E_t/∂θ
that enters through step k. Truncation is realised with ``detach`` as in truncation.py:
each loss E_t is recomputed from the state entering its first reachable step. Every
cell: the vanilla one (network.py), the LSTM (lstm.py) and the GRU (gru.py), each run
as a step on a tuple of state tensors.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from numpy.typing import ArrayLike

from manual_bptt.inputs import Batch, Options, prepare_param
from manual_bptt.params import CellParams, Params
from torch_reference.activations import ACTIVATIONS
from torch_reference.cells import twin_step
from torch_reference.crossentropy import step_loss
from torch_reference.network import (
    CellLeaves,
    Leaves,
    Overflow,
    as_tensor,
    logits,
    make_cell_leaves,
    make_leaves,
    step,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

State = tuple[torch.Tensor, ...]


def first_step_reached(t: int, batch: Batch) -> int:
    """The first step loss E_t backpropagates into (its own statement of docs/derivation.md's
    truncations, so that the twin shares no logic with manual_bptt here)."""
    if batch.truncate is not None:
        return max(0, t - batch.truncate)  # the window t−k … t
    if batch.chunk is not None:
        return t - t % batch.chunk  # the start of t's chunk
    if batch.tbptt is not None:
        # TBPTT(k1, k2): the block of k1 losses holding t is backpropagated k2 steps from
        # its last step, but no more than k2 − k1 steps before its first, nor before 0.
        k1, k2 = batch.tbptt
        first = t - t % k1
        last = min(first + k1, batch.T) - 1
        return max(last - k2 + 1, first - max(0, k2 - k1), 0)
    return 0


class _Cell:
    """The cell's leaves, and its step and readout with θ replaced by one copy."""

    def __init__(self, params: CellParams, batch: Batch) -> None:
        self.params = params
        self.leaves: Leaves | CellLeaves = (
            make_leaves(params, batch)
            if isinstance(params, Params)
            else make_cell_leaves(params, batch)
        )
        self.phi = ACTIVATIONS[batch.activation.name]

    def initial(self) -> State:
        if isinstance(self.leaves, Leaves):
            return (self.leaves.h0,)
        return self.leaves.initial_state()

    def leaf(self, name: str) -> torch.Tensor | None:
        if isinstance(self.leaves, Leaves):
            field: torch.Tensor | None = getattr(self.leaves, name)
            return field
        if name in self.leaves.weights:
            return self.leaves.weights[name]
        other: torch.Tensor | None = getattr(self.leaves, name)
        return other

    def with_copy(self, param: str, copy: torch.Tensor | None) -> Leaves | CellLeaves:
        if copy is None:
            return self.leaves
        if isinstance(self.leaves, Leaves):
            fields: dict[str, Any] = {param: copy}  # a new Leaves (made starts empty)
            return replace(self.leaves, **fields)
        return replace(self.leaves, weights={**self.leaves.weights, param: copy})

    def step(self, leaves: Leaves | CellLeaves, state: State, t: int) -> State:
        if isinstance(leaves, Leaves):
            return (step(leaves, self.phi, state[0], t),)
        return twin_step(self.params, leaves)(state, t)

    @staticmethod
    def logits(leaves: Leaves | CellLeaves, h: torch.Tensor) -> torch.Tensor:
        return logits(leaves, h) if isinstance(leaves, Leaves) else leaves.logits(h)


def contributions(
    params: CellParams,
    x: ArrayLike,
    y: ArrayLike,
    *,
    param: str = "U",
    **options: Unpack[Options],
) -> np.ndarray:
    """Same arguments, shapes and meaning as manual_bptt.contributions, every cell."""
    params, batch = prepare_param(params, x, y, param, options)
    T = batch.T
    cell = _Cell(params, batch)
    y_t = as_tensor(batch.y, dtype=torch.long)
    mask_t = as_tensor(batch.mask)
    per_step = param in params.NAMES
    base_leaf = cell.leaf(param)
    assert base_leaf is not None  # x of token ids was refused above
    copies = [base_leaf.detach().clone().requires_grad_() for _ in range(T)] if per_step else []

    def leaves_at(k: int) -> Leaves | CellLeaves:
        return cell.with_copy(param, copies[k] if per_step else None)

    states = [cell.initial()]  # one ordinary forward pass; windows detach where they start
    for t in range(T):
        states.append(cell.step(cell.leaves, states[-1], t))
    # A parameter's own shape (none has more than two axes); x's (N, D), h0's and c0's (N, H).
    shape = tuple(base_leaf.shape)[-2:]
    out = np.zeros((T, T, *shape), dtype=params.dtype)
    overflow = Overflow()
    for t in range(T):
        start = first_step_reached(t, batch)
        if start > t:  # the loss reaches no step: it reads the detached state h_t
            start = t + 1
        state = states[0] if start == 0 else tuple(p.detach() for p in states[start])
        for s in range(start, t + 1):
            state = cell.step(leaves_at(s), state, s)
        o = cell.logits(leaves_at(t), state[0])
        overflow.see(t, state[0], o)
        E_t = step_loss(o, y_t[t], mask_t[t]) * batch.loss_scale
        grads = torch.autograd.grad(E_t, copies if per_step else [base_leaf], allow_unused=True)
        if per_step:
            for k, g in enumerate(grads):
                if g is not None:
                    out[t, k] = g.numpy()
        elif grads[0] is not None:
            if param == "x":
                out[t] = grads[0].numpy()  # x (T, N, D): x_k is used at step k only
            else:
                out[t, 0] = grads[0].numpy()  # h0, c0 enter at step 0 only
    overflow.report()
    if param in ("x", "h0", "c0") and not batch.batched:
        return out[:, :, 0]  # drop N = 1, as manual_bptt.contributions does
    return out
