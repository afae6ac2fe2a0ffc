"""``bptt`` by autograd: the twin of manual_bptt/backward.py.

The boundary (argument checks, batching, the result type) is shared with manual_bptt
on purpose, so that both faces accept the same inputs and return the same thing; the
computation is not: nothing here calls manual_bptt's network, loss or backward.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from numpy.typing import ArrayLike

from manual_bptt.inputs import Batch, Options, prepare
from manual_bptt.params import CellParams, Params
from manual_bptt.result import GRAD_NAMES, BPTTResult
from torch_reference.activations import ACTIVATIONS
from torch_reference.cells import twin_step
from torch_reference.network import as_tensor, make_cell_leaves, make_leaves
from torch_reference.truncation import batch_loss, vanilla_loss

if TYPE_CHECKING:
    from typing_extensions import Unpack


def _grad(leaf: torch.Tensor) -> np.ndarray:
    """The leaf's gradient; zeros when no loss reaches it (TBPTT(k1, k2) with k2 < k1
    can leave h0, and even U, W, b, unreached: their gradient is then 0, not None)."""
    g = leaf.grad
    return (
        np.zeros(tuple(leaf.shape), dtype=np.float64 if leaf.dtype == torch.float64 else np.float32)
        if g is None
        else g.numpy()
    )


def gated_bptt(params: CellParams, batch: Batch) -> BPTTResult:
    """A gated cell's loss and gradients by autograd, on a checked batch: the LSTM's,
    the GRU's, or any registered cell's by its twin's step (torch_reference.cells)."""
    leaves = make_cell_leaves(params, batch, keep=True)
    cell_step = twin_step(params, leaves)

    y_t = as_tensor(batch.y, dtype=torch.long)
    mask_t = as_tensor(batch.mask)
    state0 = leaves.initial_state()
    total = batch_loss(cell_step, leaves.logits, state0, y_t, mask_t, batch)
    loss = total * batch.loss_scale
    loss.backward()
    grads = {name: _grad(leaf) for name, leaf in leaves.weights.items()}
    grads["h0"] = _grad(leaves.h0)
    if leaves.c0 is not None:
        grads["c0"] = _grad(leaves.c0)
    if leaves.x is not None:
        grads["x"] = _grad(leaves.x)
    return BPTTResult.from_batched(batch, loss.item(), grads)


def bptt(
    params: CellParams,
    x: ArrayLike,
    y: ArrayLike,
    **options: Unpack[Options],
) -> BPTTResult:
    """Loss and gradients by torch.autograd; arguments, shapes and result exactly as
    :func:`manual_bptt.bptt`, for every cell (by the parameters' type).

    Truncation is realised with ``detach`` (see truncation.py). Arrays cross the
    boundary as copies: NumPy in, NumPy out, in the parameters' dtype.
    """
    batch = prepare(params, x, y, **options)
    if not isinstance(params, Params):
        return gated_bptt(params, batch)
    leaves = make_leaves(params, batch, keep=True)
    phi = ACTIVATIONS[batch.activation.name]
    y_t = as_tensor(batch.y, dtype=torch.long)
    mask_t = as_tensor(batch.mask)
    total = vanilla_loss(leaves, phi, y_t, mask_t, batch)
    loss = total * batch.loss_scale
    loss.backward()
    grads = {}
    for name in GRAD_NAMES:
        leaf = getattr(leaves, name)
        if leaf is not None:
            grads[name] = _grad(leaf)
    return BPTTResult.from_batched(batch, loss.item(), grads)
