"""The network as PyTorch's own modules: torch.nn.RNN + nn.Linear + F.cross_entropy.

Code nobody here wrote runs equations (1)–(5), with this weight mapping:

    nn.RNN (one layer, time-major)   weight_ih_l0 = U (H, D), weight_hh_l0 = W (H, H),
                                     bias_ih_l0 + bias_hh_l0 = b (H,)
    nn.Linear                        weight = V (K, H), bias = c (K,)
    F.cross_entropy                  (4)–(5), with the mask and the scale s of (5)

nn.RNN has two hidden biases where the network has one; both enter a_t once, so each
receives ∂L/∂b. Token ids enter nn.RNN as one-hot vectors, which is what U x_t means
for a token id. nn.RNN runs full BPTT with tanh or relu only.

tests/test_nn_rnn.py checks the twin against it, and benchmarks/ times bptt against it:
built once, each call is one forward and backward pass, as a user of torch would write it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike

from manual_bptt.inputs import Options, prepare
from manual_bptt.params import Params
from manual_bptt.result import BPTTResult

if TYPE_CHECKING:
    from typing_extensions import Unpack

NONLINEARITIES = ("tanh", "relu")  # the activations torch.nn.RNN knows


def _grad(leaf: torch.Tensor) -> np.ndarray:
    """A leaf's gradient after backward, as a NumPy copy (the next call drops it)."""
    assert leaf.grad is not None, "every leaf enters the loss, so backward sets its .grad"
    return leaf.grad.numpy().copy()


class NNRNN:
    """torch.nn.RNN + nn.Linear + F.cross_entropy on (params, x, y, options), made once.

    Arguments, shapes and options as :func:`manual_bptt.bptt`, except that truncate
    and chunk must be None and activation "tanh" or "relu" (a ValueError otherwise);
    and ``bias_ih_share`` s, a scalar or (H,): bias_ih_l0 = s·b and bias_hh_l0 =
    (1 − s)·b, so that only their sum is b (default 1: bias_hh_l0 = 0).

    Calling it runs one forward and backward pass and returns the loss L (a 0-d tensor);
    :meth:`result` does the same and returns L and the gradients under our names. With
    no mask and reduction="sum" a call is F.cross_entropy(reduction="sum") and
    .backward(), nothing more.

    Attributes:
        rnn: the torch.nn.RNN; out: the nn.Linear.
        weights: "U", "W", "bias_ih", "bias_hh", "V", "c" → the module parameter that
            holds it (its .grad after a call).
        x: (T, N, D): the float inputs (requires grad), or token ids one-hot (no grad).
        h0: (1, N, H), nn.RNN's (layers, N, H), requires grad.
        y: (T·N,) targets, time-major.
    """

    def __init__(
        self,
        params: Params,
        x: ArrayLike,
        y: ArrayLike,
        *,
        bias_ih_share: ArrayLike = 1.0,
        **options: Unpack[Options],
    ) -> None:
        batch = prepare(params, x, y, **options)
        if batch.truncate is not None or batch.chunk is not None:
            raise ValueError(
                "torch.nn.RNN runs full BPTT only; got "
                f"truncate={batch.truncate} and chunk={batch.chunk} (give neither)"
            )
        if batch.activation.name not in NONLINEARITIES:
            raise ValueError(
                f"torch.nn.RNN knows activation 'tanh' or 'relu'; got {batch.activation.name!r}"
            )
        self._batch = batch
        H, D = params.U.shape
        self.K = params.K
        dtype = torch.from_numpy(params.U).dtype
        # Made on the meta device, then given empty CPU memory: no random initial weights,
        # so torch's global generator is left alone; every weight is copied in below.
        rnn = torch.nn.RNN(D, H, nonlinearity=batch.activation.name, dtype=dtype, device="meta")
        self.rnn = rnn.to_empty(device="cpu")
        self.out = torch.nn.Linear(H, self.K, dtype=dtype, device="meta").to_empty(device="cpu")
        share = np.broadcast_to(np.asarray(bias_ih_share, dtype=params.dtype), (H,))
        rnn_weights = dict(self.rnn.named_parameters())
        # The weight mapping: our name → the torch parameter that holds it.
        self.weights: dict[str, torch.Tensor] = {
            "U": rnn_weights["weight_ih_l0"],
            "W": rnn_weights["weight_hh_l0"],
            "bias_ih": rnn_weights["bias_ih_l0"],  # s·b
            "bias_hh": rnn_weights["bias_hh_l0"],  # (1 − s)·b
            "V": self.out.weight,
            "c": self.out.bias,
        }
        values = {
            "U": params.U,
            "W": params.W,
            "bias_ih": share * params.b,
            "bias_hh": (1 - share) * params.b,
            "V": params.V,
            "c": params.c,
        }
        with torch.no_grad():
            for name, value in values.items():
                self.weights[name].copy_(torch.from_numpy(value))
        if batch.tokens:
            ids = torch.as_tensor(batch.x, dtype=torch.long)
            self.x = F.one_hot(ids, D).to(dtype)
        else:
            self.x = torch.tensor(batch.x, requires_grad=True)  # a copy: x stays untouched
        self.h0 = torch.tensor(batch.h0[None], requires_grad=True)
        self.y = torch.as_tensor(batch.y.reshape(-1), dtype=torch.long)
        # The mask and the scale s enter only where they change the loss.
        all_ones = bool(np.all(batch.mask == 1))
        self._mask = None if all_ones else torch.from_numpy(batch.mask.reshape(-1))
        self._scale = batch.loss_scale
        self._leaves = [*self.weights.values(), self.h0]
        if not batch.tokens:
            self._leaves.append(self.x)

    def __call__(self) -> torch.Tensor:
        """One forward and backward pass; returns L. Every leaf's .grad is L's gradient."""
        for leaf in self._leaves:
            leaf.grad = None
        hs, _ = self.rnn(self.x, self.h0)  # h_t for every t: (T, N, H)
        o = self.out(hs).reshape(-1, self.K)  # o_t, (T·N, K)
        if self._mask is None:
            loss = F.cross_entropy(o, self.y, reduction="sum")
        else:
            loss = (F.cross_entropy(o, self.y, reduction="none") * self._mask).sum()
        if self._scale != 1.0:
            loss = loss * self._scale
        loss.backward()
        return loss

    def result(self) -> BPTTResult:
        """One call's L and gradients, named and shaped as :func:`manual_bptt.bptt`'s;
        "b" is bias_ih_l0's gradient (bias_hh_l0's is the same, up to rounding)."""
        loss = self()
        w = self.weights
        grads = {
            "U": _grad(w["U"]),
            "W": _grad(w["W"]),
            "V": _grad(w["V"]),
            "b": _grad(w["bias_ih"]),
            "c": _grad(w["c"]),
            "h0": _grad(self.h0)[0],
        }
        if not self._batch.tokens:
            grads["x"] = _grad(self.x)
        return BPTTResult.from_batched(self._batch, loss.item(), grads)
