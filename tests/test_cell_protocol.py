"""A cell is one thing: a cell defined and registered here, in this test file, runs through
the package's faces without a line of the package changing.

The test-only cell is a leaky gated unit, one forget gate f and one candidate n:

    A_t = b + W h_{t−1} + U x_t = [a^f; a^n]                  (N, 2H)
    f_t = σ(a^f),  n_t = tanh(a^n)
    h_t = f_t ⊙ h_{t−1} + (1 − f_t) ⊙ n_t

and by hand, for the gradient ε_t reaching h_t:

    δ^f_t = ε_t ⊙ (h_{t−1} − n_t) ⊙ f_t (1 − f_t),   δ^n_t = ε_t ⊙ (1 − f_t) ⊙ (1 − n_t²)
    ε_{t−1} gets ε_t ⊙ f_t + Wᵀ δ_t,                  ∂L/∂W = Σ_t δ_t h_{t−1}ᵀ

Registered with manual_bptt.cells.register (its forward pass, backward step and ∂L/∂W)
and torch_reference.cells.register_twin (its step in torch), it gets: init_params and
make_case; bptt (every truncation) against autograd; the naive per-loss loops against
bptt; contributions that sum to the truncated gradient, against autograd's; forward; and
a wrong backward step is caught.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import manual_bptt
import torch_reference
from manual_bptt.activations import Activation, sigmoid
from manual_bptt.cases import Case, make_case
from manual_bptt.cells import CELLS, Cell, cell_of, init_params, register
from manual_bptt.compare import FLOAT64, compare_grads
from manual_bptt.linear import input_term, rows_matmul
from manual_bptt.naive import naive_bptt
from manual_bptt.network import run_batch
from manual_bptt.params import CellParams, check_arrays, check_gated_shapes
from tests.helpers import assert_contributions_sum_to_bptt
from torch_reference.cells import TWINS, register_twin

Array = np.ndarray


@dataclass(frozen=True)
class LeakyParams(CellParams):
    """U (2H, D), W (2H, H), b (2H,), V (K, H), c (K,); gate blocks [f; n]."""

    NAMES: ClassVar[tuple[str, ...]] = ("U", "W", "b", "V", "c")
    CELL: ClassVar[str] = "leaky"
    GATE_COUNT: ClassVar[int] = 2
    U: Array
    W: Array
    b: Array
    V: Array
    c: Array

    def __post_init__(self) -> None:
        check_arrays(self, self.NAMES)
        check_gated_shapes("LeakyParams", self.as_dict(), 2)


@dataclass(frozen=True)
class LeakyCache:
    """gates [f; n] (T, N, 2H), h_prev, h (T, N, H), logits o (T, N, K)."""

    gates: Array
    h_prev: Array
    h: Array
    o: Array


def forward(
    params: LeakyParams, x: Array, initial: tuple[Array, ...], tokens: bool, act: Activation
) -> LeakyCache:
    T, N, H = x.shape[0], x.shape[1], params.H
    gates = input_term(params, x, tokens)
    gates += params.b
    h = np.empty((T + 1, N, H), dtype=gates.dtype)
    h[0] = initial[0]
    for t in range(T):
        gates[t] += h[t] @ params.W.T
        f, n = sigmoid(gates[t, :, :H]), np.tanh(gates[t, :, H:])
        gates[t, :, :H], gates[t, :, H:] = f, n
        h[t + 1] = f * h[t] + (1 - f) * n
    o = rows_matmul(h[1:], params.V.T) + params.c
    return LeakyCache(gates, h[:-1], h[1:], o)


def backward_step(
    params: LeakyParams, cache: LeakyCache, lo: int, hi: int, d_state: tuple[Array, ...]
) -> tuple[Array, Array, tuple[Array, ...]]:
    (eh,) = d_state
    H = params.H
    f, n = cache.gates[lo:hi, :, :H], cache.gates[lo:hi, :, H:]
    delta = np.concatenate(
        [eh * (cache.h_prev[lo:hi] - n) * f * (1 - f), eh * (1 - f) * (1 - n * n)], axis=-1
    )
    return delta, delta, (eh * f + rows_matmul(delta, params.W),)


def grad_W(params: LeakyParams, cache: LeakyCache, delta_h: Array) -> Array:
    dW: Array = delta_h.reshape(-1, delta_h.shape[-1]).T @ cache.h_prev.reshape(-1, params.H)
    return dW


def twin(params: CellParams, leaves: torch_reference.network.CellLeaves):
    def step(state: tuple[torch.Tensor, ...], t: int) -> tuple[torch.Tensor, ...]:
        (h,) = state
        w = leaves.weights
        A = w["b"] + h @ w["W"].t() + leaves.input_term(t)
        a_f, a_n = A.chunk(2, dim=-1)
        f, n = torch.sigmoid(a_f), torch.tanh(a_n)
        return (f * h + (1 - f) * n,)

    return step


@pytest.fixture(autouse=True, scope="module")
def _leaky_registered() -> Iterator[None]:
    """The leaky cell is registered for this file's tests only: the other files see the
    package's cells as they are."""
    register(Cell("leaky", LeakyParams, forward, backward_step, grad_W))
    register_twin("leaky", twin)
    yield
    del CELLS["leaky"], TWINS["leaky"]


def leaky_cases(**bounds: int) -> st.SearchStrategy[Case]:
    """The leaky cell's problems, with every option the other cells are drawn with."""
    T = bounds.get("max_T", 8)

    @st.composite
    def draw(draw: st.DrawFn) -> Case:
        n_steps = draw(st.integers(1, T))
        mode = draw(st.sampled_from(["full", "truncate", "chunk", "tbptt"]))
        k = draw(st.integers(0, n_steps + 2))
        k2 = draw(st.integers(1, n_steps + 2))
        return make_case(
            T=n_steps,
            N=draw(st.integers(1, 3)),
            D=draw(st.integers(1, 4)),
            H=draw(st.integers(1, 4)),
            K=draw(st.integers(1, 4)),
            seed=draw(st.integers(0, 2**32 - 1)),
            scale=draw(st.floats(0.1, 3.0)),
            tokens=draw(st.booleans()),
            batched=draw(st.booleans()),
            with_h0=draw(st.booleans()),
            with_mask=draw(st.booleans()),
            truncate=k if mode == "truncate" else None,
            chunk=max(k, 1) if mode == "chunk" else None,
            tbptt=(max(k, 1), k2) if mode == "tbptt" else None,
            reduction=draw(st.sampled_from(["sum", "mean"])),
            cell="leaky",
        )

    return draw()


def agree(got: manual_bptt.BPTTResult, expected: manual_bptt.BPTTResult) -> None:
    assert list(got.grads) == list(expected.grads)
    bad = [a.describe() for a in compare_grads(got.grads, expected.grads, FLOAT64) if not a.passed]
    assert not bad, bad
    assert abs(got.loss - expected.loss) <= 1e-10 * max(1.0, abs(expected.loss))


def test_the_registry_knows_the_test_cell_by_name_and_by_its_parameters() -> None:
    params = init_params(3, 4, 5, cell="leaky", seed=1)
    assert isinstance(params, LeakyParams)
    assert params.U.shape == (8, 3)
    assert params.W.shape == (8, 4)
    assert cell_of(params).name == "leaky"
    assert cell_of(params).grad_names == ("U", "W", "b", "V", "c", "h0", "x")


@settings(max_examples=40)
@given(leaky_cases())
def test_the_test_cell_bptt_equals_autograd_for_every_truncation(case: Case) -> None:
    agree(case.call(manual_bptt.bptt), case.call(torch_reference.bptt))


@settings(max_examples=25)
@given(leaky_cases())
def test_the_test_cell_naive_per_loss_loops_equal_bptt(case: Case) -> None:
    agree(case.call(naive_bptt), case.call(manual_bptt.bptt))


@settings(max_examples=15)
@given(leaky_cases(max_T=6))
def test_the_test_cell_contributions_sum_to_its_truncated_gradient(case: Case) -> None:
    assert_contributions_sum_to_bptt(case, cell_of(case.params).grad_names)


@settings(max_examples=10)
@given(leaky_cases(max_T=6), st.sampled_from(["U", "W", "b", "h0"]))
def test_the_test_cell_contributions_equal_autograds(case: Case, param: str) -> None:
    manual = case.call(manual_bptt.contributions, param=param)
    twin_ = case.call(torch_reference.contributions, param=param)
    assert manual.shape == twin_.shape
    assert np.allclose(manual, twin_, rtol=1e-9, atol=1e-12)


def test_the_test_cell_forward_gives_its_gates_and_states() -> None:
    case = make_case(T=3, N=2, D=2, H=3, K=2, seed=0, cell="leaky", with_h0=True)
    out = manual_bptt.forward(case.params, case.x, h0=case.h0)
    assert out.gates is not None
    assert out.gates.shape == (3, 2, 6)
    assert case.h0 is not None
    f, n = out.gates[..., :3], out.gates[..., 3:]
    previous = np.concatenate([case.h0[None], out.h[:-1]])
    np.testing.assert_allclose(out.h, f * previous + (1 - f) * n, rtol=1e-13)


def test_a_wrong_backward_step_for_the_test_cell_is_caught(monkeypatch) -> None:
    def wrong(params, cache, lo, hi, d_state):
        delta, delta_h, (eh,) = backward_step(params, cache, lo, hi, d_state)
        return delta, delta_h, (eh * 1.001,)  # the carry a little off

    monkeypatch.setitem(CELLS, "leaky", Cell("leaky", LeakyParams, forward, wrong, grad_W))
    case = make_case(T=4, N=2, D=2, H=3, K=2, seed=0, cell="leaky")
    bad = compare_grads(
        case.call(manual_bptt.bptt).grads, case.call(torch_reference.bptt).grads, FLOAT64
    )
    assert {a.name for a in bad if not a.passed} >= {"W", "U", "b"}


@pytest.mark.parametrize("name", [*CELLS, "leaky"])
def test_every_array_of_a_cells_cache_runs_over_steps_first(name: str) -> None:
    """TBPTT runs a cell's backward step on a view of its cache's arrays at a slice of
    steps (backward.steps_of): every array of the cache must be time-major, (T, …)."""
    case = make_case(T=7, N=2, D=3, H=5, K=4, seed=0, cell=name)
    batch = manual_bptt.inputs.prepare(case.params, case.x, case.y)
    cache = run_batch(case.params, batch)
    for f in dataclasses.fields(cache):
        value = getattr(cache, f.name)
        if value is not None:
            assert isinstance(value, np.ndarray), f.name
            assert value.shape[0] == 7, (f.name, value.shape)


@pytest.mark.parametrize("name", list(CELLS))
def test_every_registered_cell_has_a_twin(name: str) -> None:
    params = init_params(2, 3, 2, cell=name, seed=0)
    case = make_case(T=2, N=1, D=2, H=3, K=2, seed=0, cell=name)
    assert type(case.params) is type(params)
    agree(case.call(manual_bptt.bptt), case.call(torch_reference.bptt))


@settings(max_examples=15)
@given(leaky_cases(max_T=5), st.data())
def test_the_test_cell_state_jacobians_equal_autograds(case: Case, data: st.DataObject) -> None:
    from manual_bptt.vanishing.jacobians import state_jacobians
    from torch_reference.jacobians import state_jacobians as twin_jacobians

    N = case.recipe["N"] if case.recipe["batched"] else 1
    n = data.draw(st.integers(0, N - 1), label="n")
    manual = state_jacobians(case.params, case.x, h0=case.h0, n=n)
    autograd = twin_jacobians(case.params, case.x, h0=case.h0, n=n)
    assert manual.shape == autograd.shape == (case.T, case.T, case.params.H, case.params.H)
    np.testing.assert_allclose(manual, autograd, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("cell", "reset"), [("lstm", "after"), ("gru", "after"), ("gru", "before")]
)
def test_the_step_jacobians_by_the_backward_step_equal_the_closed_forms(cell, reset) -> None:
    from manual_bptt.vanishing import jacobians

    case = make_case(T=5, N=3, D=2, H=4, K=2, seed=7, cell=cell, reset=reset, with_h0=True)
    cache = jacobians._sequence_cache(case.params, case.x, case.h0, case.c0, "tanh", 2)
    closed = jacobians.CLOSED_FORMS[cell](case.params, cache, 2)
    by_backward = jacobians._steps_by_backward(case.params, cache, 2)
    np.testing.assert_allclose(by_backward, closed, rtol=1e-12, atol=1e-14)
