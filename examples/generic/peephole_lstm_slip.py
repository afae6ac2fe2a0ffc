"""A peephole LSTM layer: the gates also look at the cell state (Gers & Schmidhuber, 2000).

Written for manual-bptt's generic verify (not copied from anywhere). Batch-major rows,
gates stacked (i, f, o, g) in a = x_t Wx + h_{t−1} Wh + b (N, 4H), peepholes pi, pf,
po (H,):

    i = σ(a_i + pi ⊙ c_{t−1})   f = σ(a_f + pf ⊙ c_{t−1})   g = tanh(a_g)
    c_t = f ⊙ c_{t−1} + i ⊙ g   o = σ(a_o + po ⊙ c_t)      h_t = o ⊙ tanh(c_t)

with c_0 = 0. The classic slip here: the error carried to c_{t−1} forgets the peepholes.
Check it with

    bptt verify examples/generic/peephole_lstm_slip.py --forward peephole_forward \
        --backward peephole_backward \
        --shapes "x:N,T,D h0:N,H Wx:D,4*H Wh:H,4*H b:4*H pi:H pf:H po:H"
"""

import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def peephole_forward(x, h0, Wx, Wh, b, pi, pf, po):
    """x (N, T, D), h0 (N, H) -> h (N, T, H), cache."""
    H = h0.shape[1]
    h, c = h0, np.zeros_like(h0)
    states, steps = [], []
    for t in range(x.shape[1]):
        a = x[:, t] @ Wx + h @ Wh + b
        i = sigmoid(a[:, :H] + pi * c)
        f = sigmoid(a[:, H : 2 * H] + pf * c)
        g = np.tanh(a[:, 3 * H :])
        c_prev, c = c, f * c + i * g
        o = sigmoid(a[:, 2 * H : 3 * H] + po * c)
        steps.append((x[:, t], h, c_prev, c, i, f, o, g))
        h = o * np.tanh(c)
        states.append(h)
    return np.stack(states, axis=1), (Wx, Wh, pi, pf, po, steps)


def peephole_backward(dh, cache):
    """dh (N, T, H) -> dx, dh0, dWx, dWh, db, dpi, dpf, dpo."""
    Wx, Wh, _pi, _pf, po, steps = cache
    N, T, H = dh.shape
    dWx, dWh = np.zeros_like(Wx), np.zeros_like(Wh)
    db, dpi, dpf, dpo = np.zeros(4 * H), np.zeros(H), np.zeros(H), np.zeros(H)
    dx = np.zeros((N, T, Wx.shape[0]))
    dh_next, dc_next = np.zeros((N, H)), np.zeros((N, H))
    for t in reversed(range(T)):
        xt, h_prev, c_prev, c, i, f, o, g = steps[t]
        dht = dh[:, t] + dh_next
        tc = np.tanh(c)
        dao = dht * tc * o * (1 - o)
        dc = dc_next + dht * o * (1 - tc**2) + dao * po  # o looks at c_t too
        dai = dc * g * i * (1 - i)
        daf = dc * c_prev * f * (1 - f)
        dag = dc * i * (1 - g**2)
        dpi += (dai * c_prev).sum(axis=0)
        dpf += (daf * c_prev).sum(axis=0)
        dpo += (dao * c).sum(axis=0)
        da = np.concatenate([dai, daf, dao, dag], axis=1)
        dWx += xt.T @ da
        dWh += h_prev.T @ da
        db += da.sum(axis=0)
        dx[:, t] = da @ Wx.T
        dh_next = da @ Wh.T
        dc_next = dc * f  # SLIP: c_{t−1} also feeds the i and f peepholes
    return dx, dh_next, dWx, dWh, db, dpi, dpf, dpo
