"""min-char-rnn-style slips (``--style min-char-rnn``), each a ``lossFun`` of its own.

:func:`lossFun` is CORRECT, in the shape of Karpathy's min-char-rnn.py: it reads its
weights from this module's globals (verify sets them before each call), biases are
columns, the gradients are clipped to [−5, 5]. Each slip changes one line, said in its
docstring, and ``bptt verify`` names exactly what it breaks:

    bptt verify manual_bptt.checking.gallery_min_char_rnn:tanh_derivative_at_wrong_step \
        --style min-char-rnn
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

# Set by verify before each call (min-char-rnn.py draws them at random at import).
Wxh: Any = None  # (H, V)
Whh: Any = None  # (H, H)
Why: Any = None  # (V, H)
bh: Any = None  # (H, 1)
by: Any = None  # (V, 1)
vocab_size = hidden_size = 0

CLIP = 5.0

Steps = dict[int, NDArray[np.float64]]  # t → a column vector, as min-char-rnn keeps them


def _forward(
    inputs: list[int], targets: list[int], hprev: Any
) -> tuple[Steps, Steps, Steps, float]:
    """One-hot xs, states hs (hs[-1] = hprev), softmax ps, and the summed loss."""
    xs, hs, ps = {}, {-1: np.copy(hprev)}, {}
    loss = 0.0
    for t in range(len(inputs)):
        xs[t] = np.zeros((vocab_size, 1))
        xs[t][inputs[t]] = 1
        hs[t] = np.tanh(Wxh @ xs[t] + Whh @ hs[t - 1] + bh)
        scores = Why @ hs[t] + by
        ps[t] = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
        loss += -np.log(ps[t][targets[t], 0])
    return xs, hs, ps, loss


def _clipped(*grads: Any) -> list[Any]:
    return [np.clip(g, -CLIP, CLIP) for g in grads]


def lossFun(inputs: list[int], targets: list[int], hprev: Any) -> tuple[Any, ...]:
    """CORRECT: loss, dWxh, dWhh, dWhy, dbh, dby (clipped), and the last state."""
    xs, hs, ps, loss = _forward(inputs, targets, hprev)
    dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    dbh, dby, dhnext = np.zeros_like(bh), np.zeros_like(by), np.zeros_like(hs[0])
    for t in reversed(range(len(inputs))):
        dy = np.copy(ps[t])
        dy[targets[t]] -= 1
        dWhy += dy @ hs[t].T
        dby += dy
        dh = Why.T @ dy + dhnext
        dhraw = (1 - hs[t] ** 2) * dh
        dbh += dhraw
        dWxh += dhraw @ xs[t].T
        dWhh += dhraw @ hs[t - 1].T
        dhnext = Whh.T @ dhraw
    return (loss, *_clipped(dWxh, dWhh, dWhy, dbh, dby), hs[len(inputs) - 1])


def tanh_derivative_at_wrong_step(
    inputs: list[int], targets: list[int], hprev: Any
) -> tuple[Any, ...]:
    """WRONG: tanh' taken at the previous state, 1 − h_{t−1}², not at h_t."""
    xs, hs, ps, loss = _forward(inputs, targets, hprev)
    dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    dbh, dby, dhnext = np.zeros_like(bh), np.zeros_like(by), np.zeros_like(hs[0])
    for t in reversed(range(len(inputs))):
        dy = np.copy(ps[t])
        dy[targets[t]] -= 1
        dWhy += dy @ hs[t].T
        dby += dy
        dh = Why.T @ dy + dhnext
        dhraw = (1 - hs[t - 1] ** 2) * dh  # slip: hs[t]
        dbh += dhraw
        dWxh += dhraw @ xs[t].T
        dWhh += dhraw @ hs[t - 1].T
        dhnext = Whh.T @ dhraw
    return (loss, *_clipped(dWxh, dWhh, dWhy, dbh, dby), hs[len(inputs) - 1])


def dhnext_not_carried(inputs: list[int], targets: list[int], hprev: Any) -> tuple[Any, ...]:
    """WRONG: dh takes only the output's gradient; the one carried back from step t+1
    (dhnext) is computed but never added."""
    xs, hs, ps, loss = _forward(inputs, targets, hprev)
    dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    dbh, dby, dhnext = np.zeros_like(bh), np.zeros_like(by), np.zeros_like(hs[0])
    for t in reversed(range(len(inputs))):
        dy = np.copy(ps[t])
        dy[targets[t]] -= 1
        dWhy += dy @ hs[t].T
        dby += dy
        dh = Why.T @ dy  # slip: + dhnext
        dhraw = (1 - hs[t] ** 2) * dh
        dbh += dhraw
        dWxh += dhraw @ xs[t].T
        dWhh += dhraw @ hs[t - 1].T
        dhnext = Whh.T @ dhraw  # noqa: F841 (computed, then never used: the slip)
    return (loss, *_clipped(dWxh, dWhh, dWhy, dbh, dby), hs[len(inputs) - 1])


def bias_gradient_before_tanh(inputs: list[int], targets: list[int], hprev: Any) -> tuple[Any, ...]:
    """WRONG: dbh accumulates dh, the gradient at h_t, where bh enters before tanh and
    needs dhraw = (1 − h_t²) ⊙ dh."""
    xs, hs, ps, loss = _forward(inputs, targets, hprev)
    dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    dbh, dby, dhnext = np.zeros_like(bh), np.zeros_like(by), np.zeros_like(hs[0])
    for t in reversed(range(len(inputs))):
        dy = np.copy(ps[t])
        dy[targets[t]] -= 1
        dWhy += dy @ hs[t].T
        dby += dy
        dh = Why.T @ dy + dhnext
        dhraw = (1 - hs[t] ** 2) * dh
        dbh += dh  # slip: dhraw
        dWxh += dhraw @ xs[t].T
        dWhh += dhraw @ hs[t - 1].T
        dhnext = Whh.T @ dhraw
    return (loss, *_clipped(dWxh, dWhh, dWhy, dbh, dby), hs[len(inputs) - 1])


def loss_not_summed(inputs: list[int], targets: list[int], hprev: Any) -> tuple[Any, ...]:
    """WRONG: the loss is the last step's alone (``loss = …`` where ``loss += …`` was
    meant); the gradients are right, so only the returned loss is wrong."""
    _, hs, ps, _ = _forward(inputs, targets, hprev)
    T = len(inputs)
    loss = -np.log(ps[T - 1][targets[T - 1], 0])  # slip: Σ_t over every step
    grads = lossFun(inputs, targets, hprev)[1:6]
    return (loss, *grads, hs[T - 1])


MIN_CHAR_RNN_SLIPS = (
    tanh_derivative_at_wrong_step,
    dhnext_not_carried,
    bias_gradient_before_tanh,
    loss_not_summed,
)
