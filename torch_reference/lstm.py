"""The LSTM step in PyTorch, equations (13)–(16): the twin of manual_bptt/lstm.py.

Torch operations only, so that autograd, not anyone here, derives the backward pass.
Gate blocks in torch.nn.LSTM's order [i; f; g; q] (torch's i, f, g, o).
"""

from __future__ import annotations

import numpy as np
import torch

from manual_bptt.lstm import LSTMParams
from torch_reference.network import CellLeaves


def step(
    leaves: CellLeaves, state: tuple[torch.Tensor, ...], t: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step, (h_{t−1}, s_{t−1}) (N, H) each → (h_t, s_t)."""
    h, s = state
    w = leaves.weights
    A = w["b"] + h @ leaves.transposed("W") + leaves.input_term(t)  # (13)
    a_i, a_f, a_g, a_q = A.chunk(4, dim=-1)
    i, f, g, q = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.tanh(a_g), torch.sigmoid(a_q)  # (14)
    s = f * s + i * g  # (15)
    return q * torch.tanh(s), s  # (16)


def layer_vjp(
    params: LSTMParams,
    x: np.ndarray,
    h0: np.ndarray,
    c0: np.ndarray,
    dh: np.ndarray,
    ds_last: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The LSTM layer's states and autograd's vector–Jacobian product with upstream dh.

    x (T, N, D) float, h0 and c0 (N, H), dh (T, N, H), ds_last (N, H) or None (zero)
    → h (T, N, H) by (13)–(16), the last cell state s_{T−1} (N, H), and the gradients
    of Σ dh ⊙ h + Σ ds_last ⊙ s_{T−1}: {"U" (4H, D), "W" (4H, H), "b" (4H,),
    "h0" (N, H), "c0" (N, H), "x" (T, N, D)}. With T = 1 and ds_last given this is one
    step seen from above (CS231n's lstm_step_backward, whose dnext_c is ds_last); with
    ds_last None, the layer alone (lstm_backward), as hidden_states_vjp is for the
    vanilla cell. Gates in this project's (torch's) order i, f, g, o.
    """
    leaf = {
        "U": params.U,
        "W": params.W,
        "b": params.b,
        "h0": h0,
        "c0": c0,
        "x": x,
    }
    t = {
        k: torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=True)
        for k, v in leaf.items()
    }
    h, s = t["h0"], t["c0"]
    states = []
    for step_x in t["x"]:
        A = t["b"] + h @ t["W"].t() + step_x @ t["U"].t()  # (13)
        a_i, a_f, a_g, a_q = A.chunk(4, dim=-1)
        i, f, g, q = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.tanh(a_g), torch.sigmoid(a_q)
        s = f * s + i * g  # (15)
        h = q * torch.tanh(s)  # (16)
        states.append(h)
    stacked = torch.stack(states)
    total = (stacked * torch.tensor(np.asarray(dh, dtype=np.float64))).sum()
    if ds_last is not None:
        total = total + (s * torch.tensor(np.asarray(ds_last, dtype=np.float64))).sum()
    total.backward()
    grads = {}
    for k, v in t.items():
        assert v.grad is not None  # every input reaches h (x, U, b through every gate)
        grads[k] = v.grad.numpy()
    dtype = params.U.dtype  # computed in float64, returned in the parameters' dtype
    return (
        stacked.detach().numpy().astype(dtype),
        s.detach().numpy().astype(dtype),
        {k: g.astype(dtype) for k, g in grads.items()},
    )
