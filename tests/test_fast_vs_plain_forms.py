"""The fast forms inside bptt equal their readable definitions, piece by piece.

bptt as a whole is checked against the naive loops and the twin elsewhere; these tests
pin the pieces that were rewritten for speed, so that a slip in one shows up by name:

- loss_and_dlogits (one exp, written over o when asked) against log_softmax, nll and
  softmax written out;
- run_forward's φ'(a_t), taken a block of steps at a time during the loop and
  written over a_t, against φ' of the whole arrays;
- deltas (chunked with the cut carries skipped, and lag-batched windows in two
  buffers) against Δ_t = Σ_s δ^{(s)}_t summed loss by loss, step by step;
- float32 in, float32 throughout.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import manual_bptt
from manual_bptt import rnn
from manual_bptt.cases import Case
from manual_bptt.checking.strategies import cases, float32_cases
from manual_bptt.compare import FLOAT64, agreement, tolerance_for
from manual_bptt.crossentropy import log_softmax, loss_and_dlogits, nll, softmax
from manual_bptt.inputs import Batch, prepare
from manual_bptt.linear import rows_matmul
from manual_bptt.naive import first_reachable_step
from manual_bptt.network import Cache, run_forward
from manual_bptt.params import Params
from manual_bptt.truncation import deltas


def setup(case: Case) -> tuple[Batch, Cache]:
    batch = case.call(prepare)
    params = cast(Params, case.params)  # cases() draws the vanilla cell
    return batch, run_forward(params, batch.x, batch.h0, batch.tokens, batch.activation)


def assert_close(got: np.ndarray, want: np.ndarray, what: str) -> None:
    """got agrees with want under the policy for want's dtype (compare.py's format)."""
    result = agreement(what, got, want, tolerance_for(want.dtype))
    assert result.passed, result.describe()


@given(cases(), st.sampled_from([1.0, 1e4]))
def test_fused_loss_and_dlogits_equal_log_softmax_nll_and_softmax(
    case: Case, logit_scale: float
) -> None:
    batch, cache = setup(case)
    o = cache.o * logit_scale  # 1e4: logits far outside exp's range
    onehot = np.eye(case.params.K, dtype=o.dtype)[batch.y]
    want_loss = float(nll(log_softmax(o), batch.y, batch.mask, batch.loss_scale))
    want_dO = batch.loss_scale * batch.mask[..., None] * (softmax(o) - onehot)  # (6)
    before = o.copy()
    loss, dO = loss_and_dlogits(o, batch.y, batch.mask, batch.loss_scale)
    assert np.array_equal(o, before), "o changed without out="
    assert np.isfinite(loss)
    assert loss == pytest.approx(want_loss, rel=FLOAT64.rtol, abs=FLOAT64.atol)
    assert_close(dO, want_dO, "∂L/∂o")
    over = o.copy()
    loss_over, dO_over = loss_and_dlogits(over, batch.y, batch.mask, batch.loss_scale, out=over)
    assert dO_over is over, "out=o must write ∂L/∂o over o"
    assert loss_over == loss
    assert np.array_equal(dO_over, dO)


@given(cases(modes=("full",)), st.sampled_from([1, 2, 3, 7]))
def test_blockwise_dphi_equals_dphi_of_whole_arrays(case: Case, steps: int) -> None:
    batch = case.call(prepare)
    params = cast(Params, case.params)  # cases() draws the vanilla cell
    N, H = batch.x.shape[1], params.H
    # φ' is taken every `steps` steps (the test cases are too small to reach the real
    # block size), and with the default block, which for them is the whole sequence.
    kept = run_forward(params, batch.x, batch.h0, batch.tokens, batch.activation, keep_a=True)
    assert kept.a is not None
    whole = batch.activation.dphi(kept.a, kept.h)
    assert np.array_equal(kept.dphi, whole)
    default = rnn.DPHI_BLOCK
    try:
        rnn.DPHI_BLOCK = steps * N * H
        cache = run_forward(params, batch.x, batch.h0, batch.tokens, batch.activation)
    finally:
        rnn.DPHI_BLOCK = default
    assert cache.a is None
    assert np.array_equal(cache.dphi, whole), f"φ' taken every {steps} steps"
    assert np.array_equal(cache.h, kept.h)
    assert np.array_equal(cache.o, kept.o)


def deltas_loss_by_loss(g: np.ndarray, dphi: np.ndarray, W: np.ndarray, batch: Batch) -> np.ndarray:
    """Δ_t = Σ over losses E_s reaching step t of δ^{(s)}_t, one loss at a time (7)."""
    total = np.zeros_like(g)
    for s in range(g.shape[0]):
        delta = g[s] * dphi[s]  # δ^{(s)}_s
        for t in range(s, first_reachable_step(s, batch) - 1, -1):
            total[t] += delta
            if t > 0:
                delta = (delta @ W) * dphi[t - 1]  # δ^{(s)}_{t−1} = Wᵀ δ^{(s)}_t ⊙ φ'(a_{t−1})
    return total


@given(cases(max_T=24))
def test_deltas_equal_the_sum_over_losses(case: Case) -> None:
    batch, cache = setup(case)
    _, dO = loss_and_dlogits(cache.o, batch.y, batch.mask, batch.loss_scale)
    g = rows_matmul(dO, case.params.V)
    want = deltas_loss_by_loss(g, cache.dphi, case.params.W, batch)
    g_before = g.copy()
    got = deltas(g, cache.dphi, case.params.W, batch.truncate, batch.chunk)
    assert np.array_equal(g, g_before), "g changed without overwrite_g"
    assert_close(got, want, f"Δ ({case.describe()})")
    over = deltas(g, cache.dphi, case.params.W, batch.truncate, batch.chunk, overwrite_g=True)
    assert over is g
    assert np.array_equal(over, got)


@given(float32_cases())
def test_float32_stays_float32_throughout(case: Case) -> None:
    batch, cache = setup(case)
    for name in ("h", "h_prev", "dphi", "o"):
        assert getattr(cache, name).dtype == np.float32, name
    _, dO = loss_and_dlogits(cache.o, batch.y, batch.mask, batch.loss_scale)
    assert dO.dtype == np.float32
    result = case.call(manual_bptt.bptt)
    assert {g.dtype for g in result.grads.values()} == {np.dtype(np.float32)}
