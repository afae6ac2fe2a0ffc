"""Properties that relate one call to another, with no reference implementation.

Each names the property it proves, and each that every cell has runs once per
registered cell (@every_cell): the vanilla cell with every activation, the LSTM with c0
beside h0, the GRU with either reset variant. They hold for every face (manual, naive,
twin) where cheap; the twin's side is covered in test_manual_vs_autograd.py by agreement.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import cast

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import manual_bptt
import torch_reference
from manual_bptt.cases import Case, make_case
from manual_bptt.checking.strategies import cases
from manual_bptt.compare import FLOAT64, assert_grads_close
from manual_bptt.params import Params
from tests.helpers import (
    CELL_NAMES,
    FACES,
    assert_results_agree,
    assert_unbatched_equals_batch_of_one,
    draw_case,
    every_cell,
    every_face,
)

STATES = ("h0", "c0")  # the initial state's parts (c0: the LSTM's), rows per sequence
GATED = [cell for cell in CELL_NAMES if cell != "rnn"]  # their nonlinearities are their own


def run(case: Case, **changes: object) -> manual_bptt.BPTTResult:
    return case.call(manual_bptt.bptt, **changes)


def assert_same(a: manual_bptt.BPTTResult, b: manual_bptt.BPTTResult, why: str) -> None:
    assert_results_agree(a, b, FLOAT64, why)


def sequences(case: Case, pick: slice) -> Case:
    """The case restricted to the sequences ``pick`` (batched cases only)."""
    return dataclasses.replace(
        case,
        x=case.x[:, pick],
        y=case.y[:, pick],
        h0=None if case.h0 is None else case.h0[pick],
        c0=None if case.c0 is None else case.c0[pick],
        mask=None if case.mask is None else case.mask[:, pick],
    )


@every_cell
@given(data=st.data(), extra=st.integers(0, 5))
def test_window_truncation_at_least_T_minus_1_equals_full(
    cell: str, data: st.DataObject, extra: int
) -> None:
    case = draw_case(data, cell, modes=("full",), max_T=24)
    k = case.T - 1 + extra
    assert_same(run(case, truncate=k), run(case), f"truncate={k} vs full")


@every_cell
@given(data=st.data(), extra=st.integers(0, 5))
def test_chunk_at_least_T_equals_full(cell: str, data: st.DataObject, extra: int) -> None:
    case = draw_case(data, cell, modes=("full",), max_T=24)
    k = case.T + extra
    assert_same(run(case, chunk=k), run(case), f"chunk={k} vs full")


@every_cell
@given(data=st.data())
def test_chunk_1_equals_truncate_0(cell: str, data: st.DataObject) -> None:
    case = draw_case(data, cell, modes=("full",), max_T=24)
    assert_same(run(case, chunk=1), run(case, truncate=0), "chunk=1 vs truncate=0")


@every_cell
@given(data=st.data())
def test_truncation_changes_recurrent_gradients_only(cell: str, data: st.DataObject) -> None:
    """V and c never see the recurrence: every truncation leaves their gradients alone."""
    case = draw_case(data, cell, max_T=24, min_T=3, modes=("truncate", "chunk"))
    full = run(case, truncate=None, chunk=None)
    cut = run(case)
    assert case.truncate is not None or case.chunk is not None  # never full against full
    assert_grads_close({k: cut.grads[k] for k in "Vc"}, {k: full.grads[k] for k in "Vc"}, FLOAT64)
    assert cut.loss == full.loss  # truncation changes gradients, never the loss


@every_cell
@given(data=st.data())
def test_truncation_reaches_the_initial_state_only_from_early_losses(
    cell: str, data: st.DataObject
) -> None:
    """With truncate=k only the losses at t ≤ k reach h0 (and c0): masking every later
    loss leaves their gradients unchanged, and masking the early ones zeroes them."""
    case = draw_case(data, cell, max_T=12, min_T=2, modes=("full",), with_mask=False)
    case = dataclasses.replace(case, reduction="sum")  # "mean" would rescale with the mask
    k = data.draw(st.integers(0, case.T - 2), label="k")
    early = np.zeros(case.y.shape, dtype=bool)
    early[: k + 1] = True
    all_losses = run(case, truncate=k)
    only_early = run(case, truncate=k, mask=early)
    only_late = run(case, truncate=k, mask=~early)
    parts = [p for p in STATES if p in all_losses.grads]
    assert "h0" in parts
    assert_grads_close(
        {p: all_losses.grads[p] for p in parts},
        {p: only_early.grads[p] for p in parts},
        FLOAT64,
        "t ≤ k",
    )
    for p in parts:
        assert not np.any(only_late.grads[p]), f"{p} reached from a loss at t > k"


@every_cell
@given(data=st.data())
def test_sum_reduction_batch_gradient_is_sum_over_sequences(cell: str, data: st.DataObject) -> None:
    """With reduction="sum", parameters' gradients add over sequences; the initial
    state's and x's rows are each sequence's own."""
    case = draw_case(data, cell, max_T=16, max_N=4, batched=True)
    case = dataclasses.replace(case, reduction="sum")
    whole = run(case)
    parts = [run(sequences(case, slice(n, n + 1))) for n in range(case.y.shape[1])]
    names = case.params.NAMES
    summed = {k: cast(np.ndarray, sum(p.grads[k] for p in parts)) for k in names}
    assert_grads_close({k: whole.grads[k] for k in names}, summed, FLOAT64, "sum over n")
    assert "h0" in whole.grads
    rows = {
        k: np.concatenate([p.grads[k] for p in parts], axis=0) for k in STATES if k in whole.grads
    }
    if "x" in whole.grads:
        rows["x"] = np.concatenate([p.grads["x"] for p in parts], axis=1)
    assert_grads_close({k: whole.grads[k] for k in rows}, rows, FLOAT64, "rows per n")
    assert abs(whole.loss - sum(p.loss for p in parts)) <= 1e-10 * max(1.0, abs(whole.loss))


@every_cell
@given(data=st.data(), reduction=st.sampled_from(["sum", "mean"]))
def test_all_zero_mask_gives_zero_loss_and_zero_gradients(
    cell: str, data: st.DataObject, reduction: str
) -> None:
    case = draw_case(data, cell, max_T=16)
    mask = np.zeros(case.y.shape, dtype=bool)
    for face in FACES.values():
        result = case.call(face, mask=mask, reduction=reduction)
        assert result.loss == 0.0, face.__module__
        if face is not torch_reference.bptt:  # and not −0.0, which would print as "-0"
            assert not np.signbit(result.loss), face.__module__
        for name, g in result.grads.items():
            assert not np.any(g), f"{face.__module__}: grads[{name!r}] not zero"


@every_cell
@given(data=st.data())
def test_mean_reduction_is_sum_divided_by_mask_total(cell: str, data: st.DataObject) -> None:
    case = data.draw(
        cases(cell=cell, max_T=16, with_mask=True).filter(
            lambda c: bool(cast(np.ndarray, c.mask).any())
        ),
        label="case",
    )
    assert case.mask is not None  # with_mask=True
    total = float(np.sum(case.mask))
    mean = run(case, reduction="mean")
    summed = run(case, reduction="sum")
    scaled = {k: g / total for k, g in summed.grads.items()}
    assert abs(mean.loss - summed.loss / total) <= 1e-12 * max(1.0, abs(mean.loss))
    assert_grads_close(mean.grads, scaled, FLOAT64, "mean vs sum / Σm")


@every_cell
@given(data=st.data())
def test_unbatched_equals_batch_of_one(cell: str, data: st.DataObject) -> None:
    case = draw_case(data, cell, max_T=16, max_N=1, batched=True)
    assert "h0" in run(case).grads
    assert_unbatched_equals_batch_of_one(case)


@every_cell
@given(data=st.data())
def test_token_ids_equal_one_hot_float_inputs(cell: str, data: st.DataObject) -> None:
    """U x_t with a token id is the column U[:, x_t]: the same as a one-hot float x_t."""
    case = draw_case(data, cell, max_T=16, tokens=True)
    one_hot = np.eye(case.params.D, dtype=case.params.dtype)[case.x]
    tokens = run(case)
    floats = run(dataclasses.replace(case, x=one_hot))
    without_x = {k: g for k, g in floats.grads.items() if k != "x"}
    assert_grads_close(tokens.grads, without_x, FLOAT64, "token ids vs one-hot")


@every_face
@every_cell
@given(data=st.data())
def test_no_argument_is_changed_by_a_call(face, cell: str, data: st.DataObject) -> None:
    case = draw_case(data, cell, max_T=12)
    before = copy.deepcopy(case)
    case.call(face)
    fwd = manual_bptt.forward(
        case.params, case.x, h0=case.h0, c0=case.c0, activation=case.activation
    )
    results = (fwd.a, fwd.h, fwd.h0, fwd.o, fwd.y_hat, fwd.gates, fwd.s)  # changing these is safe
    for result_array in (r for r in results if r is not None):
        for argument in (case.x, case.h0, case.c0, *case.params.as_dict().values()):
            assert argument is None or not np.shares_memory(result_array, argument)
    for field in ("x", "y", "h0", "c0", "mask"):
        np.testing.assert_array_equal(getattr(case, field), getattr(before, field), field)
    for name, value in case.params.as_dict().items():
        np.testing.assert_array_equal(value, before.params.as_dict()[name], name)


@every_cell
@given(data=st.data())
def test_forward_loss_and_bptt_loss_agree(cell: str, data: st.DataObject) -> None:
    case = draw_case(data, cell, max_T=12, modes=("full",))
    assert case.call(manual_bptt.loss) == pytest.approx(run(case).loss, rel=1e-12, abs=1e-12)


# The vanilla cell with each activation; the gated cells with their own nonlinearities.
CELL_ACTIVATIONS = [("rnn", a) for a in ("tanh", "sigmoid", "relu", "identity")]
CELL_ACTIVATIONS += [(cell, "tanh") for cell in GATED]


@pytest.mark.parametrize(("cell", "activation"), CELL_ACTIVATIONS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("with_h0", [False, True])
def test_huge_logits_give_finite_loss_and_gradients_of_the_inputs_dtype(
    cell: str, activation: str, dtype: str, with_h0: bool
) -> None:
    case = make_case(
        T=5,
        N=2,
        D=3,
        H=4,
        K=6,
        seed=7,
        cell=cell,
        activation=activation,
        dtype=dtype,
        with_h0=with_h0,
    )
    params = case.params.with_arrays(c=np.array([1e4, -1e4, 0, 5e3, -5e3, 1e4], dtype=dtype))
    for face in FACES.values():
        result = dataclasses.replace(case, params=params).call(face)
        assert np.isfinite(result.loss), face.__module__
        assert {g.dtype for g in result.grads.values()} == {np.dtype(dtype)}, face.__module__
        for name, g in result.grads.items():
            assert np.all(np.isfinite(g)), f"{face.__module__}: grads[{name!r}]"


@every_cell
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_results_keep_the_inputs_dtype(cell: str, dtype: str) -> None:
    case = make_case(T=4, N=2, D=3, H=4, K=5, seed=1, cell=cell, dtype=dtype, with_h0=True)
    for face in FACES.values():
        result = case.call(face)
        assert {g.dtype for g in result.grads.values()} == {np.dtype(dtype)}, face.__module__
    fwd = manual_bptt.forward(case.params, case.x, h0=case.h0, c0=case.c0)
    states = (fwd.a, fwd.h, fwd.o, fwd.y_hat, fwd.gates, fwd.s)
    assert {r.dtype for r in states if r is not None} == {np.dtype(dtype)}


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_saturated_gate_carries_the_state_unchanged(cell: str) -> None:
    """A saturated gate is the cells' point: with the GRU's z_t = 1 (bias +40) h_t = h0
    for every t; with the LSTM's f_t = 1, i_t = 0 the cell state stays c0."""
    case = make_case(T=6, N=2, D=3, H=4, K=3, seed=4, cell=cell, with_h0=True)
    assert case.h0 is not None
    p, H = case.params, case.params.H
    b = p.b.copy()
    if cell == "gru":
        b[H : 2 * H] = 40.0
        out = manual_bptt.forward(p.with_arrays(b=b), case.x, h0=case.h0)
        np.testing.assert_allclose(out.h, np.broadcast_to(case.h0, out.h.shape), atol=1e-15)
    else:
        b[:H], b[H : 2 * H] = -40.0, 40.0
        out = manual_bptt.forward(p.with_arrays(b=b), case.x, h0=case.h0, c0=case.c0)
        assert out.s is not None
        assert case.c0 is not None
        np.testing.assert_allclose(out.s, np.broadcast_to(case.c0, out.s.shape), atol=1e-15)


def test_relu_derivative_at_exactly_zero_is_zero_as_in_torch() -> None:
    """relu'(0) is a convention; ours is torch's (0), or the faces would disagree at a = 0.
    With U, W, b zero every a_t is exactly 0, so only the convention decides dW, db."""
    case = make_case(T=3, N=2, D=2, H=3, K=2, seed=3, activation="relu")
    zero = {k: np.zeros_like(v) for k, v in case.params.as_dict().items() if k in "UWb"}
    params = dataclasses.replace(cast(Params, case.params), **zero)
    manual = manual_bptt.bptt(params, case.x, case.y, activation="relu")
    twin = torch_reference.bptt(params, case.x, case.y, activation="relu")
    assert_grads_close(manual.grads, twin.grads, FLOAT64, "relu at a = 0")
    assert not np.any(manual.grads["b"])
