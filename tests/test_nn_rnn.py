"""The twin is itself checked against code nobody here wrote: torch.nn.RNN, torch.nn.LSTM
and torch.nn.GRU.

For full BPTT, the torch.nn module (weight_ih = U, weight_hh = W, and the biases)
followed by nn.Linear (weight V, bias c) and F.cross_entropy must give the loss and
gradients of torch_reference.bptt on the same weights. nn.RNN and nn.LSTM have two
hidden biases where our cells have one, b = bias_ih + bias_hh; each receives the
gradient of b. nn.GRU's two biases are our b and bh (its bias_hh_n sits inside the
reset gate's product, so they cannot be merged). Token inputs enter as one-hot
vectors, which is what U x_t with a token id means. nn.GRU is the "after" variant.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given

import torch_reference
from manual_bptt.checking.cases import Case
from manual_bptt.checking.compare import FLOAT64, assert_grads_close
from manual_bptt.checking.strategies import cases


def _inputs(case: Case) -> torch.Tensor:
    """x as a leaf that requires grad, or token ids as one-hot float rows."""
    if np.issubdtype(case.x.dtype, np.integer):
        return F.one_hot(torch.from_numpy(case.x), case.params.D).to(torch.float64)
    return torch.tensor(case.x, requires_grad=True)


def _initial(case: Case, value: np.ndarray | None) -> torch.Tensor:
    """h0 or c0 as a (layers = 1, N, H) leaf, zeros when the case has none."""
    N, H = case.y.shape[1], case.params.H
    return torch.tensor((np.zeros((N, H)) if value is None else value)[None], requires_grad=True)


def _readout_loss(case: Case, hs: torch.Tensor) -> tuple[torch.Tensor, torch.nn.Linear]:
    """nn.Linear (V, c) and F.cross_entropy on the hidden states (T, N, H), masked and
    reduced as the case says; returns the loss (backward already run) and the Linear."""
    p = case.params
    T, N = case.y.shape
    out = torch.nn.Linear(p.H, p.K, dtype=torch.float64)
    with torch.no_grad():
        out.weight.copy_(torch.from_numpy(p.V))
        out.bias.copy_(torch.from_numpy(p.c))
    per_step = F.cross_entropy(
        out(hs).reshape(T * N, -1), torch.from_numpy(case.y).reshape(-1), reduction="none"
    )
    mask = np.ones((T, N)) if case.mask is None else case.mask.astype(np.float64)
    m = torch.from_numpy(mask.reshape(-1))
    loss = (per_step * m).sum()
    if case.reduction == "mean":
        loss = loss / m.sum() if m.sum() > 0 else loss * 0
    loss.backward()
    return loss, out


def _bias_share(case: Case) -> np.ndarray:
    """A random split of b between the two biases: only their sum may matter."""
    return np.random.default_rng(case.recipe["seed"]).uniform(-1, 2, size=case.params.b.shape)


def nn_rnn_loss_and_grads(case: Case) -> tuple[float, dict[str, np.ndarray]]:
    """Loss and gradients by nn.RNN / nn.LSTM / nn.GRU + nn.Linear + F.cross_entropy,
    in our naming.

    The case must be batched: x (T, N, D) or token ids (T, N), h0 (N, H) or None.
    """
    p = case.params
    cell = p.CELL
    kind = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    extra = {"nonlinearity": case.activation} if cell == "rnn" else {}
    module = kind(p.D, p.H, dtype=torch.float64, **extra)
    share = _bias_share(case)
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.from_numpy(p.U))
        module.weight_hh_l0.copy_(torch.from_numpy(p.W))
        if cell == "gru":
            module.bias_ih_l0.copy_(torch.from_numpy(p.b))
            module.bias_hh_l0.copy_(torch.from_numpy(p.bh))
        else:
            module.bias_ih_l0.copy_(torch.from_numpy(share * p.b))
            module.bias_hh_l0.copy_(torch.from_numpy((1 - share) * p.b))
    inputs = _inputs(case)
    h0_t = _initial(case, case.h0)
    c0_t = _initial(case, case.c0) if cell == "lstm" else None
    hs, _ = module(inputs, (h0_t, c0_t) if c0_t is not None else h0_t)
    loss, out = _readout_loss(case, hs)
    grads = {
        "U": module.weight_ih_l0.grad.numpy(),
        "W": module.weight_hh_l0.grad.numpy(),
        "V": out.weight.grad.numpy(),
        "b": module.bias_ih_l0.grad.numpy(),
        "c": out.bias.grad.numpy(),
        "h0": h0_t.grad[0].numpy(),
    }
    if cell == "gru":
        grads["bh"] = module.bias_hh_l0.grad.numpy()
    else:
        # The second bias receives the same gradient as the first: both enter the
        # pre-activation once (torch sums them in different orders, so equal up to rounding).
        assert_grads_close(
            {"bias_hh": module.bias_hh_l0.grad.numpy()},
            {"bias_hh": module.bias_ih_l0.grad.numpy()}, FLOAT64,
        )  # fmt: skip
    if c0_t is not None:
        grads["c0"] = c0_t.grad[0].numpy()
    if inputs.requires_grad:
        grads["x"] = inputs.grad.numpy()
    return loss.item(), grads


def assert_twin_equals_torch_nn(case: Case) -> None:
    twin = torch_reference.bptt(case.params, case.x, case.y, **case.kwargs())
    loss, grads = nn_rnn_loss_and_grads(case)
    assert abs(twin.loss - loss) <= FLOAT64.atol + FLOAT64.rtol * abs(loss)
    assert twin.grads.keys() == grads.keys()
    name = type(case.params).__name__
    assert_grads_close(twin.grads, grads, FLOAT64, f"twin vs torch.nn for {name} {case.describe()}")


@given(cases(activations=("tanh", "relu"), truncation=False, batched=True))
def test_twin_equals_torch_nn_rnn(case: Case) -> None:
    assert_twin_equals_torch_nn(case)


@given(cases(cell="lstm", truncation=False, batched=True, max_T=24))
def test_twin_equals_torch_nn_lstm(case: Case) -> None:
    assert_twin_equals_torch_nn(case)


@given(cases(cell="gru", resets=("after",), truncation=False, batched=True, max_T=24))
def test_twin_equals_torch_nn_gru(case: Case) -> None:
    """nn.GRU is the "after" variant; "before" is checked by the twin's agreement with
    the manual cell, by finite differences and by the complex step."""
    assert_twin_equals_torch_nn(case)


def test_torch_nn_gru_is_not_the_before_variant() -> None:
    """The two variants are different functions: nn.GRU must disagree with "before"
    (or the test above could not tell them apart)."""
    from manual_bptt.checking.cases import make_case

    case = make_case(T=4, N=2, D=3, H=3, K=3, seed=0, cell="gru", reset="before", with_h0=True)
    with pytest.raises(AssertionError):
        assert_twin_equals_torch_nn(case)
