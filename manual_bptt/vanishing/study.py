"""The numbers behind ``bptt vanishing``: decay with lag, Jacobians against their bound,
and the two classic worked examples (Kravets's ∂E/∂U, the tutorial's ∂E_3/∂W). Plots are in plots.py; the command in
cli/vanishing.py.

Every picture is drawn from one small network (:func:`study_case`) whose recurrent
matrix is rescaled to a chosen σ_max(W) = factor/γ: factor < 1 is below the critical
value (vanishing is then guaranteed), factor > 1 above it (exploding is then possible,
not certain).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from manual_bptt.backward import bptt
from manual_bptt.cases import Case, make_case
from manual_bptt.inputs import require_vanilla
from manual_bptt.params import Params
from manual_bptt.progress import Progress
from manual_bptt.vanishing.decomposition import contribution_norms, contributions
from manual_bptt.vanishing.jacobians import (
    critical_sigma,
    jacobian_row,
    product_bounds,
    sigma_max,
    spectral_norms,
)

# σ_max(W) = factor/γ for the decay and Jacobian pictures: one below the critical value,
# two above it (at 1.6/γ saturation still wins for every φ here; at 3/γ relu explodes).
FACTORS = (0.6, 1.6, 3.0)
STUDY_ACTIVATIONS = ("tanh", "sigmoid", "relu")
# A per-step rate (geometric mean of the Jacobian's shrinking or growth) within this
# factor of 1 is called neither vanishing nor exploding.
RATE_MARGIN = 0.02


def with_sigma(params: Params, sigma: float) -> Params:
    """The same parameters with W (H, H) rescaled so that σ_max(W) = sigma: W · sigma/σ_max(W).

    Raises ValueError when W = 0, which no rescaling can give a largest singular value.
    """
    current = sigma_max(params.W)
    if current == 0:
        raise ValueError("W is all zeros: it cannot be rescaled to a chosen σ_max(W)")
    return replace(params, W=params.W * (sigma / current))


def decay_by_lag(norms: NDArray[np.float64]) -> NDArray[np.float64]:
    """(T,) median over t of norms[t, t − ℓ], for ℓ = 0 … T−1 (the (T, T) diagonals)."""
    T = norms.shape[0]
    return np.array([np.median(np.diagonal(norms, -lag)) for lag in range(T)])


def study_case(T: int = 40, activation: str = "tanh", seed: int = 0) -> Case:
    """The network every picture uses: float inputs x ~ N(0, 1), D = K = 8, H = 32,
    N = 4, weights from init_params (uniform, bound 1/√n_in), biases in (−1, 1)."""
    return make_case(T=T, N=4, D=8, H=32, K=8, seed=seed, activation=activation)


@dataclass(frozen=True)
class Regime:
    """One activation at one σ_max(W), measured against the lag ℓ = t − k.

    Attributes:
        activation: φ.
        factor: σ_max(W) · γ (below 1: below the critical value).
        sigma: σ_max(W).
        decay: (T,) median over t of ‖∂E_t/∂θ via step t − ℓ‖ (θ = U unless asked).
        jacobian: (T,) ‖∂h_{T−1}/∂h_{T−1−ℓ}‖₂ for sequence 0.
        bound: (T,) its product bound Π_j ‖diag φ'(a_j)‖₂ · σ_max(W).
    """

    activation: str
    factor: float
    sigma: float
    decay: NDArray[np.float64]
    jacobian: NDArray[np.float64]
    bound: NDArray[np.float64]

    @property
    def below_critical(self) -> bool:
        """σ_max(W) < 1/γ, where vanishing is guaranteed."""
        return self.factor < 1

    @property
    def gamma(self) -> float:
        """γ = sup φ' (1 for tanh and relu, 1/4 for sigmoid)."""
        return 1.0 / critical_sigma(self.activation)

    @property
    def rate(self) -> float:
        """‖∂h_{T−1}/∂h_0‖₂^{1/(T−1)}: the Jacobian's mean factor per step back."""
        lag = len(self.jacobian) - 1
        if lag == 0:
            return 1.0
        with np.errstate(divide="ignore"):
            return float(np.exp(np.log(self.jacobian[lag]) / lag))

    @property
    def verdict(self) -> str:
        """ "vanishes" when the rate is below 1 − RATE_MARGIN, "explodes" above
        1 + RATE_MARGIN, "neither" in between (RATE_MARGIN = 0.02)."""
        if self.rate < 1 - RATE_MARGIN:
            return "vanishes"
        if self.rate > 1 + RATE_MARGIN:
            return "explodes"
        return "neither"

    @property
    def label(self) -> str:
        """σ_max(W) as factor/γ and as a number, and its side of the critical value."""
        side = "below" if self.below_critical else "above"
        return f"σ_max(W) = {self.factor:g}/γ = {self.sigma:g} ({side})"


def regimes(
    T: int = 40,
    seed: int = 0,
    *,
    factors: tuple[float, ...] = FACTORS,
    activations: tuple[str, ...] = STUDY_ACTIVATIONS,
    param: str = "U",
    progress: Progress | None = None,
) -> list[Regime]:
    """Measure every (activation, factor) pair on :func:`study_case` with σ_max(W)
    rescaled to factor/γ: contribution decay, Jacobian norms and their bound."""
    out = []
    for activation in activations:
        case = study_case(T, activation, seed)
        assert isinstance(case.params, Params)  # study_case builds vanilla cells
        for factor in factors:
            sigma = factor * critical_sigma(activation)
            params = with_sigma(case.params, sigma)
            norms = contribution_norms(params, case.x, case.y, param=param, activation=activation)
            jac = spectral_norms(jacobian_row(params, case.x, activation=activation))
            bound = product_bounds(params, case.x, activation=activation)[T - 1]
            # Index by lag ℓ = (T − 1) − k: reverse the row.
            out.append(
                Regime(
                    activation,
                    factor,
                    sigma,
                    decay_by_lag(norms),
                    jac[::-1].copy(),
                    bound[::-1].copy(),
                )
            )
            if progress is not None:
                progress.update()
    return out


@dataclass(frozen=True)
class WorkedExample:
    """One loss's gradient split by the step at which θ is used, as a classic example does.

    Attributes:
        param: θ, "U" or "W".
        params: U (H, D), W (H, H), V (K, H), b (H,), c (K,).
        x: token ids (T,); y: targets (T,); h0: h_{−1} (H,), or None for zeros.
        parts: (T, T, *θ's shape), every contribution [t, k] to ∂E_t/∂θ.
        total: θ's gradient from bptt, the sum that every part adds up to.
    """

    param: str
    params: Params
    x: NDArray[np.integer]
    y: NDArray[np.integer]
    h0: NDArray[np.floating] | None
    parts: NDArray[np.floating]
    total: NDArray[np.floating]

    @property
    def components(self) -> NDArray[np.floating]:
        """(T, *θ's shape): ∂E_{T−1}/∂θ via steps 0, …, T−1 (the last loss's parts)."""
        last: NDArray[np.floating] = self.parts[-1]
        return last

    @property
    def norms(self) -> NDArray[np.float64]:
        """(T,) Frobenius norms of the components."""
        norms: NDArray[np.float64] = np.linalg.norm(
            self.components.reshape(len(self.components), -1), axis=1
        )
        return norms

    @property
    def total_error(self) -> float:
        """max |Σ_{t,k} [t, k] − ∂L/∂θ|."""
        return float(np.abs(self.parts.sum(axis=(0, 1)) - self.total).max())


def _worked(
    param: str,
    case: Case,
    x: NDArray[np.integer],
    y: NDArray[np.integer],
    h0: NDArray[np.floating] | None,
) -> WorkedExample:
    params = require_vanilla(case.params, "the example")
    parts = contributions(params, x, y, param=param, h0=h0)
    total = bptt(params, x, y, h0=h0).grads[param]
    return WorkedExample(param, params, x, y, h0, parts, total)


def kravets_example(seed: int = 0) -> WorkedExample:
    """Kravets's three-step example: the loss at the third step split over the three
    inputs X₁, X₂, X₃ with respect to W_xh, which is our U (steps counted from 1 there,
    from 0 here, so the loss is E_2): ∂E_2/∂U = Σ_{k=0}^{2} δ^{(2)}_k x_kᵀ.

    D = K = 4, H = 3, tanh, the tokens 0, 1, 2 with the next tokens 1, 2, 3 as targets,
    h_{−1} = 0. (A. Kravets, "Backpropagation and Vanishing Gradient Problem in RNN".)
    """
    return _worked(
        "U", make_case(T=3, N=1, D=4, H=3, K=4, seed=seed), np.arange(3), np.arange(1, 4), None
    )


def tutorial_example(seed: int = 0, *, with_h0: bool = False) -> WorkedExample:
    """The WildML tutorial's example: ∂E_3/∂W = Σ_{k=0}^{3} ∂E_3/∂ŷ_3 · ∂ŷ_3/∂s_3 ·
    ∂s_3/∂s_k · ∂s_k/∂W, with zero-based steps, four parts (the tutorial's s is our h).

    The tutorial's network: no biases, tanh, D = K = 4 (a vocabulary), H = 3, tokens
    0, 1, 2, 3 with the next tokens as targets. ∂s_k/∂W multiplies s_{k−1}, so the k = 0
    part is δ^{(3)}_0 h_{−1}ᵀ: exactly zero when the initial state is zero, as the
    tutorial's is; ``with_h0`` draws h_{−1} in (−1, 1) to show it non-zero.
    (D. Britz, Recurrent Neural Networks Tutorial, Part 3, WildML 2015.)
    """
    case = make_case(
        T=4,
        N=1,
        D=4,
        H=3,
        K=4,
        seed=seed,
        biases=False,
        batched=False,
        tokens=True,
        with_h0=with_h0,
    )
    return _worked("W", case, np.arange(4), np.array([1, 2, 3, 0]), case.h0)
