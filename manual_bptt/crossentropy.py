"""Softmax, the masked cross-entropy loss and its gradient: equations (4), (5) and (6)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def log_softmax(o: NDArray[np.floating]) -> NDArray[np.floating]:
    """log ŷ = o − max o − log Σ exp(o − max o) over the last axis; any shape (…, K).

    Subtracting the maximum first keeps exp from overflowing, so logits of ±1e4 give
    finite results.
    """
    shifted = o - o.real.max(axis=-1, keepdims=True)  # .real: complex-step inputs too
    logp: NDArray[np.floating] = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return logp


def softmax(o: NDArray[np.floating]) -> NDArray[np.floating]:
    """(4) ŷ = softmax(o) over the last axis, computed stably; any shape (…, K)."""
    shifted = np.exp(o - o.max(axis=-1, keepdims=True))
    probs: NDArray[np.floating] = shifted / shifted.sum(axis=-1, keepdims=True)
    return probs


def nll(
    logp: NDArray[np.floating], y: NDArray[np.integer], mask: NDArray[np.floating], scale: float
) -> np.inexact:
    """(5) L = s · Σ_t Σ_n m[t,n] · (−log ŷ_t[n, y[t,n]]) from log ŷ (T, N, K): a NumPy
    scalar (complex when the logits are, for the complex step)."""
    picked = np.take_along_axis(logp, y[..., None], axis=-1)[..., 0]  # (T, N)
    loss: np.inexact = -scale * (mask * picked).sum() + 0.0  # + 0.0: all-zero mask gives 0, not −0
    return loss


def loss_and_dlogits(
    o: NDArray[np.floating],
    y: NDArray[np.integer],
    mask: NDArray[np.floating],
    scale: float,
    *,
    out: NDArray[np.floating] | None = None,
) -> tuple[float, NDArray[np.floating]]:
    """The loss L and ∂L/∂o for logits o (T, N, K), targets y (T, N), mask m (T, N).

    (5) L = s · Σ_t Σ_n m[t,n] · (−log ŷ_t[n, y[t,n]])
    (6) ∂L/∂o_t[n] = s · m[t,n] · (ŷ_t[n] − onehot(y[t,n]))

    where s = ``scale`` is 1 for reduction="sum" and 1/Σm for "mean".
    Returns (L as a float, ∂L/∂o of shape (T, N, K) in o's dtype). ∂L/∂o is a new
    array unless ``out`` is given: ``out=o`` writes it over the logits (bptt does so,
    as nothing needs o afterwards, which saves a (T, N, K) array).

    The same numbers as :func:`log_softmax` and :func:`nll`, in fewer passes over the
    (T, N, K) array: log ŷ_t[y] = (o_t[y] − max o_t) − log Σ exp(o_t − max o_t), and
    ŷ_t = exp(o_t − max o_t) / Σ exp(o_t − max o_t), with one exp for both.
    """
    dO = np.subtract(o, o.max(axis=-1, keepdims=True), out=out)  # o − max o: exp ≤ 1
    target = y[..., None]
    picked = np.take_along_axis(dO, target, axis=-1)[..., 0]  # o_t[y] − max o_t, (T, N)
    np.exp(dO, out=dO)
    total = dO.sum(axis=-1, keepdims=True)  # Σ exp(o − max) ≥ 1: its log is finite
    loss = float(-scale * (mask * (picked - np.log(total[..., 0]))).sum()) + 0.0  # (5), as nll
    dO /= total  # (4) ŷ
    np.put_along_axis(dO, target, np.take_along_axis(dO, target, -1) - 1, -1)  # ŷ − onehot(y)
    if scale != 1.0 or not mask.all():  # (6) s · m; skipped when it is all ones (× 1 is exact)
        dO *= (scale * mask)[..., None]
    return loss, dO
