"""The vanilla cell: its forward pass (1)–(3) and its backward step (7), beside lstm.py
and gru.py.

    (1) a_t = b + W h_{t−1} + U x_t          (N, H)
    (2) h_t = φ(a_t)
    (3) o_t = c + V h_t                       (N, K)

Its parameters are :class:`manual_bptt.params.Params` (U, W, V, b, c). The backward
step is what :mod:`manual_bptt.truncation` runs for any cell; bptt itself uses the
vanilla cell's lag-batched form of the same recurrence (truncation.deltas), which is
faster, and the two are tested against each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from manual_bptt.activations import Activation
from manual_bptt.linear import input_term, rows_matmul
from manual_bptt.params import Params

Array = NDArray[np.floating]

# How many numbers of a and h forward_pass hands to φ' at once (docs/performance.md: why).
DPHI_BLOCK = 1 << 16


@dataclass(frozen=True)
class Cache:
    """What the forward pass keeps for the backward pass (batched, time-major).

    Attributes:
        a: pre-activations a_t, (T, N, H); None unless asked for (backward needs only
            φ'(a_t), which is written over a_t, so that bptt's peak memory stays down).
        h: hidden states h_t, (T, N, H); h[t] is the state after step t.
        h_prev: the state entering each step, h_{t−1}, (T, N, H); h_prev[0] is h0.
        dphi: φ'(a_t), (T, N, H).
        o: logits o_t, (T, N, K).
    """

    a: NDArray[np.floating] | None
    h: NDArray[np.floating]
    h_prev: NDArray[np.floating]
    dphi: NDArray[np.floating]
    o: NDArray[np.floating]


def forward_pass(
    params: Params,
    x: NDArray[np.number],
    h0: NDArray[np.floating],
    tokens: bool,
    act: Activation,
    *,
    keep_a: bool = False,
) -> Cache:
    """Equations (1)–(3) for every step on checked, batched inputs: x float (T, N, D) or
    token ids (T, N), h0 (N, H). φ'(a_t) is taken during the loop, for the last few
    steps at a time (about DPHI_BLOCK numbers); unless ``keep_a`` it is written over
    a_t, which nothing needs after that. Numpy's overflow warnings are the caller's to
    silence (network.run_forward does, and reports overflow once)."""
    T, N = x.shape[0], x.shape[1]
    # (1) a_t = b + W h_{t−1} + U x_t: the U x_t + b part for all t in one product.
    a = input_term(params, x, tokens)  # a fresh array, so adding in place is safe
    a += params.b
    # states[0] = h_{−1} = h0 and states[t + 1] = h_t, so that h and h_{t−1} are two
    # views of one array.
    states = np.empty((T + 1, N, params.H), dtype=a.dtype)
    states[0] = h0
    dphi = np.empty_like(a) if keep_a else a
    block = max(1, DPHI_BLOCK // (N * params.H))  # steps per φ' call
    # W h_{t−1} as the row product h_{t−1} @ Wᵀ, with Wᵀ copied to C order once
    # (docs/performance.md: why).
    WT = np.ascontiguousarray(params.W.T)
    recurrent = np.empty_like(a[0])  # W h_{t−1}, reused every step
    for t in range(T):
        np.matmul(states[t], WT, out=recurrent)
        a[t] += recurrent  # a is our own array: adding in place changes no argument
        states[t + 1] = act.phi(a[t])  # (2) h_t = φ(a_t)
        if (t + 1) % block == 0 or t == T - 1:  # φ'(a_s) for the steps s since the last
            s = t - t % block
            dphi[s : t + 1] = act.dphi(a[s : t + 1], states[s + 1 : t + 2])  # may replace a
    h = states[1:]
    o = rows_matmul(h, params.V.T)  # (3) o_t = c + V h_t, all t in one product
    o += params.c
    return Cache(a=a if keep_a else None, h=h, h_prev=states[:-1], dphi=dphi, o=o)


def backward_step(
    params: Params, cache: Cache, lo: int, hi: int, d_state: tuple[Array, ...]
) -> tuple[Array, Array, tuple[Array, ...]]:
    """Back through steps lo … hi−1 at once, each on its own incoming gradient.

    d_state = (ε^h,), (hi−lo, N, H): the gradient reaching h_t. Returns (δ, δ,
    (Wᵀ δ,)): δ_t = ε^h_t ⊙ φ'(a_t), (7) without the sum over losses, the pre-activation
    gradient of both the input side and the hidden side of (1), and the part of the
    gradient reaching h_{t−1} that comes through W.
    """
    delta = d_state[0] * cache.dphi[lo:hi]  # (7)
    return delta, delta, (rows_matmul(delta, params.W),)


def grad_W(params: Params, cache: Cache, delta_h: Array) -> Array:
    """(11) ∂L/∂W = Σ_t δ_t h_{t−1}ᵀ, (H, H)."""
    dW: Array = rows(delta_h).T @ rows(cache.h_prev)
    return dW


def rows(arr: Array) -> Array:
    """(T, N, X) → (T·N, X): one row per (step, sequence)."""
    return arr.reshape(-1, arr.shape[-1])
