"""Jacobians of the hidden state, ∂h_t/∂h_k, and the bounds that say when they vanish.

From (1)–(2), ∂h_j/∂h_{j−1} = diag(φ'(a_j)) W, so for k ≤ t

    ∂h_t/∂h_k = Π_{j=k+1}^{t} diag(φ'(a_j)) W            (the identity when k = t)
    ‖∂h_t/∂h_k‖₂ ≤ Π_{j=k+1}^{t} ‖diag(φ'(a_j))‖₂ ‖W‖₂ ≤ (γ σ_max(W))^{t−k}

with γ = sup φ' (1 for tanh, relu and identity, 1/4 for sigmoid). Hence (Pascanu,
Mikolov & Bengio 2013, §2.1): σ_max(W) < 1/γ is SUFFICIENT for the Jacobians, and so
the long-range gradients, to vanish exponentially; σ_max(W) > 1/γ is NECESSARY for
them to explode (and not sufficient: saturation, φ' ≪ γ, can still make them vanish).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from manual_bptt.activations import get_activation
from manual_bptt.inputs import prepare_inputs
from manual_bptt.network import quietly, run_forward
from manual_bptt.params import Params, plain_array

Array = NDArray[np.floating]


def _sequence_dphi(
    params: Params, x: ArrayLike, h0: ArrayLike | None, activation: str, n: int
) -> Array:
    """φ'(a_t) of sequence n, (T, H), after checking every argument."""
    act = get_activation(activation)
    xb, h0b, tokens, _ = prepare_inputs(params, x, h0=h0)
    N = xb.shape[1]
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 0 <= n < N:
        raise ValueError(f"n must index a sequence in [0, N) = [0, {N}); got {n!r}")
    return run_forward(params, xb, h0b, tokens, act).dphi[:, n]


@quietly  # a non-finite forward is reported by run_forward, not by numpy at every step
def hidden_jacobians(
    params: Params,
    x: ArrayLike,
    *,
    h0: ArrayLike | None = None,
    activation: str = "tanh",
    n: int = 0,
) -> Array:
    """J (T, T, H, H) with J[t, k] = ∂h_t/∂h_k for sequence n; zero for k > t.

    x and h0 as in :func:`manual_bptt.forward`. Built column by column: J[t, k] =
    diag(φ'(a_t)) W J[t−1, k], all k at once per t. Memory T²·H²: for long sequences
    use :func:`jacobian_row`.
    """
    dphi = _sequence_dphi(params, x, h0, activation, n)
    T, H = dphi.shape
    J = np.zeros((T, T, H, H), dtype=params.dtype)
    for t in range(T):
        J[t, t] = np.eye(H)
        if t > 0:
            step = dphi[t][:, None] * params.W  # ∂h_t/∂h_{t−1} = diag(φ'(a_t)) W
            J[t, :t] = step @ J[t - 1, :t]
    return J


@quietly
def jacobian_row(
    params: Params,
    x: ArrayLike,
    *,
    t: int | None = None,
    h0: ArrayLike | None = None,
    activation: str = "tanh",
    n: int = 0,
) -> Array:
    """R (T, H, H) with R[k] = ∂h_t/∂h_k for one t (default T − 1); zero for k > t.

    Row t of :func:`hidden_jacobians` in T·H² memory, built backwards from R[t] = I:
    R[k] = R[k+1] diag(φ'(a_{k+1})) W.
    """
    dphi = _sequence_dphi(params, x, h0, activation, n)
    T, H = dphi.shape
    t = T - 1 if t is None else t
    if isinstance(t, bool) or not isinstance(t, int | np.integer) or not 0 <= t < T:
        raise ValueError(f"t must be a step in [0, T) = [0, {T}); got {t!r}")
    R = np.zeros((T, H, H), dtype=params.dtype)
    R[t] = np.eye(H)
    for k in range(t - 1, -1, -1):
        R[k] = (R[k + 1] * dphi[k + 1]) @ params.W  # R[k+1] diag(φ'(a_{k+1})) W
    return R


def _finite_matrices(name: str, value: object, least_ndim: int, shape: str) -> np.ndarray:
    """value as a plain float array of at least ``least_ndim`` axes with finite entries."""
    arr = plain_array(name, value)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers; got dtype {arr.dtype}")
    if arr.ndim < least_ndim or arr.ndim > 4:
        raise ValueError(f"{name} must have shape {shape}; got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty; got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise ValueError(f"{name} must be finite; entry {bad} is {arr[bad]}")
    return arr


def spectral_norms(J: Array) -> NDArray[np.float64]:
    """‖J[t, k]‖₂ (largest singular value) for every (t, k).

    J: (T, T, H, H) as :func:`hidden_jacobians` returns it, or (T, H, H) as
    :func:`jacobian_row` does; the norms are over the last two axes, (T, T) or (T,).
    """
    arr = _finite_matrices("J", J, 3, "(T, T, H, H) or (T, H, H)")
    return np.linalg.norm(arr, ord=2, axis=(-2, -1))


def sigma_max(W: Array) -> float:
    """σ_max(W) = ‖W‖₂, the largest singular value of the matrix W (H, H) (any (m, n))."""
    arr = _finite_matrices("W", W, 2, "(H, H)")
    if arr.ndim != 2:
        raise ValueError(f"W must be one matrix, shape (H, H); got shape {arr.shape}")
    return float(np.linalg.norm(arr, ord=2))


def product_bounds(
    params: Params,
    x: ArrayLike,
    *,
    h0: ArrayLike | None = None,
    activation: str = "tanh",
    n: int = 0,
) -> NDArray[np.float64]:
    """B (T, T): B[t, k] = Π_{j=k+1}^{t} max|φ'(a_j)| · σ_max(W) ≥ ‖∂h_t/∂h_k‖₂ (k ≤ t).

    max|φ'(a_j)| = ‖diag(φ'(a_j))‖₂ for sequence n. B[t, t] = 1 (the empty product),
    B = 0 above the diagonal. Summed in logs so that long products neither overflow
    nor underflow early; a factor of exactly 0 (every relu unit off) is taken as 1e-300,
    which keeps B an upper bound.
    """
    dphi = _sequence_dphi(params, x, h0, activation, n)
    per_step = np.log(np.abs(dphi).max(axis=1) * sigma_max(params.W) + 1e-300)  # (T,)
    cumulative = np.concatenate([[0.0], np.cumsum(per_step)])  # Σ_{j<t+1}
    T = len(per_step)
    t, k = np.meshgrid(np.arange(T), np.arange(T), indexing="ij")
    # Σ_{j=k+1}^{t} = cumulative[t+1] − cumulative[k+1]; a bound past float range is inf.
    with np.errstate(over="ignore"):
        bounds = np.exp(cumulative[t + 1] - cumulative[k + 1])
    return np.where(k <= t, bounds, 0.0)


def critical_sigma(activation: str) -> float:
    """1/γ: σ_max(W) below it guarantees vanishing; above it is needed for exploding."""
    return 1.0 / get_activation(activation).gamma
