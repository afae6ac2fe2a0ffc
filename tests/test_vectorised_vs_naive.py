"""The vectorised bptt (what runs) equals the naive loops (what one reads).

The naive form walks every (loss, step) pair one sequence at a time; the vectorised
form batches the sequences, the steps of every time-invariant sum, and (for window
truncation) all losses at the same lag. Same numbers, different summation order, so
they agree under the FLOAT64 policy rather than bit for bit.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import manual_bptt
from manual_bptt.checking.cases import Case
from manual_bptt.checking.compare import FLOAT32, FLOAT64
from manual_bptt.checking.strategies import cases, float32_cases
from tests.helpers import assert_results_agree


@given(cases(max_T=20))
def test_vectorised_equals_naive_loops(case: Case) -> None:
    fast = case.call(manual_bptt.bptt)
    slow = case.call(manual_bptt.naive_bptt)
    assert_results_agree(fast, slow, FLOAT64, f"vectorised vs naive for {case.reproduction()}")


@given(float32_cases(max_T=12))
def test_vectorised_equals_naive_loops_float32(case: Case) -> None:
    fast = case.call(manual_bptt.bptt)
    slow = case.call(manual_bptt.naive_bptt)
    assert {g.dtype for g in slow.grads.values()} == {case.params.dtype}
    assert_results_agree(fast, slow, FLOAT32, f"vectorised vs naive for {case.reproduction()}")


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@given(data=st.data())
def test_gated_vectorised_equals_naive_loops(cell: str, data: st.DataObject) -> None:
    """The gated cells' lag-batched window and one-pass chunks against the per-loss loops."""
    case = data.draw(cases(cell=cell, max_T=16), label="case")
    fast = case.call(manual_bptt.bptt)
    slow = case.call(manual_bptt.naive_bptt)
    assert_results_agree(fast, slow, FLOAT64, f"vectorised vs naive for {case.reproduction()}")


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@given(data=st.data())
def test_gated_vectorised_equals_naive_loops_float32(cell: str, data: st.DataObject) -> None:
    case = data.draw(float32_cases(cell=cell, max_T=12), label="case")
    fast = case.call(manual_bptt.bptt)
    slow = case.call(manual_bptt.naive_bptt)
    assert {g.dtype for g in slow.grads.values()} == {case.params.dtype}
    assert_results_agree(fast, slow, FLOAT32, f"vectorised vs naive for {case.reproduction()}")
