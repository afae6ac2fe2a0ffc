"""An LSTM layer with one weight matrix per gate, each acting on the concatenation [x; h].

Written for manual-bptt's generic verify (not copied from anywhere). Batch-major rows:
z_t = [x_t, h_{t-1}] (N, D+H), and for each gate a matrix W (D+H, H) and a bias b (H,):

    f = σ(z Wf + bf)   i = σ(z Wi + bi)   o = σ(z Wo + bo)   g = tanh(z Wg + bg)
    c_t = f ⊙ c_{t-1} + i ⊙ g           h_t = o ⊙ tanh(c_t)          (c_0 = 0)

Check it with

    bptt verify examples/generic/lstm_gates.py --forward lstm_forward \
        --backward lstm_backward \
        --shapes "x:N,T,D h0:N,H Wf:D+H,H Wi:D+H,H Wo:D+H,H Wg:D+H,H bf:H bi:H bo:H bg:H"
"""

import numpy as np

GATES = ("f", "i", "o", "g")


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def lstm_forward(x, h0, Wf, Wi, Wo, Wg, bf, bi, bo, bg):
    """x (N, T, D), h0 (N, H), W* (D+H, H), b* (H,) -> h (N, T, H), cache."""
    _N, T, D = x.shape
    W = {"f": Wf, "i": Wi, "o": Wo, "g": Wg}
    b = {"f": bf, "i": bi, "o": bo, "g": bg}
    h, c = h0, np.zeros_like(h0)
    hs, steps = [], []
    for t in range(T):
        z = np.concatenate([x[:, t], h], axis=1)
        gate = {k: z @ W[k] + b[k] for k in GATES}
        f, i, o = (sigmoid(gate[k]) for k in "fio")
        g = np.tanh(gate["g"])
        c_prev, c = c, f * c + i * g
        h = o * np.tanh(c)
        hs.append(h)
        steps.append((z, f, i, o, g, c_prev, c))
    return np.stack(hs, axis=1), (W, D, steps)


def lstm_backward(dh, cache):
    """dh (N, T, H) -> dict of dx (N, T, D), dh0 (N, H), dW* (D+H, H), db* (H,)."""
    W, D, steps = cache
    N, T, H = dh.shape
    dW = {k: np.zeros_like(W[k]) for k in GATES}
    db = {k: np.zeros(H, dtype=dh.dtype) for k in GATES}
    dx = np.zeros((N, T, D), dtype=dh.dtype)
    dh_next, dc_next = np.zeros((N, H)), np.zeros((N, H))
    for t in reversed(range(T)):
        z, f, i, o, g, c_prev, c = steps[t]
        dh_t = dh[:, t] + dh_next
        tc = np.tanh(c)
        dc = dc_next + dh_t * o * (1 - tc**2)  # c_t reaches the loss through h_t and c_{t+1}
        da = {
            "f": dc * c_prev * f * (1 - f),
            "i": dc * g * i * (1 - i),
            "o": dh_t * tc * o * (1 - o),
            "g": dc * i * (1 - g**2),
        }
        dz = sum(da[k] @ W[k].T for k in GATES)
        for k in GATES:
            dW[k] += z.T @ da[k]  # += : every step uses the same weights
            db[k] += da[k].sum(axis=0)
        dx[:, t] = dz[:, :D]
        dh_next, dc_next = dz[:, D:], dc * f
    grads = {"x": dx, "h0": dh_next}
    grads.update({f"W{k}": dW[k] for k in GATES})
    grads.update({f"b{k}": db[k] for k in GATES})
    return grads
