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
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(o: NDArray[np.floating]) -> NDArray[np.floating]:
    """(4) ŷ = softmax(o) over the last axis, computed stably; any shape (…, K)."""
    shifted = np.exp(o - o.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def nll(
    logp: NDArray[np.floating], y: NDArray[np.integer], mask: NDArray[np.floating], scale: float
) -> np.ndarray:
    """(5) L = s · Σ_t Σ_n m[t,n] · (−log ŷ_t[n, y[t,n]]) from log ŷ (T, N, K): a 0-d array
    (complex when the logits are, for the complex step)."""
    picked = np.take_along_axis(logp, y[..., None], axis=-1)[..., 0]  # (T, N)
    return -scale * (mask * picked).sum()


def loss_and_dlogits(
    o: NDArray[np.floating],
    y: NDArray[np.integer],
    mask: NDArray[np.floating],
    scale: float,
) -> tuple[float, NDArray[np.floating]]:
    """The loss L and ∂L/∂o for logits o (T, N, K), targets y (T, N), mask m (T, N).

    (5) L = s · Σ_t Σ_n m[t,n] · (−log ŷ_t[n, y[t,n]])
    (6) ∂L/∂o_t[n] = s · m[t,n] · (ŷ_t[n] − onehot(y[t,n]))

    where s = ``scale`` is 1 for reduction="sum" and 1/Σm for "mean".
    Returns (L as a float, ∂L/∂o of shape (T, N, K) in o's dtype, a new array).
    """
    logp = log_softmax(o)
    loss = float(nll(logp, y, mask, scale))
    # ŷ = exp(log ŷ), written over log ŷ (our own array, no longer needed): the −1 below
    # changes nothing of the caller's, and no second (T, N, K) array is allocated.
    dO = np.exp(logp, out=logp)
    np.put_along_axis(dO, y[..., None], np.take_along_axis(dO, y[..., None], -1) - 1, -1)
    dO *= (scale * mask)[..., None]
    return loss, dO
