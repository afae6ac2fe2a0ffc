"""The network as torch.nn's own modules: code nobody here wrote computes the same loss.

One recurrent module, chosen by the parameters' type, then nn.Linear and
F.cross_entropy, with this weight mapping (G gate blocks: 1 for the vanilla cell,
4 for the LSTM, 3 for the GRU; every module has one layer and is time-major):

    torch.nn.RNN   (1)–(2)    weight_ih_l0 = U (H, D), weight_hh_l0 = W (H, H),
                              bias_ih_l0 + bias_hh_l0 = b (H,); h_0 = h0
    torch.nn.LSTM  (13)–(16)  weight_ih_l0 = U (4H, D), weight_hh_l0 = W (4H, H),
                              bias_ih_l0 + bias_hh_l0 = b (4H,); (h_0, c_0) = (h0, c0)
    torch.nn.GRU   (25)–(27)  weight_ih_l0 = U (3H, D), weight_hh_l0 = W (3H, H),
                              bias_ih_l0 = b (3H,), bias_hh_l0 = bh (3H,); h_0 = h0;
                              reset="after" only (torch's variant; "before" is refused)
    nn.Linear      (3)        weight = V (K, H), bias = c (K,)
    F.cross_entropy (4)–(5)   with the mask m and the scale s of (5)

nn.RNN and nn.LSTM have two biases where our cells have one; both enter the
pre-activation once, so each receives ∂L/∂b and only their sum may matter
(``bias_ih_share`` splits b between them). nn.GRU's bias_hh_n sits inside the reset
gate's product, so its two biases are our b and bh and cannot be merged or split.
Token ids enter as one-hot vectors, which is what U x_t means for a token id.
torch.nn runs full BPTT only, and nn.RNN knows tanh and relu only.

tests/test_nn_rnn.py checks the twin against it and benchmarks/ times bptt against it:
built once, each call is one forward and backward pass, as a user of torch writes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike, NDArray

from manual_bptt.compare import assert_grads_close, tolerance_for
from manual_bptt.gru import GRUParams
from manual_bptt.inputs import Batch, Options, prepare
from manual_bptt.params import CellParams
from manual_bptt.result import GRAD_NAMES, GRU_GRAD_NAMES, LSTM_GRAD_NAMES, BPTTResult

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from manual_bptt.cases import Case

MODULES = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
NAMES = {"rnn": "nn.RNN", "lstm": "nn.LSTM", "gru": "nn.GRU"}  # as tables show them
NONLINEARITIES = ("tanh", "relu")  # the activations torch.nn.RNN knows
_GRAD_NAMES = {"rnn": GRAD_NAMES, "lstm": LSTM_GRAD_NAMES, "gru": GRU_GRAD_NAMES}


def _grad(leaf: torch.Tensor) -> NDArray[np.floating]:
    """A leaf's gradient after backward, as a NumPy copy (the next call drops it)."""
    assert leaf.grad is not None, "every leaf enters the loss, so backward sets its .grad"
    grad: NDArray[np.floating] = leaf.grad.numpy().copy()
    return grad


def _refuse_what_torch_nn_cannot_run(
    params: CellParams, batch: Batch, bias_ih_share: ArrayLike | None
) -> None:
    """ValueError for a problem that torch.nn's modules do not compute."""
    if batch.truncate is not None or batch.chunk is not None:
        raise ValueError(
            "torch.nn's recurrent modules run full BPTT only; got "
            f"truncate={batch.truncate} and chunk={batch.chunk} (give neither)"
        )
    if params.CELL == "rnn" and batch.activation.name not in NONLINEARITIES:
        raise ValueError(
            f"torch.nn.RNN knows activation 'tanh' or 'relu'; got {batch.activation.name!r}"
        )
    if isinstance(params, GRUParams):
        if params.reset != "after":
            raise ValueError(
                'torch.nn.GRU is the reset="after" variant, n_t = tanh(U_n x_t + b_n + '
                f"r_t ⊙ (W_n h_(t−1) + bh_n)); got GRUParams with reset={params.reset!r}"
            )
        if bias_ih_share is not None:
            raise ValueError(
                "bias_ih_share splits b between nn.RNN's or nn.LSTM's two biases; "
                "nn.GRU's two biases are b and bh, copied as they are (give None)"
            )


def _bias_values(
    params: CellParams, bias_ih_share: ArrayLike | None
) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    """(bias_ih_l0, bias_hh_l0): the GRU's b and bh; for the others s·b and (1 − s)·b."""
    if isinstance(params, GRUParams):
        return params.b, params.bh
    s = np.asarray(1.0 if bias_ih_share is None else bias_ih_share)
    s = np.broadcast_to(s, params.b.shape)
    return (s * params.b).astype(params.dtype), ((1 - s) * params.b).astype(params.dtype)


class TorchNN:
    """torch.nn.RNN, nn.LSTM or nn.GRU + nn.Linear + F.cross_entropy on (params, x, y,
    options), made once; the module is chosen by the parameters' type.

    Arguments, shapes and options as :func:`manual_bptt.bptt` (params Params,
    LSTMParams or GRUParams; x (T, N, D) floats or (T, N) token ids, y (T, N), or
    unbatched), except that truncate and chunk must be None, the vanilla cell's
    activation "tanh" or "relu", and a GRU's reset "after" (a ValueError otherwise).
    ``bias_ih_share`` s, a scalar or (G·H,), for nn.RNN and nn.LSTM only: bias_ih_l0 =
    s·b and bias_hh_l0 = (1 − s)·b, so that only their sum is b (default None: s = 1,
    bias_hh_l0 = 0).

    Calling it runs one forward and backward pass and returns the loss L (a 0-d
    tensor), nothing else: with no mask and reduction="sum", the module, the Linear,
    F.cross_entropy(reduction="sum") and .backward(). :meth:`result` does the same
    and returns L and the gradients under our names.

    Attributes:
        cell: "rnn", "lstm" or "gru"; module: the torch.nn recurrent module; out: the
            nn.Linear.
        weights: "U", "W", "bias_ih", "bias_hh", "V", "c" → the module parameter that
            holds it (the weight mapping in the module docstring).
        x: (T, N, D): the float inputs (requires grad), or token ids one-hot (no grad).
        h0: (1, N, H), torch's (layers, N, H), requires grad; c0 likewise for the
            LSTM (None for the other cells).
        y: (T·N,) targets, time-major.
    """

    def __init__(
        self,
        params: CellParams,
        x: ArrayLike,
        y: ArrayLike,
        *,
        bias_ih_share: ArrayLike | None = None,
        **options: Unpack[Options],
    ) -> None:
        batch = prepare(params, x, y, **options)
        _refuse_what_torch_nn_cannot_run(params, batch, bias_ih_share)
        self._batch = batch
        self.cell = params.CELL
        D, H, self.K = params.D, params.H, params.K
        dtype = torch.from_numpy(params.U).dtype
        extra = {"nonlinearity": batch.activation.name} if self.cell == "rnn" else {}
        # Made on the meta device, then given empty CPU memory: no random initial weights,
        # so torch's global generator is left alone; every weight is copied in below.
        module = MODULES[self.cell](D, H, dtype=dtype, device="meta", **extra)
        self.module = module.to_empty(device="cpu")
        self.out = torch.nn.Linear(H, self.K, dtype=dtype, device="meta").to_empty(device="cpu")
        weights = dict(self.module.named_parameters())
        # The weight mapping: our name → the torch parameter that holds it.
        self.weights: dict[str, torch.Tensor] = {
            "U": weights["weight_ih_l0"],
            "W": weights["weight_hh_l0"],
            "bias_ih": weights["bias_ih_l0"],
            "bias_hh": weights["bias_hh_l0"],
            "V": self.out.weight,
            "c": self.out.bias,
        }
        bias_ih, bias_hh = _bias_values(params, bias_ih_share)
        values = {
            "U": params.U,
            "W": params.W,
            "bias_ih": bias_ih,
            "bias_hh": bias_hh,
            "V": params.V,
            "c": params.c,
        }
        with torch.no_grad():
            for name, value in values.items():
                self.weights[name].copy_(torch.from_numpy(np.ascontiguousarray(value)))
        if batch.tokens:
            self.x = F.one_hot(torch.as_tensor(batch.x, dtype=torch.long), D).to(dtype)
        else:
            self.x = torch.tensor(batch.x, requires_grad=True)  # a copy: x stays untouched
        self.h0 = torch.tensor(batch.h0[None], requires_grad=True)
        self.c0 = None if batch.c0 is None else torch.tensor(batch.c0[None], requires_grad=True)
        self._state = self.h0 if self.c0 is None else (self.h0, self.c0)
        self.y = torch.as_tensor(batch.y.reshape(-1), dtype=torch.long)
        # The mask and the scale s enter only where they change the loss.
        all_ones = bool(np.all(batch.mask == 1))
        self._mask = None if all_ones else torch.from_numpy(batch.mask.reshape(-1))
        self._scale = batch.loss_scale
        self._leaves = [*self.weights.values(), self.h0]
        self._leaves += [] if self.c0 is None else [self.c0]
        self._leaves += [] if batch.tokens else [self.x]

    @classmethod
    def on_case(cls, case: Case) -> TorchNN:
        """The modules on a checking case, for nn.RNN and nn.LSTM with b split between
        the two biases at random (shares in [−1, 2) per entry, seeded by the case's
        seed): only their sum may matter, and :meth:`result` checks both gradients."""
        share = None
        if case.params.CELL != "gru":
            rng = np.random.default_rng(case.recipe["seed"])
            share = rng.uniform(-1, 2, size=case.params.b.shape)
        return case.call(cls, bias_ih_share=share)

    def __call__(self) -> torch.Tensor:
        """One forward and backward pass; returns L. Every leaf's .grad is L's gradient."""
        for leaf in self._leaves:
            leaf.grad = None
        hs, _ = self.module(self.x, self._state)  # h_t for every t: (T, N, H)
        o = self.out(hs).reshape(-1, self.K)  # o_t, (T·N, K)
        if self._mask is None:
            loss = F.cross_entropy(o, self.y, reduction="sum")
        else:
            loss = (F.cross_entropy(o, self.y, reduction="none") * self._mask).sum()
        if self._scale != 1.0:
            loss = loss * self._scale
        loss.backward()
        return loss

    def grad(self, name: str) -> NDArray[np.floating]:
        """The gradient of ``weights[name]`` after the last call, as a NumPy copy."""
        return _grad(self.weights[name])

    def result(self) -> BPTTResult:
        """One call's L and gradients, named, ordered and shaped as
        :func:`manual_bptt.bptt`'s. For nn.RNN and nn.LSTM, "b" is bias_ih_l0's gradient,
        and bias_hh_l0's is checked to be the same (AssertionError otherwise; equal up to
        rounding, as torch sums the two in different orders)."""
        loss = self()
        grads = {name: self.grad(name) for name in ("U", "W", "V", "c")}
        grads["b"] = self.grad("bias_ih")
        if self.cell == "gru":
            grads["bh"] = self.grad("bias_hh")
        else:
            second = {"bias_hh": self.grad("bias_hh")}
            assert_grads_close(second, {"bias_hh": grads["b"]}, tolerance_for(grads["b"].dtype))
        grads["h0"] = _grad(self.h0)[0]
        if self.c0 is not None:
            grads["c0"] = _grad(self.c0)[0]
        if not self._batch.tokens:
            grads["x"] = _grad(self.x)
        ordered = {name: grads[name] for name in _GRAD_NAMES[self.cell] if name in grads}
        return BPTTResult.from_batched(self._batch, loss.item(), ordered)
