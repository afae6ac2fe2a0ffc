"""∂h_t/∂h_k against torch.autograd.functional.jacobian, and the bounds and conditions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from manual_bptt.cases import Case, make_case
from manual_bptt.checking.strategies import cases
from manual_bptt.compare import FLOAT64, assert_grads_close, tolerance_for
from manual_bptt.params import Params
from manual_bptt.vanishing.jacobians import (
    critical_sigma,
    hidden_jacobians,
    jacobian_row,
    product_bounds,
    sigma_max,
    spectral_norms,
    state_jacobians,
)
from manual_bptt.vanishing.study import regimes, with_sigma
from torch_reference.jacobians import hidden_jacobians as torch_hidden_jacobians
from torch_reference.jacobians import state_jacobians as torch_state_jacobians


@given(
    cases(
        max_T=6,
        max_N=2,
        max_dim=5,
        batched=True,
        modes=("full",),
        activations=("tanh", "sigmoid", "relu", "identity"),
    ),
    st.data(),
)
def test_hidden_jacobians_equal_autograd(case: Case, data: st.DataObject) -> None:
    n = data.draw(st.integers(0, case.x.shape[1] - 1), label="n")
    kw: dict[str, Any] = {"h0": case.h0, "activation": case.activation, "n": n}
    params = cast(Params, case.params)  # cases() draws the vanilla cell
    J = hidden_jacobians(params, case.x, **kw)
    expected = torch_hidden_jacobians(params, case.x, **kw)
    for t in range(case.T):
        for k in range(case.T):  # block by block: each block's tolerance scales with itself
            assert_grads_close({f"J[{t},{k}]": J[t, k]}, {f"J[{t},{k}]": expected[t, k]}, FLOAT64)


@given(cases(max_T=10, max_N=2, max_dim=6, modes=("full",)))
def test_spectral_norms_never_exceed_the_product_bound(case: Case) -> None:
    kw: dict[str, Any] = {"h0": case.h0, "activation": case.activation}
    params = cast(Params, case.params)  # cases() draws the vanilla cell
    norms = spectral_norms(hidden_jacobians(params, case.x, **kw))
    bounds = product_bounds(params, case.x, **kw)
    assert np.all(norms <= bounds * (1 + 1e-10) + 1e-300)


def test_below_the_critical_sigma_the_jacobians_vanish_geometrically() -> None:
    """σ_max(W) < 1/γ is sufficient: ‖∂h_t/∂h_k‖ ≤ (γ σ_max)^(t−k)."""
    for activation in ("tanh", "sigmoid", "relu"):
        case = make_case(T=30, N=1, D=3, H=8, K=3, seed=1, activation=activation, scale=3.0)
        sigma = 0.8 * critical_sigma(activation)
        params = with_sigma(cast(Params, case.params), sigma)
        norms = spectral_norms(hidden_jacobians(params, case.x, activation=activation))
        gamma = 1 / critical_sigma(activation)
        lags = np.arange(30)
        assert np.all(norms[29, 29 - lags] <= (gamma * sigma) ** lags * (1 + 1e-10)), activation


def test_above_the_critical_sigma_is_necessary_but_not_sufficient_to_explode() -> None:
    """Identity φ with σ_max(W) = 1.5 grows; saturated tanh with the same W still vanishes."""
    case = make_case(T=30, N=1, D=3, H=8, K=3, seed=2)
    W = np.diag(np.full(8, 1.5))
    params = with_sigma(cast(Params, case.params), 1.0)
    params = type(params)(U=params.U * 20, W=W, V=params.V, b=params.b, c=params.c)
    assert sigma_max(W) > critical_sigma("tanh")
    grow = spectral_norms(hidden_jacobians(params, case.x, activation="identity"))[29, 0]
    saturated = spectral_norms(hidden_jacobians(params, case.x, activation="tanh"))[29, 0]
    assert grow > 1e5
    assert saturated < 1e-5


@given(cases(max_T=8, max_N=3, max_dim=5, modes=("full",), batched=True), st.data())
def test_one_row_equals_that_row_of_the_full_jacobian_table(
    case: Case, data: st.DataObject
) -> None:
    n = data.draw(st.integers(0, case.x.shape[1] - 1), label="n")
    t = data.draw(st.integers(0, case.T - 1), label="t")
    kw: dict[str, Any] = {"h0": case.h0, "activation": case.activation, "n": n}
    params = cast(Params, case.params)  # cases() draws the vanilla cell
    row = jacobian_row(params, case.x, t=t, **kw)
    full = hidden_jacobians(params, case.x, **kw)[t]
    assert_grads_close({f"J[{t}]": row}, {f"J[{t}]": full}, FLOAT64, case.describe())


def test_the_study_networks_show_both_conditions() -> None:
    """Below 1/γ all three φ vanish, as guaranteed; above, relu at 3/γ explodes while
    tanh and sigmoid still vanish (saturation): necessary, not sufficient."""
    found = {(r.activation, r.factor): r for r in regimes(T=30)}
    for (activation, factor), r in found.items():
        assert np.all(r.jacobian <= r.bound * (1 + 1e-10)), (activation, factor)
        if factor < 1:
            assert r.verdict == "vanishes", (activation, factor, r.rate)
            assert r.rate <= r.gamma * r.sigma  # the geometric bound (γσ)^lag
    assert found["relu", 3.0].verdict == "explodes"
    assert found["tanh", 3.0].verdict == "vanishes"
    assert found["sigmoid", 3.0].verdict == "vanishes"


def test_bad_sequence_or_step_index_is_refused() -> None:
    case = make_case(T=4, N=2, D=2, H=3, K=2, seed=0)
    with pytest.raises(ValueError, match=r"n must index a sequence in \[0, N\) = \[0, 2\)"):
        product_bounds(cast(Params, case.params), case.x, n=2)
    with pytest.raises(ValueError, match=r"t must be a step in \[0, T\) = \[0, 4\)"):
        jacobian_row(cast(Params, case.params), case.x, t=4)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_the_twins_jacobians_of_a_sequence_between_two_others(cell: str, dtype: str) -> None:
    """N = 3, so that sequence 1 has neighbours on both sides: the twin puts sequence n's
    state back between the others', and with N = 2 a neighbour lost there would be
    broadcast back unnoticed. Also the twin's defaults (tanh, n = 0), its dtype and its
    use of h0 (the hypothesis tests draw N ≤ 2)."""
    case = make_case(T=4, N=3, D=2, H=3, K=2, seed=3, with_h0=True, cell=cell, dtype=dtype)
    faces: list[tuple[Callable[..., np.ndarray], Callable[..., np.ndarray]]] = [
        (state_jacobians, torch_state_jacobians)
    ]
    if cell == "rnn":
        faces.append((hidden_jacobians, torch_hidden_jacobians))
    for manual, twin in faces:
        for n in (0, 1, 2):
            J = manual(case.params, case.x, h0=case.h0, n=n)
            expected = twin(case.params, case.x, h0=case.h0, n=n)
            assert J.dtype == expected.dtype == np.dtype(dtype)
            assert_grads_close({f"J, n = {n}": J}, {f"J, n = {n}": expected}, tolerance_for(dtype))
        default = twin(case.params, case.x, h0=case.h0)
        np.testing.assert_array_equal(
            default, twin(case.params, case.x, h0=case.h0, activation="tanh", n=0)
        )
        assert not np.array_equal(default, twin(case.params, case.x, n=0))  # h0 is used


@pytest.mark.parametrize("twin", [torch_hidden_jacobians, torch_state_jacobians])
def test_the_twin_refuses_a_bad_sequence_index_as_the_manual_face_does(twin) -> None:
    case = make_case(T=3, N=2, D=2, H=2, K=2, seed=0)
    for n in (2, -1, 0.5):
        with pytest.raises(
            ValueError, match=rf"^n must index a sequence in \[0, N\) = \[0, 2\); got {n!r}$"
        ):
            twin(case.params, case.x, n=n)
