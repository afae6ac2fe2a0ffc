"""A correct recurrent layer in the shape of CS231n's assignment 3 (rnn_layers.py).

Batch-major, tanh, row vectors: h_t = tanh(x_t Wx + h_{t-1} Wh + b). Check it with

    bptt verify examples/rnn_layers.py --style cs231n

(written for this project in the course's interface; not the course's code).
"""

from builtins import range  # as the course's files begin (a Python 2 leftover)

import numpy as np


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    """One step. x (N, D), prev_h (N, H), Wx (D, H), Wh (H, H), b (H,) -> next_h (N, H), cache."""
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    cache = (x, prev_h, Wx, Wh, next_h)
    return next_h, cache


def rnn_step_backward(dnext_h, cache):
    """dnext_h (N, H) -> dx (N, D), dprev_h (N, H), dWx (D, H), dWh (H, H), db (H,)."""
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 - next_h**2)  # tanh'(a) = 1 - tanh(a)^2
    dx = da @ Wx.T
    dprev_h = da @ Wh.T
    dWx = x.T @ da
    dWh = prev_h.T @ da
    db = da.sum(axis=0)  # b is shared by every sequence in the batch
    return dx, dprev_h, dWx, dWh, db


def rnn_forward(x, h0, Wx, Wh, b):
    """x (N, T, D), h0 (N, H) -> h (N, T, H), cache (one step cache per step)."""
    N, T, _ = x.shape
    h = np.zeros((N, T, h0.shape[1]), dtype=h0.dtype)
    caches = []
    prev_h = h0
    for t in range(T):
        prev_h, step_cache = rnn_step_forward(x[:, t], prev_h, Wx, Wh, b)
        h[:, t] = prev_h
        caches.append(step_cache)
    return h, caches


def rnn_backward(dh, cache):
    """dh (N, T, H), the upstream gradient of every state -> dx (N, T, D), dh0 (N, H),
    dWx (D, H), dWh (H, H), db (H,)."""
    x0, _, Wx, Wh, _ = cache[0]
    N, T, H = dh.shape
    dx = np.zeros((N, T, x0.shape[1]), dtype=dh.dtype)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(H, dtype=dh.dtype)
    dprev_h = np.zeros((N, H), dtype=dh.dtype)
    for t in reversed(range(T)):
        # h_t feeds the layer above (dh[:, t]) and the next step (dprev_h): add both
        dx[:, t], dprev_h, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t] + dprev_h, cache[t])
        dWx += dWx_t  # += : the weights are shared by every step
        dWh += dWh_t
        db += db_t
    return dx, dprev_h, dWx, dWh, db
