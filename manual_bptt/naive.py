"""BPTT written the plain way: one sequence, one loss, one step at a time, for each cell
(the vanilla one's equations (1)–(12), the LSTM's (13)–(24), the GRU's (25)–(33)).

This is the form to read next to the equations (and next to the classic tutorial's
``bptt``). It is slow on purpose: for every loss E_t it walks back from step t to the
first step its truncation lets it reach, adding that step's share to every gradient.
:func:`manual_bptt.bptt` computes the same numbers with batched products; the tests
check that the two agree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from manual_bptt.activations import sigmoid
from manual_bptt.cells import cell_of
from manual_bptt.gru import GRUParams
from manual_bptt.inputs import Batch, Options, prepare
from manual_bptt.lstm import LSTMParams
from manual_bptt.network import OverflowWarning, overflow_warning, quiet, warn_at_caller
from manual_bptt.params import CellParams, Params
from manual_bptt.result import BPTTResult
from manual_bptt.truncation import tbptt_first_step

if TYPE_CHECKING:
    from typing_extensions import Unpack


def first_reachable_step(t: int, batch: Batch) -> int:
    """The earliest step that the loss at step t backpropagates into (greater than t
    when it reaches none: TBPTT(k1, k2) with k2 < k1)."""
    if batch.truncate is not None:
        return max(0, t - batch.truncate)  # window of k + 1 steps
    if batch.chunk is not None:
        return (t // batch.chunk) * batch.chunk  # start of t's chunk
    if batch.tbptt is not None:
        return tbptt_first_step(t, batch.T, *batch.tbptt)  # truncation.py: its block's
    return 0  # full BPTT (and randomized truncation, whose links weigh the steps)


def link(batch: Batch, k: int) -> float:
    """ξ_k, the weight of the gradient carried from step k back into step k−1: 1
    unless randomized truncation drew another."""
    return 1.0 if batch.links is None else float(batch.links[k])


def _one_sequence(
    params: Params,
    batch: Batch,
    n: int,
    grads: dict[str, np.ndarray],
    overflows: dict[int, tuple[int, str]],
) -> float:
    """Add sequence n's gradients to ``grads`` and return its loss; record in
    ``overflows[n]`` the first step whose state or logits are not finite, if any."""
    U, W, V, b, c = params.U, params.W, params.V, params.b, params.c
    act = batch.activation
    T = batch.T
    scale = batch.loss_scale

    def input_column(t: int) -> np.ndarray:
        # U x_t: a column of U for a token id, a matrix-vector product otherwise.
        return U[:, batch.x[t, n]] if batch.tokens else U @ batch.x[t, n]

    # Forward: (1)–(4), keeping h_{−1} … h_{T−1} (states[t + 1] = h_t) and a_t.
    states = [batch.h0[n]]
    a = []
    for t in range(T):
        a.append(b + W @ states[t] + input_column(t))  # (1)
        states.append(act.phi(a[t]))  # (2)
    loss = 0.0
    for t in range(T - 1, -1, -1):
        o = c + V @ states[t + 1]  # (3)
        if not np.all(np.isfinite(o)):  # t runs backwards: the last one kept is the first
            bad_h = not np.all(np.isfinite(states[t + 1]))
            overflows[n] = (t, "h_t (the state)" if bad_h else "o_t (the logits)")
        # (4) log ŷ_t = o_t − max − log Σ exp(o_t − max): stable for logits of ±1e4,
        # where ŷ itself can underflow to 0 and log ŷ would be −inf.
        log_y_hat = o - o.max() - np.log(np.exp(o - o.max()).sum())
        y_hat = np.exp(log_y_hat)
        m = batch.mask[t, n]
        loss += -scale * m * float(log_y_hat[batch.y[t, n]])  # (5)
        # (6) ∂E_t/∂o_t = ŷ_t − onehot(y_t). A copy, never an alias of o or ŷ: the
        # tutorial's `delta_o = o; delta_o[y] -= 1` would change the caller's array.
        delta_o = y_hat.copy()
        delta_o[batch.y[t, n]] -= 1.0
        delta_o *= scale * m
        grads["V"] += np.outer(delta_o, states[t + 1])  # (8), += because V is used at every t
        grads["c"] += delta_o  # (9)
        # δ^{(t)}_t = Vᵀ ∂E_t/∂o_t ⊙ φ'(a_t), then back one step at a time.
        delta = (V.T @ delta_o) * act.dphi(a[t], states[t + 1])
        for k in range(t, first_reachable_step(t, batch) - 1, -1):
            grads["W"] += np.outer(delta, states[k])  # (11), states[k] is h_{k−1}
            grads["b"] += delta
            if batch.tokens:
                grads["U"][:, batch.x[k, n]] += delta  # (10), one-hot x_k
            else:
                grads["U"] += np.outer(delta, batch.x[k, n])
                grads["x"][k, n] += U.T @ delta  # (12)
            if k == 0:
                grads["h0"][n] += W.T @ delta  # (12), the window reached h_{−1}
            else:  # (7) one step back, weighted by ξ_k
                delta = link(batch, k) * (W.T @ delta) * act.dphi(a[k - 1], states[k])
    return loss


def _output_layer(
    params: CellParams, batch: Batch, n: int, t: int, h_t: np.ndarray, grads: dict[str, np.ndarray]
) -> tuple[float, np.ndarray]:
    """The loss at step t of sequence n and its gradient reaching h_t: (3)–(6), (8), (9)."""
    V, c = params.V, params.c
    o = c + V @ h_t  # (3)
    log_y_hat = o - o.max() - np.log(np.exp(o - o.max()).sum())  # (4), stably
    m = batch.mask[t, n]
    loss = -batch.loss_scale * m * float(log_y_hat[batch.y[t, n]])  # (5)
    delta_o = np.exp(log_y_hat)  # (6) ŷ_t − onehot(y_t), scaled; a new array
    delta_o[batch.y[t, n]] -= 1.0
    delta_o *= batch.loss_scale * m
    grads["V"] += np.outer(delta_o, h_t)  # (8)
    grads["c"] += delta_o  # (9)
    return loss, V.T @ delta_o


def _add_input_side(
    params: CellParams,
    batch: Batch,
    n: int,
    k: int,
    delta: np.ndarray,
    grads: dict[str, np.ndarray],
) -> None:
    """δ_k's share of ∂L/∂U, ∂L/∂b and ∂L/∂x_k: (23) for the LSTM, (31), (33) for the GRU."""
    grads["b"] += delta
    if batch.tokens:
        grads["U"][:, batch.x[k, n]] += delta  # one-hot x_k: a column
    else:
        grads["U"] += np.outer(delta, batch.x[k, n])
        grads["x"][k, n] += params.U.T @ delta


def _one_sequence_lstm(
    params: LSTMParams, batch: Batch, n: int, grads: dict[str, np.ndarray]
) -> float:
    """Add sequence n's gradients to ``grads`` and return its loss: the LSTM."""
    U, W, b, H = params.U, params.W, params.b, params.H
    h, s = [batch.h0[n]], [batch.c0[n] if batch.c0 is not None else np.zeros(H)]
    gates = []  # (i, f, g, q) per step
    for t in range(batch.T):
        ux = U[:, batch.x[t, n]] if batch.tokens else U @ batch.x[t, n]
        A = b + W @ h[t] + ux  # (13)
        i, f, q = sigmoid(A[:H]), sigmoid(A[H : 2 * H]), sigmoid(A[3 * H :])  # (14)
        g = np.tanh(A[2 * H : 3 * H])  # (14)
        gates.append((i, f, g, q))
        s.append(f * s[t] + i * g)  # (15), s[t + 1] = s_t
        h.append(q * np.tanh(s[t + 1]))  # (16), h[t + 1] = h_t
    loss = 0.0
    for t in range(batch.T - 1, -1, -1):
        step_loss, eh = _output_layer(params, batch, n, t, h[t + 1], grads)  # eh: ε^h_t
        loss += step_loss
        es = np.zeros(H, dtype=eh.dtype)  # ε^s_t: nothing reaches s_t from later steps
        for k in range(t, first_reachable_step(t, batch) - 1, -1):
            i, f, g, q = gates[k]
            tanh_s = np.tanh(s[k + 1])
            es = es + eh * q * (1 - tanh_s**2)  # (18)
            delta = np.concatenate(
                [
                    es * g * i * (1 - i),  # (20) δ^i
                    es * s[k] * f * (1 - f),  # (21) δ^f, with s_{k−1}
                    es * i * (1 - g**2),  # (22) δ^g
                    eh * tanh_s * q * (1 - q),  # (19) δ^q
                ]
            )
            grads["W"] += np.outer(delta, h[k])  # (23), h[k] is h_{k−1}
            _add_input_side(params, batch, n, k, delta, grads)  # (23), (24)
            eh = W.T @ delta  # (17) ε^h_{k−1}, from this loss
            es = es * f  # (18) ε^s_{k−1}
            if k > 0:  # weighted by ξ_k on the way into step k−1
                eh, es = link(batch, k) * eh, link(batch, k) * es
            if k == 0:
                grads["h0"][n] += eh  # (24)
                grads["c0"][n] += es  # (24)
    return loss


def _one_sequence_gru(
    params: GRUParams, batch: Batch, n: int, grads: dict[str, np.ndarray]
) -> float:
    """Add sequence n's gradients to ``grads`` and return its loss: the GRU, either variant."""
    U, W, b, bh, H = params.U, params.W, params.b, params.bh, params.H
    after = params.reset == "after"
    h = [batch.h0[n]]
    gates = []  # (r, z, n, inner) per step; inner is m_t ("after") or p_t ("before")
    for t in range(batch.T):
        ux = (U[:, batch.x[t, n]] if batch.tokens else U @ batch.x[t, n]) + b
        r = sigmoid(ux[:H] + W[:H] @ h[t] + bh[:H])  # (25)
        z = sigmoid(ux[H : 2 * H] + W[H : 2 * H] @ h[t] + bh[H : 2 * H])  # (25)
        if after:
            inner = W[2 * H :] @ h[t] + bh[2 * H :]  # m_t
            cand = np.tanh(ux[2 * H :] + r * inner)  # (26) after
        else:
            inner = r * h[t]  # p_t
            cand = np.tanh(ux[2 * H :] + W[2 * H :] @ inner + bh[2 * H :])  # (26) before
        gates.append((r, z, cand, inner))
        h.append((1 - z) * cand + z * h[t])  # (27), h[t + 1] = h_t
    loss = 0.0
    for t in range(batch.T - 1, -1, -1):
        step_loss, eh = _output_layer(params, batch, n, t, h[t + 1], grads)  # eh: ε_t
        loss += step_loss
        for k in range(t, first_reachable_step(t, batch) - 1, -1):
            r, z, cand, inner = gates[k]
            dn = eh * (1 - z) * (1 - cand**2)  # (29) δ^n
            dz = eh * (h[k] - cand) * z * (1 - z)  # (29) δ^z, with h_{k−1} = h[k]
            if after:
                dr = dn * inner * r * (1 - r)  # (30a) δ^r, inner = m_k
                hidden = np.concatenate([dr, dz, r * dn])  # (30a) δ̃
                grads["W"] += np.outer(hidden, h[k])  # (31)
                eh_prev = eh * z + W.T @ hidden  # (32a)
            else:
                dp = W[2 * H :].T @ dn  # (30b) ∂L/∂p_k
                dr = dp * h[k] * r * (1 - r)  # (30b) δ^r
                hidden = np.concatenate([dr, dz, dn])  # (30b) δ̃ = δ
                grads["W"][: 2 * H] += np.outer(hidden[: 2 * H], h[k])  # (31)
                grads["W"][2 * H :] += np.outer(dn, inner)  # (31), inner = p_k
                eh_prev = eh * z + W[: 2 * H].T @ hidden[: 2 * H] + r * dp  # (32b)
            grads["bh"] += hidden  # (31)
            _add_input_side(params, batch, n, k, np.concatenate([dr, dz, dn]), grads)  # (31), (33)
            if k == 0:
                grads["h0"][n] += eh_prev  # (33)
            eh = link(batch, k) * eh_prev  # into step k−1, weighted by ξ_k
    return loss


# The gated cells' loops written out, equation by equation, for reading.
NAIVE: dict[str, Callable[[Any, Batch, int, dict[str, np.ndarray]], float]] = {
    "lstm": _one_sequence_lstm,
    "gru": _one_sequence_gru,
}


def _one_sequence_cell(
    params: CellParams, batch: Batch, n: int, grads: dict[str, np.ndarray]
) -> float:
    """Add sequence n's gradients to ``grads`` and return its loss: any registered cell
    without a loop of its own here (cells.py), by its forward pass on sequence n and
    then each loss's own backward pass, one of the cell's backward steps at a time, back
    to the first step that loss may reach; ∂L/∂W from the summed δ̃ by the cell's grad_W,
    and a hidden-side bias "bh" (if the cell has one) as Σ δ̃."""
    cell = cell_of(params)
    one = slice(n, n + 1)
    initial = (batch.h0[one], *(() if batch.c0 is None else (batch.c0[one],)))
    cache = cell.forward(params, batch.x[:, one], initial, batch.tokens, batch.activation)
    parts, H = len(cell.state), params.H
    total_h = None  # Σ over losses of δ̃, (T, 1, G·H)
    loss = 0.0
    for t in range(batch.T - 1, -1, -1):
        step_loss, eh = _output_layer(params, batch, n, t, cache.h[t, 0], grads)
        loss += step_loss
        zero = np.zeros((1, 1, H), dtype=eh.dtype)
        incoming = (eh[None, None], *(zero for _ in range(parts - 1)))
        for k in range(t, first_reachable_step(t, batch) - 1, -1):
            delta, delta_h, incoming = cell.backward_step(params, cache, k, k + 1, incoming)
            if total_h is None:
                total_h = np.zeros((batch.T, 1, delta_h.shape[-1]), dtype=delta_h.dtype)
            total_h[k] += delta_h[0]
            _add_input_side(params, batch, n, k, delta[0, 0], grads)
            if k == 0:
                grads["h0"][n] += incoming[0][0, 0]
                if parts > 1:
                    grads["c0"][n] += incoming[1][0, 0]
            else:  # into step k−1, weighted by ξ_k
                incoming = tuple(link(batch, k) * part for part in incoming)
    if total_h is not None:
        grads["W"] += cell.grad_W(params, cache, total_h)
        if "bh" in grads:
            grads["bh"] += total_h.sum(axis=(0, 1))
    return loss


def naive_bptt(
    params: CellParams,
    x: ArrayLike,
    y: ArrayLike,
    **options: Unpack[Options],
) -> BPTTResult:
    """The same loss and gradients as :func:`manual_bptt.bptt`, by the plain loops.

    Arguments, shapes and result are those of :func:`manual_bptt.bptt`. It costs
    O(N · T · reach · H²) with Python loops over sequences, losses and steps, where
    reach is the number of steps a loss backpropagates into.
    """
    batch = prepare(params, x, y, **options)
    dtype = params.dtype
    grads = {name: np.zeros_like(value) for name, value in params.as_dict().items()}
    grads["h0"] = np.zeros_like(batch.h0)
    if batch.c0 is not None:
        grads["c0"] = np.zeros_like(batch.c0)
    if not batch.tokens:
        grads["x"] = np.zeros(batch.x.shape, dtype=dtype)
    overflows: dict[int, tuple[int, str]] = {}
    with quiet():  # inf and NaN are reported once, below, not by numpy at every step
        if isinstance(params, Params):
            loss = sum(_one_sequence(params, batch, n, grads, overflows) for n in range(batch.N))
        else:  # the LSTM's and the GRU's own loops, or any other cell's by its steps
            one_sequence = NAIVE.get(cell_of(params).name, _one_sequence_cell)
            loss = sum(one_sequence(params, batch, n, grads) for n in range(batch.N))
    if overflows:
        warn_at_caller(overflow_warning(*min(overflows.values())))
    elif not np.isfinite(loss):
        # The gated cells' states are bounded (|h| ≤ 1, |s_t| ≤ |s_{t−1}| + 1): only
        # logits of parameters near the float range can overflow; said without a step.
        warn_at_caller(OverflowWarning("the network overflows: the loss is not finite"))
    return BPTTResult.from_batched(batch, loss, grads)
