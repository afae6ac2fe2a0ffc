"""BPTT written the plain way: one sequence, one loss, one step at a time.

This is the form to read next to the equations (and next to the classic tutorial's
``bptt``). It is slow on purpose: for every loss E_t it walks back from step t to the
first step its truncation lets it reach, adding that step's share to every gradient.
:func:`manual_bptt.bptt` computes the same numbers with batched products; the tests
check that the two agree.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from manual_bptt.inputs import Batch, Options, prepare
from manual_bptt.network import overflow_warning, quiet
from manual_bptt.params import Params
from manual_bptt.result import BPTTResult

if TYPE_CHECKING:
    from typing_extensions import Unpack


def first_reachable_step(t: int, batch: Batch) -> int:
    """The earliest step that the loss at step t backpropagates into."""
    if batch.truncate is not None:
        return max(0, t - batch.truncate)  # window of k + 1 steps
    if batch.chunk is not None:
        return (t // batch.chunk) * batch.chunk  # start of t's chunk
    return 0  # full BPTT


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

    # Forward: (1)–(4), keeping h_{−1} … h_{T−1} (s[t + 1] = h_t) and a_t.
    s = [batch.h0[n]]
    a = []
    for t in range(T):
        a.append(b + W @ s[t] + input_column(t))  # (1)
        s.append(act.phi(a[t]))  # (2)
    loss = 0.0
    for t in range(T - 1, -1, -1):
        o = c + V @ s[t + 1]  # (3)
        if not np.all(np.isfinite(o)):  # t runs backwards: the last one kept is the first
            bad_h = not np.all(np.isfinite(s[t + 1]))
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
        grads["V"] += np.outer(delta_o, s[t + 1])  # (8), += because V is used at every t
        grads["c"] += delta_o  # (9)
        # δ^{(t)}_t = Vᵀ ∂E_t/∂o_t ⊙ φ'(a_t), then back one step at a time.
        delta = (V.T @ delta_o) * act.dphi(a[t], s[t + 1])
        for k in range(t, first_reachable_step(t, batch) - 1, -1):
            grads["W"] += np.outer(delta, s[k])  # (11), s[k] is h_{k−1}
            grads["b"] += delta
            if batch.tokens:
                grads["U"][:, batch.x[k, n]] += delta  # (10), one-hot x_k
            else:
                grads["U"] += np.outer(delta, batch.x[k, n])
                grads["x"][k, n] += U.T @ delta  # (12)
            if k == 0:
                grads["h0"][n] += W.T @ delta  # (12), the window reached h_{−1}
            else:
                delta = (W.T @ delta) * act.dphi(a[k - 1], s[k])  # (7) one step back
    return loss


def naive_bptt(
    params: Params,
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
    if not batch.tokens:
        grads["x"] = np.zeros(batch.x.shape, dtype=dtype)
    overflows: dict[int, tuple[int, str]] = {}
    with quiet():  # inf and NaN are reported once, below, not by numpy at every step
        loss = sum(_one_sequence(params, batch, n, grads, overflows) for n in range(batch.N))
    if overflows:
        warnings.warn(overflow_warning(*min(overflows.values())), stacklevel=2)
    return BPTTResult.from_batched(batch, loss, grads)
