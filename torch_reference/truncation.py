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

import torch

from torch_reference.crossentropy import step_loss
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
    dtype: torch.dtype,
) -> torch.Tensor:
    """Σ_t E_t over the states yielded, the t-th being the state after step t (h_t first).

    E_t is the masked cross-entropy (4)–(5) of the logits o_t = readout(h_t) (3) against
    y[t] with weights mask[t] (y, mask: (T, N) or (T,)). Each state is drawn only after
    the previous step's loss; overflow is reported as in the forward pass.
    """
    total = torch.zeros((), dtype=dtype)
    overflow = Overflow()
    for t, state in enumerate(states):
        o = readout(state[0])
        overflow.see(t, state[0], o)
        total = total + step_loss(o, y[t], mask[t])
    overflow.report()
    return total


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

    return _summed_loss(states(), readout, y, mask, state0[0].dtype)


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

    return _summed_loss(windows(), readout, y, mask, state0[0].dtype)


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
