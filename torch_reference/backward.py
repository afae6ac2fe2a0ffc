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

from manual_bptt.inputs import Options, prepare
from manual_bptt.params import Params
from manual_bptt.result import BPTTResult
from torch_reference.activations import ACTIVATIONS
from torch_reference.network import as_tensor, make_leaves
from torch_reference.truncation import chunked_loss, window_loss

if TYPE_CHECKING:
    from typing_extensions import Unpack


def bptt(
    params: Params,
    x: ArrayLike,
    y: ArrayLike,
    **options: Unpack[Options],
) -> BPTTResult:
    """Loss and gradients by torch.autograd; arguments, shapes and result exactly as
    :func:`manual_bptt.bptt`.

    Truncation is realised with ``detach`` (see truncation.py). Arrays cross the
    boundary as copies: NumPy in, NumPy out, in the parameters' dtype.
    """
    batch = prepare(params, x, y, **options)
    leaves = make_leaves(params, batch)
    phi = ACTIVATIONS[batch.activation.name]
    y_t = as_tensor(batch.y, dtype=torch.long)
    mask_t = as_tensor(batch.mask)
    if batch.truncate is not None:
        total = window_loss(leaves, phi, y_t, mask_t, batch.truncate)
    else:
        total = chunked_loss(leaves, phi, y_t, mask_t, batch.chunk)
    loss = total * batch.loss_scale
    loss.backward()
    grads = {}
    for name in ("U", "W", "V", "b", "c", "h0", "x"):
        leaf = getattr(leaves, name)
        if leaf is None:
            continue
        g = leaf.grad
        grads[name] = np.zeros_like(leaf.detach().numpy()) if g is None else g.numpy()
    return BPTTResult.from_batched(batch, loss.item(), grads)
