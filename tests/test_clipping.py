"""Clipping matches torch.nn.utils.clip_grad_norm_ / clip_grad_value_ and changes nothing
it is given. Tolerance: float64 rtol 1e-13 (both compute the same norm of norms and
the same min(1, max_norm/(norm + 1e-6)) scale; only summation order differs)."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

from manual_bptt.clipping import clip_grad_norm, clip_grad_value

SAME_SCALE_RTOL = 1e-13


@st.composite
def gradient_sets(draw: st.DrawFn) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    count = draw(st.integers(1, 5))
    scale = draw(st.floats(1e-6, 1e3))
    return {
        f"g{i}": rng.normal(size=tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))))
        * scale
        for i in range(count)
    }


def torch_clip(grads: dict[str, np.ndarray], how: str, limit: float):
    tensors = []
    for g in grads.values():
        p = torch.zeros(g.shape, dtype=torch.float64, requires_grad=True)
        p.grad = torch.tensor(g)
        tensors.append(p)
    if how == "norm":
        norm = float(torch.nn.utils.clip_grad_norm_(tensors, limit))
    else:
        torch.nn.utils.clip_grad_value_(tensors, limit)
        norm = None
    return [t.grad.numpy() for t in tensors], norm


@given(gradient_sets(), st.floats(1e-3, 1e3))
def test_clip_grad_norm_matches_torch(grads, max_norm: float) -> None:
    before = {k: v.copy() for k, v in grads.items()}
    clipped, norm = clip_grad_norm(grads, max_norm)
    expected, torch_norm = torch_clip(grads, "norm", max_norm)
    np.testing.assert_allclose(norm, torch_norm, rtol=SAME_SCALE_RTOL)
    for got, want in zip(clipped.values(), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=SAME_SCALE_RTOL, atol=0)
    for k in grads:
        np.testing.assert_array_equal(grads[k], before[k])  # the input is untouched


@given(gradient_sets(), st.floats(1e-3, 1e3))
def test_clip_grad_value_matches_torch(grads, clip_value: float) -> None:
    before = {k: v.copy() for k, v in grads.items()}
    clipped, norm = clip_grad_value(grads, clip_value)
    expected, _ = torch_clip(grads, "value", clip_value)
    for got, want in zip(clipped.values(), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert norm == clip_grad_norm(before, 1.0)[1]
    for k in grads:
        np.testing.assert_array_equal(grads[k], before[k])


def test_clipped_norm_is_at_most_max_norm_and_small_gradients_pass_unchanged() -> None:
    grads = {"a": np.full(4, 10.0), "b": np.full((2, 2), -10.0)}
    clipped, norm = clip_grad_norm(grads, 1.0)
    assert norm == np.sqrt(800.0)
    assert np.sqrt(sum((g**2).sum() for g in clipped.values())) <= 1.0
    small, _ = clip_grad_norm({"a": np.array([1e-3])}, 1.0)
    np.testing.assert_array_equal(small["a"], [1e-3])
