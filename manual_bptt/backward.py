"""The backward pass, equations (6)–(12) of the README, and the public ``bptt``.

Every time-invariant sum is one matrix product over all T·N rows: each parameter is
shared by every step (and every sequence), so its gradient is the sum of the per-step
gradients, and stacking the steps turns that sum into the inner dimension of a product.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from manual_bptt.crossentropy import loss_and_dlogits
from manual_bptt.inputs import Batch, Options, prepare
from manual_bptt.network import Cache, quiet, rows_matmul, run_forward
from manual_bptt.params import Params
from manual_bptt.result import BPTTResult
from manual_bptt.truncation import deltas

if TYPE_CHECKING:
    from typing_extensions import Unpack

Array = NDArray[np.floating]


def _rows(arr: np.ndarray) -> np.ndarray:
    """(T, N, X) → (T·N, X): one row per (step, sequence)."""
    return arr.reshape(-1, arr.shape[-1])


def grad_U(batch: Batch, delta: Array, D: int) -> Array:
    """(10) ∂L/∂U = Σ_t Δ_t x_tᵀ, (H, D).

    For token ids x_t is one-hot, so Δ_t is added to column x_t: one scatter-add over
    all (step, sequence) pairs (np.add.at adds repeated columns, where plain indexing
    would keep only the last). The sum is built as ∂L/∂Uᵀ (D, H), one contiguous row
    per token, and returned as its transpose (an F-ordered (H, D) view): the scatter
    then touches one row per token instead of one cache line in each of H rows, which
    at the tutorial's vocabulary of 8000 saves faulting in the whole fresh array.
    """
    if not batch.tokens:
        return _rows(delta).T @ _rows(batch.x)
    H = delta.shape[-1]
    dUT = np.zeros((D, H), dtype=delta.dtype)
    np.add.at(dUT, batch.x.reshape(-1), _rows(delta))
    return dUT.T


def backward(params: Params, batch: Batch, cache: Cache, dO: Array) -> dict[str, Array]:
    """All gradients, batched, from ∂L/∂o (T, N, K) and the forward cache.

    (7)  Δ = deltas(...), see truncation.py (Δ_t is ∂L/∂a_t for full BPTT)
    (8)  ∂L/∂V = Σ_t ∂L/∂o_t h_tᵀ                (K, H)
    (9)  ∂L/∂c = Σ_t ∂L/∂o_t                     (K,)
    (10) ∂L/∂U = Σ_t Δ_t x_tᵀ                    (H, D)
    (11) ∂L/∂W = Σ_t Δ_t h_{t−1}ᵀ,  ∂L/∂b = Σ_t Δ_t
    (12) ∂L/∂h0 = Wᵀ Δ_0,  ∂L/∂x_t = Uᵀ Δ_t
    Sums over t also run over the batch (rows of the stacked arrays).
    """
    g = rows_matmul(dO, params.V)  # Vᵀ ∂L/∂o_t for every t: (T, N, H), our own array
    delta = deltas(g, cache.dphi, params.W, batch.truncate, batch.chunk, overwrite_g=True)
    grads = {
        "U": grad_U(batch, delta, params.D),
        "W": _rows(delta).T @ _rows(cache.h_prev),
        "V": _rows(dO).T @ _rows(cache.h),
        "b": delta.sum(axis=(0, 1)),
        "c": dO.sum(axis=(0, 1)),
        "h0": delta[0] @ params.W,
    }
    if not batch.tokens:
        grads["x"] = rows_matmul(delta, params.U)
    return grads


def bptt(
    params: Params,
    x: ArrayLike,
    y: ArrayLike,
    **options: Unpack[Options],
) -> BPTTResult:
    """Loss and gradients of the network by backpropagation through time, by hand.

    Args:
        params: U (H, D), W (H, H), V (K, H), b (H,), c (K,), float32 or float64.
        x: float inputs (T, N, D), or integer token ids (T, N) in [0, D); unbatched
            (T, D) or (T,) also accepted.
        y: integer targets (T, N) in [0, K), or (T,) when x is unbatched.
        h0: initial state h_{−1}, (N, H) or (H,); zeros by default.
        mask: m, (T, N) or (T,) of 0/1 (bool or numbers); all ones by default.
        activation: φ: "tanh", "sigmoid", "relu" or "identity".
        truncate: window length k ≥ 0: the loss at step t reaches steps t … max(0, t−k).
        chunk: chunk length k ≥ 1: losses reach back to the start of their chunk of k.
        reduction: "sum" (equation (5)) or "mean" (divided by Σm; 0 when Σm = 0).

    Returns:
        BPTTResult with ``loss`` (float) and ``grads`` {"U", "W", "V", "b", "c", "h0",
        and "x" for float inputs}, each shaped and typed like its argument.

    Raises:
        TypeError, ValueError: for any argument that does not fit, naming it.
    """
    batch = prepare(params, x, y, **options)
    cache = run_forward(params, batch.x, batch.h0, batch.tokens, batch.activation)
    with quiet():  # a non-finite forward has been reported by run_forward
        # ∂L/∂o is written over the logits o, our own array, which nothing needs afterwards.
        loss, dO = loss_and_dlogits(cache.o, batch.y, batch.mask, batch.loss_scale, out=cache.o)
        return BPTTResult.from_batched(batch, loss, backward(params, batch, cache, dO))
