"""The backward pass, equations (6)–(12) of docs/derivation.md, and the public ``bptt``.

``bptt`` serves every cell: the vanilla one here, (6)–(12); the gated ones by their
backward steps (lstm.py, gru.py) run through truncation.cell_deltas, then the same
kind of sums over steps (:func:`gated_backward`).

Every time-invariant sum is one matrix product over all T·N rows: each parameter is
shared by every step (and every sequence), so its gradient is the sum of the per-step
gradients, and stacking the steps turns that sum into the inner dimension of a product.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from manual_bptt.cells import cell_of
from manual_bptt.crossentropy import loss_and_dlogits
from manual_bptt.inputs import Batch, Options, prepare
from manual_bptt.linear import rows_matmul
from manual_bptt.network import Cache, quiet, run_batch
from manual_bptt.params import CellParams, Params
from manual_bptt.result import BPTTResult
from manual_bptt.truncation import cell_deltas, deltas

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
    would keep only the last). The sum is built as ∂L/∂Uᵀ (D, H), one row per token,
    and returned as its transpose, an F-ordered (H, D) view (docs/performance.md: why).
    """
    if not batch.tokens:
        dU: Array = _rows(delta).T @ _rows(batch.x)
        return dU
    H = delta.shape[-1]
    dUT = np.zeros((D, H), dtype=delta.dtype)
    ids = cast("NDArray[np.integer]", batch.x)  # tokens: ids; the flag says so, not x's type
    np.add.at(dUT, ids.reshape(-1), _rows(delta))
    dU_tokens: Array = dUT.T
    return dU_tokens


def grad_V(dO: Array, h: Array) -> Array:
    """(8) ∂L/∂V = Σ_t ∂L/∂o_t h_tᵀ, (K, H), from ∂L/∂o (T, N, K) and h (T, N, H).

    Made as its transpose, (Σ_t h_t ∂L/∂o_tᵀ)ᵀ: the (H, K) product, returned as an
    F-ordered (K, H) view (as grad_U returns ∂L/∂U). With K in the thousands and few
    rows, OpenBLAS makes that orientation faster (docs/performance.md, issue 22).
    """
    dVT: Array = _rows(h).T @ _rows(dO)
    dV: Array = dVT.T
    return dV


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
        "U": grad_U(batch, delta, params.D),  # (10) Σ_t Δ_t x_tᵀ
        "W": _rows(delta).T @ _rows(cache.h_prev),  # (11) Σ_t Δ_t h_{t−1}ᵀ
        "V": grad_V(dO, cache.h),  # (8) Σ_t ∂L/∂o_t h_tᵀ
        "b": delta.sum(axis=(0, 1)),  # (11) Σ_t Δ_t
        "c": dO.sum(axis=(0, 1)),  # (9) Σ_t ∂L/∂o_t
        "h0": delta[0] @ params.W,  # (12) Wᵀ Δ_0
    }
    if not batch.tokens:
        grads["x"] = rows_matmul(delta, params.U)  # (12) ∂L/∂x_t = Uᵀ Δ_t
    return grads


def gated_backward(
    params: CellParams,
    batch: Batch,
    cache: Any,
    dO: Array,
    backward_step: Callable[..., tuple[Array, Array, tuple[Array, ...]]] | None = None,
) -> dict[str, Array]:
    """All gradients of any registered cell, batched, from ∂L/∂o (T, N, K) and its cache.

    The cell's backward step, run by truncation.cell_deltas for the truncation asked
    for, gives δ_t and δ̃_t (T, N, G·H), the pre-activation gradients of the input side
    (U x_t + b) and of the hidden side (W h_{t−1}, + bh for the GRU), summed over the
    losses that reach step t, and the gradient reaching the initial state. Then, as
    (8)–(12) for the vanilla cell (LSTM (23)–(24), GRU (31), (33)):
        ∂L/∂U = Σ_t δ_t x_tᵀ,  ∂L/∂b = Σ_t δ_t,  ∂L/∂x_t = Uᵀ δ_t
        ∂L/∂W = Σ_t δ̃_t h_{t−1}ᵀ (the GRU's "before" variant: see gru.grad_W),
        ∂L/∂bh = Σ_t δ̃_t (GRU),  ∂L/∂V, ∂L/∂c by (8), (9)
        ∂L/∂h0 (and ∂L/∂c0) = what reaches the state entering step 0.
    ``backward_step`` replaces the cell's own (its registered Cell.backward_step, same
    signature): the gallery's slips plug theirs in here.
    """
    g = rows_matmul(dO, params.V)  # Vᵀ ∂L/∂o_t: the loss's gradient reaching h_t
    # The cell's backward step and ∂L/∂W from δ̃, bound to its parameters and cache;
    # its state's parts ([h; s] for the LSTM, h for the others).
    cell = cell_of(params)
    backward_step = backward_step or cell.backward_step
    step = partial(backward_step, params, cache)
    parts = len(cell.state)

    def step_on(steps: slice, d_state: tuple[Array, ...]) -> tuple[Array, Array, tuple[Array, ...]]:
        # The same step over any slice of steps (TBPTT's strided ones): on a view of the
        # cache's time-major arrays (cells.py: a cache's arrays all run over steps first).
        count = len(range(*steps.indices(batch.T)))
        return backward_step(params, steps_of(cache, steps), 0, count, d_state)

    delta, delta_h, initial = cell_deltas(
        step,
        g,
        parts,
        batch.truncate,
        batch.chunk,
        tbptt=batch.tbptt,
        links=batch.links,
        step_on=step_on,
    )
    dW = cell.grad_W(params, cache, delta_h)
    grads = {
        "U": grad_U(batch, delta, params.D),
        "W": dW,
        "b": delta.sum(axis=(0, 1)),
        "bh": delta_h.sum(axis=(0, 1)),  # the GRU's hidden-side bias
        "V": grad_V(dO, cache.h),  # (8), as the vanilla cell makes it
        "c": dO.sum(axis=(0, 1)),
    }
    out = {name: grads[name] for name in params.NAMES}  # in the parameters' order
    out["h0"] = initial[0]
    if parts > 1:
        out["c0"] = initial[1]  # the second part of the state entering step 0
    if not batch.tokens:
        out["x"] = rows_matmul(delta, params.U)
    return out


def steps_of(cache: Any, steps: slice) -> Any:
    """The cache of a registered cell restricted to ``steps``: a view of each of its
    arrays (all time-major, (T, …)), as a cache of the same class."""
    return replace(
        cache,
        **{
            f.name: getattr(cache, f.name)[steps]
            for f in fields(cache)
            if isinstance(getattr(cache, f.name), np.ndarray)
        },
    )


def bptt(
    params: CellParams,
    x: ArrayLike,
    y: ArrayLike,
    **options: Unpack[Options],
) -> BPTTResult:
    """Loss and gradients of the network by backpropagation through time, by hand.

    Every cell, chosen by the parameters' type: the vanilla RNN (Params), the LSTM
    (LSTMParams) and the GRU (GRUParams, either reset variant).

    Args:
        params: Params U (H, D), W (H, H), V (K, H), b (H,), c (K,); or LSTMParams
            U (4H, D), W (4H, H), b (4H,), V, c; or GRUParams U (3H, D), W (3H, H),
            b (3H,), bh (3H,), V, c; float32 or float64.
        x: float inputs (T, N, D), or integer token ids (T, N) in [0, D); unbatched
            (T, D) or (T,) also accepted.
        y: integer targets (T, N) in [0, K), or (T,) when x is unbatched.
        h0: initial state h_{−1}, (N, H) or (H,); zeros by default.
        c0: the LSTM's initial cell state s_{−1}, shaped as h0; zeros by default
            (LSTM only).
        mask: m, (T, N) or (T,) of 0/1 (bool or numbers); all ones by default.
        activation: φ: "tanh", "sigmoid", "relu" or "identity" (vanilla cell only).
        truncate: window length k ≥ 0: the loss at step t reaches steps t … max(0, t−k).
        chunk: chunk length k ≥ 1: losses reach back to the start of their chunk of k.
        tbptt: (k1, k2), both ≥ 1: TBPTT(k1, k2), every k1 steps the block's losses are
            backpropagated k2 steps from its last step (truncation.py: exactly which
            losses reach which steps).
        randomized: a RandomTruncation (d2l's or ARTBP-style, unbiased; its links ξ (T,)
            drawn from its seed) or the links ξ (T,) themselves, finite and ≥ 0: the
            gradient carried from step t into step t−1 is multiplied by ξ_t. At most one
            of truncate, chunk, tbptt and randomized.
        reduction: "sum" (equation (5)) or "mean" (divided by Σm; 0 when Σm = 0).

    Returns:
        BPTTResult with ``loss`` (float) and ``grads``: {"U", "W", "V", "b", "c", "h0"}
        (vanilla), {"U", "W", "b", "V", "c", "h0", "c0"} (LSTM) or {"U", "W", "b", "bh",
        "V", "c", "h0"} (GRU), and "x" for float inputs, each shaped and typed like its
        argument.

    Raises:
        TypeError, ValueError: for any argument that does not fit, naming it.
    """
    batch = prepare(params, x, y, **options)
    cache = run_batch(params, batch)
    with quiet():  # a non-finite forward has been reported by run_batch
        # ∂L/∂o is written over the logits o, our own array, which nothing needs afterwards.
        loss, dO = loss_and_dlogits(cache.o, batch.y, batch.mask, batch.loss_scale, out=cache.o)
        plain = batch.tbptt is None and batch.links is None
        if isinstance(params, Params) and plain:  # the vanilla cell's lag-batched form of (7)
            assert isinstance(cache, Cache)
            return BPTTResult.from_batched(batch, loss, backward(params, batch, cache, dO))
        return BPTTResult.from_batched(batch, loss, gated_backward(params, batch, cache, dO))
