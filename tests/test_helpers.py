"""The shared comparison can fail: each way two results may differ is caught and named."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from numpy.typing import NDArray

import manual_bptt
from manual_bptt import BPTTResult
from manual_bptt.cases import make_case
from manual_bptt.compare import FLOAT64
from tests.helpers import assert_results_agree

RESULT = make_case(T=4, N=2, D=3, H=3, K=4, seed=5, with_h0=True).call(manual_bptt.bptt)


def changed(
    grads: dict[str, NDArray[np.floating]] | None = None, loss: float | None = None
) -> BPTTResult:
    new_loss = RESULT.loss if loss is None else loss
    return dataclasses.replace(RESULT, loss=new_loss, grads={**RESULT.grads, **(grads or {})})


@pytest.mark.parametrize(
    ("other", "message"),
    [
        (changed(loss=RESULT.loss * (1 + 1e-8)), "loss"),
        (changed(loss=float("nan")), "loss"),
        (changed({"W": RESULT.grads["W"] * (1 + 1e-8)}), "W"),
        (changed({"h0": RESULT.grads["h0"].T.copy().T[::-1]}), "h0"),
        (changed({"b": RESULT.grads["b"].astype(np.float32)}), "float32"),
        (changed({"c": RESULT.grads["c"][:-1]}), "shape"),
        (BPTTResult(RESULT.loss, {k: v for k, v in RESULT.grads.items() if k != "x"}), "names"),
    ],
)
def test_every_kind_of_difference_fails_and_says_where(other: BPTTResult, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        assert_results_agree(other, RESULT, FLOAT64, "probe")


def test_a_result_agrees_with_itself() -> None:
    assert_results_agree(RESULT, RESULT, FLOAT64, "probe")
