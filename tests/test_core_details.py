"""Details of the core that the property tests pass over, each pinned by a test that a
plausible slip turns red (found by mutation testing, docs/testing.md, "Mutation
testing"): what forward returns, h0, the complex-step guard, the loss's type and sign,
the φ' block size, the γ constants and the finite-difference step grid."""

from __future__ import annotations

import math
from typing import cast

import numpy as np
import pytest

import manual_bptt
from manual_bptt import init_params
from manual_bptt.activations import ACTIVATIONS
from manual_bptt.cases import make_case
from manual_bptt.checking.gradcheck import (
    bptt_objective,
    central_differences,
    directional_central,
    step_size_errors,
)
from manual_bptt.rnn import DPHI_BLOCK

T, N, D, H, K = 5, 3, 4, 6, 3


def _by_hand(params, x, h0, phi):
    """a_t, h_t, o_t of one sequence by the equations (1)–(3), one step at a time."""
    a, h, o, prev = [], [], [], h0
    for t in range(len(x)):
        a.append(params.b + params.W @ prev + params.U @ x[t])
        h.append(phi(a[-1]))
        o.append(params.c + params.V @ h[-1])
        prev = h[-1]
    return np.array(a), np.array(h), np.array(o)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_forward_returns_a_h_h0_o_and_y_hat_batched_and_unbatched(activation) -> None:
    params = init_params(D, H, K, seed=3, scale=1.5)
    rng = np.random.default_rng(4)
    x, h0 = rng.normal(size=(T, N, D)), rng.normal(size=(N, H))
    phi = ACTIVATIONS[activation].phi
    batched = manual_bptt.forward(params, x, h0=h0, activation=activation)
    for n in range(N):
        a, h, o = _by_hand(params, x[:, n], h0[n], phi)
        p = np.exp(o - o.max(axis=-1, keepdims=True))
        want = {"a": a, "h": h, "h0": h0[n], "o": o, "y_hat": p / p.sum(-1, keepdims=True)}
        single = manual_bptt.forward(params, x[:, n], h0=h0[n], activation=activation)
        for label, fields in (
            ("unbatched", {k: getattr(single, k) for k in want}),
            (
                "batched",
                {k: getattr(batched, k)[:, n] for k in want if k != "h0"} | {"h0": batched.h0[n]},
            ),
        ):
            for k, value in want.items():  # a itself (not φ'(a)), h0 honoured and returned
                assert fields[k] is not None, (label, k)
                np.testing.assert_allclose(
                    fields[k], value, rtol=1e-13, atol=1e-14, err_msg=f"{label} {k}"
                )
        assert single.a is not None
        assert single.a.shape == (T, H)
        assert single.h0.shape == (H,)
        assert single.o.shape == single.y_hat.shape == (T, K)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_forward_of_a_gated_cell_returns_its_gates_and_state_unbatched_too(cell: str) -> None:
    """gates (T, N, G·H) and the LSTM's s (T, N, H); without the N axis for unbatched x,
    the same numbers as the batched run of that one sequence. The LSTM's h_t is
    o_t ⊙ tanh(s_t), with s_t = f_t ⊙ s_(t−1) + i_t ⊙ g_t (gates i, f, g, o)."""
    params = init_params(D, H, K, seed=3, cell=cell)
    rng = np.random.default_rng(5)
    x, h0 = rng.normal(size=(T, N, D)), rng.normal(size=(N, H))
    c0 = rng.normal(size=(N, H)) if cell == "lstm" else None
    batched = manual_bptt.forward(params, x, h0=h0, c0=c0)
    G = 4 if cell == "lstm" else 3
    assert batched.gates is not None
    assert batched.gates.shape == (T, N, G * H)
    single = manual_bptt.forward(params, x[:, 1], h0=h0[1], c0=None if c0 is None else c0[1])
    assert single.gates is not None
    np.testing.assert_allclose(single.gates, batched.gates[:, 1], rtol=1e-13, atol=1e-15)
    if cell == "gru":
        assert batched.s is None
        assert single.s is None
        return
    assert batched.s is not None
    assert single.s is not None
    assert c0 is not None
    np.testing.assert_allclose(single.s, batched.s[:, 1], rtol=1e-13, atol=1e-15)
    i, f, g, o = np.split(batched.gates, 4, axis=-1)
    s_prev = np.concatenate([c0[None], batched.s[:-1]])
    np.testing.assert_allclose(batched.s, f * s_prev + i * g, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(batched.h, o * np.tanh(batched.s), rtol=1e-13, atol=1e-15)


def test_forward_refuses_relu_with_complex_parameters_and_runs_tanh() -> None:
    params = init_params(D, H, K).astype(np.complex128)
    x = np.zeros((T, D))
    with pytest.raises(
        ValueError,
        match=r"^the complex step needs an analytic φ \(tanh, sigmoid or identity\); relu is not "
        r"differentiable as a complex function$",
    ):
        manual_bptt.forward(params, x, activation="relu")
    out = manual_bptt.forward(params, x, activation="tanh")
    assert out.h.dtype == np.complex128
    # and relu with real parameters is just relu
    assert manual_bptt.forward(init_params(D, H, K), x, activation="relu").h.min() >= 0


def test_loss_is_a_python_float_for_real_inputs_and_complex_for_the_complex_step() -> None:
    case = make_case(T=T, N=N, D=D, H=H, K=K, seed=0)
    value = manual_bptt.loss(case.params, case.x, case.y)
    assert type(value) is float
    assert value == pytest.approx(manual_bptt.bptt(case.params, case.x, case.y).loss, rel=1e-14)
    assert type(manual_bptt.loss(case.params.astype(np.complex128), case.x, case.y)) is complex


def test_an_all_zero_mask_gives_plus_zero_not_minus_zero() -> None:
    case = make_case(T=T, N=N, D=D, H=H, K=K, seed=0)
    mask = np.zeros((T, N))
    for value in (
        manual_bptt.loss(case.params, case.x, case.y, mask=mask),
        manual_bptt.bptt(case.params, case.x, case.y, mask=mask).loss,
        manual_bptt.loss(case.params, case.x, case.y, mask=mask, reduction="mean"),
    ):
        assert value == 0.0
        assert math.copysign(1.0, cast(float, value)) == 1.0  # −0.0 would print as "-0"


def test_dphi_is_taken_in_blocks_when_a_batch_holds_more_than_the_block() -> None:
    # N·H = 300·256 = 76,800 > 2^16: fewer than one step per block, which must still be
    # one step (not zero, which would divide by zero), with φ'(a) right at every step.
    n, h = 300, 256
    assert n * h > DPHI_BLOCK
    params = init_params(2, h, 2, seed=1)
    x = np.random.default_rng(0).normal(size=(3, n, 2))
    out = manual_bptt.forward(params, x)
    result = manual_bptt.bptt(params, x, np.zeros((3, n), int))
    assert np.all(np.isfinite(result.grads["W"]))
    from manual_bptt.inputs import prepare
    from manual_bptt.network import run_forward

    batch = prepare(params, x, np.zeros((3, n), int))
    cache = run_forward(params, batch.x, batch.h0, batch.tokens, batch.activation)
    np.testing.assert_array_equal(cache.dphi, 1.0 - out.h * out.h)


@pytest.mark.parametrize(
    ("name", "gamma"), [("tanh", 1.0), ("sigmoid", 0.25), ("relu", 1.0), ("identity", 1.0)]
)
def test_gamma_is_the_supremum_of_dphi(name: str, gamma: float) -> None:
    act = ACTIVATIONS[name]
    assert act.gamma == gamma
    a = np.linspace(-20, 20, 40001)  # includes 0, where tanh' and σ' peak
    dphi = act.dphi(a, act.phi(a))
    assert dphi.max() == gamma  # attained: a looser γ would not be the supremum
    assert np.all(dphi <= gamma)


def test_central_differences_use_the_step_they_are_given() -> None:
    # f(w) = w³: the central difference is exactly 3w² + ε² (no truncation beyond ε²).
    def cube(arrays) -> float:
        return float(np.sum(arrays["w"] ** 3))

    w = {"w": np.array([2.0])}
    for eps in (1e-1, 1e-2):
        (got,) = central_differences(cube, w, eps=eps)["w"]
        assert got == pytest.approx(12.0 + eps**2, rel=1e-12)
        v = {"w": np.array([1.0])}
        assert directional_central(cube, w, v, eps=eps) == pytest.approx(12.0 + eps**2, rel=1e-12)


def test_the_default_step_grid_runs_from_1e_16_to_1e_1() -> None:
    case = make_case(T=3, N=1, D=2, H=2, K=2, seed=0)
    objective = bptt_objective(case.params, case.x, case.y)
    grads = manual_bptt.bptt(case.params, case.x, case.y).grads
    errors = step_size_errors(objective, grads)
    np.testing.assert_array_equal(errors.eps, np.logspace(-16, -1, 61))
    assert errors.forward.shape == errors.central.shape == (61,)
