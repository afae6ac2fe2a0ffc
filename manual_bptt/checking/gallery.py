"""A gallery of classic BPTT derivation slips, each written out in full, for teaching.

Every class or function here except :class:`TutorialRNN` is deliberately WRONG, by one
small, realistic slip said in its docstring. ``bptt verify`` catches each of them and
shrinks it to a small counterexample (tests/test_gallery.py proves it):

    bptt verify manual_bptt.checking.gallery:ForgetsTanhDerivative --style tutorial

The tutorial-style classes share the classic tutorial's interface (see
manual_bptt/checking/verify.py): ``Cls(word_dim, hidden_dim, bptt_truncate)``, U (H, D),
V (D, H), W (H, H), ``bptt(x, y) -> [dU, dV, dW]`` for one sequence of token ids.
The project-style functions have manual_bptt.bptt's signature.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from manual_bptt.backward import grad_U
from manual_bptt.crossentropy import loss_and_dlogits
from manual_bptt.inputs import Batch, prepare
from manual_bptt.network import Cache, rows_matmul, run_forward
from manual_bptt.params import Params
from manual_bptt.result import BPTTResult
from manual_bptt.truncation import deltas


class TutorialRNN:
    """A CORRECT tutorial-style RNN: the reference the slips below depart from.

    s_t = tanh(U[:, x_t] + W s_{t−1}), o_t = softmax(V s_t), with s_{−1} = 0 stored as
    the extra last row s[T], so that s[t − 1] is s_{−1} when t = 0.
    """

    def __init__(self, word_dim: int, hidden_dim: int = 100, bptt_truncate: int = 4) -> None:
        rng = np.random.default_rng(0)
        D, H = word_dim, hidden_dim
        self.U = rng.uniform(-1, 1, (H, D)) / np.sqrt(D)
        self.V = rng.uniform(-1, 1, (D, H)) / np.sqrt(H)
        self.W = rng.uniform(-1, 1, (H, H)) / np.sqrt(H)
        self.bptt_truncate = bptt_truncate

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x (T,) token ids → ŷ (T, D) and states s (T + 1, H), s[T] = s_{−1} = 0."""
        T = len(x)
        s = np.zeros((T + 1, self.W.shape[0]))
        y_hat = np.zeros((T, self.V.shape[0]))
        for t in range(T):
            s[t] = np.tanh(self.U[:, x[t]] + self.W @ s[t - 1])
            o = self.V @ s[t]
            e = np.exp(o - o.max())
            y_hat[t] = e / e.sum()
        return y_hat, s

    def bptt(self, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        T = len(y)
        y_hat, s = self.forward(x)
        dU, dV, dW = np.zeros_like(self.U), np.zeros_like(self.V), np.zeros_like(self.W)
        delta_o = y_hat.copy()
        delta_o[np.arange(T), y] -= 1.0  # (6) ŷ_t − onehot(y_t)
        for t in range(T - 1, -1, -1):
            dV += np.outer(delta_o[t], s[t])
            delta = (self.V.T @ delta_o[t]) * (1 - s[t] ** 2)
            for step in range(t, max(0, t - self.bptt_truncate) - 1, -1):
                dW += np.outer(delta, s[step - 1])
                dU[:, x[step]] += delta
                delta = (self.W.T @ delta) * (1 - s[step - 1] ** 2)
        return [dU, dV, dW]


class ForgetsTanhDerivative(TutorialRNN):
    """WRONG: the recurrence carries Wᵀδ back without the factor φ'(a) = 1 − s²."""

    def bptt(self, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        T = len(y)
        y_hat, s = self.forward(x)
        dU, dV, dW = np.zeros_like(self.U), np.zeros_like(self.V), np.zeros_like(self.W)
        delta_o = y_hat.copy()
        delta_o[np.arange(T), y] -= 1.0
        for t in range(T - 1, -1, -1):
            dV += np.outer(delta_o[t], s[t])
            delta = (self.V.T @ delta_o[t]) * (1 - s[t] ** 2)
            for step in range(t, max(0, t - self.bptt_truncate) - 1, -1):
                dW += np.outer(delta, s[step - 1])
                dU[:, x[step]] += delta
                delta = self.W.T @ delta  # slip: "* (1 - s[step - 1] ** 2)" is missing
        return [dU, dV, dW]


class CurrentStateInDW(TutorialRNN):
    """WRONG: dW pairs δ_t with h_t, where (11) needs the previous state h_{t−1}."""

    def bptt(self, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        T = len(y)
        y_hat, s = self.forward(x)
        dU, dV, dW = np.zeros_like(self.U), np.zeros_like(self.V), np.zeros_like(self.W)
        delta_o = y_hat.copy()
        delta_o[np.arange(T), y] -= 1.0
        for t in range(T - 1, -1, -1):
            dV += np.outer(delta_o[t], s[t])
            delta = (self.V.T @ delta_o[t]) * (1 - s[t] ** 2)
            for step in range(t, max(0, t - self.bptt_truncate) - 1, -1):
                dW += np.outer(delta, s[step])  # slip: s[step] is h_t; h_{t−1} is s[step - 1]
                dU[:, x[step]] += delta
                delta = (self.W.T @ delta) * (1 - s[step - 1] ** 2)
        return [dU, dV, dW]


class WindowOffByOne(TutorialRNN):
    """WRONG: the window stops one step short: k steps back instead of t … t − k."""

    def bptt(self, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        T = len(y)
        y_hat, s = self.forward(x)
        dU, dV, dW = np.zeros_like(self.U), np.zeros_like(self.V), np.zeros_like(self.W)
        delta_o = y_hat.copy()
        delta_o[np.arange(T), y] -= 1.0
        for t in range(T - 1, -1, -1):
            dV += np.outer(delta_o[t], s[t])
            delta = (self.V.T @ delta_o[t]) * (1 - s[t] ** 2)
            for step in range(t, max(0, t - self.bptt_truncate + 1) - 1, -1):  # slip: + 1
                dW += np.outer(delta, s[step - 1])
                dU[:, x[step]] += delta
                delta = (self.W.T @ delta) * (1 - s[step - 1] ** 2)
        return [dU, dV, dW]


class DropsRecurrentTerm(TutorialRNN):
    """WRONG: going back a step multiplies by φ' but drops Wᵀ, the recurrent term."""

    def bptt(self, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        T = len(y)
        y_hat, s = self.forward(x)
        dU, dV, dW = np.zeros_like(self.U), np.zeros_like(self.V), np.zeros_like(self.W)
        delta_o = y_hat.copy()
        delta_o[np.arange(T), y] -= 1.0
        for t in range(T - 1, -1, -1):
            dV += np.outer(delta_o[t], s[t])
            delta = (self.V.T @ delta_o[t]) * (1 - s[t] ** 2)
            for step in range(t, max(0, t - self.bptt_truncate) - 1, -1):
                dW += np.outer(delta, s[step - 1])
                dU[:, x[step]] += delta
                delta = delta * (1 - s[step - 1] ** 2)  # slip: self.W.T @ delta is gone
        return [dU, dV, dW]


class OnlyLastLoss(TutorialRNN):
    """WRONG: only the last step's loss is backpropagated, as if L were E_{T−1} alone."""

    def bptt(self, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        T = len(y)
        y_hat, s = self.forward(x)
        dU, dV, dW = np.zeros_like(self.U), np.zeros_like(self.V), np.zeros_like(self.W)
        delta_o = y_hat.copy()
        delta_o[np.arange(T), y] -= 1.0
        for t in [T - 1]:  # slip: L = Σ_t E_t needs every t, not the last one only
            dV += np.outer(delta_o[t], s[t])
            delta = (self.V.T @ delta_o[t]) * (1 - s[t] ** 2)
            for step in range(t, max(0, t - self.bptt_truncate) - 1, -1):
                dW += np.outer(delta, s[step - 1])
                dU[:, x[step]] += delta
                delta = (self.W.T @ delta) * (1 - s[step - 1] ** 2)
        return [dU, dV, dW]


class SoftmaxWithoutMinusOne(TutorialRNN):
    """WRONG: ∂L/∂o_t taken as ŷ_t, forgetting the − onehot(y_t) of (6)."""

    def bptt(self, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        T = len(y)
        y_hat, s = self.forward(x)
        dU, dV, dW = np.zeros_like(self.U), np.zeros_like(self.V), np.zeros_like(self.W)
        delta_o = y_hat.copy()  # slip: delta_o[np.arange(T), y] -= 1 is missing
        for t in range(T - 1, -1, -1):
            dV += np.outer(delta_o[t], s[t])
            delta = (self.V.T @ delta_o[t]) * (1 - s[t] ** 2)
            for step in range(t, max(0, t - self.bptt_truncate) - 1, -1):
                dW += np.outer(delta, s[step - 1])
                dU[:, x[step]] += delta
                delta = (self.W.T @ delta) * (1 - s[step - 1] ** 2)
        return [dU, dV, dW]


class WInsteadOfWTranspose(TutorialRNN):
    """WRONG: δ is carried back with W instead of Wᵀ (invisible while W is symmetric)."""

    def bptt(self, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        T = len(y)
        y_hat, s = self.forward(x)
        dU, dV, dW = np.zeros_like(self.U), np.zeros_like(self.V), np.zeros_like(self.W)
        delta_o = y_hat.copy()
        delta_o[np.arange(T), y] -= 1.0
        for t in range(T - 1, -1, -1):
            dV += np.outer(delta_o[t], s[t])
            delta = (self.V.T @ delta_o[t]) * (1 - s[t] ** 2)
            for step in range(t, max(0, t - self.bptt_truncate) - 1, -1):
                dW += np.outer(delta, s[step - 1])
                dU[:, x[step]] += delta
                delta = (self.W @ delta) * (1 - s[step - 1] ** 2)  # slip: self.W.T
        return [dU, dV, dW]


class AliasesTheOutput(TutorialRNN):
    """WRONG: a gradient buffer that is the caller's array. The tutorial's
    ``delta_o = o; delta_o[y] -= 1`` invites it; here ``dV = self.V`` then filled in:
    the returned dV is right, but the model's own V, set by the caller, is overwritten."""

    def bptt(self, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        T = len(y)
        y_hat, s = self.forward(x)
        dU, dW = np.zeros_like(self.U), np.zeros_like(self.W)
        V = self.V.copy()  # the backward below still reads the true V
        dV = self.V  # slip: an alias, not np.zeros_like(self.V)
        dV[...] = 0.0
        delta_o = y_hat.copy()
        delta_o[np.arange(T), y] -= 1.0
        for t in range(T - 1, -1, -1):
            dV += np.outer(delta_o[t], s[t])
            delta = (V.T @ delta_o[t]) * (1 - s[t] ** 2)
            for step in range(t, max(0, t - self.bptt_truncate) - 1, -1):
                dW += np.outer(delta, s[step - 1])
                dU[:, x[step]] += delta
                delta = (self.W.T @ delta) * (1 - s[step - 1] ** 2)
        return [dU, dV, dW]


TUTORIAL_SLIPS = (
    ForgetsTanhDerivative,
    CurrentStateInDW,
    WindowOffByOne,
    DropsRecurrentTerm,
    OnlyLastLoss,
    SoftmaxWithoutMinusOne,
    WInsteadOfWTranspose,
    AliasesTheOutput,
)


# Project-style slips: the project's own forward, loss and δ recurrence, then a
# hand-written last step with one slip in it.


def _forward_and_deltas(
    params: Params, x: Any, y: Any, kwargs: dict[str, Any]
) -> tuple[Batch, Cache, np.ndarray, float, np.ndarray]:
    batch = prepare(params, x, y, **kwargs)
    cache = run_forward(params, batch.x, batch.h0, batch.tokens, batch.activation)
    loss, dO = loss_and_dlogits(cache.o, batch.y, batch.mask, batch.loss_scale)
    delta = deltas(rows_matmul(dO, params.V), cache.dphi, params.W, batch.truncate, batch.chunk)
    return batch, cache, dO, loss, delta


def bias_averaged_over_batch(params: Params, x: Any, y: Any, **kwargs: Any) -> BPTTResult:
    """WRONG: ∂L/∂c averaged over the batch instead of summed: c is shared by every
    sequence, so its gradient is a sum (9); right only when N = 1."""
    batch, cache, dO, loss, delta = _forward_and_deltas(params, x, y, kwargs)
    grads = {
        "U": grad_U(batch, delta, params.D),
        "W": delta.reshape(-1, params.H).T @ cache.h_prev.reshape(-1, params.H),
        "V": dO.reshape(-1, params.K).T @ cache.h.reshape(-1, params.H),
        "b": delta.sum(axis=(0, 1)),
        "c": dO.sum(axis=0).mean(axis=0),  # slip: .sum(axis=0) over the batch
        "h0": delta[0] @ params.W,
    }
    if not batch.tokens:
        grads["x"] = delta @ params.U
    return BPTTResult.from_batched(batch, loss, grads)


def h0_gradient_without_W(params: Params, x: Any, y: Any, **kwargs: Any) -> BPTTResult:
    """WRONG: ∂L/∂h0 taken as δ_0, the gradient at a_0, forgetting that h0 enters a_0
    through W: (12) says Wᵀ δ_0."""
    batch, cache, dO, loss, delta = _forward_and_deltas(params, x, y, kwargs)
    grads = {
        "U": grad_U(batch, delta, params.D),
        "W": delta.reshape(-1, params.H).T @ cache.h_prev.reshape(-1, params.H),
        "V": dO.reshape(-1, params.K).T @ cache.h.reshape(-1, params.H),
        "b": delta.sum(axis=(0, 1)),
        "c": dO.sum(axis=(0, 1)),
        "h0": delta[0].copy(),  # slip: delta[0] @ params.W
    }
    if not batch.tokens:
        grads["x"] = delta @ params.U
    return BPTTResult.from_batched(batch, loss, grads)


PROJECT_SLIPS = (bias_averaged_over_batch, h0_gradient_without_W)
