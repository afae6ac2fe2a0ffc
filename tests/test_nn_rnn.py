"""The twin is itself checked against code nobody here wrote: torch.nn.RNN.

For full BPTT, torch.nn.RNN + nn.Linear + F.cross_entropy (torch_reference.nn_rnn,
where the weight mapping is written out) must give the loss and gradients of
torch_reference.bptt on the same weights. nn.RNN has two hidden biases where our
network has one; b is split between them at random, and each must receive the
gradient of b.
"""

from __future__ import annotations

import functools

import numpy as np
from hypothesis import given

import torch_reference
from manual_bptt.checking.cases import Case
from manual_bptt.checking.compare import FLOAT64, assert_grads_close
from manual_bptt.checking.strategies import cases
from torch_reference.nn_rnn import NNRNN


@given(cases(activations=("tanh", "relu"), modes=("full",), batched=True))
def test_twin_equals_torch_nn_rnn(case: Case) -> None:
    twin = case.call(torch_reference.bptt)
    # Split b at random between the two biases: only their sum may matter.
    share = np.random.default_rng(case.recipe["seed"]).uniform(-1, 2, size=case.params.H)
    nn_rnn = case.call(functools.partial(NNRNN, bias_ih_share=share))
    result = nn_rnn.result()
    # The second bias receives the same gradient as the first: both enter a_t once
    # (nn.RNN sums them in different orders, so equal up to rounding).
    bias_ih, bias_hh = nn_rnn.weights["bias_ih"].grad, nn_rnn.weights["bias_hh"].grad
    assert bias_ih is not None
    assert bias_hh is not None
    assert_grads_close({"bias_hh": bias_hh.numpy()}, {"bias_hh": bias_ih.numpy()}, FLOAT64)
    assert abs(twin.loss - result.loss) <= FLOAT64.atol + FLOAT64.rtol * abs(result.loss)
    assert_grads_close(twin.grads, result.grads, FLOAT64, f"twin vs nn.RNN for {case.describe()}")
