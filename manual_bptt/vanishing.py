"""The numbers behind ``bptt vanishing``: decay with lag, Jacobians against their bound,
and the classic 3-step worked example. Plots are in plots.py; the command in
commands/vanishing.py."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from manual_bptt.backward import bptt
from manual_bptt.cases import Case, make_case
from manual_bptt.contributions import contribution_norms, contributions
from manual_bptt.jacobians import (
    critical_sigma,
    hidden_jacobians,
    product_bounds,
    sigma_max,
    spectral_norms,
)
from manual_bptt.params import Params


def with_sigma(params: Params, sigma: float) -> Params:
    """The same parameters with W rescaled so that σ_max(W) = sigma."""
    return replace(params, W=params.W * (sigma / sigma_max(params.W)))


def decay_by_lag(norms: NDArray[np.float64]) -> NDArray[np.float64]:
    """(T,) median over t of norms[t, t − ℓ], for ℓ = 0 … T−1 (the (T, T) diagonals)."""
    T = norms.shape[0]
    return np.array([np.median(np.diagonal(norms, -lag)) for lag in range(T)])


def study_case(T: int = 40, activation: str = "tanh", seed: int = 0) -> Case:
    """The network every picture uses: float inputs, D = K = 8, H = 32, N = 4."""
    return make_case(T=T, N=4, D=8, H=32, K=8, seed=seed, activation=activation)


@dataclass(frozen=True)
class DecayCurve:
    activation: str
    sigma: float
    below_critical: bool
    by_lag: NDArray[np.float64]


def decay_curves(
    T: int = 40, seed: int = 0, factors: tuple[float, ...] = (0.6, 1.6)
) -> list[DecayCurve]:
    """For tanh, sigmoid and relu, with σ_max(W) = factor / γ for each factor: the median
    ‖∂E_t/∂U via step k‖ against the lag t − k."""
    curves = []
    for activation in ("tanh", "sigmoid", "relu"):
        case = study_case(T, activation, seed)
        for factor in factors:
            sigma = factor * critical_sigma(activation)
            params = with_sigma(case.params, sigma)
            norms = contribution_norms(params, case.x, case.y, param="U", activation=activation)
            curves.append(DecayCurve(activation, sigma, factor < 1, decay_by_lag(norms)))
    return curves


def jacobian_lines(T: int = 40, seed: int = 0, factors: tuple[float, ...] = (0.6, 1.6)) -> dict:
    """tanh, σ_max(W) = factor / γ: (‖∂h_{T−1}/∂h_k‖₂, bound) against lag T−1−k."""
    lines = {}
    case = study_case(T, "tanh", seed)
    for factor in factors:
        params = with_sigma(case.params, factor * critical_sigma("tanh"))
        norms = spectral_norms(hidden_jacobians(params, case.x))[T - 1, ::-1]
        bounds = product_bounds(params, case.x)[T - 1, ::-1]
        lines[f"σ_max(W) = {factor:g}/γ"] = (norms, bounds)
    return lines


def worked_example(seed: int = 0) -> dict:
    """The classic 3-step example: ∂E/∂U of the last loss split over its three steps.

    Returns {"components": (3, H, D) the parts via steps 0, 1, 2 of the loss at t = 2,
    "norms": their Frobenius norms, "total_error": max |Σ_{t,k} [t, k] − ∂L/∂U|}.
    """
    case = make_case(T=3, N=1, D=4, H=3, K=4, seed=seed, tokens=True, batched=False)
    parts = contributions(case.params, case.x, case.y, param="U")
    total = bptt(case.params, case.x, case.y).grads["U"]
    return {
        "components": parts[2],
        "norms": np.linalg.norm(parts[2].reshape(3, -1), axis=1),
        "total_error": float(np.abs(parts.sum(axis=(0, 1)) - total).max()),
    }
