"""The backward of dlai_forward.py's RNN, in a file of its own (deeplearning.ai's layout).

Written for manual-bptt's generic verify (not copied from anywhere). da (n_a, m, T_x),
the upstream gradient of every state, and the forward's caches -> a dict of gradients
keyed as the course keys them: dx (n_x, m, T_x), da0 (n_a, m), dWax, dWaa, dba. Checked
with the forward taken from the other file:

    bptt verify examples/generic/dlai_backward.py \
        --forward examples/generic/dlai_forward.py:rnn_forward --backward rnn_backward \
        --shapes "x:X,M,T a0:A,M Wax:A,X Waa:A,A ba:A,1"
"""

import numpy as np


def rnn_cell_backward(da_next, cache):
    """One step back: the gradients of its inputs and (this step's share of) the weights."""
    a_next, a_prev, xt, parameters = cache
    dtanh = (1 - a_next**2) * da_next  # through tanh
    return {
        "dxt": np.dot(parameters["Wax"].T, dtanh),
        "da_prev": np.dot(parameters["Waa"].T, dtanh),
        "dWax": np.dot(dtanh, xt.T),
        "dWaa": np.dot(dtanh, a_prev.T),
        "dba": np.sum(dtanh, axis=1, keepdims=True),
    }


def rnn_backward(da, caches):
    caches, x = caches
    a1, a0, x1, parameters = caches[0]
    n_a, m, T_x = da.shape
    dx = np.zeros((x1.shape[0], m, T_x))
    dWax, dWaa = np.zeros_like(parameters["Wax"]), np.zeros_like(parameters["Waa"])
    dba = np.zeros_like(parameters["ba"])
    da_prevt = np.zeros((n_a, m))
    for t in reversed(range(T_x)):
        step = rnn_cell_backward(da[:, :, t] + da_prevt, caches[t])  # a⟨t⟩ feeds y and a⟨t+1⟩
        dx[:, :, t] = step["dxt"]
        da_prevt = step["da_prev"]
        dWax += step["dWax"]  # += : the weights are shared by every step
        dWaa += step["dWaa"]
        dba += step["dba"]
    return {"dx": dx, "da0": da_prevt, "dWax": dWax, "dWaa": dWaa, "dba": dba}
