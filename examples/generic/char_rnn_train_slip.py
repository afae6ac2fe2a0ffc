"""A character-level RNN in a class whose train step is given the vocabulary size.

Written for manual-bptt's generic verify (not copied from anywhere), in the shape of
the class-based min-char-rnn variants: the file reads its text and trains when run,
the class reads ``hidden_size`` and ``vocab_size`` from module globals that the file
sets from its data, and ``train(inputs, targets, vocab_size, hprev)`` takes the size
again as a plain int. Column vectors: one-hot x_t (V, 1),
h_t = tanh(Wxh x_t + Whh h_{t-1} + bh), p_t = softmax(Why h_t + by),
loss = −Σ_t log p_t[targets[t]]. The classic slip here: dbh takes the error before
tanh′, not after. verify needs three things of issue 23 here: the int
argument (``vocab_size:=V``), the globals (``--globals``) and the object (``--object``):

    bptt verify examples/generic/char_rnn_train_slip.py --object "MinCharRNN(25, 0.1)" \
        --loss train --args "inputs:T:list<V targets:T:list<V vocab_size:=V hprev:H,1" \
        --params "Wxh:H,V Whh:H,H Why:V,H bh:H,1 by:V,1" \
        --globals "vocab_size=V hidden_size=H"
"""

import numpy as np

data = open("input.txt").read()
chars = sorted(set(data))
vocab_size = len(chars)
hidden_size = 100


class MinCharRNN:
    def __init__(self, seq_length, learning_rate):
        self.seq_length, self.learning_rate = seq_length, learning_rate
        self.Wxh = np.random.randn(hidden_size, vocab_size) * 0.01
        self.Whh = np.random.randn(hidden_size, hidden_size) * 0.01
        self.Why = np.random.randn(vocab_size, hidden_size) * 0.01
        self.bh = np.zeros((hidden_size, 1))
        self.by = np.zeros((vocab_size, 1))

    def train(self, inputs, targets, vocab_size, hprev):
        """inputs, targets: T ints in [0, V); vocab_size: V; hprev (H, 1) -> loss, dWxh,
        dWhh, dWhy, dbh, dby, the last state (H, 1)."""
        xs, hs, ps = {}, {-1: np.copy(hprev)}, {}
        loss = 0
        for t in range(len(inputs)):
            xs[t] = np.zeros((vocab_size, 1))
            xs[t][inputs[t]] = 1
            hs[t] = np.tanh(self.Wxh @ xs[t] + self.Whh @ hs[t - 1] + self.bh)
            ys = self.Why @ hs[t] + self.by
            ps[t] = np.exp(ys) / np.sum(np.exp(ys))
            loss += -np.log(ps[t][targets[t], 0])
        dWxh, dWhh, dWhy = np.zeros_like(self.Wxh), np.zeros_like(self.Whh), np.zeros_like(self.Why)
        dbh, dby = np.zeros_like(self.bh), np.zeros_like(self.by)
        dhnext = np.zeros((hidden_size, 1))
        for t in reversed(range(len(inputs))):
            dy = np.copy(ps[t])
            dy[targets[t]] -= 1  # softmax with cross-entropy: p − onehot(target)
            dWhy += dy @ hs[t].T
            dby += dy
            dh = self.Why.T @ dy + dhnext  # h_t feeds the output and the next step
            dhraw = (1 - hs[t] * hs[t]) * dh  # through tanh
            dbh += dh  # SLIP: dh where dhraw (through tanh) belongs
            dWxh += dhraw @ xs[t].T
            dWhh += dhraw @ hs[t - 1].T
            dhnext = self.Whh.T @ dhraw
        return loss, dWxh, dWhh, dWhy, dbh, dby, hs[len(inputs) - 1]

    def update(self, grads):
        for param, dparam in zip((self.Wxh, self.Whh, self.Why, self.bh, self.by), grads):
            param -= self.learning_rate * np.clip(dparam, -5, 5)


if __name__ == "__main__":
    char_to_ix = {ch: i for i, ch in enumerate(chars)}
    model, p, h = MinCharRNN(25, 0.1), 0, np.zeros((hidden_size, 1))
    while p + 26 <= len(data):
        inputs = [char_to_ix[ch] for ch in data[p : p + 25]]
        targets = [char_to_ix[ch] for ch in data[p + 1 : p + 26]]
        loss, *grads, h = model.train(inputs, targets, vocab_size, h)
        model.update(grads)
        p += 25
