"""The LSTM cell: its parameters, its forward step and its backward step, equations (13)–(24).

Laid out exactly as ``torch.nn.LSTM``: the four gate blocks of U, W and b are stacked
in torch's order (input i, forget f, candidate g, output q), so that U = weight_ih_l0,
W = weight_hh_l0 and b = bias_ih_l0 + bias_hh_l0. The output gate is written q, as in
Goodfellow et al. §10.10.1, because o_t is already the logits (3).

    (13) A_t = b + W h_{t−1} + U x_t = [a^i; a^f; a^g; a^q]         (N, 4H)
    (14) i_t = σ(a^i), f_t = σ(a^f), g_t = tanh(a^g), q_t = σ(a^q)
    (15) s_t = f_t ⊙ s_{t−1} + i_t ⊙ g_t                            the cell state
    (16) h_t = q_t ⊙ tanh(s_t)

The state entering step 0 is (h0, c0) (torch's names), zeros by default. The
output layer and loss are the vanilla cell's, (3)–(6). The backward step maps the
gradient reaching the state (h_t, s_t) to the pre-activation gradient δ_t = ∂L/∂A_t
and the gradient reaching (h_{t−1}, s_{t−1}); truncation.py runs it for any truncation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from manual_bptt.linear import input_term, rows_matmul
from manual_bptt.params import CellParams, check_arrays, check_gated_shapes

Array = NDArray[np.floating]
GATES = ("i", "f", "g", "q")  # torch's order (its i, f, g, o)


@dataclass(frozen=True)
class LSTMParams(CellParams):
    """U (4H, D), W (4H, H), b (4H,), V (K, H), c (K,): one floating dtype for all.

    Gate blocks of rows in torch.nn.LSTM's order: [i; f; g; q], each H rows, so
    U = weight_ih_l0, W = weight_hh_l0, b = bias_ih_l0 + bias_hh_l0; V and c are the
    output layer (3). Checked on construction (shapes, dtype, finite), never written to.
    """

    NAMES: ClassVar[tuple[str, ...]] = ("U", "W", "b", "V", "c")
    CELL: ClassVar[str] = "lstm"
    STATE: ClassVar[tuple[str, ...]] = ("h", "s")  # s: the cell state, (15)
    GATE_COUNT: ClassVar[int] = len(GATES)
    U: Array
    W: Array
    b: Array
    V: Array
    c: Array

    def __post_init__(self) -> None:
        check_arrays(self, self.NAMES)
        check_gated_shapes("LSTMParams", self.as_dict(), 4)


@dataclass(frozen=True)
class LSTMCache:
    """What the forward pass keeps for the backward pass, time-major, batched.

    Attributes:
        gates: [i; f; g; q] after their nonlinearities (14), (T, N, 4H).
        tanh_s: tanh(s_t), (T, N, H).
        s_prev: the cell state entering each step, s_{t−1}, (T, N, H); s_prev[0] is c0.
        h_prev: the hidden state entering each step, h_{t−1}, (T, N, H); h_prev[0] is h0.
        h: h_t, (T, N, H).
        s: s_t, (T, N, H).
        o: logits o_t, (T, N, K).
    """

    gates: Array
    tanh_s: Array
    s_prev: Array
    h_prev: Array
    h: Array
    s: Array
    o: Array


def gate_scale(H: int, dtype: np.dtype) -> tuple[Array, Array]:
    """(α, 1 − α), each (4H,): α is ½ in the blocks of i, f and q and 1 in the block of
    g, so that (14) is one tanh over all four blocks: α ⊙ tanh(α ⊙ A) + (1 − α) is
    σ(a) = (1 + tanh(a/2))/2 where α = ½ (activations.sigmoid's form, to the bit) and
    tanh(a) where α = 1."""
    alpha = np.full(4 * H, 0.5, dtype=dtype)
    alpha[2 * H : 3 * H] = 1.0
    return alpha, 1.0 - alpha


def forward_step(
    A: Array,
    WT: Array,
    scale: tuple[Array, Array],
    prev: tuple[Array, Array],
    out: tuple[Array, Array, Array],
) -> None:
    """One step for N sequences, (13)–(16).

    A (N, 4H) holds U x_t + b on entry and the gates [i; f; g; q] on return (it is the
    forward pass's own array, overwritten in place); WT is Wᵀ (H, 4H); scale is
    :func:`gate_scale`; prev = (h_{t−1}, s_{t−1}), each (N, H). Writes s_t, tanh(s_t)
    and h_t into out = (s, tanh_s, h), each (N, H).
    """
    H = WT.shape[0]
    (h_prev, s_prev), (s, tanh_s, h), (alpha, shift) = prev, out, scale
    A += h_prev @ WT  # (13)
    A *= alpha  # (14) [i; f; g; q] = α ⊙ tanh(α ⊙ A) + (1 − α)
    np.tanh(A, out=A)
    A *= alpha
    A += shift
    i, f, g, q = (A[:, k * H : (k + 1) * H] for k in range(4))
    np.multiply(f, s_prev, out=s)  # (15) s_t = f ⊙ s_{t−1} + i ⊙ g
    s += i * g
    np.tanh(s, out=tanh_s)
    np.multiply(q, tanh_s, out=h)  # (16)


def run_forward(
    params: LSTMParams, x: NDArray[np.number], h0: Array, c0: Array, tokens: bool
) -> LSTMCache:
    """Equations (13)–(16) for every step, and (3), on checked, batched inputs.

    x: float (T, N, D) or token ids (T, N); h0, c0: (N, H). Returns the LSTMCache.
    """
    T, N, H = x.shape[0], x.shape[1], params.H
    gates = input_term(params, x, tokens)  # U x_t for all t: a fresh (T, N, 4H) array
    gates += params.b
    h = np.empty((T + 1, N, H), dtype=gates.dtype)  # h[0] = h0, h[t + 1] = h_t
    s = np.empty_like(h)
    h[0], s[0] = h0, c0
    tanh_s = np.empty((T, N, H), dtype=gates.dtype)
    WT = np.ascontiguousarray(params.W.T)
    scale = gate_scale(H, gates.dtype)
    for t in range(T):
        forward_step(gates[t], WT, scale, (h[t], s[t]), (s[t + 1], tanh_s[t], h[t + 1]))
    o = rows_matmul(h[1:], params.V.T)  # (3)
    o += params.c
    return LSTMCache(gates, tanh_s, s[:-1], h[:-1], h[1:], s[1:], o)


def backward_step(
    params: LSTMParams, cache: LSTMCache, lo: int, hi: int, d_state: tuple[Array, ...]
) -> tuple[Array, Array, tuple[Array, ...]]:
    """Back through steps lo … hi−1 at once, each on its own incoming gradient.

    d_state = (ε^h, ε^s_carried), each (hi−lo, L, H) for L = N: the gradient reaching
    h_t (from its loss and from step t+1), and the gradient reaching s_t from step t+1.
    Returns (δ, δ, (gradient reaching h_{t−1}, gradient reaching s_{t−1})): δ = ∂L/∂A_t
    (hi−lo, N, 4H) twice, as the input side and the hidden side of A_t are the same sum.
    """
    eh, es_carried = d_state
    H = params.H
    gates = cache.gates[lo:hi]
    i, f, g, q = (gates[..., k * H : (k + 1) * H] for k in range(4))
    tanh_s = cache.tanh_s[lo:hi]
    es = es_carried + eh * q * (1.0 - tanh_s * tanh_s)  # (18) ε^s_t
    delta = np.empty_like(gates)
    delta[..., :H] = es * g * i * (1.0 - i)  # (20) δ^i_t
    delta[..., H : 2 * H] = es * cache.s_prev[lo:hi] * f * (1.0 - f)  # (21) δ^f_t
    delta[..., 2 * H : 3 * H] = es * i * (1.0 - g * g)  # (22) δ^g_t
    delta[..., 3 * H :] = eh * tanh_s * q * (1.0 - q)  # (19) δ^q_t
    eh_prev = rows_matmul(delta, params.W)  # (17) the part Wᵀ δ_t of ε^h_{t−1}
    es_prev = es * f  # (18) the part ε^s_t ⊙ f_t of ε^s_{t−1}
    return delta, delta, (eh_prev, es_prev)


def grad_W(params: LSTMParams, cache: LSTMCache, delta_h: Array) -> Array:
    """(23) ∂L/∂W = Σ_t δ_t h_{t−1}ᵀ, (4H, H)."""
    dW: Array = rows(delta_h).T @ rows(cache.h_prev)
    return dW


def rows(arr: Array) -> Array:
    """(T, N, X) → (T·N, X): one row per (step, sequence)."""
    return arr.reshape(-1, arr.shape[-1])
