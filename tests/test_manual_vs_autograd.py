"""The specification: manual_bptt.bptt agrees with torch_reference.bptt (autograd).

For every registered cell (the GRU with both reset variants), over random sizes
(T ≤ 40 for the vanilla cell, 24 for the gated ones; N ≤ 6, D, H, K ≤ 16), activations, float and token inputs,
batched or not, h0, masks, both reductions, full BPTT, window truncation 0 ≤ k ≤ T+2
and chunks 1 ≤ k ≤ T+2, and weight scales from 1e-3 to 4 (saturating tanh and
sigmoid, exploding relu). Tolerances: manual_bptt.compare.FLOAT64 / FLOAT32.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import manual_bptt
import torch_reference
from manual_bptt.cases import Case
from manual_bptt.checking.strategies import cases, float32_cases
from manual_bptt.compare import FLOAT32, FLOAT64, Tolerance
from tests.helpers import assert_results_agree, every_cell, for_examples


def assert_agree(case: Case, tol: Tolerance) -> None:
    manual = case.call(manual_bptt.bptt)
    context = f"manual vs autograd for {case.reproduction()}"
    assert {g.dtype for g in manual.grads.values()} == {case.params.dtype}, context
    assert_results_agree(manual, case.call(torch_reference.bptt), tol, context)


# Examples per cell, in multiples of the profile's count, and the longest sequence. The
# vanilla cell: 5×, T ≤ 40 (1,000 in ci): this is the property the project exists for.
# The gated cells (LSTM, GRU with both reset variants): 1×, T ≤ 24 (200 in ci), since the
# twin's window truncation reruns every window, O(T·k) steps, and .ci/run must stay
# within its five minutes.
EXAMPLES = {"rnn": 5.0}
MAX_T = {"rnn": 40}
GATED_EXAMPLES, GATED_MAX_T = 1.0, 24


@every_cell
def test_manual_gradients_equal_autograd_float64(cell: str) -> None:
    def agrees(case: Case) -> None:
        assert_agree(case, FLOAT64)

    strategy = cases(cell=cell, max_T=MAX_T.get(cell, GATED_MAX_T))
    for_examples(EXAMPLES.get(cell, GATED_EXAMPLES), strategy, agrees)


@every_cell
@given(data=st.data())
def test_manual_gradients_equal_autograd_float32_on_bounded_domain(
    cell: str, data: st.DataObject
) -> None:
    assert_agree(data.draw(float32_cases(cell=cell), label="case"), FLOAT32)


def test_gated_gradient_keys_follow_the_cell_and_the_input_kind() -> None:
    y = np.zeros((6, 2), dtype=int)
    lstm = manual_bptt.init_params(3, 4, 5, cell="lstm")
    gru = manual_bptt.init_params(3, 4, 5, cell="gru")
    for face in (manual_bptt.bptt, manual_bptt.naive_bptt, torch_reference.bptt):
        floats = face(lstm, np.ones((6, 2, 3)), y)
        tokens = face(gru, np.ones((6, 2), dtype=int), y)
        assert list(floats.grads) == ["U", "W", "b", "V", "c", "h0", "c0", "x"]
        assert list(tokens.grads) == ["U", "W", "b", "bh", "V", "c", "h0"]
        assert floats.grads["c0"].shape == (2, 4)
        assert floats.grads["U"].shape == (16, 3)
        assert tokens.grads["W"].shape == (12, 4)


def test_gradient_keys_follow_the_input_kind() -> None:
    params = manual_bptt.init_params(3, 4, 5)
    y = np.zeros((6, 2), dtype=int)
    floats = manual_bptt.bptt(params, np.ones((6, 2, 3)), y)
    tokens = manual_bptt.bptt(params, np.ones((6, 2), dtype=int), y)
    assert list(floats.grads) == ["U", "W", "V", "b", "c", "h0", "x"]
    assert list(tokens.grads) == ["U", "W", "V", "b", "c", "h0"]
    assert isinstance(floats.loss, float)
