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
from manual_bptt.network import run_forward
from manual_bptt.params import Params

Array = NDArray[np.floating]


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
    diag(φ'(a_t)) W J[t−1, k], all k at once per t.
    """
    act = get_activation(activation)
    xb, h0b, tokens, _ = prepare_inputs(params, x, h0=h0)
    if not 0 <= n < xb.shape[1]:
        raise ValueError(f"n must index a sequence in [0, {xb.shape[1]}); got {n}")
    dphi = run_forward(params, xb, h0b, tokens, act).dphi[:, n]  # (T, H)
    T, H = dphi.shape
    J = np.zeros((T, T, H, H), dtype=params.dtype)
    for t in range(T):
        J[t, t] = np.eye(H)
        if t > 0:
            step = dphi[t][:, None] * params.W  # ∂h_t/∂h_{t−1} = diag(φ'(a_t)) W
            J[t, :t] = step @ J[t - 1, :t]
    return J


def spectral_norms(J: Array) -> NDArray[np.float64]:
    """‖J[t, k]‖₂ (largest singular value) for every (t, k): (T, T)."""
    return np.linalg.norm(J, ord=2, axis=(-2, -1))


def sigma_max(W: Array) -> float:
    """σ_max(W) = ‖W‖₂."""
    return float(np.linalg.norm(W, ord=2))


def product_bounds(
    params: Params,
    x: ArrayLike,
    *,
    h0: ArrayLike | None = None,
    activation: str = "tanh",
    n: int = 0,
) -> NDArray[np.float64]:
    """B (T, T): B[t, k] = Π_{j=k+1}^{t} max|φ'(a_j)| · σ_max(W) ≥ ‖∂h_t/∂h_k‖₂ (k ≤ t)."""
    act = get_activation(activation)
    xb, h0b, tokens, _ = prepare_inputs(params, x, h0=h0)
    dphi = run_forward(params, xb, h0b, tokens, act).dphi[:, n]
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
