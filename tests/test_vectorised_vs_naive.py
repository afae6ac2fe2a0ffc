"""The vectorised bptt (what runs) equals the naive loops (what one reads).

The naive form walks every (loss, step) pair one sequence at a time; the vectorised
form batches the sequences, the steps of every time-invariant sum, and (for window
truncation) all losses at the same lag. Same numbers, different summation order, so
they agree under the FLOAT64 policy rather than bit for bit.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

import manual_bptt
from manual_bptt.checking.strategies import float32_cases
from manual_bptt.compare import FLOAT32, FLOAT64
from tests.helpers import assert_results_agree, draw_case, every_cell

# The gated cells' per-loss loops are slower: shorter sequences keep the run short.
MAX_T = {"rnn": 20}
GATED_MAX_T = 16


@every_cell
@given(data=st.data())
def test_vectorised_equals_naive_loops(cell: str, data: st.DataObject) -> None:
    """Full, chunked and lag-batched window BPTT against the per-loss loops, every cell."""
    case = draw_case(data, cell, max_T=MAX_T.get(cell, GATED_MAX_T))
    fast = case.call(manual_bptt.bptt)
    slow = case.call(manual_bptt.naive_bptt)
    assert_results_agree(fast, slow, FLOAT64, f"vectorised vs naive for {case.reproduction()}")


@every_cell
@given(data=st.data())
def test_vectorised_equals_naive_loops_float32(cell: str, data: st.DataObject) -> None:
    case = data.draw(float32_cases(cell=cell, max_T=12), label="case")
    fast = case.call(manual_bptt.bptt)
    slow = case.call(manual_bptt.naive_bptt)
    assert {g.dtype for g in slow.grads.values()} == {case.params.dtype}
    assert_results_agree(fast, slow, FLOAT32, f"vectorised vs naive for {case.reproduction()}")
