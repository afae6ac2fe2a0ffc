"""Per-(loss, step) contributions: manual against autograd (one parameter copy per
step), summing to the total gradient, norms-only form equal to the full one, and the
classic 3-step worked example."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import manual_bptt
import torch_reference.contributions as twin
from manual_bptt.cases import Case, make_case
from manual_bptt.compare import FLOAT64, assert_grads_close
from manual_bptt.contributions import PARAMS, contribution_norms, contributions
from manual_bptt.strategies import cases
from manual_bptt.vanishing import worked_example

small = cases(max_T=8, max_N=3, max_dim=5, max_scale=2.0, batched=True)


def params_for(case: Case) -> list[str]:
    return [p for p in PARAMS if not (p == "x" and np.issubdtype(case.x.dtype, np.integer))]


@given(small, st.data())
def test_contributions_equal_autograd_per_step_copies(case: Case, data: st.DataObject) -> None:
    param = data.draw(st.sampled_from(params_for(case)), label="param")
    mine = contributions(case.params, case.x, case.y, param=param, **case.kwargs())
    theirs = twin.contributions(case.params, case.x, case.y, param=param, **case.kwargs())
    assert_grads_close({param: mine}, {param: theirs}, FLOAT64, case.describe())


@given(small)
def test_contributions_sum_to_the_total_truncated_gradient(case: Case) -> None:
    total = manual_bptt.bptt(case.params, case.x, case.y, **case.kwargs()).grads
    summed = {}
    for param in params_for(case):
        parts = contributions(case.params, case.x, case.y, param=param, **case.kwargs())
        summed[param] = parts.sum(axis=0) if param == "x" else parts.sum(axis=(0, 1))
        assert not np.any(np.triu(parts.reshape(case.T, case.T, -1).any(-1), 1)), "k > t"
    assert_grads_close(summed, {k: total[k] for k in summed}, FLOAT64, case.describe())


@given(small, st.data())
def test_norms_only_form_equals_norms_of_the_full_form(case: Case, data: st.DataObject) -> None:
    param = data.draw(st.sampled_from(params_for(case)), label="param")
    full = contributions(case.params, case.x, case.y, param=param, **case.kwargs())
    expected = np.linalg.norm(full.reshape(case.T, case.T, -1), axis=-1)
    got = contribution_norms(case.params, case.x, case.y, param=param, **case.kwargs())
    assert_grads_close({param: got}, {param: expected}, FLOAT64, case.describe())


def test_window_truncation_keeps_exactly_the_band() -> None:
    case = make_case(T=9, N=2, D=3, H=4, K=3, seed=4, truncate=2)
    norms = contribution_norms(case.params, case.x, case.y, param="W", **case.kwargs())
    t, k = np.indices(norms.shape)
    assert np.all(norms[(k > t) | (k < t - 2)] == 0)
    assert np.all(norms[(k <= t) & (k >= t - 2) & (k > 0)] > 0)  # W h_{−1} = 0 at k = 0


def test_norms_only_form_handles_hundreds_of_steps() -> None:
    case = make_case(T=300, N=2, D=4, H=8, K=4, seed=0)
    norms = contribution_norms(case.params, case.x, case.y, param="U")
    assert norms.shape == (300, 300)
    assert norms[299, 0] < 1e-12 * norms[299, 299]  # a late loss barely reaches step 0


def test_classic_three_step_example_components_sum_to_total() -> None:
    example = worked_example()
    assert example["components"].shape == (3, 3, 4)
    assert np.all(example["norms"] > 0)
    assert example["total_error"] < 1e-12


def test_unknown_param_and_x_of_tokens_are_refused() -> None:
    case = make_case(T=3, N=1, D=2, H=2, K=2, seed=0, tokens=True)
    with pytest.raises(ValueError, match="param must be one of"):
        contributions(case.params, case.x, case.y, param="Q")
    with pytest.raises(ValueError, match='param="x" needs float inputs'):
        contribution_norms(case.params, case.x, case.y, param="x")
