"""torch.nn's own recurrent modules as a reference for the twin: code nobody here wrote.

torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU (weight_ih = U, weight_hh = W, and the
biases) followed by nn.Linear (weight V, bias c) and F.cross_entropy, on the weights
of a :class:`manual_bptt.checking.cases.Case`, gives the loss and gradients in our
naming. nn.RNN and nn.LSTM have two hidden biases where our cells have one,
b = bias_ih + bias_hh (b is split between them at random: only the sum may matter);
nn.GRU's two are our b and bh. Token inputs enter as one-hot vectors, which is what
U x_t with a token id means. nn.GRU is the "after" variant. Full BPTT only; the case
must be batched.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from manual_bptt.checking.cases import Case
from manual_bptt.checking.compare import assert_grads_close, tolerance_for


def _grad(leaf: torch.Tensor) -> np.ndarray:
    """The gradient .backward() left on a leaf, as numpy."""
    assert leaf.grad is not None
    return leaf.grad.numpy()


def _dtype(case: Case) -> torch.dtype:
    return torch.float32 if case.params.dtype == np.float32 else torch.float64


def _inputs(case: Case) -> torch.Tensor:
    """x as a leaf that requires grad, or token ids as one-hot float rows."""
    if np.issubdtype(case.x.dtype, np.integer):
        return F.one_hot(torch.from_numpy(case.x), case.params.D).to(_dtype(case))
    return torch.tensor(case.x, requires_grad=True)


def _initial(case: Case, value: np.ndarray | None) -> torch.Tensor:
    """h0 or c0 as a (layers = 1, N, H) leaf, zeros when the case has none."""
    N, H = case.y.shape[1], case.params.H
    zeros = np.zeros((N, H), dtype=case.params.dtype)
    return torch.tensor((zeros if value is None else value)[None], requires_grad=True)


def _readout_loss(case: Case, hs: torch.Tensor) -> tuple[torch.Tensor, torch.nn.Linear]:
    """nn.Linear (V, c) and F.cross_entropy on the hidden states (T, N, H), masked and
    reduced as the case says; returns the loss (backward already run) and the Linear."""
    p = case.params
    T, N = case.y.shape
    out = torch.nn.Linear(p.H, p.K, dtype=_dtype(case))
    with torch.no_grad():
        out.weight.copy_(torch.from_numpy(p.V))
        out.bias.copy_(torch.from_numpy(p.c))
    per_step = F.cross_entropy(
        out(hs).reshape(T * N, -1), torch.from_numpy(case.y).reshape(-1), reduction="none"
    )
    mask = np.ones((T, N)) if case.mask is None else case.mask.astype(np.float64)
    mask = mask.astype(case.params.dtype)
    m = torch.from_numpy(mask.reshape(-1))
    loss = (per_step * m).sum()
    if case.reduction == "mean":
        loss = loss / m.sum() if m.sum() > 0 else loss * 0
    loss.backward()
    return loss, out


def _bias_share(case: Case) -> np.ndarray:
    """A random split of b between the two biases: only their sum may matter."""
    return np.random.default_rng(case.recipe["seed"]).uniform(-1, 2, size=case.params.b.shape)


def loss_and_grads(case: Case) -> tuple[float, dict[str, np.ndarray]]:
    """Loss and gradients by nn.RNN / nn.LSTM / nn.GRU + nn.Linear + F.cross_entropy,
    in our naming.

    The case must be batched: x (T, N, D) or token ids (T, N), h0 (N, H) or None.
    """
    p = case.params
    cell = p.CELL
    kind = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    extra = {"nonlinearity": case.activation} if cell == "rnn" else {}
    module = kind(p.D, p.H, dtype=_dtype(case), **extra)
    share = _bias_share(case)
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.from_numpy(p.U))
        module.weight_hh_l0.copy_(torch.from_numpy(p.W))
        if cell == "gru":
            module.bias_ih_l0.copy_(torch.from_numpy(p.b))
            module.bias_hh_l0.copy_(torch.from_numpy(p.as_dict()["bh"]))
        else:
            module.bias_ih_l0.copy_(torch.from_numpy((share * p.b).astype(p.dtype)))
            module.bias_hh_l0.copy_(torch.from_numpy(((1 - share) * p.b).astype(p.dtype)))
    inputs = _inputs(case)
    h0_t = _initial(case, case.h0)
    c0_t = _initial(case, case.c0) if cell == "lstm" else None
    hs, _ = module(inputs, (h0_t, c0_t) if c0_t is not None else h0_t)
    loss, out = _readout_loss(case, hs)
    grads = {
        "U": _grad(module.weight_ih_l0),
        "W": _grad(module.weight_hh_l0),
        "V": _grad(out.weight),
        "b": _grad(module.bias_ih_l0),
        "c": _grad(out.bias),
        "h0": _grad(h0_t)[0],
    }
    if cell == "gru":
        grads["bh"] = _grad(module.bias_hh_l0)
    else:
        # The second bias receives the same gradient as the first: both enter the
        # pre-activation once (torch sums them in different orders, so equal up to rounding).
        assert_grads_close(
            {"bias_hh": _grad(module.bias_hh_l0)},
            {"bias_hh": _grad(module.bias_ih_l0)},
            tolerance_for(case.params.dtype),
        )
    if c0_t is not None:
        grads["c0"] = _grad(c0_t)[0]
    if inputs.requires_grad:
        grads["x"] = _grad(inputs)
    return loss.item(), grads
