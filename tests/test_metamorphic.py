"""Properties that relate one call to another, with no reference implementation.

Each names the property it proves. They hold for both faces (manual and twin) where
cheap; the twin's side is covered in test_manual_vs_autograd.py by agreement.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import manual_bptt
import torch_reference
from manual_bptt.cases import Case, make_case
from manual_bptt.checking.strategies import cases
from manual_bptt.compare import FLOAT64, assert_grads_close
from tests.helpers import (
    FACES,
    assert_results_agree,
    assert_unbatched_equals_batch_of_one,
    every_face,
)

full_cases = cases(modes=("full",), max_T=24)


def run(case: Case, **changes: object) -> manual_bptt.BPTTResult:
    return case.call(manual_bptt.bptt, **changes)


def assert_same(a: manual_bptt.BPTTResult, b: manual_bptt.BPTTResult, why: str) -> None:
    assert_results_agree(a, b, FLOAT64, why)


@given(full_cases, st.integers(0, 5))
def test_window_truncation_at_least_T_minus_1_equals_full(case: Case, extra: int) -> None:
    k = case.T - 1 + extra
    assert_same(run(case, truncate=k), run(case), f"truncate={k} vs full")


@given(full_cases, st.integers(0, 5))
def test_chunk_at_least_T_equals_full(case: Case, extra: int) -> None:
    k = case.T + extra
    assert_same(run(case, chunk=k), run(case), f"chunk={k} vs full")


@given(full_cases)
def test_chunk_1_equals_truncate_0(case: Case) -> None:
    assert_same(run(case, chunk=1), run(case, truncate=0), "chunk=1 vs truncate=0")


@given(cases(max_T=24, min_T=3, modes=("truncate", "chunk")))
def test_truncation_changes_recurrent_gradients_only(case: Case) -> None:
    """V and c never see the recurrence: every truncation leaves their gradients alone."""
    full = run(case, truncate=None, chunk=None)
    cut = run(case)
    assert case.truncate is not None or case.chunk is not None  # never full against full
    assert_grads_close({k: cut.grads[k] for k in "Vc"}, {k: full.grads[k] for k in "Vc"}, FLOAT64)
    assert cut.loss == full.loss  # truncation changes gradients, never the loss


@given(cases(max_T=16, max_N=4, batched=True))
def test_sum_reduction_batch_gradient_is_sum_over_sequences(case: Case) -> None:
    """With reduction="sum", parameters' gradients add over sequences; h0's and x's
    rows are each sequence's own."""
    case = dataclasses.replace(case, reduction="sum")
    whole = run(case)
    parts = []
    for n in range(case.y.shape[1]):
        one = dataclasses.replace(
            case,
            x=case.x[:, n : n + 1],
            y=case.y[:, n : n + 1],
            h0=None if case.h0 is None else case.h0[n : n + 1],
            mask=None if case.mask is None else case.mask[:, n : n + 1],
        )
        parts.append(run(one))
    summed = {k: sum(p.grads[k] for p in parts) for k in "UWVbc"}
    assert_grads_close({k: whole.grads[k] for k in "UWVbc"}, summed, FLOAT64, "sum over n")
    stacked = {"h0": np.concatenate([p.grads["h0"] for p in parts], axis=0)}
    if "x" in whole.grads:
        stacked["x"] = np.concatenate([p.grads["x"] for p in parts], axis=1)
    assert_grads_close({k: whole.grads[k] for k in stacked}, stacked, FLOAT64, "rows per n")
    assert abs(whole.loss - sum(p.loss for p in parts)) <= 1e-10 * max(1.0, abs(whole.loss))


@given(cases(max_T=16), st.sampled_from(["sum", "mean"]))
def test_all_zero_mask_gives_zero_loss_and_zero_gradients(case: Case, reduction: str) -> None:
    mask = np.zeros(case.y.shape, dtype=bool)
    for face in FACES.values():
        result = case.call(face, mask=mask, reduction=reduction)
        assert result.loss == 0.0, face.__module__
        if face is not torch_reference.bptt:  # and not −0.0, which would print as "-0"
            assert not np.signbit(result.loss), face.__module__
        for name, g in result.grads.items():
            assert not np.any(g), f"{face.__module__}: grads[{name!r}] not zero"


@given(cases(max_T=16, with_mask=True).filter(lambda c: c.mask.any()))
def test_mean_reduction_is_sum_divided_by_mask_total(case: Case) -> None:
    total = float(np.sum(case.mask))
    mean = run(case, reduction="mean")
    summed = run(case, reduction="sum")
    scaled = {k: g / total for k, g in summed.grads.items()}
    assert abs(mean.loss - summed.loss / total) <= 1e-12 * max(1.0, abs(mean.loss))
    assert_grads_close(mean.grads, scaled, FLOAT64, "mean vs sum / Σm")


@given(cases(max_T=16, max_N=1, batched=True))
def test_unbatched_equals_batch_of_one(case: Case) -> None:
    assert "h0" in run(case).grads
    assert_unbatched_equals_batch_of_one(case)


@given(cases(max_T=16, tokens=True))
def test_token_ids_equal_one_hot_float_inputs(case: Case) -> None:
    """U x_t with a token id is the column U[:, x_t]: the same as a one-hot float x_t."""
    one_hot = np.eye(case.params.D, dtype=case.params.dtype)[case.x]
    tokens = run(case)
    floats = run(dataclasses.replace(case, x=one_hot))
    without_x = {k: g for k, g in floats.grads.items() if k != "x"}
    assert_grads_close(tokens.grads, without_x, FLOAT64, "token ids vs one-hot")


@every_face
@given(case=cases(max_T=12))
def test_no_argument_is_changed_by_a_call(face, case: Case) -> None:
    before = copy.deepcopy(case)
    case.call(face)
    fwd = manual_bptt.forward(case.params, case.x, h0=case.h0, activation=case.activation)
    for result_array in (fwd.a, fwd.h, fwd.h0, fwd.o, fwd.y_hat):  # changing these is safe
        for argument in (case.x, case.h0, *case.params.as_dict().values()):
            assert argument is None or not np.shares_memory(result_array, argument)
    for field in ("x", "y", "h0", "mask"):
        np.testing.assert_array_equal(getattr(case, field), getattr(before, field), field)
    for name, value in case.params.as_dict().items():
        np.testing.assert_array_equal(value, before.params.as_dict()[name], name)


@given(cases(max_T=12, modes=("full",)))
def test_forward_loss_and_bptt_loss_agree(case: Case) -> None:
    assert case.call(manual_bptt.loss) == pytest.approx(run(case).loss, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "identity"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_huge_logits_give_finite_loss_and_gradients(activation: str, dtype: str) -> None:
    case = make_case(T=5, N=2, D=3, H=4, K=6, seed=7, activation=activation, dtype=dtype)
    params = dataclasses.replace(
        case.params, c=np.array([1e4, -1e4, 0, 5e3, -5e3, 1e4], dtype=dtype)
    )
    for face in FACES.values():
        result = dataclasses.replace(case, params=params).call(face)
        assert np.isfinite(result.loss), face.__module__
        for name, g in result.grads.items():
            assert np.all(np.isfinite(g)), f"{face.__module__}: grads[{name!r}]"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_results_keep_the_inputs_dtype(dtype: str) -> None:
    case = make_case(T=4, N=2, D=3, H=4, K=5, seed=1, dtype=dtype, with_h0=True)
    for face in FACES.values():
        result = case.call(face)
        assert {g.dtype for g in result.grads.values()} == {np.dtype(dtype)}, face.__module__
    fwd = manual_bptt.forward(case.params, case.x)
    assert {fwd.a.dtype, fwd.h.dtype, fwd.o.dtype, fwd.y_hat.dtype} == {np.dtype(dtype)}


def test_relu_derivative_at_exactly_zero_is_zero_as_in_torch() -> None:
    """relu'(0) is a convention; ours is torch's (0), or the faces would disagree at a = 0.
    With U, W, b zero every a_t is exactly 0, so only the convention decides dW, db."""
    case = make_case(T=3, N=2, D=2, H=3, K=2, seed=3, activation="relu")
    zero = {k: np.zeros_like(v) for k, v in case.params.as_dict().items() if k in "UWb"}
    params = dataclasses.replace(case.params, **zero)
    manual = manual_bptt.bptt(params, case.x, case.y, activation="relu")
    twin = torch_reference.bptt(params, case.x, case.y, activation="relu")
    assert_grads_close(manual.grads, twin.grads, FLOAT64, "relu at a = 0")
    assert not np.any(manual.grads["b"])
