"""Truncated losses built with autograd's own means (``detach``), not with manual code.

Each function returns the scalar whose gradient (by ``.backward()``) is the truncated
gradient of docs/derivation.md's definitions; its value is the loss L itself, since detaching
a state changes no value, only which paths the gradient may take.

Written once for every cell: a cell is a ``step(state, t) → state`` on a tuple of
tensors (h, and s for the LSTM), whose first part is the h that the output layer reads.
Detaching a state detaches every part of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from manual_bptt.inputs import Batch
from torch_reference.network import Leaves, Overflow, logits, step

Phi = Callable[[torch.Tensor], torch.Tensor]
State = tuple[torch.Tensor, ...]
Step = Callable[[State, int], State]
Readout = Callable[[torch.Tensor], torch.Tensor]


def _detach(state: State) -> State:
    return tuple(part.detach() for part in state)


def _summed_loss(
    states: Iterator[State],
    readout: Readout,
    y: torch.Tensor,
    mask: torch.Tensor,
) -> torch.Tensor:
    """Σ_t E_t over the states yielded, the t-th being the state after step t (h_t first).

    E_t is the masked cross-entropy (4)–(5) of the logits o_t = readout(h_t) (3) against
    y[t] with weights mask[t] (y, mask: (T, N)). The output layer and the loss are applied
    once to the T states stacked (T, N, H): one product and one cross-entropy in the
    autograd graph, not T of each. Overflow is reported at the first step whose
    logits are not finite, as in the forward pass.
    """
    hs = torch.stack([state[0] for state in states])
    o = readout(hs)  # (T, N, K)
    overflow = Overflow()
    finite = torch.isfinite(o).flatten(1).all(dim=1)
    if not bool(finite.all()):
        t = int(torch.nonzero(~finite)[0, 0])
        overflow.see(t, hs[t], o[t])
    overflow.report()
    T, N, K = o.shape
    E = F.cross_entropy(o.reshape(T * N, K), y.reshape(T * N), reduction="none")
    return (E * mask.reshape(T * N)).sum()


def chunked_state_loss(
    cell_step: Step,
    readout: Readout,
    state0: State,
    y: torch.Tensor,
    mask: torch.Tensor,
    chunk: int | None,
) -> torch.Tensor:
    """Σ_t E_t with the state detached at the start of every chunk [0,k), [k,2k), ….

    chunk=None never detaches: full BPTT. The state is carried forward (its value
    flows on), only its gradient is cut, as frameworks do between chunks.
    """

    def states() -> Iterator[State]:
        state = state0
        for t in range(y.shape[0]):
            if chunk is not None and t > 0 and t % chunk == 0:
                state = _detach(state)
            state = cell_step(state, t)
            yield state

    return _summed_loss(states(), readout, y, mask)


def window_state_loss(
    cell_step: Step,
    readout: Readout,
    state0: State,
    y: torch.Tensor,
    mask: torch.Tensor,
    truncate: int,
) -> torch.Tensor:
    """Σ_t E_t where E_t reaches steps t, t−1, …, max(0, t−k) only.

    For each loss E_t the steps max(0, t−k) … t are run again from the state entering
    them, detached unless that state is the initial one itself (a window that reaches
    step 0 passes its gradient into h0, and c0). O(T·k) steps: simple, not fast.
    """

    def windows() -> Iterator[State]:
        T = y.shape[0]
        entering = [state0]  # the state entering each step: one ordinary forward pass
        for t in range(T):
            entering.append(cell_step(entering[-1], t))
        for t in range(T):
            start = max(0, t - truncate)
            state = state0 if start == 0 else _detach(entering[start])
            for s in range(start, t + 1):
                state = cell_step(state, s)
            yield state

    return _summed_loss(windows(), readout, y, mask)


def tbptt_state_loss(
    cell_step: Step,
    readout: Readout,
    state0: State,
    y: torch.Tensor,
    mask: torch.Tensor,
    k1: int,
    k2: int,
) -> torch.Tensor:
    """Σ_t E_t where each block of k1 losses is backpropagated k2 steps: TBPTT(k1, k2).

    Block j holds the losses of steps j·k1 … end (end = the block's last step, T − 1
    for a last block cut short). Its losses are computed on a run of the steps from
    ``reach`` to ``end`` that starts from the state entering ``reach``, detached unless
    it is the initial state, where ``reach`` is k2 steps back from ``end``, but no more
    than max(0, k2 − k1) steps before the block's first step, and not before step 0.
    Losses of the block before ``reach`` (when k2 < k1) read a detached state: only
    the output layer gets their gradient. O(T·max(k1, k2)) steps: simple, not fast.
    """
    T = y.shape[0]
    entering = [state0]  # the state entering each step: one ordinary forward pass
    for t in range(T):
        entering.append(cell_step(entering[-1], t))

    def blocks() -> Iterator[State]:
        for first in range(0, T, k1):
            end = min(first + k1, T) - 1
            reach = max(end - k2 + 1, first - max(0, k2 - k1), 0)
            for t in range(first, min(reach, end + 1)):  # losses no step of which is reached
                yield _detach(entering[t + 1])
            state = state0 if reach == 0 else _detach(entering[reach])
            for t in range(reach, end + 1):
                state = cell_step(state, t)
                if t >= first:
                    yield state

    return _summed_loss(blocks(), readout, y, mask)


class _ScaledGradient(torch.autograd.Function):
    """The identity forward; backward multiplies the gradient by a constant."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, w: float
    ) -> torch.Tensor:  # type: ignore[override]
        ctx.w = w  # type: ignore[attr-defined]
        return x.view_as(x)

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return grad * ctx.w, None  # type: ignore[attr-defined]


def weighted_state_loss(
    cell_step: Step,
    readout: Readout,
    state0: State,
    y: torch.Tensor,
    mask: torch.Tensor,
    links: np.ndarray,
) -> torch.Tensor:
    """Σ_t E_t where the gradient entering step t−1 from step t is multiplied by
    ξ_t = links[t] (randomized truncation; ξ_t = 0 detaches): the state passes unchanged
    forward, and an autograd function scales its gradient on the way back."""

    def states() -> Iterator[State]:
        state = state0
        for t in range(y.shape[0]):
            if t > 0:
                w = float(links[t])
                state = (
                    _detach(state)
                    if w == 0
                    else tuple(_ScaledGradient.apply(part, w) for part in state)
                )
            state = cell_step(state, t)
            yield state

    return _summed_loss(states(), readout, y, mask)


def batch_loss(
    cell_step: Step,
    readout: Readout,
    state0: State,
    y: torch.Tensor,
    mask: torch.Tensor,
    batch: Batch,
) -> torch.Tensor:
    """Σ_t E_t with whichever truncation the batch asks for (at most one)."""
    if batch.truncate is not None:
        return window_state_loss(cell_step, readout, state0, y, mask, batch.truncate)
    if batch.tbptt is not None:
        return tbptt_state_loss(cell_step, readout, state0, y, mask, *batch.tbptt)
    if batch.links is not None:
        return weighted_state_loss(cell_step, readout, state0, y, mask, batch.links)
    return chunked_state_loss(cell_step, readout, state0, y, mask, batch.chunk)


def _vanilla(leaves: Leaves, phi: Phi) -> tuple[Step, Readout, State]:
    """The vanilla cell as (step, readout, initial state): the state is (h,), (1)–(3)."""
    return (
        lambda state, t: (step(leaves, phi, state[0], t),),
        lambda h: logits(leaves, h),
        (leaves.h0,),
    )


def chunked_loss(
    leaves: Leaves, phi: Phi, y: torch.Tensor, mask: torch.Tensor, chunk: int | None
) -> torch.Tensor:
    """The vanilla cell's :func:`chunked_state_loss`."""
    return chunked_state_loss(*_vanilla(leaves, phi), y, mask, chunk)


def window_loss(
    leaves: Leaves, phi: Phi, y: torch.Tensor, mask: torch.Tensor, truncate: int
) -> torch.Tensor:
    """The vanilla cell's :func:`window_state_loss`."""
    return window_state_loss(*_vanilla(leaves, phi), y, mask, truncate)


def vanilla_loss(
    leaves: Leaves, phi: Phi, y: torch.Tensor, mask: torch.Tensor, batch: Batch
) -> torch.Tensor:
    """The vanilla cell's :func:`batch_loss`."""
    return batch_loss(*_vanilla(leaves, phi), y, mask, batch)
