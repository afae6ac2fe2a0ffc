"""The specification: manual_bptt.bptt agrees with torch_reference.bptt (autograd).

Over random sizes (T ≤ 40, N ≤ 6, D, H, K ≤ 16), activations, float and token inputs,
batched or not, h0, masks, both reductions, full BPTT, window truncation 0 ≤ k ≤ T+2
and chunks 1 ≤ k ≤ T+2, and weight scales from 1e-3 to 4 (saturating tanh and
sigmoid, exploding relu). Tolerances: manual_bptt.checking.compare.FLOAT64 / FLOAT32.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings

import manual_bptt
import torch_reference
from manual_bptt.checking.cases import Case
from manual_bptt.checking.compare import FLOAT32, FLOAT64, Tolerance
from manual_bptt.checking.strategies import cases, float32_cases
from tests.helpers import assert_results_agree


def assert_agree(case: Case, tol: Tolerance) -> None:
    manual = case.call(manual_bptt.bptt)
    context = f"manual vs autograd for {case.reproduction()}"
    assert {g.dtype for g in manual.grads.values()} == {case.params.dtype}, context
    assert_results_agree(manual, case.call(torch_reference.bptt), tol, context)


# 5× the profile's count: this is the property the project exists for (500 in ci).
@settings(max_examples=5 * settings.default.max_examples)
@given(cases())
def test_manual_gradients_equal_autograd_float64(case: Case) -> None:
    assert_agree(case, FLOAT64)


@given(float32_cases())
def test_manual_gradients_equal_autograd_float32_on_bounded_domain(case: Case) -> None:
    assert_agree(case, FLOAT32)


def test_gradient_keys_follow_the_input_kind() -> None:
    params = manual_bptt.init_params(3, 4, 5)
    y = np.zeros((6, 2), dtype=int)
    floats = manual_bptt.bptt(params, np.ones((6, 2, 3)), y)
    tokens = manual_bptt.bptt(params, np.ones((6, 2), dtype=int), y)
    assert list(floats.grads) == ["U", "W", "V", "b", "c", "h0", "x"]
    assert list(tokens.grads) == ["U", "W", "V", "b", "c", "h0"]
    assert isinstance(floats.loss, float)
