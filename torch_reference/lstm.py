"""The LSTM step in PyTorch, equations (13)–(16): the twin of manual_bptt/lstm.py.

Torch operations only, so that autograd, not anyone here, derives the backward pass.
Gate blocks in torch.nn.LSTM's order [i; f; g; q] (torch's i, f, g, o).
"""

from __future__ import annotations

import torch

from torch_reference.network import CellLeaves


def step(
    leaves: CellLeaves, state: tuple[torch.Tensor, ...], t: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step, (h_{t−1}, s_{t−1}) (N, H) each → (h_t, s_t)."""
    h, s = state
    w = leaves.weights
    A = w["b"] + h @ w["W"].t() + leaves.input_term(t)  # (13)
    a_i, a_f, a_g, a_q = A.chunk(4, dim=-1)
    i, f, g, q = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.tanh(a_g), torch.sigmoid(a_q)  # (14)
    s = f * s + i * g  # (15)
    return q * torch.tanh(s), s  # (16)
