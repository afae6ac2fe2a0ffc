"""The backward of fbt_forward.py's RNN (features × batch × time), in a file of its own.

dh (H, N, T), the upstream gradient of every state, and the forward's cache ->
dx (D, N, T), dh0 (H, N), dWx (H, D), dWh (H, H), db (H, 1). The classic slip here:
the error reaching h_t from h_{t+1} is dropped (a one-step truncation by mistake).
"""

import numpy as np


def rnn_backward(dh, cache):
    x, h0, Wx, Wh, hs = cache
    T = x.shape[2]
    dx = np.zeros_like(x)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros((Wh.shape[0], 1))
    dnext = np.zeros_like(h0)
    for t in reversed(range(T)):
        prev = hs[:, :, t - 1] if t > 0 else h0
        da = dh[:, :, t] * (1 - hs[:, :, t] ** 2)  # SLIP: h_t also feeds h_{t+1} (dnext)
        dx[:, :, t] = Wx.T @ da
        dWx += da @ x[:, :, t].T  # += : shared by every step
        dWh += da @ prev.T
        db += da.sum(axis=1, keepdims=True)  # and by every sequence of the batch
        dnext = Wh.T @ da
    return dx, dnext, dWx, dWh, db
