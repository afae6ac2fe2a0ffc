"""The gradient taken apart by (loss, step): where each loss's gradient comes from.

A parameter θ is used at every step, so ∂E_t/∂θ is a sum over the steps k ≤ t at
which it was used; the [t, k] term is the part that enters through the use at step k:

    U:  δ^{(t)}_k x_kᵀ        W:  δ^{(t)}_k h_{k−1}ᵀ        b:  δ^{(t)}_k
    V:  ∂E_t/∂o_t h_tᵀ, c: ∂E_t/∂o_t     (used at step t only: the diagonal)
    x:  Uᵀ δ^{(t)}_k = ∂E_t/∂x_k         h0: Wᵀ δ^{(t)}_0 (at k = 0 only)

with δ^{(t)}_k = ∂E_t/∂a_k (truncation.py), zero where the truncation does not let
loss t reach step k (the window t−k_trunc ≤ k ≤ t, or t's own chunk) and for k > t.
Summed over t and k these give the total (truncated) gradient, summed over n for the
parameters. The sums over the batch are inside each term: [t, k] is one (H, D) array
for U, not one per sequence.

How fast a late loss's gradient shrinks as k moves back from t is the vanishing
gradient problem made visible (Pascanu, Mikolov & Bengio 2013; the shape follows the
WildML tutorial's ∂E_3/∂U = Σ_k ∂E_3/∂U via step k worked example).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from manual_bptt.inputs import Batch, prepare
from manual_bptt.loss import loss_and_dlogits
from manual_bptt.naive import first_reachable_step
from manual_bptt.network import Cache, rows_matmul, run_forward
from manual_bptt.params import Params

PARAMS = ("U", "W", "V", "b", "c", "h0", "x")
Array = NDArray[np.floating]


def _setup(params: Params, x: Any, y: Any, param: str, **kwargs: Any) -> tuple[Batch, Cache, Array]:
    if param not in PARAMS:
        raise ValueError(f"param must be one of {PARAMS}; got {param!r}")
    batch = prepare(params, x, y, **kwargs)
    if param == "x" and batch.tokens:
        raise ValueError('param="x" needs float inputs; token ids have no gradient')
    cache = run_forward(params, batch.x, batch.h0, batch.tokens, batch.activation)
    _, dO = loss_and_dlogits(cache.o, batch.y, batch.mask, batch.loss_scale)
    return batch, cache, dO


def lag_deltas(params: Params, batch: Batch, cache: Cache, dO: Array) -> Iterator[Array]:
    """For lag ℓ = 0, 1, …: D^ℓ (T−ℓ, N, H) with D^ℓ[k] = δ^{(k+ℓ)}_k = ∂E_{k+ℓ}/∂a_k,
    zero where loss k+ℓ may not reach step k. One product per lag over all steps."""
    T = batch.T
    reach = np.array([first_reachable_step(t, batch) for t in range(T)])
    lag_delta = rows_matmul(dO, params.V) * cache.dphi  # D^0
    for lag in range(T):
        if lag > 0:
            H = lag_delta.shape[-1]
            rows = lag_delta[1:].reshape(-1, H) @ params.W
            lag_delta = rows.reshape(T - lag, -1, H) * cache.dphi[: T - lag]
        steps = np.arange(T - lag)
        lag_delta[reach[steps + lag] > steps] = 0.0  # loss k+ℓ is cut before step k
        if not lag_delta.any():
            return
        yield lag_delta


def _term_inputs(params: Params, batch: Batch, cache: Cache, param: str) -> Array | None:
    """z_k (T, N, ·) with [t, k] = Σ_n δ^{(t)}_{k,n} z_{k,n}ᵀ for U, W; None for b."""
    if param == "U":
        if batch.tokens:
            return np.eye(params.D, dtype=params.dtype)[batch.x]  # one-hot x_k
        return batch.x
    if param == "W":
        return cache.h_prev
    return None


def contributions(
    params: Params,
    x: ArrayLike,
    y: ArrayLike,
    *,
    param: str = "U",
    h0: ArrayLike | None = None,
    mask: ArrayLike | None = None,
    activation: str = "tanh",
    truncate: int | None = None,
    chunk: int | None = None,
    reduction: str = "sum",
) -> Array:
    """[t, k]: the part of ∂E_t/∂θ that enters through θ's use at step k.

    Arguments as :func:`manual_bptt.bptt`, plus ``param`` ∈ {"U", "W", "V", "b", "c",
    "h0", "x"}. Returns (T, T, *θ's shape): (T, T, H, D) for U, (T, T, H, H) for W,
    (T, T, K, H) for V, (T, T, H) for b, (T, T, K) for c, (T, T, N, H) for h0 and
    (T, T, N, D) for x (batched shapes even for unbatched inputs, N = 1). Zero for
    k > t and wherever truncation cuts. Memory T² times θ's size: for long sequences
    use :func:`contribution_norms`.
    """
    batch, cache, dO = _setup(
        params, x, y, param, h0=h0, mask=mask, activation=activation,
        truncate=truncate, chunk=chunk, reduction=reduction,
    )  # fmt: skip
    T, N = batch.T, batch.N
    shapes = {"U": params.U.shape, "W": params.W.shape, "V": params.V.shape,
              "b": params.b.shape, "c": params.c.shape, "h0": (N, params.H),
              "x": (N, params.D)}  # fmt: skip
    out = np.zeros((T, T, *shapes[param]), dtype=params.dtype)
    steps = np.arange(T)
    if param in ("V", "c"):  # used at step t only, by loss t only
        out[steps, steps] = (
            np.einsum("tnk,tnh->tkh", dO, cache.h) if param == "V" else dO.sum(axis=1)
        )
        return out
    z = _term_inputs(params, batch, cache, param)
    for lag, D in enumerate(lag_deltas(params, batch, cache, dO)):
        k = steps[: T - lag]
        if param == "b":
            out[k + lag, k] = D.sum(axis=1)
        elif param == "h0":
            out[lag, 0] = D[0] @ params.W  # only step 0 passes into h0
        elif param == "x":
            out[k + lag, k] = D @ params.U
        else:
            assert z is not None
            out[k + lag, k] = np.einsum("knh,knd->khd", D, z[: T - lag])
    return out


def contribution_norms(
    params: Params,
    x: ArrayLike,
    y: ArrayLike,
    *,
    param: str = "U",
    h0: ArrayLike | None = None,
    mask: ArrayLike | None = None,
    activation: str = "tanh",
    truncate: int | None = None,
    chunk: int | None = None,
    reduction: str = "sum",
) -> NDArray[np.float64]:
    """(T, T) Frobenius norms ‖[t, k]‖ of :func:`contributions`, without building them.

    Each [t, k] for U, W is Σ_n δ_n z_nᵀ (δ = δ^{(t)}_{k,n}, z = x_k or h_{k−1}), whose
    squared norm is Σ_{n,m} (δ_n·δ_m)(z_n·z_m): two N×N Gram matrices per (t, k),
    computed for all k at one lag in one batched product. So memory is O(T·N·(H + D) +
    T²), and T in the hundreds is fine.
    """
    batch, cache, dO = _setup(
        params, x, y, param, h0=h0, mask=mask, activation=activation,
        truncate=truncate, chunk=chunk, reduction=reduction,
    )  # fmt: skip
    T = batch.T
    norms = np.zeros((T, T))
    steps = np.arange(T)
    if param in ("V", "c"):
        gram = np.einsum("tnk,tmk->tnm", dO, dO)
        if param == "V":
            gram = gram * np.einsum("tnh,tmh->tnm", cache.h, cache.h)
        norms[steps, steps] = np.sqrt(np.maximum(gram.sum(axis=(1, 2)), 0.0))
        return norms
    z = _term_inputs(params, batch, cache, param)
    z_gram = None if z is None else np.einsum("knd,kmd->knm", z, z)
    UUt = params.U @ params.U.T
    for lag, D in enumerate(lag_deltas(params, batch, cache, dO)):
        k = steps[: T - lag]
        if param == "h0":
            g = D[0] @ params.W
            norms[lag, 0] = np.linalg.norm(g)
            continue
        if param == "x":  # ‖Uᵀδ‖² = δᵀ (U Uᵀ) δ, summed over the batch
            squared = np.einsum("knh,knh->k", D @ UUt, D)
        else:
            gram = np.einsum("knh,kmh->knm", D, D)
            squared = (
                (gram * z_gram[: T - lag]).sum(axis=(1, 2))
                if z_gram is not None
                else gram.sum(axis=(1, 2))
            )
        norms[k + lag, k] = np.sqrt(np.maximum(squared, 0.0))
    return norms
