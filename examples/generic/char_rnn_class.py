"""A character-level RNN kept in a class, with the loss and its gradients in one method.

Written for manual-bptt's generic verify (not copied from anywhere). Column vectors, as
in min-char-rnn: one-hot x_t (V, 1), h_t = tanh(Wxh x_t + Whh h_{t-1} + bh),
p_t = softmax(Why h_t + by), loss = −Σ_t log p_t[targets[t]]. The constructor takes
the sizes and a learning rate (extra arguments verify fills in from --object).

    bptt verify examples/generic/char_rnn_class.py --object "CharRNN(V, H, 0.1)" \
        --loss lossFun --args "inputs:T:list<V targets:T:list<V hprev:H,1" \
        --params "Wxh:H,V Whh:H,H Why:V,H bh:H,1 by:V,1"
"""

import numpy as np


class CharRNN:
    def __init__(self, vocab_size, hidden_size, learning_rate):
        self.vocab_size, self.hidden_size = vocab_size, hidden_size
        self.learning_rate = learning_rate
        rng = np.random.default_rng(0)
        self.Wxh = rng.normal(0, 0.01, (hidden_size, vocab_size))
        self.Whh = rng.normal(0, 0.01, (hidden_size, hidden_size))
        self.Why = rng.normal(0, 0.01, (vocab_size, hidden_size))
        self.bh = np.zeros((hidden_size, 1))
        self.by = np.zeros((vocab_size, 1))

    def lossFun(self, inputs, targets, hprev):
        """inputs, targets: T ints in [0, V); hprev (H, 1) -> loss, dWxh, dWhh, dWhy,
        dbh, dby, the last state (H, 1)."""
        xs, hs, ps = {}, {-1: hprev}, {}
        loss = 0.0
        for t, (i, j) in enumerate(zip(inputs, targets, strict=False)):
            xs[t] = np.eye(self.vocab_size)[:, [i]]
            hs[t] = np.tanh(self.Wxh @ xs[t] + self.Whh @ hs[t - 1] + self.bh)
            y = self.Why @ hs[t] + self.by
            e = np.exp(y - np.max(y.real))
            ps[t] = e / e.sum()
            loss = loss - np.log(ps[t][j, 0])
        dWxh, dWhh, dWhy = (np.zeros_like(W) for W in (self.Wxh, self.Whh, self.Why))
        dbh, dby = np.zeros_like(self.bh), np.zeros_like(self.by)
        dh_next = np.zeros_like(hprev)
        for t in reversed(range(len(inputs))):
            dy = ps[t].copy()
            dy[targets[t]] -= 1  # softmax with cross-entropy: p − onehot(target)
            dWhy += dy @ hs[t].T
            dby += dy
            dh = self.Why.T @ dy + dh_next  # h_t feeds the output and the next step
            da = (1 - hs[t] ** 2) * dh
            dbh += da
            dWxh += da @ xs[t].T
            dWhh += da @ hs[t - 1].T
            dh_next = self.Whh.T @ da
        return loss, dWxh, dWhh, dWhy, dbh, dby, hs[len(inputs) - 1]

    def train_step(self, inputs, targets, hprev):
        loss, *grads, h = self.lossFun(inputs, targets, hprev)
        for W, dW in zip((self.Wxh, self.Whh, self.Why, self.bh, self.by), grads, strict=False):
            W -= self.learning_rate * dW
        return loss, h
