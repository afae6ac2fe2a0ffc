"""A gallery of classic BPTT derivation slips, each written out in full, for teaching.

Every class or function here except :class:`TutorialRNN` is deliberately WRONG, by one
small, realistic slip said in its docstring. ``bptt verify`` catches each of them and
shrinks it to a small counterexample (tests/test_gallery.py proves it):

    bptt verify manual_bptt.checking.gallery:ForgetsTanhDerivative --style tutorial

The tutorial-style classes share the classic tutorial's interface (see
manual_bptt/checking/verify.py): ``Cls(word_dim, hidden_dim, bptt_truncate)``, U (H, D),
V (D, H), W (H, H), ``bptt(x, y) -> [dU, dV, dW]`` for one sequence of token ids.
The project-style functions have manual_bptt.bptt's signature; the gated-cell slips
(GATED_SLIPS, at the end) too, for LSTMParams or GRUParams.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from manual_bptt.backward import gated_backward, grad_U
from manual_bptt.crossentropy import loss_and_dlogits
from manual_bptt.inputs import Batch, prepare
from manual_bptt.linear import rows_matmul
from manual_bptt.network import Cache, run_batch, run_forward
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


# Gated-cell slips: the project's forward pass, truncation and parameter sums
# (backward.gated_backward), with a hand-written backward step that has one slip in
# it. Each step is written out in full, beside the correct one in lstm.py or gru.py;
# the slipped line is marked. Checked with the strategies' gated cases:
#     verify(fn, style="project", strategy=cases(cell="lstm"))


def _gated_with(
    step: Callable[..., Any] | None, params: Any, x: Any, y: Any, kwargs: dict[str, Any]
) -> BPTTResult:
    """bptt for a gated cell with ``step`` in place of the cell's backward step (None:
    the cell's own, which makes this manual_bptt.bptt again)."""
    batch = prepare(params, x, y, **kwargs)
    cache = run_batch(params, batch)
    assert not isinstance(cache, Cache), "the gated slips take LSTMParams or GRUParams"
    loss, dO = loss_and_dlogits(cache.o, batch.y, batch.mask, batch.loss_scale)
    return BPTTResult.from_batched(batch, loss, gated_backward(params, batch, cache, dO, step))


def _lstm_gates(params: Any, cache: Any, lo: int, hi: int) -> tuple[np.ndarray, ...]:
    H = params.H
    gates = cache.gates[lo:hi]
    return tuple(gates[..., k * H : (k + 1) * H] for k in range(4))  # i, f, g, q


def _lstm_step_without_cell_carry(params, cache, lo, hi, d_state):  # type: ignore[no-untyped-def]
    eh, es_carried = d_state
    i, f, g, q = _lstm_gates(params, cache, lo, hi)
    tanh_s = cache.tanh_s[lo:hi]
    es = es_carried + eh * q * (1 - tanh_s**2)  # (18)
    delta = np.concatenate(
        [
            es * g * i * (1 - i),
            es * cache.s_prev[lo:hi] * f * (1 - f),
            es * i * (1 - g**2),
            eh * tanh_s * q * (1 - q),
        ],
        axis=-1,
    )
    es_prev = np.zeros_like(es)  # SLIP: (18) carries ε^s_t ⊙ f_t into s_{t−1}
    return delta, delta, (rows_matmul(delta, params.W), es_prev)


def lstm_drops_the_cell_state_carry(params: Any, x: Any, y: Any, **kwargs: Any) -> BPTTResult:
    """WRONG (LSTM): the gradient reaching s_{t−1} is taken as 0, dropping the carry
    f_t ⊙ ε^s_t of (18): the path through the cell state, the one the LSTM is built
    for. Only the path through h_{t−1} (Wᵀ δ_t) is kept; c0's gradient is lost too."""
    return _gated_with(_lstm_step_without_cell_carry, params, x, y, kwargs)


def _lstm_step_without_tanh_derivative(params, cache, lo, hi, d_state):  # type: ignore[no-untyped-def]
    eh, es_carried = d_state
    i, f, g, q = _lstm_gates(params, cache, lo, hi)
    tanh_s = cache.tanh_s[lo:hi]
    es = es_carried + eh * q  # SLIP: (18) needs ⊙ (1 − tanh²(s_t)), h_t = q_t ⊙ tanh(s_t)
    delta = np.concatenate(
        [
            es * g * i * (1 - i),
            es * cache.s_prev[lo:hi] * f * (1 - f),
            es * i * (1 - g**2),
            eh * tanh_s * q * (1 - q),
        ],
        axis=-1,
    )
    return delta, delta, (rows_matmul(delta, params.W), es * f)


def lstm_forgets_tanh_derivative(params: Any, x: Any, y: Any, **kwargs: Any) -> BPTTResult:
    """WRONG (LSTM): the path from h_t to s_t taken as ε^h_t ⊙ q_t, forgetting the
    tanh'(s_t) = 1 − tanh²(s_t) of h_t = q_t ⊙ tanh(s_t), (18)."""
    return _gated_with(_lstm_step_without_tanh_derivative, params, x, y, kwargs)


def _lstm_step_forget_with_new_state(params, cache, lo, hi, d_state):  # type: ignore[no-untyped-def]
    eh, es_carried = d_state
    i, f, g, q = _lstm_gates(params, cache, lo, hi)
    tanh_s = cache.tanh_s[lo:hi]
    s_new = f * cache.s_prev[lo:hi] + i * g  # s_t, recomputed by (15)
    es = es_carried + eh * q * (1 - tanh_s**2)  # (18)
    delta = np.concatenate(
        [
            es * g * i * (1 - i),
            es * s_new * f * (1 - f),  # SLIP: (21) multiplies by s_{t−1}
            es * i * (1 - g**2),
            eh * tanh_s * q * (1 - q),
        ],
        axis=-1,
    )
    return delta, delta, (rows_matmul(delta, params.W), es * f)


def lstm_forget_gate_with_s_t(params: Any, x: Any, y: Any, **kwargs: Any) -> BPTTResult:
    """WRONG (LSTM): ∂s_t/∂f_t taken as s_t, the state leaving the step, where (15)
    s_t = f_t ⊙ s_{t−1} + i_t ⊙ g_t gives s_{t−1}, the state entering it, (21)."""
    return _gated_with(_lstm_step_forget_with_new_state, params, x, y, kwargs)


def _lstm_step_in_cs231n_order(params, cache, lo, hi, d_state):  # type: ignore[no-untyped-def]
    eh, es_carried = d_state
    i, f, g, q = _lstm_gates(params, cache, lo, hi)
    tanh_s = cache.tanh_s[lo:hi]
    es = es_carried + eh * q * (1 - tanh_s**2)  # (18)
    di, df = es * g * i * (1 - i), es * cache.s_prev[lo:hi] * f * (1 - f)  # (20), (21)
    dg, dq = es * i * (1 - g**2), eh * tanh_s * q * (1 - q)  # (22), (19)
    delta = np.concatenate([di, df, dq, dg], axis=-1)  # SLIP: torch's order is i, f, g, o
    return delta, delta, (rows_matmul(delta, params.W), es * f)


def lstm_gate_blocks_in_wrong_order(params: Any, x: Any, y: Any, **kwargs: Any) -> BPTTResult:
    """WRONG (LSTM): δ_t stacked as [δ^i; δ^f; δ^q; δ^g], the CS231n assignment's gate
    order (i, f, o, g), while the parameters are laid out in torch's (i, f, g, o): the
    last two blocks' gradients land on each other's rows of U, W and b."""
    return _gated_with(_lstm_step_in_cs231n_order, params, x, y, kwargs)


def _gru_parts(params, cache, lo, hi):  # type: ignore[no-untyped-def]
    H = params.H
    gates = cache.gates[lo:hi]
    r, z, n = (gates[..., k * H : (k + 1) * H] for k in range(3))
    return H, r, z, n, cache.h_prev[lo:hi], cache.inner[lo:hi]


def _gru_step_z_swapped(params, cache, lo, hi, d_state):  # type: ignore[no-untyped-def]
    (eh,) = d_state
    H, r, z, n, h_prev, inner = _gru_parts(params, cache, lo, hi)
    dn = eh * z * (1 - n**2)  # SLIP: (29) h_t = (1 − z_t) ⊙ n_t + …: the factor is 1 − z_t
    dz = eh * (h_prev - n) * z * (1 - z)  # (29)
    eh_prev = eh * (1 - z)  # SLIP: (32) the direct path to h_{t−1} is z_t ⊙ ε_t
    if params.reset == "after":  # the rest as gru.backward_step
        dr = dn * inner * r * (1 - r)  # (30a)
        delta = np.concatenate([dr, dz, dn], axis=-1)
        delta_h = np.concatenate([dr, dz, r * dn], axis=-1)
        return delta, delta_h, (eh_prev + rows_matmul(delta_h, params.W),)  # (32a)
    dp = rows_matmul(dn, params.W[2 * H :])  # (30b)
    dr = dp * h_prev * r * (1 - r)
    delta = np.concatenate([dr, dz, dn], axis=-1)
    return (
        delta,
        delta,
        (eh_prev + rows_matmul(delta[..., : 2 * H], params.W[: 2 * H]) + dp * r,),
    )  # (32b)


def gru_z_and_one_minus_z_swapped(params: Any, x: Any, y: Any, **kwargs: Any) -> BPTTResult:
    """WRONG (GRU): z_t and 1 − z_t swapped in the backward pass: (27) sends
    (1 − z_t) ⊙ ε_t into n_t and z_t ⊙ ε_t straight into h_{t−1}, not the other way
    round (an easy slip: papers differ in which of the two z multiplies)."""
    return _gated_with(_gru_step_z_swapped, params, x, y, kwargs)


def _gru_step_reset_before(params, cache, lo, hi, d_state):  # type: ignore[no-untyped-def]
    (eh,) = d_state
    H, r, z, n, h_prev, _m = _gru_parts(params, cache, lo, hi)
    dn = eh * (1 - z) * (1 - n**2)  # (29)
    dz = eh * (h_prev - n) * z * (1 - z)  # (29)
    # SLIP: the forward applied r after W_n's product (26, "after"); this is (30b)-(32b),
    # the backward of the "before" variant, with p_t = r_t ⊙ h_{t−1} rebuilt from the cache.
    dp = rows_matmul(dn, params.W[2 * H :])
    dr = dp * h_prev * r * (1 - r)
    delta = np.concatenate([dr, dz, dn], axis=-1)
    eh_prev = eh * z + rows_matmul(delta[..., : 2 * H], params.W[: 2 * H]) + dp * r
    return delta, delta, (eh_prev,)


def gru_reset_differentiated_before_the_product(
    params: Any, x: Any, y: Any, **kwargs: Any
) -> BPTTResult:
    """WRONG (GRU, reset="after"): r_t differentiated as if applied to h_{t−1} before
    W_n's product (Cho et al.'s GRU) when torch's applies it after: δ^r uses
    W_nᵀ δ^n ⊙ h_{t−1} instead of δ^n ⊙ m_t, and bh_n, W_n and the path into h_{t−1}
    through n miss their factor r_t (docs/derivation.md, the GRU's two columns)."""
    if params.reset != "after":
        raise ValueError("this slip is the backward of 'before' on an 'after' GRU")
    return _gated_with(_gru_step_reset_before, params, x, y, kwargs)


# (function, cell, the GRU variants it applies to)
GATED_SLIPS: tuple[tuple[Callable[..., BPTTResult], str, tuple[str, ...]], ...] = (
    (lstm_drops_the_cell_state_carry, "lstm", ()),
    (lstm_forgets_tanh_derivative, "lstm", ()),
    (lstm_forget_gate_with_s_t, "lstm", ()),
    (lstm_gate_blocks_in_wrong_order, "lstm", ()),
    (gru_z_and_one_minus_z_swapped, "gru", ("after", "before")),
    (gru_reset_differentiated_before_the_product, "gru", ("after",)),
)
