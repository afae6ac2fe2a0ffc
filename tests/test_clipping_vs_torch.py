"""Clipping matches torch.nn.utils.clip_grad_norm_ / clip_grad_value_ (torch 2.13) and
changes nothing it is given.

Tolerance for clip_grad_norm: both compute the same norm of per-array norms and the same
min(1, max_norm / (norm + 1e-6)); only the order of summing the squares differs.
benchmarks/measure_vanishing.py, over 3,000 random gradient sets (1 to 5 arrays of up
to 1,600 entries, scales 1e-6 to 1e3): worst relative difference 2.1 units in the last
place for the norm and 3.7 for the clipped entries in float64, 1.8 and 3.0 in float32.
16 units leaves room for larger sums; a wrong formula (no 1e-6, a per-array norm, a
missing clamp) is off by far more.
clip_grad_value is exact: both clamp.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from manual_bptt.vanishing.clipping import NORM_EPS, clip_grad_norm, clip_grad_value

ULPS = 16


def rtol_for(dtype: np.dtype) -> float:
    return ULPS * float(np.finfo(dtype).eps)


@st.composite
def gradient_sets(draw: st.DrawFn, dtype: str = "float64") -> dict[str, np.ndarray]:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    count = draw(st.integers(1, 5))
    scale = draw(st.floats(1e-6, 1e3))
    shapes = [
        tuple(draw(st.lists(st.integers(1, 6), min_size=0, max_size=3))) for _ in range(count)
    ]
    return {
        f"g{i}": np.array(rng.normal(size=s) * scale, dtype=dtype) for i, s in enumerate(shapes)
    }


def torch_clip(
    grads: dict[str, np.ndarray], how: str, limit: float
) -> tuple[list[np.ndarray], float | None]:
    tensors = []
    for g in grads.values():
        p = torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype, requires_grad=True)
        p.grad = torch.tensor(g)
        tensors.append(p)
    if how == "norm":
        norm = float(torch.nn.utils.clip_grad_norm_(tensors, limit))
    else:
        torch.nn.utils.clip_grad_value_(tensors, limit)
        norm = None
    clipped = []
    for t in tensors:
        assert t.grad is not None  # set above; clipping changes it in place
        clipped.append(t.grad.numpy())
    return clipped, norm


@given(st.sampled_from(["float64", "float32"]).flatmap(gradient_sets), st.floats(1e-3, 1e3))
def test_clip_grad_norm_matches_torch(grads: dict[str, np.ndarray], max_norm: float) -> None:
    before = {k: v.copy() for k, v in grads.items()}
    clipped, norm = clip_grad_norm(grads, max_norm)
    expected, torch_norm = torch_clip(grads, "norm", max_norm)
    assert torch_norm is not None  # clipping by norm returns the norm
    dtype = next(iter(grads.values())).dtype
    np.testing.assert_allclose(norm, torch_norm, rtol=rtol_for(dtype))
    for got, want in zip(clipped.values(), expected, strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=rtol_for(dtype), atol=0)
    for k, value in grads.items():
        np.testing.assert_array_equal(value, before[k])  # the input is untouched


@given(st.sampled_from(["float64", "float32"]).flatmap(gradient_sets), st.floats(0, 1e3))
def test_clip_grad_value_matches_torch(grads: dict[str, np.ndarray], clip_value: float) -> None:
    before = {k: v.copy() for k, v in grads.items()}
    clipped, norm = clip_grad_value(grads, clip_value)
    expected, _ = torch_clip(grads, "value", clip_value)
    for got, want in zip(clipped.values(), expected, strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    assert norm == clip_grad_norm(before, 1.0)[1]
    for k, value in grads.items():
        np.testing.assert_array_equal(value, before[k])


def test_a_norm_of_exactly_max_norm_is_still_scaled_by_the_epsilon_as_torch_does() -> None:
    grads = {"a": np.array([3.0]), "b": np.array([[4.0]])}  # global norm exactly 5
    clipped, norm = clip_grad_norm(grads, 5.0)
    expected, _ = torch_clip(grads, "norm", 5.0)
    assert norm == 5.0
    scale = 5.0 / (5.0 + NORM_EPS)
    np.testing.assert_allclose(clipped["a"], [3.0 * scale], rtol=1e-15)
    np.testing.assert_allclose(clipped["a"], expected[0], rtol=1e-15)
    assert clipped["a"][0] < 3.0


def test_clipped_norm_is_at_most_max_norm_and_small_gradients_pass_unchanged() -> None:
    grads = {"a": np.full(4, 10.0), "b": np.full((2, 2), -10.0)}
    clipped, norm = clip_grad_norm(grads, 1.0)
    assert norm == np.sqrt(800.0)
    assert np.sqrt(sum((g**2).sum() for g in clipped.values())) <= 1.0
    small, _ = clip_grad_norm({"a": np.array([1e-3])}, 1.0)
    np.testing.assert_array_equal(small["a"], [1e-3])
    zero, zero_norm = clip_grad_norm({"a": np.zeros(3)}, 1.0)
    assert zero_norm == 0.0
    np.testing.assert_array_equal(zero["a"], np.zeros(3))


def test_bad_limits_and_grads_are_refused_by_name() -> None:
    grads = {"a": np.ones(2)}
    with pytest.raises(ValueError, match="max_norm must be > 0; got 0"):
        clip_grad_norm(grads, 0)
    with pytest.raises(ValueError, match="clip_value must be ≥ 0; got -1"):
        clip_grad_value(grads, -1)
    with pytest.raises(TypeError, match="max_norm must be a real number; got str"):
        clip_grad_norm(grads, cast(Any, "1"))
    with pytest.raises(TypeError, match="grads must be a mapping"):
        clip_grad_norm(cast(Any, [np.ones(2)]), 1.0)
    # Integer gradients would be scaled and cast back to integers (to zeros, silently).
    with pytest.raises(
        TypeError, match=r"grads\['a'\] must be a floating-point numpy array; got int"
    ):
        clip_grad_norm({"a": np.array([1, 2])}, 1.0)
    with pytest.raises(
        TypeError, match=r"grads\['b'\] must be a floating-point numpy array; got list"
    ):
        clip_grad_value(cast(Any, {"a": np.ones(2), "b": [1.0, 2.0]}), 1.0)
