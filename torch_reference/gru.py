"""The GRU step in PyTorch, equations (25)–(27): the twin of manual_bptt/gru.py.

Torch operations only, so that autograd, not anyone here, derives the backward pass.
Gate blocks in torch.nn.GRU's order [r; z; n]; both reset variants (GRUParams.reset).
"""

from __future__ import annotations

import torch

from torch_reference.network import CellLeaves


def step(
    leaves: CellLeaves, reset: str, state: tuple[torch.Tensor, ...], t: int
) -> tuple[torch.Tensor]:
    """One step, (h_{t−1},) (N, H) → (h_t,), with the reset gate applied ``reset`` the
    product with W_n ("after", torch's; "before", Cho et al.'s)."""
    (h,) = state
    w = leaves.weights
    x_r, x_z, x_n = (leaves.input_term(t) + w["b"]).chunk(3, dim=-1)
    # W_r, W_z, W_n transposed, and bh's blocks: made once per forward pass
    W_r, W_z, W_n = leaves.once("W blocks", lambda: tuple(b.t() for b in w["W"].chunk(3, dim=0)))
    bh_r, bh_z, bh_n = leaves.once("bh blocks", lambda: w["bh"].chunk(3))
    r = torch.sigmoid(x_r + h @ W_r + bh_r)  # (25)
    z = torch.sigmoid(x_z + h @ W_z + bh_z)  # (25)
    if reset == "after":
        n = torch.tanh(x_n + r * (h @ W_n + bh_n))  # (26) after
    else:
        n = torch.tanh(x_n + (r * h) @ W_n + bh_n)  # (26) before
    return ((1 - z) * n + z * h,)  # (27)
