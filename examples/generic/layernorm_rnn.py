"""A layer-normalised tanh RNN (Ba, Kiros & Hinton, 2016): the pre-activation is normalised
over the hidden units at every step, then scaled and shifted.

Written for manual-bptt's generic verify (not copied from anywhere). Batch-major rows:

    a_t = x_t Wx + h_{t−1} Wh + b,   n_t = (a_t − mean(a_t)) / √(var(a_t) + ε)
    h_t = tanh(γ ⊙ n_t + β)                                 (mean, var over the H units)

Check it with

    bptt verify examples/generic/layernorm_rnn.py --forward ln_rnn_forward \
        --backward ln_rnn_backward --shapes "x:N,T,D h0:N,H Wx:D,H Wh:H,H b:H gamma:H beta:H"

(db sums to 0 over the units: normalising removes any shift common to them all.)
"""

import numpy as np

EPS = 1e-5


def ln_rnn_forward(x, h0, Wx, Wh, b, gamma, beta):
    """x (N, T, D), h0 (N, H) -> h (N, T, H), cache."""
    h, states, steps = h0, [], []
    for t in range(x.shape[1]):
        a = x[:, t] @ Wx + h @ Wh + b
        centred = a - a.mean(axis=1, keepdims=True)
        sd = np.sqrt((centred**2).mean(axis=1, keepdims=True) + EPS)
        n = centred / sd
        steps.append((x[:, t], h, n, sd))
        h = np.tanh(gamma * n + beta)
        states.append(h)
    hs = np.stack(states, axis=1)
    return hs, (Wx, Wh, gamma, hs, steps)


def ln_rnn_backward(dh, cache):
    """dh (N, T, H) -> dx, dh0, dWx, dWh, db, dgamma, dbeta."""
    Wx, Wh, gamma, hs, steps = cache
    N, T, H = dh.shape
    dx = np.zeros((N, T, Wx.shape[0]))
    dWx, dWh = np.zeros_like(Wx), np.zeros_like(Wh)
    db, dgamma, dbeta = np.zeros(H), np.zeros(H), np.zeros(H)
    dnext = np.zeros((N, H))
    for t in reversed(range(T)):
        xt, h_prev, n, sd = steps[t]
        dz = (dh[:, t] + dnext) * (1 - hs[:, t] ** 2)
        dgamma += (dz * n).sum(axis=0)
        dbeta += dz.sum(axis=0)
        dn = dz * gamma
        # through n = centred / sd: the mean and the standard deviation depend on a too
        da = (dn - dn.mean(axis=1, keepdims=True) - n * (dn * n).mean(axis=1, keepdims=True)) / sd
        dWx += xt.T @ da
        dWh += h_prev.T @ da
        db += da.sum(axis=0)
        dx[:, t] = da @ Wx.T
        dnext = da @ Wh.T
    return dx, dnext, dWx, dWh, db, dgamma, dbeta
