"""The vanishing-gradient tools for the gated cells: contributions of the LSTM and the
GRU (both reset variants) against autograd with one parameter copy per step, block by
block, summing to the total (truncated) gradient, and the norms-only form equal to the
full one."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import manual_bptt
import torch_reference
from manual_bptt.checking.cases import Case
from manual_bptt.checking.compare import FLOAT64, Tolerance, assert_grads_close
from manual_bptt.checking.strategies import cases
from manual_bptt.vanishing.decomposition import CELL_PARAMS, contribution_norms, contributions

GATED = ("lstm", "gru")
# One sequence and weight scale 0.1 to 1, as for the vanilla cell's blockwise test: no
# sum over a batch can cancel a block to rounding noise, so each block is held to its
# own size. Only U, W, b, bh, whose blocks are products δ zᵀ, not inner products.
BLOCKWISE = Tolerance(rtol=1e-10, atol=0.0)
BLOCKWISE_PARAMS = ("U", "W", "b", "bh")
# Norms by Gram matrices against norms of the full blocks: both float64, the same sums
# in another order; 1e-10 of the largest norm is far above the rounding of either.
NORMS = Tolerance(rtol=1e-10, atol=1e-300)


def params_for(case: Case, names: tuple[str, ...]) -> list[str]:
    return [p for p in names if not (p == "x" and np.issubdtype(case.x.dtype, np.integer))]


def gated_cases(cell: str, **kwargs: object) -> st.SearchStrategy[Case]:
    return cases(cell=cell, **{"max_T": 8, "max_N": 3, "max_dim": 4, "max_scale": 2.0, **kwargs})


@pytest.mark.parametrize("cell", GATED)
@given(data=st.data())
def test_gated_contributions_equal_autograd_per_step_copies(cell: str, data: st.DataObject) -> None:
    case = data.draw(gated_cases(cell), label="case")
    param = data.draw(st.sampled_from(params_for(case, CELL_PARAMS[cell])), label="param")
    mine = case.call(contributions, param=param)
    theirs = case.call(torch_reference.contributions, param=param)
    assert_grads_close({param: mine}, {param: theirs}, FLOAT64, case.describe())


@pytest.mark.parametrize("cell", GATED)
@given(data=st.data())
def test_gated_every_block_down_to_the_smallest_equals_autograd(
    cell: str, data: st.DataObject
) -> None:
    case = data.draw(
        gated_cases(cell, max_T=10, max_N=1, min_scale=0.1, max_scale=1.0), label="case"
    )
    names = [p for p in BLOCKWISE_PARAMS if p in CELL_PARAMS[cell]]
    param = data.draw(st.sampled_from(names), label="param")
    T = case.T
    mine = case.call(contributions, param=param).reshape(T, T, -1)
    theirs = case.call(torch_reference.contributions, param=param).reshape(T, T, -1)
    for t in range(T):
        for k in range(T):
            name = f"{param}[{t},{k}]"
            assert_grads_close({name: mine[t, k]}, {name: theirs[t, k]}, BLOCKWISE, case.describe())


@pytest.mark.parametrize("cell", GATED)
@given(data=st.data())
def test_gated_contributions_sum_to_the_total_truncated_gradient(
    cell: str, data: st.DataObject
) -> None:
    case = data.draw(gated_cases(cell), label="case")
    before = {k: v.copy() for k, v in case.params.as_dict().items()}
    total = case.call(manual_bptt.bptt).grads
    summed = {}
    for param in params_for(case, CELL_PARAMS[cell]):
        parts = case.call(contributions, param=param)
        summed[param] = parts.sum(axis=0) if param == "x" else parts.sum(axis=(0, 1))
        assert not np.any(np.triu(parts.reshape(case.T, case.T, -1).any(-1), 1)), "k > t"
    assert_grads_close(summed, {k: total[k] for k in summed}, FLOAT64, case.describe())
    for name, value in case.params.as_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=f"{name} was changed")


@pytest.mark.parametrize("cell", GATED)
@given(data=st.data())
def test_gated_norms_equal_the_norms_of_the_full_contributions(
    cell: str, data: st.DataObject
) -> None:
    case = data.draw(gated_cases(cell), label="case")
    param = data.draw(st.sampled_from(params_for(case, CELL_PARAMS[cell])), label="param")
    full = case.call(contributions, param=param)
    T = case.T
    expected = np.linalg.norm(full.reshape(T, T, -1), axis=-1)
    got = case.call(contribution_norms, param=param)
    assert_grads_close({param: got}, {param: expected}, NORMS, case.describe())


def test_the_gated_cells_names_are_refused_for_the_vanilla_cell() -> None:
    params = manual_bptt.init_params(2, 3, 2)
    with pytest.raises(ValueError, match="param must be one of"):
        contributions(params, np.zeros((3, 2)), np.zeros(3, int), param="bh")
