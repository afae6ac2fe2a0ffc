"""manual_bptt: backpropagation through time for a vanilla RNN, written by hand in NumPy.

The network (README, equations (1)–(5); Goodfellow et al., Deep Learning, §10.2):

    a_t = b + W h_{t−1} + U x_t      h_t = φ(a_t)
    o_t = c + V h_t                  ŷ_t = softmax(o_t)
    L   = Σ_t Σ_n m[t,n] · (−log ŷ_t[n, y[t,n]])

Entry points: :class:`Params`, :func:`init_params`, :func:`forward`, :func:`loss`,
:func:`bptt` (vectorised) and :func:`naive_bptt` (the plain loops, for reading).
This package never imports torch; ``torch_reference`` is its autograd twin.
"""

from manual_bptt.activations import ACTIVATIONS
from manual_bptt.backward import bptt
from manual_bptt.naive import naive_bptt
from manual_bptt.network import ForwardResult, forward, loss
from manual_bptt.params import Params, init_params
from manual_bptt.result import GRAD_NAMES, BPTTResult

__all__ = [
    "ACTIVATIONS",
    "GRAD_NAMES",
    "BPTTResult",
    "ForwardResult",
    "Params",
    "bptt",
    "forward",
    "init_params",
    "loss",
    "naive_bptt",
]
