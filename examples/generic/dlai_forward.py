"""The forward of a tanh RNN in deeplearning.ai's layout: one file per direction.

Written for manual-bptt's generic verify (not copied from anywhere). Features × batch ×
time: x (n_x, m, T_x), a0 (n_a, m), Wax (n_a, n_x), Waa (n_a, n_a), ba (n_a, 1);
a⟨t⟩ = tanh(Wax x⟨t⟩ + Waa a⟨t−1⟩ + ba). The states are written into a buffer of
zeros, as the course's code does (so verify falls back from the complex step to central
differences). The backward is in dlai_backward.py, which is the file verified, with the
forward taken from here:

    bptt verify examples/generic/dlai_backward.py \
        --forward examples/generic/dlai_forward.py:rnn_forward --backward rnn_backward \
        --shapes "x:X,M,T a0:A,M Wax:A,X Waa:A,A ba:A,1"
"""

import numpy as np


def rnn_cell_forward(xt, a_prev, parameters):
    """xt (n_x, m), a_prev (n_a, m) -> a_next (n_a, m), cache (a_next, a_prev, xt, parameters)."""
    Wax, Waa, ba = parameters["Wax"], parameters["Waa"], parameters["ba"]
    a_next = np.tanh(np.dot(Wax, xt) + np.dot(Waa, a_prev) + ba)
    return a_next, (a_next, a_prev, xt, parameters)


def rnn_forward(x, a0, Wax, Waa, ba):
    """-> a (n_a, m, T_x), caches (a list of every step's cache, x): plain values, so that
    they can reach the backward in its own file."""
    parameters = {"Wax": Wax, "Waa": Waa, "ba": ba}
    n_a, m, T_x = a0.shape[0], x.shape[1], x.shape[2]
    a = np.zeros((n_a, m, T_x))
    a_next, caches = a0, []
    for t in range(T_x):
        a_next, cache = rnn_cell_forward(x[:, :, t], a_next, parameters)
        a[:, :, t] = a_next
        caches.append(cache)
    return a, (caches, x)
