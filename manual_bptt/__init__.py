"""manual_bptt: backpropagation through time for RNNs, written by hand in NumPy.

Three cells, chosen by the parameters' type: the vanilla RNN (:class:`Params`), the LSTM
(:class:`LSTMParams`, equations (13)–(24) of docs/derivation.md) and the GRU
(:class:`GRUParams`, (25)–(33), both reset variants). The vanilla network (equations
(1)–(5); Goodfellow et al., Deep Learning, §10.2):

    a_t = b + W h_{t−1} + U x_t      h_t = φ(a_t)
    o_t = c + V h_t                  ŷ_t = softmax(o_t)
    L   = Σ_t Σ_n m[t,n] · (−log ŷ_t[n, y[t,n]])

Entry points: :class:`Params`, :class:`LSTMParams`, :class:`GRUParams`, :func:`init_params`, :func:`forward`, :func:`loss`,
:func:`bptt` (vectorised) and :func:`naive_bptt` (the plain loops, for reading); for
vanishing gradients :func:`contributions` and :func:`contribution_norms` (the gradient
split by (loss, step)), :func:`hidden_jacobians`, :func:`jacobian_row`,
:func:`spectral_norms`, :func:`product_bounds` and :func:`sigma_max` (∂h_t/∂h_k and its
bound), and :func:`clip_grad_norm` and :func:`clip_grad_value`. The other modules
(gradcheck, verify, gallery, cases, strategies, compare, …) are imported by name;
:mod:`manual_bptt.testing` is the checker's Python API for your own test suite.
This package never imports torch; ``torch_reference`` is its autograd twin.
"""

from manual_bptt.activations import ACTIVATIONS
from manual_bptt.backward import bptt
from manual_bptt.cells import init_params
from manual_bptt.gru import GRUParams
from manual_bptt.lstm import LSTMParams
from manual_bptt.naive import naive_bptt
from manual_bptt.network import ForwardResult, OverflowWarning, forward, loss
from manual_bptt.params import Params
from manual_bptt.result import GRAD_NAMES, BPTTResult
from manual_bptt.truncation import RandomTruncation
from manual_bptt.vanishing.clipping import clip_grad_norm, clip_grad_value

# The function, not its module, is manual_bptt.contributions (as torch_reference's);
# the module stays importable by name: from manual_bptt.vanishing.decomposition import PARAMS.
from manual_bptt.vanishing.decomposition import contribution_norms, contributions
from manual_bptt.vanishing.jacobians import (
    hidden_jacobians,
    jacobian_row,
    product_bounds,
    sigma_max,
    spectral_norms,
)

__all__ = [
    "ACTIVATIONS",
    "GRAD_NAMES",
    "BPTTResult",
    "ForwardResult",
    "GRUParams",
    "LSTMParams",
    "OverflowWarning",
    "Params",
    "RandomTruncation",
    "bptt",
    "clip_grad_norm",
    "clip_grad_value",
    "contribution_norms",
    "contributions",
    "forward",
    "hidden_jacobians",
    "init_params",
    "jacobian_row",
    "loss",
    "naive_bptt",
    "product_bounds",
    "sigma_max",
    "spectral_norms",
]
