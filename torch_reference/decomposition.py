"""Per-(loss, step) contributions by autograd: the twin of manual_bptt/vanishing/decomposition.py.

Independent of the manual code: θ is given one copy per step, θ_k, each used at its own
step only, so ∂E_t/∂θ_k (one autograd call per loss) is exactly the part of ∂E_t/∂θ
that enters through step k. Truncation is realised with ``detach`` as in truncation.py:
each loss E_t is recomputed from the state entering its first reachable step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from numpy.typing import ArrayLike

from manual_bptt.inputs import Batch, Options, prepare
from manual_bptt.params import Params
from torch_reference.activations import ACTIVATIONS
from torch_reference.crossentropy import step_loss
from torch_reference.network import Leaves, Overflow, as_tensor, logits, make_leaves, step

if TYPE_CHECKING:
    from typing_extensions import Unpack

# The names param= accepts (written out again here, as manual_bptt's are, and refused
# with the same message).
PARAMS = ("U", "W", "V", "b", "c", "h0", "x")


def first_step_reached(t: int, batch: Batch) -> int:
    """The first step loss E_t backpropagates into (its own statement of the README's
    truncations, so that the twin shares no logic with manual_bptt here)."""
    if batch.truncate is not None:
        return max(0, t - batch.truncate)  # the window t−k … t
    if batch.chunk is not None:
        return t - t % batch.chunk  # the start of t's chunk
    return 0


def contributions(
    params: Params,
    x: ArrayLike,
    y: ArrayLike,
    *,
    param: str = "U",
    **options: Unpack[Options],
) -> np.ndarray:
    """Same arguments, shapes and meaning as manual_bptt.contributions."""
    if param not in PARAMS:
        raise ValueError(f"param must be one of {PARAMS}; got {param!r}")
    batch = prepare(params, x, y, **options)
    if param == "x" and batch.tokens:
        raise ValueError('param="x" needs float inputs; token ids have no gradient')
    T = batch.T
    base = make_leaves(params, batch)
    phi = ACTIVATIONS[batch.activation.name]
    y_t = as_tensor(batch.y, dtype=torch.long)
    mask_t = as_tensor(batch.mask)
    per_step = param in ("U", "W", "V", "b", "c")
    copies = (
        [getattr(base, param).detach().clone().requires_grad_() for _ in range(T)]
        if per_step
        else []
    )

    def leaves_at(k: int) -> Leaves:
        if not per_step:
            return base
        fields: dict[str, Any] = {**base.__dict__, param: copies[k]}
        return Leaves(**fields)

    states = [base.h0]  # one ordinary forward pass; windows detach where they start
    for t in range(T):
        states.append(step(base, phi, states[-1], t))
    target = base.x if param == "x" else base.h0
    assert target is not None  # x of token ids was refused above
    shape = tuple(getattr(params, param).shape) if per_step else tuple(target.shape)[-2:]
    out = np.zeros((T, T, *shape), dtype=params.dtype)
    overflow = Overflow()
    for t in range(T):
        start = first_step_reached(t, batch)
        h = base.h0 if start == 0 else states[start].detach()
        for s in range(start, t + 1):
            h = step(leaves_at(s), phi, h, s)
        o = logits(leaves_at(t), h)
        overflow.see(t, h, o)
        E_t = step_loss(o, y_t[t], mask_t[t]) * batch.loss_scale
        if per_step:
            grads = torch.autograd.grad(E_t, copies, allow_unused=True)
            for k, g in enumerate(grads):
                if g is not None:
                    out[t, k] = g.numpy()
        else:
            (g,) = torch.autograd.grad(E_t, [target], allow_unused=True)
            if g is None:
                continue
            if param == "x":
                out[t] = g.numpy()  # x (T, N, D): x_k is used at step k only
            else:
                out[t, 0] = g.numpy()  # h0 enters at step 0 only
    overflow.report()
    if param in ("x", "h0") and not batch.batched:
        return out[:, :, 0]  # drop N = 1, as manual_bptt.contributions does
    return out
