"""The forward of a tanh RNN laid out features × batch × time (columns are sequences).

Written for manual-bptt's generic verify (not copied from anywhere). x (D, N, T),
h0 (H, N), Wx (H, D), Wh (H, H), b (H, 1); h[:, :, t] = tanh(Wx x_t + Wh h_{t−1} + b).
Its backward lives in another file, fbt_backward.py. Check the pair with

    bptt verify examples/generic/fbt_forward.py --forward rnn_forward \
        --backward examples/generic/fbt_backward.py:rnn_backward \
        --shapes "x:D,N,T h0:H,N Wx:H,D Wh:H,H b:H,1"
"""

import numpy as np


def rnn_forward(x, h0, Wx, Wh, b):
    """-> h (H, N, T), cache (x, h0, Wx, Wh, h): plain arrays, so it can cross files."""
    T = x.shape[2]
    states = []
    h = h0
    for t in range(T):
        h = np.tanh(Wx @ x[:, :, t] + Wh @ h + b)
        states.append(h)
    hs = np.stack(states, axis=2)
    return hs, (x, h0, Wx, Wh, hs)
