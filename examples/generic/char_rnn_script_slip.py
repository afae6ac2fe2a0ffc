"""A min-char-rnn-style script whose sizes are module globals set from its data.

Written for manual-bptt's generic verify (not copied from anywhere). Run as a program it
reads input.txt and trains for ever; verify takes only its definitions, so that
``V = vocab_size = len(chars)`` is never run, and lossFun's ``vocab_size`` and
``hidden_size`` would be missing (or 100, the constant). ``--globals`` sets them to the
sizes of each problem. Column vectors: one-hot x_t (V, 1), h_t = tanh(Wxh x_t +
Whh h_{t-1} + bh), p_t = softmax(Why h_t + by), loss = −Σ_t log p_t[targets[t]]; the
gradients are returned unclipped (the training loop clips them, a separate step). The
classic slip here: dby is added up before the target's 1 is taken off dy.

    bptt verify examples/generic/char_rnn_script_slip.py --loss lossFun \
        --args "inputs:T:list<V targets:T:list<V hprev:H,1" \
        --params "Wxh:H,V Whh:H,H Why:V,H bh:H,1 by:V,1" \
        --globals "vocab_size=V hidden_size=H"
"""

import numpy as np

data = open("input.txt").read()
chars = sorted(set(data))
V = vocab_size = len(chars)
char_to_ix = {ch: i for i, ch in enumerate(chars)}

hidden_size = 100
seq_length = 25
learning_rate = 1e-1

Wxh = np.random.randn(hidden_size, vocab_size) * 0.01
Whh = np.random.randn(hidden_size, hidden_size) * 0.01
Why = np.random.randn(vocab_size, hidden_size) * 0.01
bh = np.zeros((hidden_size, 1))
by = np.zeros((vocab_size, 1))


def lossFun(inputs, targets, hprev):
    """inputs, targets: T ints in [0, V); hprev (H, 1) -> loss, dWxh, dWhh, dWhy, dbh,
    dby, the last state (H, 1)."""
    xs, hs, ps = {}, {-1: np.copy(hprev)}, {}
    loss = 0
    for t in range(len(inputs)):
        xs[t] = np.zeros((vocab_size, 1))
        xs[t][inputs[t]] = 1
        hs[t] = np.tanh(Wxh @ xs[t] + Whh @ hs[t - 1] + bh)
        ys = Why @ hs[t] + by
        ps[t] = np.exp(ys) / np.sum(np.exp(ys))
        loss += -np.log(ps[t][targets[t], 0])
    dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    dbh, dby = np.zeros_like(bh), np.zeros_like(by)
    dhnext = np.zeros((hidden_size, 1))
    for t in reversed(range(len(inputs))):
        dy = np.copy(ps[t])
        dby += dy  # SLIP: added before the target's 1 is taken off dy
        dy[targets[t]] -= 1  # softmax with cross-entropy: p − onehot(target)
        dWhy += dy @ hs[t].T
        dh = Why.T @ dy + dhnext  # h_t feeds the output and the next step
        dhraw = (1 - hs[t] * hs[t]) * dh  # through tanh
        dbh += dhraw
        dWxh += dhraw @ xs[t].T
        dWhh += dhraw @ hs[t - 1].T
        dhnext = Whh.T @ dhraw
    return loss, dWxh, dWhh, dWhy, dbh, dby, hs[len(inputs) - 1]


p, hprev = 0, np.zeros((hidden_size, 1))
while True:
    if p + seq_length + 1 >= len(data):
        p, hprev = 0, np.zeros((hidden_size, 1))
    inputs = [char_to_ix[ch] for ch in data[p : p + seq_length]]
    targets = [char_to_ix[ch] for ch in data[p + 1 : p + seq_length + 1]]
    loss, dWxh, dWhh, dWhy, dbh, dby, hprev = lossFun(inputs, targets, hprev)
    for param, dparam in zip((Wxh, Whh, Why, bh, by), (dWxh, dWhh, dWhy, dbh, dby)):
        param -= learning_rate * np.clip(dparam, -5, 5)
    p += seq_length
