"""Truncated losses built with autograd's own means (``detach``), not with manual code.

Each function returns the scalar whose gradient (by ``.backward()``) is the truncated
gradient of the README's definitions; its value is the loss L itself, since detaching
a state changes no value, only which paths the gradient may take.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from torch_reference.crossentropy import step_loss
from torch_reference.network import Leaves, Overflow, logits, step

Phi = Callable[[torch.Tensor], torch.Tensor]


def chunked_loss(
    leaves: Leaves, phi: Phi, y: torch.Tensor, mask: torch.Tensor, chunk: int | None
) -> torch.Tensor:
    """Σ_t E_t with the state detached at the start of every chunk [0,k), [k,2k), ….

    chunk=None never detaches: full BPTT. The state is carried forward (its value
    flows on), only its gradient is cut, as frameworks do between chunks.
    """
    T = y.shape[0]
    h = leaves.h0
    total = torch.zeros((), dtype=h.dtype)
    overflow = Overflow()
    for t in range(T):
        if chunk is not None and t > 0 and t % chunk == 0:
            h = h.detach()
        h = step(leaves, phi, h, t)
        o = logits(leaves, h)
        overflow.see(t, h, o)
        total = total + step_loss(o, y[t], mask[t])
    overflow.report()
    return total


def window_loss(
    leaves: Leaves, phi: Phi, y: torch.Tensor, mask: torch.Tensor, truncate: int
) -> torch.Tensor:
    """Σ_t E_t where E_t reaches steps t, t−1, …, max(0, t−k) only.

    For each loss E_t the steps max(0, t−k) … t are run again from the state entering
    them, detached unless that state is h0 itself (a window that reaches step 0 passes
    its gradient into h0). O(T·k) steps: simple, not fast.
    """
    T = y.shape[0]
    states = [leaves.h0]  # h_{−1}, h_0, …: one ordinary forward pass, graph and all
    for t in range(T):
        states.append(step(leaves, phi, states[-1], t))
    total = torch.zeros((), dtype=leaves.h0.dtype)
    overflow = Overflow()
    for t in range(T):
        start = max(0, t - truncate)
        h = leaves.h0 if start == 0 else states[start].detach()
        for s in range(start, t + 1):
            h = step(leaves, phi, h, s)
        o = logits(leaves, h)
        overflow.see(t, h, o)
        total = total + step_loss(o, y[t], mask[t])
    overflow.report()
    return total
