"""The twin is itself checked against code nobody here wrote: torch.nn.RNN, torch.nn.LSTM
and torch.nn.GRU (torch_reference/nn.py's TorchNN maps our weights onto them).

For full BPTT, the torch.nn module followed by nn.Linear and F.cross_entropy must give
the loss and gradients of torch_reference.bptt on the same weights, all of them,
including h0, the LSTM's c0 and x. nn.RNN and nn.LSTM have two hidden biases where our
cells have one; each receives the gradient of b. nn.GRU's two biases are our b and bh
(its bias_hh_n sits inside the reset gate's product, so they cannot be merged).
"""

from __future__ import annotations

import dataclasses
import re
from typing import cast

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import torch_reference
from manual_bptt.cases import Case, make_case
from manual_bptt.checking.strategies import cases, float32_cases
from manual_bptt.compare import FLOAT32, FLOAT64, assert_grads_close
from manual_bptt.gru import GRUParams
from manual_bptt.lstm import LSTMParams
from torch_reference.nn import TorchNN


def assert_twin_equals_torch_nn(case: Case) -> None:
    twin = case.call(torch_reference.bptt)
    torch_nn = TorchNN.on_case(case).result()
    loss, grads = torch_nn.loss, torch_nn.grads
    assert abs(twin.loss - loss) <= FLOAT64.atol + FLOAT64.rtol * abs(loss)
    assert twin.grads.keys() == grads.keys()
    name = type(case.params).__name__
    assert_grads_close(twin.grads, grads, FLOAT64, f"twin vs torch.nn for {name} {case.describe()}")


@given(cases(activations=("tanh", "relu"), modes=("full",), batched=True))
def test_twin_equals_torch_nn_rnn(case: Case) -> None:
    assert_twin_equals_torch_nn(case)


@given(cases(cell="lstm", modes=("full",), batched=True, max_T=24))
def test_twin_equals_torch_nn_lstm(case: Case) -> None:
    assert_twin_equals_torch_nn(case)


@given(cases(cell="gru", resets=("after",), modes=("full",), batched=True, max_T=24))
def test_twin_equals_torch_nn_gru(case: Case) -> None:
    """nn.GRU is the "after" variant; "before" is checked by the twin's agreement with
    the manual cell, by finite differences and by the complex step."""
    assert_twin_equals_torch_nn(case)


def test_torch_nn_gru_is_not_the_before_variant() -> None:
    """The two variants are different functions: nn.GRU on the same weights must
    disagree with the twin's "before" (or the test above could not tell them apart)."""
    before = make_case(T=4, N=2, D=3, H=3, K=3, seed=0, cell="gru", reset="before", with_h0=True)
    assert isinstance(before.params, GRUParams)
    twin = before.call(torch_reference.bptt)
    after = dataclasses.replace(before.params, reset="after")
    torch_nn = TorchNN(after, before.x, before.y, **before.kwargs()).result()
    with pytest.raises(AssertionError):
        assert_grads_close(twin.grads, torch_nn.grads, FLOAT64)


def test_torch_nn_refuses_the_before_variant_naming_it() -> None:
    case = make_case(T=4, N=2, D=3, H=3, K=3, seed=0, cell="gru", reset="before")
    message = r"torch\.nn\.GRU is the reset=\"after\" variant.*reset='before'"
    with pytest.raises(ValueError, match=message):
        TorchNN.on_case(case)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@given(data=st.data())
def test_twin_equals_torch_nn_gated_float32_on_bounded_domain(cell: str, data) -> None:
    """float32 too, under the FLOAT32 policy and on its bounded domain."""
    case = data.draw(
        float32_cases(cell=cell, resets=("after",), modes=("full",), batched=True, max_T=12),
        label="case",
    )
    twin = case.call(torch_reference.bptt)
    torch_nn = TorchNN.on_case(case).result()
    loss, grads = torch_nn.loss, torch_nn.grads
    assert abs(twin.loss - loss) <= FLOAT32.atol + FLOAT32.rtol * abs(loss)
    assert {g.dtype for g in twin.grads.values()} == {np.dtype(np.float32)}
    assert_grads_close(twin.grads, grads, FLOAT32, f"twin vs torch.nn float32 {case.describe()}")


def grad_of(leaf: torch.Tensor) -> np.ndarray:
    """leaf's gradient after backward(), as an array (torch types .grad as Tensor | None)."""
    assert leaf.grad is not None, "every leaf enters the total"
    return leaf.grad.numpy()


@given(
    cases(cell="lstm", modes=("full",), tokens=False, max_T=6, max_N=3, max_dim=5),
    st.booleans(),
)
def test_lstm_layer_vjp_equals_torch_nn_lstm_with_a_random_upstream(case, with_ds) -> None:
    """torch_reference.lstm.layer_vjp (what --style cs231n-lstm expects) is nn.LSTM's
    vector–Jacobian product: Σ dh ⊙ h (+ Σ ds ⊙ s_{T−1}) through torch.nn.LSTM with our
    U, W, b as weight_ih, weight_hh, bias_ih (bias_hh zero)."""
    import torch

    from torch_reference.lstm import layer_vjp

    p = case.params  # float64: cases' default dtype
    x = np.asarray(case.x, np.float64).reshape(case.T, -1, p.U.shape[1])
    N, H = x.shape[1], p.H
    rng = np.random.default_rng(case.recipe["seed"])
    h0, c0 = rng.normal(size=(N, H)), rng.normal(size=(N, H))
    dh = rng.normal(size=(case.T, N, H))
    ds = rng.normal(size=(N, H)) if with_ds else None
    h, s, grads = layer_vjp(p, x, h0, c0, dh, ds)

    lstm = torch.nn.LSTM(p.U.shape[1], H, dtype=torch.float64)
    weights = dict(lstm.named_parameters())  # Parameters (lstm.weight_ih_l0 is Tensor | Module)
    with torch.no_grad():
        weights["weight_ih_l0"].copy_(torch.tensor(np.asarray(p.U, np.float64)))
        weights["weight_hh_l0"].copy_(torch.tensor(np.asarray(p.W, np.float64)))
        weights["bias_ih_l0"].copy_(torch.tensor(np.asarray(p.b, np.float64)))
        weights["bias_hh_l0"].zero_()
    leaves = [torch.tensor(a, requires_grad=True) for a in (x, h0[None], c0[None])]
    out, (_, s_last) = lstm(leaves[0], (leaves[1], leaves[2]))
    total = (out * torch.tensor(dh)).sum()
    if ds is not None:
        total = total + (s_last[0] * torch.tensor(ds)).sum()
    total.backward()
    expected = {
        "x": grad_of(leaves[0]),
        "h0": grad_of(leaves[1])[0],
        "c0": grad_of(leaves[2])[0],
        "U": grad_of(weights["weight_ih_l0"]),
        "W": grad_of(weights["weight_hh_l0"]),
        "b": grad_of(weights["bias_ih_l0"]),
    }
    states = {"h": h, "s": s}
    torch_states = {"h": out.detach().numpy(), "s": s_last[0].detach().numpy()}
    assert_grads_close(states, torch_states, FLOAT64)
    assert_grads_close(grads, expected, FLOAT64)


@pytest.mark.parametrize(
    ("cell", "options", "message"),
    [
        (
            "rnn",
            {"truncate": 2},
            (
                "torch.nn's recurrent modules run full BPTT only; got truncate=2 and chunk=None "
                "(give neither)"
            ),
        ),
        (
            "lstm",
            {"chunk": 2},
            (
                "torch.nn's recurrent modules run full BPTT only; got truncate=None and chunk=2 "
                "(give neither)"
            ),
        ),
        (
            "rnn",
            {"activation": "sigmoid"},
            "torch.nn.RNN knows activation 'tanh' or 'relu'; got 'sigmoid'",
        ),
        (
            "gru",
            {"bias_ih_share": 0.5},
            (
                "bias_ih_share splits b between nn.RNN's or nn.LSTM's two biases; nn.GRU's two "
                "biases are b and bh, copied as they are (give None)"
            ),
        ),
        (
            "gru",
            {"reset": "before"},
            (
                'torch.nn.GRU is the reset="after" variant, n_t = tanh(U_n x_t + b_n + r_t ⊙ '
                "(W_n h_(t−1) + bh_n)); got GRUParams with reset='before'"
            ),
        ),
    ],
)
def test_torch_nn_refuses_what_it_does_not_compute_in_its_own_words(cell, options, message) -> None:
    options = dict(options)  # the parametrized dict is shared by every run of the test
    reset = options.pop("reset", "after")
    case = make_case(T=4, N=2, D=3, H=3, K=3, seed=0, cell=cell, reset=reset)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        TorchNN(case.params, case.x, case.y, **options)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_the_bias_share_splits_b_between_the_two_biases(cell: str) -> None:
    case = make_case(T=3, N=2, D=3, H=2, K=3, seed=1, cell=cell, dtype="float32")
    b = case.params.b
    split = TorchNN(case.params, case.x, case.y, bias_ih_share=0.25).weights
    np.testing.assert_array_equal(split["bias_ih"].detach().numpy(), 0.25 * b)
    np.testing.assert_array_equal(split["bias_hh"].detach().numpy(), 0.75 * b)
    whole = TorchNN(case.params, case.x, case.y).weights  # default: all of b in bias_ih
    np.testing.assert_array_equal(whole["bias_ih"].detach().numpy(), b)
    np.testing.assert_array_equal(whole["bias_hh"].detach().numpy(), np.zeros_like(b))
    share = np.random.default_rng(case.recipe["seed"]).uniform(-1, 2, size=b.shape)
    drawn = TorchNN.on_case(case).weights  # as on_case documents: seeded by the case
    np.testing.assert_allclose(drawn["bias_ih"].detach().numpy(), share * b, rtol=1e-6)


def test_building_the_modules_leaves_torchs_generator_alone() -> None:
    case = make_case(T=3, N=2, D=3, H=2, K=3, seed=1, cell="lstm")
    before = torch.get_rng_state()
    TorchNN.on_case(case)
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_a_second_call_gives_the_same_gradients_not_their_sum(cell: str) -> None:
    case = make_case(T=3, N=2, D=3, H=2, K=3, seed=2, cell=cell, with_h0=True)
    torch_nn = TorchNN.on_case(case)
    first = torch_nn.result()
    second = torch_nn.result()
    assert first.grads.keys() == second.grads.keys() >= {"U", "W", "V", "b", "c", "h0", "x"}
    for name, g in first.grads.items():
        np.testing.assert_array_equal(second.grads[name], g, name)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_an_all_zero_mask_gives_no_loss_and_no_gradient(cell: str) -> None:
    case = make_case(T=3, N=2, D=3, H=2, K=3, seed=3, cell=cell)
    zero = np.zeros(case.y.shape)
    result = TorchNN(case.params, case.x, case.y, mask=zero).result()
    assert result.loss == 0.0
    for name, g in result.grads.items():
        np.testing.assert_array_equal(g, np.zeros_like(g), name)


def test_lstm_layer_vjp_computes_in_float64_and_returns_the_parameters_dtype() -> None:
    from torch_reference.lstm import layer_vjp

    case = make_case(T=4, N=3, D=3, H=4, K=2, seed=8, cell="lstm", dtype="float32")
    rng = np.random.default_rng(8)
    x = case.x.astype(np.float32)
    h0, c0, dh, ds = (
        rng.normal(size=shape).astype(np.float32) for shape in [(3, 4)] * 2 + [(4, 3, 4), (3, 4)]
    )
    params = cast(LSTMParams, case.params)
    got = layer_vjp(params, x, h0, c0, dh, ds)
    wide = layer_vjp(params.astype(np.float64), x, h0, c0, dh, ds)
    for name, a, b in [("h", got[0], wide[0]), ("s", got[1], wide[1])] + [
        (k, got[2][k], wide[2][k]) for k in ("U", "W", "b", "h0", "c0", "x")
    ]:
        assert a.dtype == np.float32, name
        np.testing.assert_array_equal(a, b.astype(np.float32), name)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "identity"])
def test_hidden_states_vjp_runs_the_activation_it_is_given(activation: str) -> None:
    """The vanilla layer's twin (what --style cs231n expects; the styles use tanh only)."""
    from manual_bptt import forward, init_params
    from torch_reference.network import hidden_states_vjp

    params = init_params(3, 4, 2, seed=1)
    rng = np.random.default_rng(1)
    x, h0, dh = rng.normal(size=(5, 2, 3)), rng.normal(size=(2, 4)), rng.normal(size=(5, 2, 4))
    h, _ = hidden_states_vjp(params, x, h0, dh, activation)
    expected = forward(params, x, h0=h0, activation=activation).h
    np.testing.assert_allclose(h, expected, rtol=1e-12, atol=1e-14)


def test_hidden_states_vjp_refuses_token_ids_in_words() -> None:
    from manual_bptt import init_params
    from torch_reference.network import hidden_states_vjp

    params = init_params(3, 4, 2)
    message = (
        "hidden_states_vjp takes float inputs x (T, N, D), as a layer does; got token ids of "
        "shape (5, 2) (one-hot them first)"
    )
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        hidden_states_vjp(params, np.zeros((5, 2), int), np.zeros((2, 4)), np.zeros((5, 2, 4)))
