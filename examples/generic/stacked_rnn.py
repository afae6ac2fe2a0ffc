"""A 2-layer stacked tanh RNN: the first layer's states are the second layer's inputs.

Written for manual-bptt's generic verify (not copied from anywhere). Batch-major rows:

    a_t = tanh(x_t W1x + a_{t−1} W1h + b1)       (layer 1, a_0 = h0a)
    h_t = tanh(a_t W2x + h_{t−1} W2h + b2)       (layer 2, h_0 = h0b); out = h (N, T, H)

Check it with

    bptt verify examples/generic/stacked_rnn.py --forward stacked_forward \
        --backward stacked_backward \
        --shapes "x:N,T,D h0a:N,H h0b:N,H W1x:D,H W1h:H,H b1:H W2x:H,H W2h:H,H b2:H"
"""

import numpy as np


def layer_forward(x, h0, Wx, Wh, b):
    """x (N, T, D), h0 (N, H) -> states (N, T, H)."""
    h, states = h0, []
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ Wx + h @ Wh + b)
        states.append(h)
    return np.stack(states, axis=1)


def layer_backward(dh, x, h0, Wx, Wh, h):
    """dh (N, T, H) of every state -> dx, dh0, dWx, dWh, db."""
    dx = np.zeros_like(x)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(Wh.shape[0])
    dnext = np.zeros_like(h0)
    for t in reversed(range(x.shape[1])):
        prev = h[:, t - 1] if t > 0 else h0
        da = (dh[:, t] + dnext) * (1 - h[:, t] ** 2)
        dx[:, t] = da @ Wx.T
        dWx += x[:, t].T @ da  # += : shared by every step
        dWh += prev.T @ da
        db += da.sum(axis=0)
        dnext = da @ Wh.T
    return dx, dnext, dWx, dWh, db


def stacked_forward(x, h0a, h0b, W1x, W1h, b1, W2x, W2h, b2):
    a = layer_forward(x, h0a, W1x, W1h, b1)
    h = layer_forward(a, h0b, W2x, W2h, b2)
    return h, (x, h0a, h0b, W1x, W1h, W2x, W2h, a, h)


def stacked_backward(dh, cache):
    x, h0a, h0b, W1x, W1h, W2x, W2h, a, h = cache
    da, dh0b, dW2x, dW2h, db2 = layer_backward(dh, a, h0b, W2x, W2h, h)
    dx, dh0a, dW1x, dW1h, db1 = layer_backward(
        da, x, h0a, W1x, W1h, a
    )  # layer 2's dx is layer 1's dh
    return dx, dh0a, dh0b, dW1x, dW1h, db1, dW2x, dW2h, db2
