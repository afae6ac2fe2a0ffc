"""The state Jacobians ∂state_t/∂state_k of every registered cell against
torch.autograd.functional.jacobian, block by block, and a row of them against the whole;
the vanilla cell's are its hidden Jacobians; the LSTM's carousel (its s→s blocks, the
products of its forget gates) and what an open forget gate keeps."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import manual_bptt
from manual_bptt.cases import Case, make_case
from manual_bptt.checking.strategies import cases
from manual_bptt.compare import FLOAT64, assert_grads_close
from manual_bptt.lstm import LSTMParams
from manual_bptt.params import Params
from manual_bptt.vanishing.jacobians import (
    carousel,
    hidden_jacobians,
    spectral_norms,
    state_jacobian_row,
    state_jacobians,
    step_jacobians,
)
from tests.helpers import draw_case, every_cell
from torch_reference.jacobians import state_jacobians as torch_state_jacobians

# Small problems: the Jacobians are (T, T, S, S) for a state of S numbers per sequence.
SMALL = {"max_T": 8, "max_N": 3, "max_dim": 4, "max_scale": 2.0}


@every_cell
@given(data=st.data())
def test_state_jacobians_equal_autograd_block_by_block(cell: str, data: st.DataObject) -> None:
    case = draw_case(data, cell, **{**SMALL, "max_T": 6, "max_N": 2, "modes": ("full",)})
    n = data.draw(st.integers(0, case.y.shape[1] - 1 if case.y.ndim == 2 else 0), label="n")
    kw: dict[str, Any] = {"h0": case.h0, "c0": case.c0, "activation": case.activation, "n": n}
    J = state_jacobians(case.params, case.x, **kw)
    expected = torch_state_jacobians(case.params, case.x, **kw)
    assert J.shape == expected.shape
    for t in range(case.T):
        for k in range(case.T):  # block by block: each block's tolerance scales with itself
            name = f"J[{t},{k}]"
            assert_grads_close({name: J[t, k]}, {name: expected[t, k]}, FLOAT64, case.describe())


@given(cases(max_T=8, max_N=2, max_dim=5, modes=("full",)))
def test_state_jacobians_of_the_vanilla_cell_are_its_hidden_jacobians(case: Case) -> None:
    kw: dict[str, Any] = {"h0": case.h0, "activation": case.activation}
    vanilla = cast(Params, case.params)  # cases() draws the vanilla cell
    np.testing.assert_array_equal(
        state_jacobians(case.params, case.x, **kw), hidden_jacobians(vanilla, case.x, **kw)
    )


@st.composite
def lstm_batches(draw: st.DrawFn) -> Case:
    """An LSTM problem with N in [2, 3] sequences (float or token inputs, h0 and c0 or
    not), so that a carousel of sequence n ≠ 0 can be told from sequence 0's."""
    return make_case(
        T=draw(st.integers(1, 8), label="T"),
        N=draw(st.integers(2, 3), label="N"),
        D=draw(st.integers(1, 4), label="D"),
        H=draw(st.integers(1, 4), label="H"),
        K=draw(st.integers(1, 4), label="K"),
        seed=draw(st.integers(0, 2**32 - 1), label="seed"),
        scale=draw(st.floats(1e-3, 2.0), label="scale"),
        tokens=draw(st.booleans(), label="tokens"),
        with_h0=draw(st.booleans(), label="with_h0"),
        cell="lstm",
    )


@given(data=st.data())
def test_the_carousel_of_sequence_n_is_the_product_of_its_forget_gates(
    data: st.DataObject,
) -> None:
    """diag(C[t, k]) of sequence n is the product of n's one-step s→s blocks alone,
    diag(f_j)."""
    case = data.draw(lstm_batches(), label="case")
    n = data.draw(st.integers(0, case.x.shape[1] - 1), label="n")
    kw: dict[str, Any] = {"h0": case.h0, "c0": case.c0, "n": n}
    C = carousel(cast(LSTMParams, case.params), case.x, **kw)
    steps = step_jacobians(case.params, case.x, **kw)
    H = case.params.H
    for t in range(case.T):
        product = np.eye(H)
        for k in range(t, -1, -1):
            np.testing.assert_allclose(np.diag(product), C[t, k], rtol=1e-12, atol=0)
            product = product @ steps[k, H:, H:]
            assert not np.any(product - np.diag(np.diag(product))), "s→s step not diagonal"


def test_with_the_forget_gates_open_the_carousel_keeps_the_gradient() -> None:
    """A forget-gate bias of +20 (f ≈ 1) keeps ∂s_t/∂s_0 ≈ I over 40 steps, where the
    vanilla tanh cell at the same scale has lost it."""
    lstm = cast(LSTMParams, manual_bptt.init_params(3, 6, 3, cell="lstm", seed=0))
    b = lstm.b.copy()
    b[6:12] += 20.0
    lstm = lstm.with_arrays(b=b)
    x = np.random.default_rng(0).integers(0, 3, size=40)
    C = carousel(lstm, x)
    assert C[39, 0].min() > 0.999
    J = state_jacobians(lstm, x)
    assert spectral_norms(J[39:, 0, 6:, 6:])[0] > 0.99
    rnn = manual_bptt.init_params(3, 6, 3, seed=0)
    assert spectral_norms(state_jacobians(rnn, x)[39:, 0])[0] < 1e-3


@every_cell
@given(data=st.data())
def test_state_jacobian_row_is_a_row_of_the_full_jacobians(cell: str, data: st.DataObject) -> None:
    case = draw_case(data, cell, **{**SMALL, "modes": ("full",)})
    t = data.draw(st.integers(0, case.T - 1), label="t")
    kw: dict[str, Any] = {"h0": case.h0, "c0": case.c0, "activation": case.activation}
    row = state_jacobian_row(case.params, case.x, t=t, **kw)
    full = state_jacobians(case.params, case.x, **kw)[t]
    assert_grads_close({"R": row}, {"R": full}, FLOAT64, case.describe())
