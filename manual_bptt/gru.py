"""The GRU cell: its parameters, its forward step and its backward step, equations (25)–(33).

Laid out exactly as ``torch.nn.GRU``: the three gate blocks of U, W and of the two
biases are stacked in torch's order (reset r, update z, candidate n), so that
U = weight_ih_l0, W = weight_hh_l0, b = bias_ih_l0 and bh = bias_hh_l0. The two
biases cannot be merged here, as they can for the LSTM: bh_n sits inside the reset
gate's product.

    (25) r_t = σ(U_r x_t + b_r + W_r h_{t−1} + bh_r)
         z_t = σ(U_z x_t + b_z + W_z h_{t−1} + bh_z)
    (26) reset="after" (torch's, the default):
             n_t = tanh(U_n x_t + b_n + r_t ⊙ m_t),          m_t = W_n h_{t−1} + bh_n
         reset="before" (Cho et al. 2014, and the WildML tutorial's GRU):
             n_t = tanh(U_n x_t + b_n + W_n p_t + bh_n),      p_t = r_t ⊙ h_{t−1}
    (27) h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}

The variant is a field of the parameters (``GRUParams.reset``): it says what the
weights mean, so it travels with them. The backward step maps the gradient reaching
h_t to the pre-activation gradients of step t and the gradient reaching h_{t−1};
truncation.py runs it for any truncation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from manual_bptt.activations import sigmoid
from manual_bptt.linear import input_term, rows_matmul
from manual_bptt.params import CellParams, check_arrays, check_gated_shapes

Array = NDArray[np.floating]
GATES = ("r", "z", "n")  # torch's order
RESETS = ("after", "before")


@dataclass(frozen=True)
class GRUParams(CellParams):
    """U (3H, D), W (3H, H), b (3H,), bh (3H,), V (K, H), c (K,), and the variant.

    Gate blocks of rows in torch.nn.GRU's order: [r; z; n], each H rows, so
    U = weight_ih_l0, W = weight_hh_l0, b = bias_ih_l0, bh = bias_hh_l0; V and c are
    the output layer (3). ``reset`` is "after" (torch's: r ⊙ (W_n h + bh_n)) or
    "before" (Cho et al.'s: W_n (r ⊙ h) + bh_n). Checked on construction, never written to.
    """

    NAMES: ClassVar[tuple[str, ...]] = ("U", "W", "b", "bh", "V", "c")
    CELL: ClassVar[str] = "gru"
    GATE_COUNT: ClassVar[int] = len(GATES)
    U: Array
    W: Array
    b: Array
    bh: Array
    V: Array
    c: Array
    reset: str = "after"

    def __post_init__(self) -> None:
        check_arrays(self, self.NAMES)
        check_gated_shapes("GRUParams", self.as_dict(), 3)
        if self.reset not in RESETS:
            raise ValueError(f"GRUParams.reset must be one of {RESETS}; got {self.reset!r}")


@dataclass(frozen=True)
class GRUCache:
    """What the forward pass keeps for the backward pass, time-major, batched.

    Attributes:
        gates: [r; z; n] after their nonlinearities (25)–(26), (T, N, 3H).
        inner: m_t = W_n h_{t−1} + bh_n (reset="after") or p_t = r_t ⊙ h_{t−1}
            ("before"), (T, N, H): what the reset gate multiplies, and what W_n meets.
        h_prev: the state entering each step, h_{t−1}, (T, N, H); h_prev[0] is h0.
        h: h_t, (T, N, H).
        o: logits o_t, (T, N, K).
    """

    gates: Array
    inner: Array
    h_prev: Array
    h: Array
    o: Array


def run_forward(params: GRUParams, x: NDArray[np.number], h0: Array, tokens: bool) -> GRUCache:
    """Equations (25)–(27) and (3) on checked, batched inputs.

    x: float (T, N, D) or token ids (T, N); h0: (N, H). Returns the GRUCache.
    """
    T, N, H = x.shape[0], x.shape[1], params.H
    gates = input_term(params, x, tokens)  # U x_t for all t: a fresh (T, N, 3H) array
    gates += params.b
    h = np.empty((T + 1, N, H), dtype=gates.dtype)  # h[0] = h0, h[t + 1] = h_t
    h[0] = h0
    inner = np.empty((T, N, H), dtype=gates.dtype)
    # W h_{t−1} as the row product h_{t−1} @ Wᵀ, with Wᵀ copied to C order once (as for
    # the vanilla cell: docs/performance.md), all three blocks in one product ("after")
    WT = np.ascontiguousarray(params.W.T)  # (H, 3H)
    for t in range(T):
        inner[t], h[t + 1] = forward_step(params, gates[t], h[t], WT)
    o = rows_matmul(h[1:], params.V.T)  # (3)
    o += params.c
    return GRUCache(gates, inner, h[:-1], h[1:], o)


def forward_step(params: GRUParams, A: Array, h_prev: Array, WT: Array) -> tuple[Array, Array]:
    """One step for N sequences, (25)–(27).

    A (N, 3H) holds U x_t + b on entry and the gates [r; z; n] on return (it is the
    forward pass's own array, overwritten in place); h_prev (N, H); WT is Wᵀ (H, 3H) in
    C order. Returns (m_t or p_t, h_t), each (N, H): what the reset gate multiplies,
    and the new state.
    """
    H = h_prev.shape[-1]
    bh = params.bh
    if params.reset == "after":
        hidden = h_prev @ WT  # [W_r; W_z; W_n] h_{t−1}, all three blocks at once
        hidden += bh
    else:
        hidden = h_prev @ WT[:, : 2 * H]  # W_n meets p_t, not h_{t−1}
        hidden += bh[: 2 * H]
    A[:, : 2 * H] = sigmoid(A[:, : 2 * H] + hidden[:, : 2 * H])  # (25) r, z
    r, z = A[:, :H], A[:, H : 2 * H]
    if params.reset == "after":
        inner = hidden[:, 2 * H :]  # m_t = W_n h_{t−1} + bh_n
        A[:, 2 * H :] = np.tanh(A[:, 2 * H :] + r * inner)  # (26) after
    else:
        inner = r * h_prev  # p_t
        A[:, 2 * H :] = np.tanh(A[:, 2 * H :] + inner @ WT[:, 2 * H :] + bh[2 * H :])  # (26) before
    return inner, (1.0 - z) * A[:, 2 * H :] + z * h_prev  # (27)


def backward_step(
    params: GRUParams, cache: GRUCache, lo: int, hi: int, d_state: tuple[Array, ...]
) -> tuple[Array, Array, tuple[Array, ...]]:
    """Back through steps lo … hi−1 at once, each on its own incoming gradient.

    d_state = (ε,) with ε (hi−lo, N, H) the gradient reaching h_t. Returns (δ, δ̃, (ε',)):
    δ (hi−lo, N, 3H) the gradient of the input-side pre-activations (U x_t + b), δ̃ that
    of the hidden-side ones (W h_{t−1} + bh, or W_n p_t + bh_n), and ε' the gradient
    reaching h_{t−1}.
    """
    (eh,) = d_state
    H = params.H
    gates = cache.gates[lo:hi]
    r, z, n = (gates[..., k * H : (k + 1) * H] for k in range(3))
    h_prev, inner = cache.h_prev[lo:hi], cache.inner[lo:hi]
    delta = np.empty_like(gates)  # input side [δ^r; δ^z; δ^n]
    dn = delta[..., 2 * H :]
    np.multiply(eh * (1.0 - z), 1.0 - n * n, out=dn)  # (29) δ^n_t
    delta[..., H : 2 * H] = eh * (h_prev - n) * z * (1.0 - z)  # (29) δ^z_t
    eh_prev = eh * z  # (32) the direct path z_t ⊙ ε_t
    if params.reset == "after":
        delta[..., :H] = dn * inner * r * (1.0 - r)  # (30a) δ^r_t, inner = m_t
        delta_h = delta.copy()
        delta_h[..., 2 * H :] *= r  # (30a) hidden side of n: r_t ⊙ δ^n_t
        eh_prev += rows_matmul(delta_h, params.W)  # (32a) Wᵀ δ̃_t
    else:
        dp = rows_matmul(dn, params.W[2 * H :])  # (30b) ∂L/∂p_t = W_nᵀ δ^n_t
        delta[..., :H] = dp * h_prev * r * (1.0 - r)  # (30b) δ^r_t
        delta_h = delta  # (30b) the hidden side equals the input side
        eh_prev += rows_matmul(delta[..., : 2 * H], params.W[: 2 * H]) + dp * r  # (32b)
    return delta, delta_h, (eh_prev,)


def grad_W(params: GRUParams, cache: GRUCache, delta_h: Array) -> Array:
    """(31) ∂L/∂W, (3H, H): Σ_t δ̃_t h_{t−1}ᵀ ("after"); for "before" the n rows meet
    p_t = r_t ⊙ h_{t−1} instead: Σ_t δ^n_t p_tᵀ."""
    H = params.H
    if params.reset == "after":
        dW: Array = rows(delta_h).T @ rows(cache.h_prev)
        return dW
    return np.concatenate(
        [
            rows(delta_h[..., : 2 * H]).T @ rows(cache.h_prev),
            rows(delta_h[..., 2 * H :]).T @ rows(cache.inner),
        ]
    )


def w_inputs(params: GRUParams, cache: GRUCache) -> list[tuple[slice, Array]]:
    """Which rows of W meet which state in ∂L/∂W = Σ_t δ̃_t z_tᵀ, as grad_W sums them:
    every row meets h_{t−1}, except in the "before" variant, where (31) the n rows meet
    p_t = r_t ⊙ h_{t−1} (cache.inner)."""
    if params.reset == "after":
        return [(slice(None), cache.h_prev)]
    H = params.H
    return [(slice(0, 2 * H), cache.h_prev), (slice(2 * H, 3 * H), cache.inner)]


def rows(arr: Array) -> Array:
    """(T, N, X) → (T·N, X): one row per (step, sequence)."""
    return arr.reshape(-1, arr.shape[-1])
