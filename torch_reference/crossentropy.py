"""The loss at one step in PyTorch, equation (5): the twin of manual_bptt/crossentropy.py."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def step_loss(o_t: torch.Tensor, y_t: torch.Tensor, m_t: torch.Tensor) -> torch.Tensor:
    """E_t = Σ_n m[t,n] · (−log softmax(o_t)[n, y[t,n]]) for o_t (N, K), y_t, m_t (N,).

    F.cross_entropy is torch's own stable log-softmax and negative log-likelihood.
    """
    return (F.cross_entropy(o_t, y_t, reduction="none") * m_t).sum()
