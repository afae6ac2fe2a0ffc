"""Which losses reach which steps: the δ recurrence (7) for full, chunked and window BPTT.

Every function here takes
    g     (T, N, H): ∂L/∂h_t through the output layer alone, Vᵀ ∂L/∂o_t,
    dphi  (T, N, H): φ'(a_t),
    W     (H, H),
and returns Δ (T, N, H), the total gradient that reaches the pre-activation a_t from
all the losses whose backward pass is allowed to reach step t:

    Δ_t = Σ_{losses E_s that reach step t} ∂E_s/∂a_t.

The parameter gradients are then the same sums for every kind of truncation (see
backward.py): only Δ changes. With E_s the masked loss at step s (scaled by s for
reduction="mean"), write δ^{(s)}_t = ∂E_s/∂a_t for one loss:

    δ^{(s)}_s = Vᵀ ∂E_s/∂o_s ⊙ φ'(a_s),   δ^{(s)}_t = Wᵀ δ^{(s)}_{t+1} ⊙ φ'(a_t).

In row-vector form (one row per sequence) Wᵀ δ is ``δ @ W``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]


def deltas_chunked(
    g: Array, dphi: Array, W: Array, chunk: int | None, *, out: Array | None = None
) -> Array:
    """Δ for full BPTT (chunk=None) or for chunks [0, k), [k, 2k), … (chunk=k).

    (7) δ_t = (Vᵀ ∂L/∂o_t + Wᵀ δ_{t+1}) ⊙ φ'(a_t), with δ_T = 0, and with the carried
    term Wᵀ δ_{t+1} cut (taken as 0) when step t+1 starts a chunk: a loss then reaches
    back to the start of its own chunk only. One pass backward in time: the losses at
    steps ≥ t are summed before they are multiplied by W, which is why full BPTT costs
    one product per step rather than one per (loss, step) pair.

    ``out`` may be g itself (each g_t is read once, before δ_t is written over it):
    backward.py does so to save one (T, N, H) array.
    """
    T = g.shape[0]
    k = T if chunk is None else chunk
    delta = np.empty_like(g) if out is None else out
    carry = np.zeros_like(g[0])  # Wᵀ δ_{t+1}, one buffer reused every step
    for t in range(T - 1, -1, -1):
        if (t + 1) % k == 0:  # step t+1 starts a new chunk (or t is the last step)
            carry.fill(0)
        np.add(g[t], carry, out=delta[t])
        delta[t] *= dphi[t]
        if t % k != 0:  # at a chunk's first step the carry would be cut: skip it
            np.matmul(delta[t], W, out=carry)
    return delta


def deltas_window(
    g: Array, dphi: Array, W: Array, truncate: int, *, out: Array | None = None
) -> Array:
    """Δ for window truncation: the loss at step s reaches steps s, s−1, …, max(0, s−k).

    Δ_t = Σ_{s = t}^{min(t + k, T − 1)} δ^{(s)}_t, computed lag by lag. For lag
    ℓ = s − t, let Λ^ℓ_t = δ^{(t+ℓ)}_t (the gradient of the loss ℓ steps later):

        Λ^0_t = g_t ⊙ φ'(a_t),   Λ^ℓ_t = (Wᵀ Λ^{ℓ−1}_{t+1}) ⊙ φ'(a_t),   Δ = Σ_ℓ Λ^ℓ.

    Each lag is one matrix product over all steps and sequences at once, so the Python
    loop runs min(k, T − 1) times rather than once per (loss, step) pair; the naive
    double loop in naive.py computes the same thing and the tests check they agree.
    The lags take turns in two buffers, so no array is allocated per lag.

    ``out`` may be g itself (Δ starts as Λ^0 = g ⊙ φ', written over g).
    """
    T, N, H = g.shape
    total = np.multiply(g, dphi, out=out)  # Δ, so far Λ^0
    lag_delta = total  # Λ^{ℓ−1}: read below before total changes
    lags = min(truncate, T - 1)
    buffers = [np.empty((T - 1, N, H), dtype=g.dtype) for _ in range(min(lags, 2))]
    for lag in range(1, lags + 1):
        # Λ^ℓ_t for t = 0 … T−1−ℓ comes from Λ^{ℓ−1}_{t+1}, t+1 = 1 … T−ℓ: one product
        # over all (T−ℓ)·N rows.
        rows = (T - lag) * N
        nxt = buffers[(lag - 1) % 2][: T - lag]
        np.matmul(lag_delta[1:].reshape(rows, H), W, out=nxt.reshape(rows, H))
        nxt *= dphi[: T - lag]
        total[: T - lag] += nxt
        lag_delta = nxt
    return total


def deltas(
    g: Array,
    dphi: Array,
    W: Array,
    truncate: int | None,
    chunk: int | None,
    *,
    overwrite_g: bool = False,
) -> Array:
    """Δ (T, N, H) for whichever truncation is asked for (at most one of the two).

    With ``overwrite_g`` Δ is written over g (saving memory).
    """
    out = g if overwrite_g else None
    if truncate is not None:
        return deltas_window(g, dphi, W, truncate, out=out)
    return deltas_chunked(g, dphi, W, chunk, out=out)


# Any cell: truncation written once over a cell's backward step.
#
# A cell's state may have several parts (h, and s for the LSTM). Its backward step
#     step(lo, hi, ε) → (δ, δ̃, ε')
# takes, for steps lo … hi−1 at once, the gradient ε reaching each part of the state
# leaving each step (a tuple of (hi−lo, N, H) arrays), and returns the gradients of
# that step's input-side and hidden-side pre-activations, δ and δ̃ (hi−lo, N, G·H), and
# the gradient ε' reaching each part of the state entering the step. The functions
# below return (Δ, Δ̃, ε_{−1}): δ and δ̃ summed over the losses allowed to reach each
# step, and the gradient reaching the initial state (h0, c0) from the losses allowed
# to reach it.

CellStep = Callable[[int, int, tuple[Array, ...]], tuple[Array, Array, tuple[Array, ...]]]


def cell_deltas_chunked(
    step: CellStep, g: Array, parts: int, chunk: int | None
) -> tuple[Array, Array, tuple[Array, ...]]:
    """Full BPTT (chunk=None) or chunks of k for any cell: one pass backward in time.

    g (T, N, H) is Vᵀ ∂L/∂o_t, the loss's gradient reaching h_t; ``parts`` is how many
    parts the state has. As (7) for the vanilla cell: ε_t = (g_t, 0, …) + the carry
    from step t+1, the carry cut where step t+1 starts a chunk.
    """
    T = g.shape[0]
    k = T if chunk is None else chunk
    zero = tuple(np.zeros_like(g[:1]) for _ in range(parts))  # δ_T = 0: nothing after T−1
    carry = zero
    total = total_h = np.empty(0, dtype=g.dtype)  # (T, N, G·H), made at the first step
    for t in range(T - 1, -1, -1):
        if (t + 1) % k == 0:  # step t+1 starts a new chunk: its carry is cut
            carry = zero
        incoming = (g[t : t + 1] + carry[0], *carry[1:])
        delta, delta_h, carry = step(t, t + 1, incoming)
        if t == T - 1:
            total = np.empty((T, *delta.shape[1:]), dtype=delta.dtype)
            # the LSTM's two sides are one array: keep it once
            total_h = total if delta_h is delta else np.empty_like(total)
        total[t] = delta[0]
        if total_h is not total:
            total_h[t] = delta_h[0]
    return total, total_h, tuple(part[0] for part in carry)


def cell_deltas_window(
    step: CellStep, g: Array, parts: int, truncate: int
) -> tuple[Array, Array, tuple[Array, ...]]:
    """Window truncation for any cell, lag by lag as deltas_window does for the vanilla one.

    For lag ℓ let E^ℓ_t be the gradient reaching the state leaving step t from the
    loss at step t+ℓ. E^0_t = (g_t, 0, …); one backward step turns E^ℓ_t into that
    loss's δ, δ̃ at step t and its gradient reaching the state entering step t, which is
    E^{ℓ+1}_{t−1}. So each lag is one backward step over all steps and sequences at
    once, and the loop runs min(k, T−1) + 1 times. The initial state receives, at each
    lag ℓ ≤ k, what the loss at step ℓ sends into it.
    """
    T = g.shape[0]
    incoming = (g, *(np.zeros_like(g) for _ in range(parts - 1)))
    delta, delta_h, carry = step(0, T, incoming)  # lag 0
    total = delta.copy()
    total_h = total if delta_h is delta else delta_h.copy()
    initial = [part[0].copy() for part in carry]
    for lag in range(1, min(truncate, T - 1) + 1):
        # the state leaving step t, t = 0 … T−1−ℓ, is the state entering step t+1
        delta, delta_h, carry = step(0, T - lag, tuple(part[1:] for part in carry))
        total[: T - lag] += delta
        if total_h is not total:
            total_h[: T - lag] += delta_h
        for init, part in zip(initial, carry, strict=True):
            init += part[0]
    return total, total_h, tuple(initial)


def cell_deltas(
    step: CellStep, g: Array, parts: int, truncate: int | None, chunk: int | None
) -> tuple[Array, Array, tuple[Array, ...]]:
    """(Δ, Δ̃, ε_{−1}) for whichever truncation is asked for (at most one of the two)."""
    if truncate is not None:
        return cell_deltas_window(step, g, parts, truncate)
    return cell_deltas_chunked(step, g, parts, chunk)
