"""Independent checks that lean on nobody's autograd: finite differences and the
complex step (manual_bptt/checking/gradcheck.py) against manual_bptt.bptt, for every
registered cell.

Truncated gradients are checked too, as the exact gradients of the loss with the
states where the truncation cuts held constant (gradcheck.bptt_objective).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import manual_bptt
from manual_bptt.cases import Case, make_case
from manual_bptt.checking.gradcheck import (
    bptt_objective,
    central_differences,
    directional_check,
    gradcheck,
    step_size_errors,
)
from manual_bptt.checking.strategies import cases
from manual_bptt.compare import FINITE_DIFFERENCE, FLOAT64, assert_grads_close
from tests.helpers import draw_case, every_cell, for_examples


def objective_and_grads(case: Case):
    result = case.call(manual_bptt.bptt)
    objective = case.call(bptt_objective)
    return objective, objective.batched_grads(result.grads), result


# Examples per cell, in multiples of the profile's count, and the largest sizes. The
# gated cells: a quarter, at sizes ≤ 3 (T ≤ 5): a gated cell has three or four times the
# vanilla cell's entries to difference, and the complex step below checks every gradient
# far more tightly anyway; this is the check that leans on no complex arithmetic.
CENTRAL: dict[str, tuple[float, dict[str, Any]]] = {
    "rnn": (1.0, {"max_T": 6, "max_N": 2, "max_dim": 4, "max_scale": 2.0})
}
GATED_CENTRAL: tuple[float, dict[str, Any]] = (
    0.25,
    {"max_T": 5, "max_N": 2, "max_dim": 3, "max_scale": 2.0},
)


@every_cell
def test_bptt_equals_central_differences_full_and_truncated(cell: str) -> None:
    def agrees(case: Case) -> None:
        objective, grads, result = objective_and_grads(case)
        assert objective.f(objective.arrays) == pytest.approx(result.loss, rel=1e-12, abs=1e-12)
        numeric = central_differences(objective.f, objective.arrays)
        assert_grads_close(grads, numeric, FINITE_DIFFERENCE, case.reproduction())

    scale, bounds = CENTRAL.get(cell, GATED_CENTRAL)
    for_examples(scale, cases(cell=cell, **bounds), agrees)


@every_cell
@given(data=st.data())
def test_bptt_equals_the_complex_step_to_round_off(cell: str, data: st.DataObject) -> None:
    """The complex step has no cancellation: it agrees with the analytic gradient under
    the float64 autograd policy, a million times tighter than finite differences. relu
    is not analytic; tanh, σ and the identity are, so every cell but the vanilla one
    with relu runs in complex arithmetic, and every gradient (h0, c0, x too) is checked."""
    analytic = ("tanh", "sigmoid", "identity")
    case = draw_case(data, cell, max_T=8, max_N=3, max_dim=6, activations=analytic)
    objective, grads, _ = objective_and_grads(case)
    rows = directional_check(objective.f, grads, objective.arrays, method="complex", tol=FLOAT64)
    assert {r.name for r in rows} == set(result_names(case))
    assert all(r.passed for r in rows), "\n".join(r.describe() for r in rows)


def result_names(case: Case) -> list[str]:
    """The gradients bptt returns for this case."""
    return list(case.call(manual_bptt.bptt).grads)


def test_fast_mode_catches_a_wrong_gradient_and_names_it() -> None:
    case = make_case(T=5, N=2, D=3, H=4, K=3, seed=2, with_h0=True)
    objective, grads, _ = objective_and_grads(case)
    assert all(r.passed for r in gradcheck(objective.f, grads, objective.arrays, mode="fast"))
    wrong = {**grads, "W": grads["W"] * 1.01}
    rows = {r.name: r for r in gradcheck(objective.f, wrong, objective.arrays, mode="fast")}
    assert not rows["W"].passed
    assert all(r.passed for name, r in rows.items() if name != "W")


def test_full_mode_reports_the_worst_entry() -> None:
    case = make_case(T=4, N=1, D=2, H=3, K=2, seed=5)
    objective, grads, _ = objective_and_grads(case)
    wrong = {k: v.copy() for k, v in grads.items()}
    wrong["U"][2, 1] += 1e-3
    rows = {r.name: r for r in gradcheck(objective.f, wrong, objective.arrays)}
    assert not rows["U"].passed
    assert rows["U"].worst_index == (2, 1)
    assert rows["U"].got - rows["U"].expected == pytest.approx(1e-3, rel=1e-3)


def test_checkers_do_not_change_their_arguments() -> None:
    case = make_case(T=4, N=2, D=3, H=3, K=2, seed=1)
    objective, grads, _ = objective_and_grads(case)
    before = {k: v.copy() for k, v in objective.arrays.items()}
    gradcheck(objective.f, grads, objective.arrays)
    directional_check(objective.f, grads, objective.arrays, method="complex")
    for k, v in before.items():
        np.testing.assert_array_equal(objective.arrays[k], v, k)


def test_relu_is_refused_by_the_complex_step_with_a_reason() -> None:
    case = make_case(T=3, N=1, D=2, H=2, K=2, seed=0, activation="relu")
    objective, grads, _ = objective_and_grads(case)
    with pytest.raises(ValueError, match="relu is not"):
        directional_check(objective.f, grads, objective.arrays, method="complex")


def test_unknown_mode_is_refused() -> None:
    case = make_case(T=2, N=1, D=2, H=2, K=2, seed=0)
    objective, grads, _ = objective_and_grads(case)
    with pytest.raises(ValueError, match="mode must be 'full' or 'fast'"):
        gradcheck(objective.f, grads, objective.arrays, mode="slow")


def test_step_size_errors_have_the_textbook_shape() -> None:
    """Central differences beat forward ones at their best step; the complex step stays
    at round-off for tiny h, where both differences are ruined by cancellation."""
    case = make_case(T=6, N=2, D=3, H=4, K=3, seed=0)
    objective, _, result = objective_and_grads(case)
    errors = step_size_errors(objective, result.grads)
    assert errors.central.min() < errors.forward.min() / 10
    tiny = errors.eps < 1e-12
    assert errors.complex is not None
    assert errors.complex[tiny].max() < 1e-13 < errors.central[tiny].min()
