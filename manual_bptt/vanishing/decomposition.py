"""The gradient taken apart by (loss, step): where each loss's gradient comes from.

A parameter θ is used at every step, so ∂E_t/∂θ is a sum over the steps k ≤ t at
which it was used; the [t, k] term is the part that enters through the use at step k.
For the vanilla cell, with δ^{(t)}_k = ∂E_t/∂a_k (truncation.py):

    U:  δ^{(t)}_k x_kᵀ        W:  δ^{(t)}_k h_{k−1}ᵀ        b:  δ^{(t)}_k
    V:  ∂E_t/∂o_t h_tᵀ, c: ∂E_t/∂o_t     (used at step t only: the diagonal)
    x:  Uᵀ δ^{(t)}_k = ∂E_t/∂x_k         h0: Wᵀ δ^{(t)}_0 (at k = 0 only)

The gated cells have the same terms with their own pre-activation gradients: δ^{(t)}_k
(G·H rows, the input side U x_k + b) and δ̃^{(t)}_k (the hidden side W h_{k−1} (+ bh)),
the parts of loss t's gradient that their backward steps (lstm.py (17)–(22), gru.py
(29)–(32)) give at step k:

    U: δ x_kᵀ   W: δ̃ h_{k−1}ᵀ (the GRU "before" variant's n rows: δ̃^n p_kᵀ)   b: δ
    bh: δ̃ (GRU)   h0, c0: what loss t sends into the initial state (at k = 0 only)

All are zero where the truncation does not let loss t reach step k (outside its window
when ``truncate`` is given, or outside its own chunk when ``chunk`` is) and for k > t.
Summed over t and k these give the total (truncated) gradient, summed over n for the
parameters. The sums over the batch are inside each term: [t, k] is one (H, D) array
for U, not one per sequence.

How fast a late loss's gradient shrinks as k moves back from t is the vanishing
gradient problem made visible (Pascanu, Mikolov & Bengio 2013; the shape follows the
WildML tutorial's ∂E_3/∂U = Σ_k ∂E_3/∂U via step k worked example).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial, reduce
from typing import TYPE_CHECKING, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from manual_bptt.cells import CELLS, cell_of
from manual_bptt.crossentropy import loss_and_dlogits
from manual_bptt.inputs import Batch, Options, check_params, prepare_param
from manual_bptt.linear import rows_matmul
from manual_bptt.naive import first_reachable_step
from manual_bptt.network import AnyCache, quietly, run_batch
from manual_bptt.params import CellParams
from manual_bptt.truncation import CellStep

if TYPE_CHECKING:
    from typing_extensions import Unpack

CELL_PARAMS = {name: cell.grad_names for name, cell in CELLS.items()}  # θ per cell
PARAMS = CELL_PARAMS["rnn"]  # the vanilla cell's θ ∈ {U, W, V, b, c, h0, x}
Array = NDArray[np.floating]


@dataclass(frozen=True)
class Lag:
    """Loss k+ℓ's gradient at step k, for every step k = 0 … T−1−ℓ at one lag ℓ.

    Attributes:
        delta: δ^{(k+ℓ)}_k, (T−ℓ, N, G·H), the input side (G = 1 vanilla, 4 LSTM, 3 GRU).
        delta_h: δ̃^{(k+ℓ)}_k, the hidden side, same shape (the same array where the two
            sides are equal: vanilla, LSTM, GRU "before").
        carry: the gradient from loss k+ℓ reaching the state entering step k, one
            (T−ℓ, N, H) array per part of the state ((h,) or the LSTM's (h, s)).
    """

    delta: Array
    delta_h: Array
    carry: tuple[Array, ...]


@dataclass(frozen=True)
class _Setup:
    batch: Batch
    cache: AnyCache
    dO: Array


def _setup(params: object, x: ArrayLike, y: ArrayLike, param: str, options: Options) -> _Setup:
    cell, batch = prepare_param(params, x, y, param, options)
    cache = run_batch(cell, batch)
    _, dO = loss_and_dlogits(cache.o, batch.y, batch.mask, batch.loss_scale)
    return _Setup(batch, cache, dO)


def cell_step(params: CellParams, cache: AnyCache) -> tuple[CellStep, int]:
    """The cell's backward step over steps lo … hi−1 (truncation.CellStep; the vanilla
    one is (7) without the sum over losses: δ = ε ⊙ φ'(a), and Wᵀ δ reaches h_{k−1}) and
    the number of parts of its state, from the registry of cells."""
    cell = cell_of(params)
    return partial(cell.backward_step, params, cache), len(cell.state)


def lags(params: CellParams, batch: Batch, cache: AnyCache, dO: Array) -> Iterator[Lag]:
    """For lag ℓ = 0, 1, …: loss k+ℓ's gradient at every step k (a :class:`Lag`), zero
    where loss k+ℓ may not reach step k. One backward step per lag over all steps at
    once, as truncation.cell_deltas_window, but each lag kept rather than summed."""
    T = batch.T
    step, parts = cell_step(params, cache)
    reach = np.array([first_reachable_step(t, batch) for t in range(T)])
    g = rows_matmul(dO, params.V)  # Vᵀ ∂E_t/∂o_t: loss t's gradient reaching h_t
    incoming: tuple[Array, ...] = (g, *(np.zeros_like(g) for _ in range(parts - 1)))
    for lag in range(T):
        delta, delta_h, carry = step(0, T - lag, incoming)
        steps = np.arange(T - lag)
        cut = reach[steps + lag] > steps  # loss k+ℓ is cut before step k
        for arr in (delta, delta_h, *carry):
            arr[cut] = 0.0
        if not any(arr.any() for arr in (delta, delta_h, *carry)):
            return
        yield Lag(delta, delta_h, carry)
        incoming = tuple(part[1:] for part in carry)  # entering step k+1 = leaving step k


@dataclass(frozen=True)
class _Block:
    """Rows ``rows`` of θ's [t, k] are Σ_n side_{k,n} z_{k,n}ᵀ (z None: Σ_n side_{k,n})."""

    hidden: bool  # δ̃ rather than δ
    rows: slice
    z: Array | None


def _blocks(params: CellParams, batch: Batch, cache: AnyCache, param: str) -> list[_Block]:
    """θ's [t, k] for U, W, b, bh as blocks of rows, one product each."""
    every = slice(None)
    if param == "U":
        # Not tokens: x holds float features; the flag, not x's static type, says which.
        x = (
            np.eye(params.D, dtype=params.dtype)[batch.x]
            if batch.tokens
            else cast("Array", batch.x)
        )
        return [_Block(False, every, x)]  # δ x_kᵀ (one-hot x_k for token ids)
    if param == "b":
        return [_Block(False, every, None)]
    if param == "bh":
        return [_Block(True, every, None)]
    assert param == "W"
    # δ̃ h_{k−1}ᵀ (vanilla: δ̃ = δ), or the rows the cell says meet another state (the
    # GRU's "before" variant: (31) its n rows meet p_k = r_k ⊙ h_{k−1})
    parts = cell_of(params).w_inputs(params, cache)
    return [_Block(True, rows, z) for rows, z in parts]


def _initial_part(param: str) -> int:
    return 1 if param == "c0" else 0


@quietly  # a non-finite forward is reported by run_forward, not by numpy at every step
def contributions(
    params: CellParams,
    x: ArrayLike,
    y: ArrayLike,
    *,
    param: str = "U",
    **options: Unpack[Options],
) -> Array:
    """[t, k]: the part of ∂E_t/∂θ that enters through θ's use at step k.

    Every cell: Params, LSTMParams, GRUParams. Arguments as :func:`manual_bptt.bptt`,
    plus ``param``, one of the cell's gradients (CELL_PARAMS, its grad_names): "U",
    "W", "V", "b", "c", "h0", "x", and "bh" (GRU), "c0" (LSTM).
    Returns (T, T, *θ's shape): for the vanilla cell (T, T, H, D) for U, (T, T, H, H)
    for W, (T, T, K, H) for V, (T, T, H) for b, (T, T, K) for c; the gated cells' U, W,
    b, bh have G·H rows (G = 4 LSTM, 3 GRU); (T, T, N, H) for h0 and c0 and (T, T, N, D)
    for x; with unbatched inputs (x of shape (T, D)) the N axis is dropped, as in
    bptt's gradients: (T, T, H) for h0 and (T, T, D) for x. Zero for k > t and
    wherever truncation cuts. Sums: Σ_{t,k} [t, k] is bptt's gradient of θ; for x,
    Σ_t [t, k] is bptt's ∂L/∂x_k (only [t, k] with k = the step of x_k is nonzero
    for x_k, so [t, k] = ∂E_t/∂x_k). Memory T² times θ's size: for long sequences use
    :func:`contribution_norms`.
    """
    s = _setup(params, x, y, param, options)
    batch, cache, dO = s.batch, s.cache, s.dO
    cell = check_params(params)
    T, N = batch.T, batch.N
    shape = (N, cell.D) if param == "x" else (N, cell.H) if param in ("h0", "c0") else None
    out = np.zeros((T, T, *(shape or cell.as_dict()[param].shape)), dtype=cell.dtype)
    steps = np.arange(T)
    if param in ("V", "c"):  # used at step t only, by loss t only
        out[steps, steps] = (
            np.einsum("tnk,tnh->tkh", dO, cache.h) if param == "V" else dO.sum(axis=1)
        )
        return out
    blocks = [] if param in ("x", "h0", "c0") else _blocks(cell, batch, cache, param)
    for lag, lag_ in enumerate(lags(cell, batch, cache, dO)):
        k = steps[: T - lag]
        if param in ("h0", "c0"):  # only step 0 passes into the initial state
            out[lag, 0] = lag_.carry[_initial_part(param)][0]
        elif param == "x":
            out[k + lag, k] = rows_matmul(lag_.delta, cell.U)  # Uᵀ δ
        for block in blocks:
            side = (lag_.delta_h if block.hidden else lag_.delta)[..., block.rows]
            out[k + lag, k, block.rows] = (
                side.sum(axis=1)
                if block.z is None
                else np.einsum("knh,knd->khd", side, block.z[: T - lag])
            )
    if param in ("x", "h0", "c0") and not batch.batched:
        return out[:, :, 0]  # (T, T, N = 1, ·) → (T, T, ·), like bptt's unbatched grads
    return out


def _scaled(A: Array) -> tuple[Array, NDArray[np.float64]]:
    """A (k, …) divided by s (k,) = max |A[k]| (1 where A[k] = 0), and s.

    Norms through Gram matrices square the entries, and squares of numbers below 1e-154
    underflow in float64 (below 1e-19 in float32), where the far-back contributions of
    a long sequence live. Scaling each step's rows to a largest entry of 1 first keeps
    the squares in range; the norm is s times the norm of the scaled rows.
    """
    s = np.abs(A).reshape(A.shape[0], -1).max(axis=1, initial=0.0).astype(np.float64)
    s[s == 0] = 1.0
    return A / s.reshape(-1, *([1] * (A.ndim - 1))).astype(A.dtype), s


def _root(squared: NDArray[np.floating]) -> NDArray[np.float64]:
    return np.sqrt(np.maximum(squared.astype(np.float64), 0.0))


def _z_gram(batch: Batch, block: _Block, param: str) -> tuple[Array | None, NDArray[np.float64]]:
    """(z_{k,n}·z_{k,m}) (T, N, N) on scaled rows and the scales (T,); None for biases."""
    T = batch.T
    if block.z is None:
        return None, np.ones(T)
    if param == "U" and batch.tokens:  # one-hot x_k: x_{k,n}·x_{k,m} = [same token]
        return (batch.x[:, :, None] == batch.x[:, None, :]).astype(block.z.dtype), np.ones(T)
    z_s, z_scale = _scaled(block.z)
    return np.einsum("knd,kmd->knm", z_s, z_s), z_scale


@quietly
def contribution_norms(
    params: CellParams,
    x: ArrayLike,
    y: ArrayLike,
    *,
    param: str = "U",
    **options: Unpack[Options],
) -> NDArray[np.float64]:
    """(T, T) Frobenius norms ‖[t, k]‖ of :func:`contributions`, without building them.

    Arguments as :func:`contributions`, every cell. Each block of rows of [t, k] for U,
    W is Σ_n δ_n z_nᵀ (δ = δ^{(t)}_{k,n} or δ̃, z = x_k, h_{k−1} or p_k), whose squared
    norm is Σ_{n,m} (δ_n·δ_m)(z_n·z_m): two N×N Gram matrices per (t, k), computed for
    all k at one lag in one batched product, on rows scaled to a largest entry of 1 so
    that norms down to float's smallest numbers survive the squaring; blocks (the GRU
    "before" variant's W) are combined by hypot. So memory is O(T·N·(G·H + D + K + N)
    + T²) rather than T² times θ's size, and T in the hundreds is fine.
    """
    s = _setup(params, x, y, param, options)
    batch, cache, dO = s.batch, s.cache, s.dO
    cell = check_params(params)
    T = batch.T
    norms = np.zeros((T, T))
    steps = np.arange(T)
    if param in ("V", "c"):  # [t, t] = Σ_n ∂E_t/∂o_{t,n} (h_{t,n})ᵀ, or Σ_n ∂E_t/∂o_{t,n}
        dO_s, scale = _scaled(dO)
        gram = np.einsum("tnk,tmk->tnm", dO_s, dO_s)
        if param == "V":
            h_s, h_scale = _scaled(cache.h)
            gram = gram * np.einsum("tnh,tmh->tnm", h_s, h_s)
            scale = scale * h_scale
        norms[steps, steps] = scale * _root(gram.sum(axis=(1, 2)))
        return norms
    blocks = [] if param in ("x", "h0", "c0") else _blocks(cell, batch, cache, param)
    grams = [_z_gram(batch, block, param) for block in blocks]
    UUt = cell.U @ cell.U.T
    for lag, lag_ in enumerate(lags(cell, batch, cache, dO)):
        k = steps[: T - lag]
        if param in ("h0", "c0"):  # only step 0 passes into the initial state
            g, g_scale = _scaled(lag_.carry[_initial_part(param)][:1])
            norms[lag, 0] = g_scale[0] * float(np.sqrt(np.sum(g * g)))
            continue
        if param == "x":  # ‖Uᵀδ‖² = δᵀ (U Uᵀ) δ, summed over the batch
            lagged_s, scale = _scaled(lag_.delta)
            squared = np.einsum("knh,knh->k", rows_matmul(lagged_s, UUt), lagged_s)
            norms[k + lag, k] = scale * _root(squared)
            continue
        parts = []
        for block, (z_gram, z_scale) in zip(blocks, grams, strict=True):
            side = (lag_.delta_h if block.hidden else lag_.delta)[..., block.rows]
            side_s, scale = _scaled(side)
            gram = np.einsum("knh,kmh->knm", side_s, side_s)
            if z_gram is not None:
                gram = gram * z_gram[: T - lag]
            parts.append(scale * z_scale[: T - lag] * _root(gram.sum(axis=(1, 2))))
        norms[k + lag, k] = reduce(np.hypot, parts)
    return norms
