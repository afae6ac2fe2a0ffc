"""The twin is itself checked against code nobody here wrote: torch.nn.RNN.

For full BPTT, torch.nn.RNN (weight_ih = U, weight_hh = W, bias_ih + bias_hh = b)
followed by nn.Linear (weight V, bias c) and F.cross_entropy must give the loss and
gradients of torch_reference.bptt on the same weights. nn.RNN has two hidden biases
where our network has one; each receives the gradient of b. Token inputs enter
nn.RNN as one-hot vectors, which is what U x_t with a token id means.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import given

import torch_reference
from manual_bptt.checking.cases import Case
from manual_bptt.checking.compare import FLOAT64, assert_grads_close
from manual_bptt.checking.strategies import cases


def nn_rnn_loss_and_grads(case: Case) -> tuple[float, dict[str, np.ndarray]]:
    """Loss and gradients by nn.RNN + nn.Linear + F.cross_entropy, in our naming.

    The case must be batched: x (T, N, D) or token ids (T, N), h0 (N, H) or None.
    """
    p = case.params
    H, D = p.U.shape
    T, N = case.y.shape
    tokens = np.issubdtype(case.x.dtype, np.integer)
    rnn = torch.nn.RNN(D, H, nonlinearity=case.activation, dtype=torch.float64)
    out = torch.nn.Linear(H, p.K, dtype=torch.float64)
    # Split b at random between the two biases: only their sum may matter.
    share = np.random.default_rng(case.recipe["seed"]).uniform(-1, 2, size=H)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.from_numpy(p.U))
        rnn.weight_hh_l0.copy_(torch.from_numpy(p.W))
        rnn.bias_ih_l0.copy_(torch.from_numpy(share * p.b))
        rnn.bias_hh_l0.copy_(torch.from_numpy((1 - share) * p.b))
        out.weight.copy_(torch.from_numpy(p.V))
        out.bias.copy_(torch.from_numpy(p.c))
    if tokens:
        inputs = F.one_hot(torch.from_numpy(case.x), D).to(torch.float64)
    else:
        inputs = torch.tensor(case.x, requires_grad=True)
    h0 = np.zeros((N, H)) if case.h0 is None else case.h0
    h0_t = torch.tensor(h0[None], requires_grad=True)  # nn.RNN wants (layers, N, H)
    hs, _ = rnn(inputs, h0_t)
    per_step = F.cross_entropy(
        out(hs).reshape(T * N, -1), torch.from_numpy(case.y).reshape(-1), reduction="none"
    )
    mask = np.ones((T, N)) if case.mask is None else case.mask.astype(np.float64)
    m = torch.from_numpy(mask.reshape(-1))
    loss = (per_step * m).sum()
    if case.reduction == "mean":
        loss = loss / m.sum() if m.sum() > 0 else loss * 0
    loss.backward()
    # The second bias receives the same gradient as the first: both enter a_t once
    # (nn.RNN sums them in different orders, so equal up to rounding).
    assert_grads_close(
        {"bias_hh": rnn.bias_hh_l0.grad.numpy()},
        {"bias_hh": rnn.bias_ih_l0.grad.numpy()},
        FLOAT64,
    )
    grads = {
        "U": rnn.weight_ih_l0.grad.numpy(),
        "W": rnn.weight_hh_l0.grad.numpy(),
        "V": out.weight.grad.numpy(),
        "b": rnn.bias_ih_l0.grad.numpy(),
        "c": out.bias.grad.numpy(),
        "h0": h0_t.grad[0].numpy(),
    }
    if not tokens:
        grads["x"] = inputs.grad.numpy()
    return loss.item(), grads


@given(cases(activations=("tanh", "relu"), modes=("full",), batched=True))
def test_twin_equals_torch_nn_rnn(case: Case) -> None:
    twin = case.call(torch_reference.bptt)
    loss, grads = nn_rnn_loss_and_grads(case)
    assert abs(twin.loss - loss) <= FLOAT64.atol + FLOAT64.rtol * abs(loss)
    assert_grads_close(twin.grads, grads, FLOAT64, f"twin vs nn.RNN for {case.describe()}")
