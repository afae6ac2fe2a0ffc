"""Per-(loss, step) contributions, for every registered cell (the GRU with either reset
variant): manual against autograd (one parameter copy per step), block by block down to
the smallest, summing to the total (truncated) gradient, the norms-only form equal to
the full one; and, for the vanilla cell, the truncation bands and the classic worked
examples."""

from __future__ import annotations

from typing import cast

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import manual_bptt
import torch_reference
from manual_bptt.cases import make_case
from manual_bptt.compare import FLOAT64, Tolerance, assert_grads_close
from manual_bptt.params import Params
from manual_bptt.vanishing.decomposition import CELL_PARAMS, contribution_norms, contributions
from manual_bptt.vanishing.study import kravets_example, tutorial_example, with_sigma
from tests.helpers import (
    assert_contributions_sum_to_bptt,
    assert_norms_are_norms_of_contributions,
    draw_case,
    every_cell,
    params_for,
)

# Every cell's problems: T ≤ 8, N ≤ 3, D, H, K ≤ 5, weight scale up to 2.
SMALL = {"max_T": 8, "max_N": 3, "max_dim": 5, "max_scale": 2.0}
# One sequence and weight scale 0.1 to 1: no sum over a batch and no saturated softmax
# can cancel a block down to rounding noise, so each block can be held to its own size.
ONE_SEQUENCE = {"max_T": 12, "max_N": 1, "max_dim": 5, "min_scale": 0.1, "max_scale": 1.0}

# Each [t, k] block against its own largest entry, however small the block (the heatmap's
# dark corner is a chain of products down to 1e-20 and below). On this domain
# benchmarks/measure_vanishing.py found blocks off by at most 8.7e-14 of their own size
# (2,000 cases, 6,000 arrays). rtol 1e-10 leaves a wide margin and still fails a block wrong in its
# tenth digit; atol 0, so that a block of 1e-20 is checked as closely. Only for U, W,
# b and the GRU's bh, whose blocks are δ x_kᵀ, δ h_{k−1}ᵀ and δ: an x or h0 block is an
# inner product (Uᵀδ, Wᵀδ) that can cancel to rounding noise, and so can V's ŷ − y when
# ŷ is confident or any block summed over a batch.
BLOCKWISE = Tolerance(rtol=1e-10, atol=0.0)
BLOCKWISE_PARAMS = ("U", "W", "b", "bh")
# Norms by Gram matrices against norms of the full blocks: both float64, the same sums
# in another order; 1e-10 of the largest norm is far above the rounding of either.
NORMS = Tolerance(rtol=1e-10, atol=1e-300)
CHAINED = ("U", "W", "b", "h0", "x")


@every_cell
@given(data=st.data())
def test_contributions_equal_autograd_per_step_copies(cell: str, data: st.DataObject) -> None:
    case = draw_case(data, cell, **SMALL)
    param = data.draw(st.sampled_from(params_for(case, CELL_PARAMS[cell])), label="param")
    mine = case.call(contributions, param=param)
    theirs = case.call(torch_reference.contributions, param=param)
    assert_grads_close({param: mine}, {param: theirs}, FLOAT64, case.describe())


@every_cell
@given(data=st.data())
def test_every_block_down_to_the_smallest_equals_autograd(cell: str, data: st.DataObject) -> None:
    case = draw_case(data, cell, **ONE_SEQUENCE)
    names = [p for p in BLOCKWISE_PARAMS if p in CELL_PARAMS[cell]]
    param = data.draw(st.sampled_from(names), label="param")
    T = case.T
    mine = case.call(contributions, param=param).reshape(T, T, -1)
    theirs = case.call(torch_reference.contributions, param=param).reshape(T, T, -1)
    for t in range(T):
        for k in range(T):
            name = f"{param}[{t},{k}]"
            assert_grads_close({name: mine[t, k]}, {name: theirs[t, k]}, BLOCKWISE, case.describe())


@every_cell
@given(data=st.data())
def test_contributions_sum_to_the_total_truncated_gradient(cell: str, data: st.DataObject) -> None:
    assert_contributions_sum_to_bptt(draw_case(data, cell, **SMALL), CELL_PARAMS[cell])


@every_cell
@given(data=st.data())
def test_norms_only_form_equals_norms_of_the_full_form(cell: str, data: st.DataObject) -> None:
    case = draw_case(data, cell, **SMALL)
    param = data.draw(st.sampled_from(params_for(case, CELL_PARAMS[cell])), label="param")
    assert_norms_are_norms_of_contributions(case, param, NORMS)


def test_window_truncation_keeps_exactly_the_band() -> None:
    case = make_case(T=9, N=2, D=3, H=4, K=3, seed=4, truncate=2)
    norms = case.call(contribution_norms, param="W")
    t, k = np.indices(norms.shape)
    assert np.all(norms[(k > t) | (k < t - 2)] == 0)
    assert np.all(norms[(k <= t) & (k >= t - 2) & (k > 0)] > 0)  # W h_{−1} = 0 at k = 0


def test_chunked_truncation_keeps_exactly_the_blocks_of_its_chunks() -> None:
    case = make_case(T=10, N=2, D=3, H=4, K=3, seed=5, chunk=4)
    norms = case.call(contribution_norms, param="U")
    t, k = np.indices(norms.shape)
    same_chunk = (t // 4 == k // 4) & (k <= t)
    assert np.all(norms[~same_chunk] == 0)
    assert np.all(norms[same_chunk] > 0)


def test_unbatched_inputs_drop_the_batch_axis_for_x_and_h0() -> None:
    case = make_case(T=4, N=1, D=3, H=5, K=2, seed=6, batched=False, with_h0=True)
    batched = make_case(T=4, N=1, D=3, H=5, K=2, seed=6, batched=True, with_h0=True)
    for param, shape in (("x", (4, 4, 3)), ("h0", (4, 4, 5)), ("U", (4, 4, 5, 3))):
        for face in (contributions, torch_reference.contributions):
            got = face(case.params, case.x, case.y, param=param, h0=case.h0)
            assert got.shape == shape, (face.__module__, param)
            with_axis = face(batched.params, batched.x, batched.y, param=param, h0=batched.h0)
            np.testing.assert_array_equal(got, with_axis[:, :, 0] if param != "U" else with_axis)


def test_norms_only_form_handles_hundreds_of_steps() -> None:
    case = make_case(T=300, N=2, D=4, H=8, K=4, seed=0)
    norms = contribution_norms(case.params, case.x, case.y, param="b")
    full = contributions(case.params, case.x, case.y, param="b")  # (300, 300, 8): 5.8 MB
    assert_grads_close({"b": norms}, {"b": np.linalg.norm(full, axis=-1)}, FLOAT64)
    assert norms[299, 0] < 1e-12 * norms[299, 299]  # a late loss barely reaches step 0


def scaled_norms(blocks: np.ndarray) -> np.ndarray:
    """Frobenius norms of (T, T, …) blocks, each computed on the block divided by its
    largest entry, so that no square underflows."""
    T = blocks.shape[0]
    flat = blocks.reshape(T, T, -1)
    big = np.abs(flat).max(axis=-1, keepdims=True)
    safe = np.where(big > 0, big, 1.0)
    norms: np.ndarray = big[..., 0] * np.linalg.norm(flat / safe, axis=-1)
    return norms


@pytest.mark.parametrize("param", CHAINED)
def test_norms_only_form_keeps_norms_whose_squares_would_underflow(param: str) -> None:
    case = make_case(T=6, N=3, D=3, H=4, K=3, seed=7, with_h0=True)
    params = with_sigma(cast(Params, case.params), 1e-60)  # each step back multiplies by ~1e-60
    full = contributions(params, case.x, case.y, param=param, h0=case.h0)
    expected = scaled_norms(full)
    assert 0 < expected[expected > 0].min() < 1e-200  # squares of these underflow to 0
    got = contribution_norms(params, case.x, case.y, param=param, h0=case.h0)
    assert_grads_close(
        {param: got / np.where(expected > 0, expected, 1.0)},
        {param: (expected > 0).astype(float)},
        FLOAT64,
    )


def test_kravets_three_step_example_by_the_chain_rule_written_out() -> None:
    """∂E_2/∂U via step k = δ_k x_kᵀ, δ_2 = Vᵀ(ŷ_2 − y_2) ⊙ (1 − h_2²), δ_k = Wᵀ δ_{k+1} ⊙
    (1 − h_k²), computed here line by line from the forward pass alone."""
    example = kravets_example()
    p, x, y = example.params, example.x, example.y
    fwd = manual_bptt.forward(p, x)
    one_hot = np.eye(p.D)
    delta = p.V.T @ (fwd.y_hat[2] - np.eye(p.K)[y[2]]) * (1 - fwd.h[2] ** 2)
    by_hand = [np.outer(delta, one_hot[x[2]])]
    for k in (1, 0):
        delta = p.W.T @ delta * (1 - fwd.h[k] ** 2)
        by_hand.insert(0, np.outer(delta, one_hot[x[k]]))
    assert_grads_close({"∂E_2/∂U": example.components}, {"∂E_2/∂U": np.array(by_hand)}, FLOAT64)
    np.testing.assert_allclose(example.norms, np.linalg.norm(by_hand, axis=(1, 2)), rtol=1e-12)
    assert np.all(example.norms > 0)
    assert example.total_error < 1e-12  # every part of every loss adds up to bptt's ∂L/∂U
    theirs = torch_reference.contributions(p, x, y, param="U")
    assert_grads_close({"U": example.parts}, {"U": theirs}, FLOAT64)


@pytest.mark.parametrize("with_h0", [False, True])
def test_tutorial_example_dE3_dW_in_four_parts_by_the_chain_rule(with_h0: bool) -> None:
    """∂E_3/∂W via step k = δ_k h_{k−1}ᵀ (the tutorial's ∂E_3/∂ŷ_3 ∂ŷ_3/∂s_3 ∂s_3/∂s_k
    ∂s_k/∂W), line by line; the k = 0 part is exactly zero when h_{−1} = 0, not otherwise."""
    example = tutorial_example(with_h0=with_h0)
    p, x, y = example.params, example.x, example.y
    assert not p.b.any(), "the tutorial's network has no biases"
    assert not p.c.any()
    fwd = manual_bptt.forward(p, x, h0=example.h0)
    states = [fwd.h0, *fwd.h]  # states[k] = h_{k−1}
    delta = p.V.T @ (fwd.y_hat[3] - np.eye(p.K)[y[3]]) * (1 - fwd.h[3] ** 2)
    by_hand = [np.outer(delta, states[3])]
    for k in (2, 1, 0):
        delta = p.W.T @ delta * (1 - fwd.h[k] ** 2)
        by_hand.insert(0, np.outer(delta, states[k]))
    assert example.components.shape == (4, p.H, p.H)
    assert_grads_close({"∂E_3/∂W": example.components}, {"∂E_3/∂W": np.array(by_hand)}, FLOAT64)
    if with_h0:
        assert example.norms[0] > 0
    else:
        assert not example.components[0].any()  # exactly 0.0: h_{−1} = 0 multiplies it
    assert example.total_error < 1e-12
    theirs = torch_reference.contributions(p, x, y, param="W", h0=example.h0)
    assert_grads_close({"W": example.parts}, {"W": theirs}, FLOAT64)


def test_the_gated_cells_names_are_refused_for_the_vanilla_cell() -> None:
    params = manual_bptt.init_params(2, 3, 2)
    with pytest.raises(ValueError, match="param must be one of"):
        contributions(params, np.zeros((3, 2)), np.zeros(3, int), param="bh")


def test_unknown_param_and_x_of_tokens_are_refused() -> None:
    case = make_case(T=3, N=1, D=2, H=2, K=2, seed=0, tokens=True)
    with pytest.raises(ValueError, match="param must be one of"):
        contributions(case.params, case.x, case.y, param="Q")
    with pytest.raises(ValueError, match='param="x" needs float inputs'):
        contribution_norms(case.params, case.x, case.y, param="x")


def test_both_packages_export_contributions_as_a_function() -> None:
    """manual_bptt.contributions and torch_reference.contributions are the functions."""
    case = make_case(T=3, N=2, D=2, H=3, K=2, seed=4)
    ours = manual_bptt.contributions(case.params, case.x, case.y, param="W")
    theirs = torch_reference.contributions(case.params, case.x, case.y, param="W")
    assert ours.shape == theirs.shape == (3, 3, 3, 3)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
    assert manual_bptt.contribution_norms(case.params, case.x, case.y).shape == (3, 3)


@every_cell
def test_both_faces_default_to_u_and_keep_float32(cell: str) -> None:
    case = make_case(T=3, N=2, D=2, H=2, K=2, seed=4, cell=cell, dtype="float32")
    for face in (contributions, torch_reference.contributions):
        default = face(case.params, case.x, case.y)
        assert default.dtype == np.float32
        np.testing.assert_array_equal(default, face(case.params, case.x, case.y, param="U"))
