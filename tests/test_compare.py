"""The tolerance policy itself (manual_bptt/compare.py) can fail.

Every other test leans on assert_grads_close and agreement saying "no" to a wrong
gradient; these show that they do, with the constants docs/testing.md states, at the
edges where a slip would pass everything unchecked (one entry, inf, NaN, float32).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from manual_bptt.compare import (
    FINITE_DIFFERENCE,
    FLOAT32,
    FLOAT64,
    Agreement,
    Tolerance,
    agreement,
    assert_grads_close,
    compare_grads,
    tolerance_for,
)


def test_a_wrong_gradient_raises_naming_it_its_worst_entry_and_the_policy() -> None:
    expected = {"W": np.array([[1.0, 2.0], [3.0, 4.0]]), "b": np.array([1.0, -1.0])}
    got = {"W": expected["W"].copy(), "b": expected["b"].copy()}
    got["W"][1, 0] = 3.5
    with pytest.raises(AssertionError) as info:
        assert_grads_close(got, expected, FLOAT64, "case 7")
    message = str(info.value)
    assert message.startswith(
        "case 7: 1 gradient(s) disagree (policy |Δ| ≤ 1e-12 + 1e-10·‖expected‖∞):\n  W[1, 0]: "
    )
    assert "expected 3, got 3.5, |Δ| = 0.5 (allowed 4.01e-10, relative 0.125) MISMATCH" in message
    assert "b[" not in message  # only the gradients that disagree are listed


def test_every_disagreeing_gradient_is_listed_and_no_context_means_no_prefix() -> None:
    expected = {"U": np.ones(3), "V": np.ones(2)}
    with pytest.raises(AssertionError, match=r"^2 gradient\(s\) disagree") as info:
        assert_grads_close({"U": np.zeros(3), "V": np.zeros(2)}, expected, FLOAT64)
    assert re.search(r"U\[0\]: .* MISMATCH\n  V\[0\]: .* MISMATCH$", str(info.value))


def test_agreeing_gradients_pass_silently() -> None:
    g = {"W": np.array([[1.0, 2.0]]), "empty": np.zeros((0, 3))}
    assert_grads_close(g, {k: v.copy() for k, v in g.items()}, FLOAT64)


@pytest.mark.parametrize("shape", [(1,), (1, 1), ()])
def test_a_one_entry_gradient_is_checked(shape) -> None:
    # H = 1 or K = 1, where shrinking ends: one entry must not pass unchecked.
    row = agreement("c", np.full(shape, 1.0), np.full(shape, 2.0), FLOAT64)
    assert not row.passed
    assert row.max_abs == 1.0
    assert row.worst_index == (0,) * len(shape)


def test_an_empty_gradient_agrees_with_nothing_to_compare() -> None:
    row = agreement("x", np.zeros((0, 2)), np.zeros((0, 2)), FLOAT32)
    # every field: no difference, no norm, no entry, the policy's atol allowed, passed
    assert row == Agreement("x", 0.0, 0.0, 0.0, (), 0.0, 0.0, FLOAT32.atol, True)
    assert FLOAT32.allowed(np.zeros((0, 2))) == FLOAT32.atol  # ‖empty‖∞ is 0


def test_a_passing_row_says_ok() -> None:
    row = agreement("b", np.array([1.0, 2.0]), np.array([1.0, 2.0]), FLOAT64)
    assert row.describe() == ("b[0]: expected 1, got 1, |Δ| = 0 (allowed 2.01e-10, relative 0) ok")


def test_the_reported_norm_is_the_two_norm_even_near_float64s_limit() -> None:
    huge = np.array([1e300, -1e300, 5e299])
    assert agreement("W", huge, huge, FLOAT64).norm == pytest.approx(1.5e300, rel=1e-15)
    assert agreement("W", np.zeros(3), np.zeros(3), FLOAT64).norm == 0.0
    assert agreement("W", np.ones(2), np.array([1.0, np.inf]), FLOAT64).norm == np.inf
    # float32 gradients are compared, and their norm taken, in float64
    e32 = np.array([0.1, 0.2, 0.3], dtype=np.float32)
    e64 = e32.astype(np.float64)
    row = agreement("W", e32, e32, FLOAT32)
    assert row.norm == pytest.approx(float(np.linalg.norm(e64)), rel=1e-15)
    assert row.norm != pytest.approx(float(np.linalg.norm(e32)), rel=1e-12)


@pytest.mark.parametrize(
    ("got", "expected"),
    [
        ([1.0, np.inf], [1.0, 2.0]),  # actual not finite
        ([1.0, 2.0], [1.0, np.inf]),  # expected not finite beside a finite actual
        ([1.0, np.inf], [1.0, np.inf]),  # both inf: still nothing to compare
        ([1.0, np.nan], [1.0, 2.0]),
        ([1.0, 2.0], [np.nan, 2.0]),
        ([np.nan, np.nan], [np.nan, np.nan]),
    ],
)
@pytest.mark.filterwarnings("error")  # and without numpy's "invalid value" warning
def test_non_finite_gradients_are_reported_as_mismatches_not_crashes(got, expected) -> None:
    row = agreement("W", np.array(got), np.array(expected), FLOAT64)
    assert not row.passed
    assert row.max_abs == np.inf  # NaN differences are reported as infinitely wrong
    assert "MISMATCH" in row.describe()
    with pytest.raises(AssertionError, match="1 gradient"):
        assert_grads_close({"W": np.array(got)}, {"W": np.array(expected)}, FLOAT64)


def test_the_reported_entry_and_relative_error_are_the_worst() -> None:
    row = agreement("W", np.array([1.0, 2.5, 3.0]), np.array([1.0, 2.0, 4.0]), FLOAT64)
    assert row.worst_index == (2,)
    assert (row.expected, row.got, row.max_abs) == (4.0, 3.0, 1.0)
    assert row.max_rel == 0.25
    assert row.norm == pytest.approx(np.sqrt(21.0), rel=1e-15)
    small = agreement("b", np.array([0.5, 0.25]), np.array([0.5, 0.5]), FLOAT64)
    assert small.max_rel == 0.5  # ‖e‖∞ below 1 is still a size to be relative to
    zero = agreement("b", np.array([0.0, 1e-3]), np.zeros(2), FLOAT64)
    assert zero.max_rel == np.inf
    assert not zero.passed
    both_zero = agreement("b", np.zeros(2), np.zeros(2), FLOAT64)
    assert (both_zero.max_rel, both_zero.passed) == (0.0, True)


def test_tolerance_for_picks_the_dtype_policy() -> None:
    assert tolerance_for(np.float32) is FLOAT32
    assert tolerance_for(np.dtype("float32")) is FLOAT32
    assert tolerance_for(np.float64) is FLOAT64
    assert tolerance_for("float64") is FLOAT64


@pytest.mark.parametrize(
    ("tol", "rtol", "atol"),
    [(FLOAT64, 1e-10, 1e-12), (FLOAT32, 1e-4, 1e-6), (FINITE_DIFFERENCE, 1e-6, 1e-7)],
)
def test_each_policy_is_exactly_the_stated_bound(tol: Tolerance, rtol: float, atol: float) -> None:
    # docs/testing.md's table: a difference 0.9× the bound passes, 1.1× fails, both for the
    # relative part (‖e‖∞ = 1000, so atol is negligible) and for atol alone (e = 0).
    e = np.array([1000.0, -3.0])
    bound = atol + rtol * 1000.0
    assert agreement("g", e + np.array([0.9 * bound, 0]), e, tol).passed
    assert not agreement("g", e + np.array([1.1 * bound, 0]), e, tol).passed
    assert agreement("g", np.array([0.9 * atol]), np.zeros(1), tol).passed
    assert not agreement("g", np.array([1.1 * atol]), np.zeros(1), tol).passed


def test_a_wrong_float32_gradient_is_rejected_under_float32() -> None:
    expected = np.array([[0.5, -2.0], [1.0, 0.25]], dtype=np.float32)
    slightly = expected * np.float32(1 + 3e-5)  # float32 rounding-sized: passes
    wrong = expected.copy()
    wrong[0, 1] *= np.float32(1 + 3e-4)  # three times the policy's rtol: fails
    tol = tolerance_for(expected.dtype)
    assert_grads_close({"W": slightly}, {"W": expected}, tol)
    with pytest.raises(AssertionError, match=r"W\[0, 1\]"):
        assert_grads_close({"W": wrong}, {"W": expected}, tol)


def test_names_and_shapes_must_match() -> None:
    with pytest.raises(ValueError, match="gradients differ in names"):
        compare_grads({"U": np.ones(1)}, {"W": np.ones(1)}, FLOAT64)
    with pytest.raises(
        ValueError, match=re.escape("gradient W has shape (2,), its reference (3,)")
    ):
        agreement("W", np.ones(2), np.ones(3), FLOAT64)
