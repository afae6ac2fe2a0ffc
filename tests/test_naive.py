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
from manual_bptt.checking.compare import FLOAT32, FLOAT64, assert_grads_close
from manual_bptt.checking.strategies import cases, float32_cases


@given(cases(max_T=20))
def test_vectorised_equals_naive_loops(case: Case) -> None:
    fast = manual_bptt.bptt(case.params, case.x, case.y, **case.kwargs())
    slow = manual_bptt.naive_bptt(case.params, case.x, case.y, **case.kwargs())
    assert abs(fast.loss - slow.loss) <= FLOAT64.atol + FLOAT64.rtol * abs(slow.loss)
    assert_grads_close(fast.grads, slow.grads, FLOAT64, case.reproduction())


@given(float32_cases(max_T=12))
def test_vectorised_equals_naive_loops_float32(case: Case) -> None:
    fast = manual_bptt.bptt(case.params, case.x, case.y, **case.kwargs())
    slow = manual_bptt.naive_bptt(case.params, case.x, case.y, **case.kwargs())
    assert all(g.dtype == case.params.dtype for g in slow.grads.values())
    assert_grads_close(fast.grads, slow.grads, FLOAT32, case.reproduction())


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@given(data=st.data())
def test_gated_vectorised_equals_naive_loops(cell: str, data: st.DataObject) -> None:
    """The gated cells' lag-batched window and one-pass chunks against the per-loss loops."""
    case = data.draw(cases(cell=cell, max_T=16), label="case")
    fast = manual_bptt.bptt(case.params, case.x, case.y, **case.kwargs())
    slow = manual_bptt.naive_bptt(case.params, case.x, case.y, **case.kwargs())
    assert abs(fast.loss - slow.loss) <= FLOAT64.atol + FLOAT64.rtol * abs(slow.loss)
    assert list(fast.grads) == list(slow.grads)
    assert_grads_close(fast.grads, slow.grads, FLOAT64, case.reproduction())


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@given(data=st.data())
def test_gated_vectorised_equals_naive_loops_float32(cell: str, data: st.DataObject) -> None:
    case = data.draw(float32_cases(cell=cell, max_T=12), label="case")
    fast = manual_bptt.bptt(case.params, case.x, case.y, **case.kwargs())
    slow = manual_bptt.naive_bptt(case.params, case.x, case.y, **case.kwargs())
    assert all(g.dtype == case.params.dtype for g in slow.grads.values())
    assert_grads_close(fast.grads, slow.grads, FLOAT32, case.reproduction())
