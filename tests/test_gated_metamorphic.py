"""Properties of the gated cells (LSTM, GRU with either reset variant) that relate one
call to another, with no reference implementation: the vanilla cell's metamorphic
properties (test_metamorphic.py) again, with the LSTM's c0 beside h0.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import manual_bptt
from manual_bptt.cases import Case, make_case
from manual_bptt.checking.strategies import cases
from manual_bptt.compare import FLOAT64, assert_grads_close
from tests.helpers import FACES as ALL_FACES
from tests.helpers import assert_unbatched_equals_batch_of_one

CELLS = ["lstm", "gru"]
FACES = list(ALL_FACES.values())
STATES = ("h0", "c0")  # the initial state's parts: rows per sequence, like x


def draw(data: st.DataObject, cell: str, **kwargs: object) -> Case:
    return data.draw(cases(cell=cell, **kwargs), label="case")  # type: ignore[arg-type]


def run(case: Case, **changes: object) -> manual_bptt.BPTTResult:
    kwargs = {**case.kwargs(), **changes}
    return manual_bptt.bptt(case.params, case.x, case.y, **kwargs)


def assert_same(a: manual_bptt.BPTTResult, b: manual_bptt.BPTTResult, why: str) -> None:
    assert abs(a.loss - b.loss) <= FLOAT64.atol + FLOAT64.rtol * abs(b.loss), why
    assert_grads_close(a.grads, b.grads, FLOAT64, why)


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


@pytest.mark.parametrize("cell", CELLS)
@given(data=st.data(), extra=st.integers(0, 5))
def test_gated_window_at_least_T_minus_1_and_chunk_at_least_T_equal_full(
    cell: str, data: st.DataObject, extra: int
) -> None:
    case = draw(data, cell, modes=("full",), max_T=20)
    full = run(case)
    assert_same(run(case, truncate=case.T - 1 + extra), full, "truncate ≥ T−1 vs full")
    assert_same(run(case, chunk=case.T + extra), full, "chunk ≥ T vs full")


@pytest.mark.parametrize("cell", CELLS)
@given(data=st.data())
def test_gated_chunk_1_equals_truncate_0(cell: str, data: st.DataObject) -> None:
    case = draw(data, cell, modes=("full",), max_T=20)
    assert_same(run(case, chunk=1), run(case, truncate=0), "chunk=1 vs truncate=0")


@pytest.mark.parametrize("cell", CELLS)
@given(data=st.data())
def test_gated_truncation_changes_recurrent_gradients_only(cell: str, data: st.DataObject) -> None:
    case = draw(data, cell, max_T=20, min_T=3)
    full = run(case, truncate=None, chunk=None)
    cut = run(case)
    assert_grads_close({k: cut.grads[k] for k in "Vc"}, {k: full.grads[k] for k in "Vc"}, FLOAT64)
    assert cut.loss == full.loss


@pytest.mark.parametrize("cell", CELLS)
@given(data=st.data())
def test_gated_truncation_reaches_the_initial_state_only_from_early_losses(
    cell: str, data: st.DataObject
) -> None:
    """With truncate=k only the losses at t ≤ k reach h0 (and c0): masking every later
    loss leaves their gradients unchanged, and masking the early ones zeroes them."""
    case = draw(data, cell, max_T=12, min_T=2, modes=("full",), with_mask=False)
    case = dataclasses.replace(case, reduction="sum")  # "mean" would rescale with the mask
    k = data.draw(st.integers(0, case.T - 2), label="k")
    early = np.zeros(case.y.shape, dtype=bool)
    early[: k + 1] = True
    all_losses = run(case, truncate=k)
    only_early = run(case, truncate=k, mask=early)
    only_late = run(case, truncate=k, mask=~early)
    parts = [p for p in STATES if p in all_losses.grads]
    assert_grads_close(
        {p: all_losses.grads[p] for p in parts},
        {p: only_early.grads[p] for p in parts},
        FLOAT64,
        "t ≤ k",
    )
    for p in parts:
        assert not np.any(only_late.grads[p]), f"{p} reached from a loss at t > k"


@pytest.mark.parametrize("cell", CELLS)
@given(data=st.data())
def test_gated_batch_gradient_is_sum_over_sequences(cell: str, data: st.DataObject) -> None:
    case = dataclasses.replace(draw(data, cell, max_T=12, max_N=4, batched=True), reduction="sum")
    whole = run(case)
    parts = [run(sequences(case, slice(n, n + 1))) for n in range(case.y.shape[1])]
    names = case.params.NAMES
    summed = {k: sum(p.grads[k] for p in parts) for k in names}
    assert_grads_close({k: whole.grads[k] for k in names}, summed, FLOAT64, "sum over n")
    rows = {
        k: np.concatenate([p.grads[k] for p in parts], axis=0) for k in STATES if k in whole.grads
    }
    if "x" in whole.grads:
        rows["x"] = np.concatenate([p.grads["x"] for p in parts], axis=1)
    assert_grads_close({k: whole.grads[k] for k in rows}, rows, FLOAT64, "rows per n")


@pytest.mark.parametrize("cell", CELLS)
@given(data=st.data(), reduction=st.sampled_from(["sum", "mean"]))
def test_gated_all_zero_mask_gives_zero_loss_and_zero_gradients(
    cell: str, data: st.DataObject, reduction: str
) -> None:
    case = draw(data, cell, max_T=6)
    mask = np.zeros(case.y.shape, dtype=bool)
    for face in FACES:
        result = face(
            case.params, case.x, case.y, **{**case.kwargs(), "mask": mask, "reduction": reduction}
        )
        assert result.loss == 0.0, face.__module__
        for name, g in result.grads.items():
            assert not np.any(g), f"{face.__module__}: grads[{name!r}] not zero"


@pytest.mark.parametrize("cell", CELLS)
@given(data=st.data())
def test_gated_mean_reduction_is_sum_divided_by_mask_total(cell: str, data: st.DataObject) -> None:
    case = draw(data, cell, max_T=12, with_mask=True)
    total = float(np.sum(case.mask))
    mean, summed = run(case, reduction="mean"), run(case, reduction="sum")
    scaled = {k: g / total if total else g for k, g in summed.grads.items()}
    assert abs(mean.loss - (summed.loss / total if total else 0.0)) <= 1e-12 * max(1.0, mean.loss)
    assert_grads_close(mean.grads, scaled, FLOAT64, "mean vs sum / Σm")


@pytest.mark.parametrize("cell", CELLS)
@given(data=st.data())
def test_gated_unbatched_equals_batch_of_one(cell: str, data: st.DataObject) -> None:
    case = draw(data, cell, max_T=12, max_N=1, batched=True)
    assert_unbatched_equals_batch_of_one(case)


@pytest.mark.parametrize("cell", CELLS)
@given(data=st.data())
def test_gated_token_ids_equal_one_hot_float_inputs(cell: str, data: st.DataObject) -> None:
    case = draw(data, cell, max_T=12, tokens=True)
    one_hot = np.eye(case.params.D, dtype=case.params.dtype)[case.x]
    tokens = run(case)
    floats = run(dataclasses.replace(case, x=one_hot))
    without_x = {k: g for k, g in floats.grads.items() if k != "x"}
    assert_grads_close(tokens.grads, without_x, FLOAT64, "token ids vs one-hot")


@pytest.mark.parametrize("cell", CELLS)
@settings(max_examples=max(1, settings.default.max_examples // 2))
@given(data=st.data())
def test_gated_no_argument_is_changed_by_a_call(cell: str, data: st.DataObject) -> None:
    """Every face, and forward, on each example (half the profile's count: three faces)."""
    case = draw(data, cell, max_T=8)
    before = copy.deepcopy(case)
    for face in FACES:
        case.call(face)
    manual_bptt.forward(
        case.params, case.x, h0=case.h0, **({"c0": case.c0} if cell == "lstm" else {})
    )
    for field in ("x", "y", "h0", "c0", "mask"):
        np.testing.assert_array_equal(getattr(case, field), getattr(before, field), field)
    for name, value in case.params.as_dict().items():
        np.testing.assert_array_equal(value, before.params.as_dict()[name], name)


@pytest.mark.parametrize("cell", CELLS)
@given(data=st.data())
def test_gated_forward_loss_and_bptt_loss_agree(cell: str, data: st.DataObject) -> None:
    case = draw(data, cell, max_T=12, modes=("full",))
    kwargs = {k: v for k, v in case.kwargs().items() if k not in ("truncate", "chunk")}
    assert manual_bptt.loss(case.params, case.x, case.y, **kwargs) == pytest.approx(
        run(case).loss, rel=1e-12, abs=1e-12
    )


@pytest.mark.parametrize("cell", CELLS)
def test_gru_with_update_gate_shut_carries_the_state_unchanged(cell: str) -> None:
    """A saturated gate is the cells' point: with the GRU's z_t = 1 (bias +40) h_t = h0
    for every t; with the LSTM's f_t = 1, i_t = 0 the cell state stays c0."""
    case = make_case(T=6, N=2, D=3, H=4, K=3, seed=4, cell=cell, with_h0=True)
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
        np.testing.assert_allclose(out.s, np.broadcast_to(case.c0, out.s.shape), atol=1e-15)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gated_results_keep_the_dtype_and_huge_logits_stay_finite(cell: str, dtype: str) -> None:
    case = make_case(T=5, N=2, D=3, H=4, K=6, seed=7, cell=cell, dtype=dtype, with_h0=True)
    c = np.array([1e4, -1e4, 0, 5e3, -5e3, 1e4], dtype=dtype)
    params = case.params.with_arrays(c=c)
    for face in FACES:
        result = face(params, case.x, case.y, **case.kwargs())
        assert np.isfinite(result.loss), face.__module__
        assert {g.dtype for g in result.grads.values()} == {np.dtype(dtype)}, face.__module__
        for name, g in result.grads.items():
            assert np.all(np.isfinite(g)), f"{face.__module__}: grads[{name!r}]"
