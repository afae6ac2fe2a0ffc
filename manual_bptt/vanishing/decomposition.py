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
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from manual_bptt.crossentropy import loss_and_dlogits
from manual_bptt.inputs import Batch, Options, prepare
from manual_bptt.naive import first_reachable_step
from manual_bptt.network import Cache, quietly, rows_matmul, run_forward
from manual_bptt.params import Params

if TYPE_CHECKING:
    from typing_extensions import Unpack

PARAMS = ("U", "W", "V", "b", "c", "h0", "x")
Array = NDArray[np.floating]


def _setup(
    params: Params, x: ArrayLike, y: ArrayLike, param: str, options: Options
) -> tuple[Batch, Cache, Array]:
    if param not in PARAMS:
        raise ValueError(f"param must be one of {PARAMS}; got {param!r}")
    batch = prepare(params, x, y, **options)
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


@quietly  # a non-finite forward is reported by run_forward, not by numpy at every step
def contributions(
    params: Params,
    x: ArrayLike,
    y: ArrayLike,
    *,
    param: str = "U",
    **options: Unpack[Options],
) -> Array:
    """[t, k]: the part of ∂E_t/∂θ that enters through θ's use at step k.

    Arguments as :func:`manual_bptt.bptt`, plus ``param`` ∈ {"U", "W", "V", "b", "c",
    "h0", "x"}. Returns (T, T, *θ's shape): (T, T, H, D) for U, (T, T, H, H) for W,
    (T, T, K, H) for V, (T, T, H) for b, (T, T, K) for c, (T, T, N, H) for h0 and
    (T, T, N, D) for x; with unbatched inputs (x of shape (T, D)) the N axis is dropped,
    as in bptt's gradients: (T, T, H) for h0 and (T, T, D) for x. Zero for k > t and
    wherever truncation cuts. Sums: Σ_{t,k} [t, k] is bptt's gradient of θ; for x,
    Σ_t [t, k] is bptt's ∂L/∂x_k (only [t, k] with k = the step of x_k is nonzero
    for x_k, so [t, k] = ∂E_t/∂x_k). Memory T² times θ's size: for long sequences use
    :func:`contribution_norms`.
    """
    batch, cache, dO = _setup(params, x, y, param, options)
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
    if param in ("x", "h0") and not batch.batched:
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


def _root(squared: NDArray) -> NDArray[np.float64]:
    return np.sqrt(np.maximum(squared.astype(np.float64), 0.0))


@quietly
def contribution_norms(
    params: Params,
    x: ArrayLike,
    y: ArrayLike,
    *,
    param: str = "U",
    **options: Unpack[Options],
) -> NDArray[np.float64]:
    """(T, T) Frobenius norms ‖[t, k]‖ of :func:`contributions`, without building them.

    Arguments as :func:`contributions`. Each [t, k] for U, W is Σ_n δ_n z_nᵀ (δ =
    δ^{(t)}_{k,n}, z = x_k or h_{k−1}), whose squared norm is Σ_{n,m} (δ_n·δ_m)(z_n·z_m):
    two N×N Gram matrices per (t, k), computed for all k at one lag in one batched
    product, on rows scaled to a largest entry of 1 so that norms down to float's
    smallest numbers survive the squaring. So memory is O(T·N·(H + D + K + N) + T²)
    rather than T² times θ's size, and T in the hundreds is fine.
    """
    batch, cache, dO = _setup(params, x, y, param, options)
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
    z_gram, z_scale = None, np.ones(T)
    if param == "U" and batch.tokens:  # one-hot x_k: x_{k,n}·x_{k,m} = [same token]
        z_gram = (batch.x[:, :, None] == batch.x[:, None, :]).astype(params.dtype)
    elif param in ("U", "W"):
        z = _term_inputs(params, batch, cache, param)
        assert z is not None
        z_s, z_scale = _scaled(z)
        z_gram = np.einsum("knd,kmd->knm", z_s, z_s)
    UUt = params.U @ params.U.T
    for lag, D in enumerate(lag_deltas(params, batch, cache, dO)):
        k = steps[: T - lag]
        D_s, scale = _scaled(D)
        if param == "h0":  # only step 0 passes into h0: [lag, 0] = Wᵀ δ^{(lag)}_0
            g, g_scale = _scaled((D_s[0] @ params.W)[None])
            norms[lag, 0] = scale[0] * g_scale[0] * float(np.sqrt(np.sum(g * g)))
            continue
        if param == "x":  # ‖Uᵀδ‖² = δᵀ (U Uᵀ) δ, summed over the batch
            squared = np.einsum("knh,knh->k", D_s @ UUt, D_s)
        else:
            gram = np.einsum("knh,kmh->knm", D_s, D_s)
            squared = (
                (gram * z_gram[: T - lag]).sum(axis=(1, 2))
                if z_gram is not None
                else gram.sum(axis=(1, 2))
            )
        norms[k + lag, k] = scale * z_scale[: T - lag] * _root(squared)
    return norms
