"""TBPTT(k1, k2) and randomized truncation, for every registered cell.

TBPTT: manual against autograd, against the plain per-loss loops and against finite
differences of the truncated loss, over random shapes, k1 and k2 in [1, T+2]; its
special cases (chunk=k is (k, k), truncate=k is (1, k+1), full BPTT when
k2 ≥ k1·⌈T/k1⌉) as equalities between different code; the definition's table for
TBPTT(2, 4) at T = 8 from the contributions; and what k2 < k1 means.

Randomized truncation: with a seed, manual and twin agree sample by sample; the
expectation, computed exactly by enumerating every pattern of cuts for small T, is the
full-BPTT gradient; and the sample mean's error shrinks as the exact variance predicts.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import manual_bptt
import torch_reference
from manual_bptt.cases import Case, make_case
from manual_bptt.checking.gradcheck import bptt_objective
from manual_bptt.compare import FLOAT32, FLOAT64, Tolerance, assert_grads_close
from manual_bptt.naive import first_reachable_step
from manual_bptt.truncation import RandomTruncation, tbptt_blocks
from manual_bptt.vanishing.decomposition import CELL_PARAMS, contribution_norms, contributions
from tests.helpers import (
    assert_contributions_sum_to_bptt,
    assert_results_agree,
    draw_case,
    every_cell,
    params_for,
)

SMALL = {"max_T": 14, "max_N": 3, "max_dim": 6, "modes": ("tbptt",)}


def _with(case: Case, **changes: object) -> Case:
    """The same problem under other truncation options (tbptt, truncate, chunk)."""
    options = {"tbptt": None, "truncate": None, "chunk": None, **changes}
    return dataclasses.replace(case, **options)  # type: ignore[arg-type]


@every_cell
@given(data=st.data())
def test_tbptt_manual_equals_autograd(cell: str, data: st.DataObject) -> None:
    case = draw_case(data, cell, **SMALL)
    context = f"TBPTT manual vs autograd for {case.reproduction()}"
    assert_results_agree(
        case.call(manual_bptt.bptt), case.call(torch_reference.bptt), FLOAT64, context
    )


@every_cell
@given(data=st.data())
def test_tbptt_manual_equals_naive_per_loss_loops(cell: str, data: st.DataObject) -> None:
    case = draw_case(data, cell, **SMALL)
    context = f"TBPTT manual vs naive for {case.reproduction()}"
    assert_results_agree(
        case.call(manual_bptt.bptt), case.call(manual_bptt.naive_bptt), FLOAT64, context
    )


@every_cell
@given(data=st.data(), k=st.integers(1, 12))
def test_tbptt_k_k_equals_chunks_of_k(cell: str, data: st.DataObject, k: int) -> None:
    case = draw_case(data, cell, **{**SMALL, "modes": ("full",)})
    assert_results_agree(
        _with(case, tbptt=(k, k)).call(manual_bptt.bptt),
        _with(case, chunk=k).call(manual_bptt.bptt),
        FLOAT64,
        f"tbptt=({k}, {k}) vs chunk={k} for {case.reproduction()}",
    )


@every_cell
@given(data=st.data(), k=st.integers(0, 12))
def test_tbptt_1_k_plus_1_equals_window_k(cell: str, data: st.DataObject, k: int) -> None:
    case = draw_case(data, cell, **{**SMALL, "modes": ("full",)})
    assert_results_agree(
        _with(case, tbptt=(1, k + 1)).call(manual_bptt.bptt),
        _with(case, truncate=k).call(manual_bptt.bptt),
        FLOAT64,
        f"tbptt=(1, {k + 1}) vs truncate={k} for {case.reproduction()}",
    )


@every_cell
@given(data=st.data(), k1=st.integers(1, 16), extra=st.integers(0, 4))
def test_tbptt_is_full_bptt_when_k2_covers_every_block(
    cell: str, data: st.DataObject, k1: int, extra: int
) -> None:
    """k2 ≥ k1·⌈T/k1⌉ when k1 < T, k2 ≥ T when k1 ≥ T (one block, however much
    longer than the sequence k1 is): every block reaches step 0."""
    case = draw_case(data, cell, **{**SMALL, "modes": ("full",)})
    k2 = (case.T if k1 >= case.T else k1 * -(-case.T // k1)) + extra
    assert_results_agree(
        _with(case, tbptt=(k1, k2)).call(manual_bptt.bptt),
        case.call(manual_bptt.bptt),
        FLOAT64,
        f"tbptt=({k1}, {k2}) vs full BPTT for {case.reproduction()}",
    )


def test_tbptt_with_k2_short_of_the_last_blocks_reach_is_not_full_bptt() -> None:
    """The converse: T = 7, k1 = 3 (blocks 0–2, 3–5, 6): k2 = 8 < 3·3 stops the last
    block's loss at step 1, though k2 ≥ T: it no longer reaches step 0 or h0."""
    assert tbptt_blocks(7, 3, 8) == [(0, 2, 0), (3, 5, 0), (6, 6, 1)]
    case = make_case(T=7, N=1, D=3, H=4, K=5, seed=3, with_h0=True)
    last_loss_only = np.zeros((7, 1))
    last_loss_only[6] = 1
    cut = _with(case, tbptt=(3, 8)).call(manual_bptt.bptt, mask=last_loss_only).grads
    full = case.call(manual_bptt.bptt, mask=last_loss_only).grads
    assert not np.any(cut["h0"])
    assert np.all(full["h0"] != 0)
    assert np.any(cut["W"] != full["W"])


@every_cell
@given(data=st.data())
def test_tbptt_equals_finite_differences_of_the_truncated_loss(
    cell: str, data: st.DataObject
) -> None:
    case = draw_case(
        data, cell, max_T=7, max_N=2, max_dim=3, min_scale=0.1, max_scale=1.5, modes=("tbptt",)
    )
    objective = case.call(bptt_objective)
    grads = case.call(manual_bptt.bptt).grads
    eps = 1e-6
    for name in ("U", "W", "h0"):
        base = objective.arrays[name]
        numeric = np.zeros_like(base)
        for index in np.ndindex(base.shape):
            arrays = dict(objective.arrays)
            plus, minus = base.copy(), base.copy()
            plus[index] += eps
            minus[index] -= eps
            arrays[name] = plus
            up = float(np.real(objective.f(arrays)))
            arrays[name] = minus
            numeric[index] = (up - float(np.real(objective.f(arrays)))) / (2 * eps)
        got = grads[name].reshape(base.shape)
        # central differences: error O(ε²·f''') + rounding O(1e-16/ε), about 1e-9 here
        assert_grads_close({name: got}, {name: numeric}, Tolerance(1e-5, 1e-7), case.describe())


@every_cell
@given(data=st.data())
def test_tbptt_contributions_equal_autograd_and_sum_to_the_truncated_gradient(
    cell: str, data: st.DataObject
) -> None:
    case = draw_case(data, cell, max_T=8, max_N=2, max_dim=4, modes=("tbptt",))
    param = data.draw(st.sampled_from(params_for(case, CELL_PARAMS[cell])), label="param")
    mine = case.call(contributions, param=param)
    theirs = case.call(torch_reference.contributions, param=param)
    assert_grads_close({param: mine}, {param: theirs}, FLOAT64, case.describe())
    assert_contributions_sum_to_bptt(case, (param,))


def test_contributions_refuse_randomized_truncation() -> None:
    case = make_case(T=4, N=1, D=2, H=3, K=3, seed=0)
    message = (
        "contributions split a deterministic gradient by loss and step; randomized "
        "truncation's weights would be left out, so it is refused (use bptt)"
    )
    for face in (contributions, torch_reference.contributions):
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            case.call(face, param="W", randomized=RandomTruncation("d2l", 0.5))


# The definition's table for TBPTT(2, 4) at T = 8: row t (the loss at step t), column k
# (the step it reaches), ● where it reaches and · where not; h0 is the column "-1".
TABLE_2_4 = """\
t\\k -1 0 1 2 3 4 5 6 7
0    ●  ● · · · · · · ·
1    ●  ● ● · · · · · ·
2    ●  ● ● ● · · · · ·
3    ●  ● ● ● ● · · · ·
4    ·  · · ● ● ● · · ·
5    ·  · · ● ● ● ● · ·
6    ·  · · · · ● ● ● ·
7    ·  · · · · ● ● ● ●
"""


def reach_table(T: int, k1: int, k2: int) -> str:
    """The ●/· table of which loss reaches which step, read from the contributions
    (nonzero norms of ∂E_t/∂W through step k) and the h0 gradient of each loss alone."""
    case = make_case(T=T, N=1, D=2, H=3, K=3, seed=5, with_h0=True, tbptt=(k1, k2))
    norms = case.call(contribution_norms, param="W")  # (T, T): [t, k]
    lines = ["t\\k -1 " + " ".join(str(k) for k in range(T))]
    for t in range(T):
        mask = np.zeros((T, 1))
        mask[t] = 1  # the loss at step t alone
        h0 = case.call(manual_bptt.bptt, mask=mask).grads["h0"]
        marks = ["●" if np.any(h0 != 0) else "·"]
        marks += ["●" if norms[t, k] > 0 else "·" for k in range(T)]
        lines.append(f"{t}    {marks[0]}  " + " ".join(marks[1:]))
    return "\n".join(lines) + "\n"


def test_tbptt_2_4_at_T_8_reaches_as_the_table_says() -> None:
    assert reach_table(8, 2, 4) == TABLE_2_4


def test_the_readmes_tbptt_table_is_the_codes() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- tbptt-table -->\n```\n", 1)[1].split("```", 1)[0]
    assert block == reach_table(8, 2, 4)


def test_k2_below_k1_leaves_the_first_losses_of_each_block_reaching_no_step() -> None:
    """TBPTT(3, 2), T = 6: blocks 0–2 and 3–5 each reach back 2 steps from their last
    step (1–2 and 4–5), so the losses at steps 0 and 3 reach no step: they change only
    ∂L/∂V and ∂L/∂c, and h0 gets nothing."""
    assert [first_reachable_step(t, _batch(6, (3, 2))) for t in range(6)] == [1, 1, 1, 4, 4, 4]
    case = make_case(T=6, N=2, D=3, H=4, K=5, seed=9, with_h0=True, tbptt=(3, 2))
    for t in (0, 3):
        mask = np.zeros((6, 2))
        mask[t] = 1
        grads = case.call(manual_bptt.bptt, mask=mask).grads
        for name in ("U", "W", "b", "h0", "x"):
            assert not np.any(grads[name]), (t, name)
        assert np.any(grads["V"])
        assert np.any(grads["c"])
    assert not np.any(case.call(manual_bptt.bptt).grads["h0"])


def _batch(T: int, tbptt: tuple[int, int]) -> manual_bptt.inputs.Batch:
    params = manual_bptt.init_params(2, 3, 3)
    return manual_bptt.inputs.prepare(
        params, np.zeros((T, 1, 2)), np.zeros((T, 1), int), tbptt=tbptt
    )


# Randomized truncation.

KINDS = st.sampled_from([("d2l", 0.3), ("d2l", 0.75), ("artbp", 0.5), ("artbp", 2.0)])


@every_cell
@given(data=st.data(), kind=KINDS, seed=st.integers(0, 2**16))
def test_randomized_manual_equals_autograd_for_the_same_seed(
    cell: str, data: st.DataObject, kind: tuple[str, float], seed: int
) -> None:
    case = draw_case(data, cell, **{**SMALL, "modes": ("full",)})
    randomized = RandomTruncation(*kind, seed=seed)
    assert_results_agree(
        case.call(manual_bptt.bptt, randomized=randomized),
        case.call(torch_reference.bptt, randomized=randomized),
        FLOAT64,
        f"{randomized} manual vs autograd for {case.reproduction()}",
    )
    assert_results_agree(
        case.call(manual_bptt.bptt, randomized=randomized),
        case.call(manual_bptt.naive_bptt, randomized=randomized),
        FLOAT64,
        f"{randomized} manual vs naive for {case.reproduction()}",
    )


@every_cell
def test_randomized_float32_gradients_are_float32_and_agree_with_autograd(cell: str) -> None:
    """The links ξ are float64; multiplying a float32 carry by one must not turn the rest
    of the backward pass, and the gradient reaching h0 (and c0), into float64."""
    case = make_case(T=6, N=2, D=3, H=4, K=5, seed=1, with_h0=True, dtype="float32", cell=cell)
    randomized = RandomTruncation("d2l", 0.5, seed=3)  # links ξ = 1, 0, 0, 2, 2, 0
    assert_results_agree(
        case.call(manual_bptt.bptt, randomized=randomized),
        case.call(torch_reference.bptt, randomized=randomized),
        FLOAT32,
        f"{randomized} float32 manual vs autograd for {case.reproduction()}",
    )


def expectation_and_variance(
    case: Case, randomized: RandomTruncation
) -> tuple[dict[str, np.ndarray], float]:
    """E[g] and E‖g − E g‖² (summed over every gradient entry) of randomized truncation's
    gradient, exactly: Σ over all 2^(T−1) patterns of cuts of P(pattern)·g(pattern)."""
    first: dict[str, np.ndarray] = {}
    second = 0.0
    for probability, links in randomized.outcomes(case.T):
        grads = case.call(manual_bptt.bptt, randomized=links).grads
        for name, value in grads.items():
            first[name] = first.get(name, 0.0) + probability * value
            second += probability * float(np.sum(value * value))
    variance = second - sum(float(np.sum(v * v)) for v in first.values())
    return first, variance


# E[g] against full BPTT: the same sums in another order, over 2^(T−1) ≤ 128 terms.
EXACT = Tolerance(rtol=1e-12, atol=1e-13)


@every_cell
@given(data=st.data(), kind=KINDS)
def test_randomized_expectation_is_the_full_gradient(
    cell: str, data: st.DataObject, kind: tuple[str, float]
) -> None:
    case = draw_case(data, cell, max_T=8, max_N=2, max_dim=4, max_scale=1.5, modes=("full",))
    expected, _ = expectation_and_variance(case, RandomTruncation(*kind))
    assert_grads_close(expected, case.call(manual_bptt.bptt).grads, EXACT, case.describe())


@pytest.mark.parametrize("kind", [("d2l", 0.5), ("artbp", 1.0)])
def test_sample_mean_error_shrinks_as_the_exact_variance_predicts(
    kind: tuple[str, float],
) -> None:
    """For M independent draws, E‖mean − E g‖² = σ²/M with σ² the exact variance. Over
    R = 60 groups of M = 25 draws each (1,500 seeds), the mean squared error of a
    group's mean over σ²/M is 1 within sampling error (a χ²-like ratio with standard
    error ≈ 0.2 here): held to [0.6, 1.5]. The seeds are fixed, so the test is exact to
    rerun; a biased estimator (mean off by a constant) or a wrong variance would miss
    the band."""
    case = make_case(T=6, N=1, D=3, H=4, K=4, seed=2, scale=1.5)
    randomized = RandomTruncation(*kind)
    expected, variance = expectation_and_variance(case, randomized)
    groups, size = 60, 25
    errors = []
    for r in range(groups):
        total: dict[str, np.ndarray] = {}
        for m in range(size):
            draw = dataclasses.replace(randomized, seed=r * size + m)
            for name, value in case.call(manual_bptt.bptt, randomized=draw).grads.items():
                total[name] = total.get(name, 0.0) + value / size
        errors.append(sum(float(np.sum((total[n] - expected[n]) ** 2)) for n in expected))
    ratio = float(np.mean(errors)) / (variance / size)
    assert 0.6 <= ratio <= 1.5, ratio
