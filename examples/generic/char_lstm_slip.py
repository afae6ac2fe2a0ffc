"""A character-level LSTM in min-char-rnn's manner: lossFun(inputs, targets, hprev, cprev).

Written for manual-bptt's generic verify (not copied from anywhere). Column vectors;
the weights are module globals, as in min-char-rnn: Wx (4H, V), Wh (4H, H), b (4H, 1)
for the gates stacked (i, f, o, g), Wy (V, H), by (V, 1). With one-hot x_t,

    a = Wx x_t + Wh h_{t-1} + b;  i, f, o = σ(a_i), σ(a_f), σ(a_o);  g = tanh(a_g)
    c_t = f ⊙ c_{t-1} + i ⊙ g;   h_t = o ⊙ tanh(c_t);   p_t = softmax(Wy h_t + by)

and loss = −Σ_t log p_t[targets[t]]. The classic slip here: h_t = o ⊙ tanh(c_t), but dc
leaves out tanh'(c_t). Check it with

    bptt verify examples/generic/char_lstm_slip.py --loss lossFun \
        --args "inputs:T:list<V targets:T:list<V hprev:H,1 cprev:H,1" \
        --params "Wx:4*H,V Wh:4*H,H b:4*H,1 Wy:V,H by:V,1"
"""

import numpy as np

vocab_size, hidden_size = 5, 8  # replaced by verify's sizes through the globals it sets
Wx = Wh = b = Wy = by = None


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def lossFun(inputs, targets, hprev, cprev):
    """inputs, targets: T ints in [0, V); hprev, cprev (H, 1) -> loss, dWx, dWh, db,
    dWy, dby, the last h and c."""
    H = Wh.shape[1]
    hs, cs, steps, ps = {-1: hprev}, {-1: cprev}, {}, {}
    loss = 0.0
    for t, (k, j) in enumerate(zip(inputs, targets, strict=False)):
        x = np.zeros((Wx.shape[1], 1))
        x[k] = 1.0
        a = Wx @ x + Wh @ hs[t - 1] + b
        i, f, o = sigmoid(a[:H]), sigmoid(a[H : 2 * H]), sigmoid(a[2 * H : 3 * H])
        g = np.tanh(a[3 * H :])
        cs[t] = f * cs[t - 1] + i * g
        hs[t] = o * np.tanh(cs[t])
        y = Wy @ hs[t] + by
        e = np.exp(y - np.max(y.real))
        ps[t] = e / e.sum()
        loss = loss - np.log(ps[t][j, 0])
        steps[t] = (x, i, f, o, g)
    dWx, dWh, db, dWy, dby = (np.zeros_like(W) for W in (Wx, Wh, b, Wy, by))
    dh_next, dc_next = np.zeros_like(hprev), np.zeros_like(cprev)
    for t in reversed(range(len(inputs))):
        x, i, f, o, g = steps[t]
        dy = ps[t].copy()
        dy[targets[t]] -= 1  # softmax with cross-entropy: p − onehot(target)
        dWy += dy @ hs[t].T
        dby += dy
        dh = Wy.T @ dy + dh_next
        tc = np.tanh(cs[t])
        dc = dc_next + dh * o  # SLIP: tanh'(c_t) = 1 − tanh²(c_t) left out
        da = np.concatenate(
            [
                dc * g * i * (1 - i),
                dc * cs[t - 1] * f * (1 - f),
                dh * tc * o * (1 - o),
                dc * i * (1 - g**2),
            ]
        )
        dWx += da @ x.T  # += : every step uses the same weights
        dWh += da @ hs[t - 1].T
        db += da
        dh_next, dc_next = Wh.T @ da, dc * f
    return loss, dWx, dWh, db, dWy, dby, hs[len(inputs) - 1], cs[len(inputs) - 1]
