"""CS231n-style slips (``--style cs231n``), each a namespace of the four functions.

:class:`RNNLayers` is CORRECT: CS231n assignment 3's interface, batch-major, tanh, with
the layer backward built from the step backward. Each slip below it changes one line,
said in its docstring, and ``bptt verify`` names exactly the gradients it breaks:

    bptt verify manual_bptt.checking.gallery_cs231n:TransposedWhInBackward --style cs231n

Classmethods, so that a slip in the step backward reaches the layer backward too.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class RNNLayers:
    """CORRECT: h_t = tanh(x_t Wx + h_{t−1} Wh + b) for x (N, T, D), Wx (D, H), Wh (H, H)."""

    @classmethod
    def rnn_step_forward(cls, x: Any, prev_h: Any, Wx: Any, Wh: Any, b: Any) -> tuple[Any, Any]:
        """x (N, D), prev_h (N, H) → next_h (N, H), cache."""
        next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
        return next_h, (x, prev_h, Wx, Wh, next_h)

    @classmethod
    def rnn_step_backward(cls, dnext_h: Any, cache: Any) -> tuple[Any, ...]:
        """dnext_h (N, H) → dx (N, D), dprev_h (N, H), dWx (D, H), dWh (H, H), db (H,)."""
        x, prev_h, Wx, Wh, next_h = cache
        da = dnext_h * (1 - next_h**2)
        return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)

    @classmethod
    def rnn_forward(cls, x: Any, h0: Any, Wx: Any, Wh: Any, b: Any) -> tuple[Any, Any]:
        """x (N, T, D), h0 (N, H) → h (N, T, H), the steps' caches."""
        h, caches, prev_h = [], [], h0
        for t in range(x.shape[1]):
            prev_h, cache = cls.rnn_step_forward(x[:, t], prev_h, Wx, Wh, b)
            h.append(prev_h)
            caches.append(cache)
        return np.stack(h, axis=1), caches

    @classmethod
    def rnn_backward(cls, dh: Any, cache: Any) -> tuple[Any, ...]:
        """dh (N, T, H) → dx (N, T, D), dh0 (N, H), dWx (D, H), dWh (H, H), db (H,)."""
        dx: list[Any] = []
        dWx, dWh, db = 0.0, 0.0, 0.0
        dprev_h = np.zeros_like(dh[:, 0])
        for t in reversed(range(dh.shape[1])):
            dx_t, dprev_h, dWx_t, dWh_t, db_t = cls.rnn_step_backward(dh[:, t] + dprev_h, cache[t])
            dx.insert(0, dx_t)
            dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
        return np.stack(dx, axis=1), dprev_h, dWx, dWh, db


class TransposedWhInBackward(RNNLayers):
    """WRONG: the step backward carries the gradient back with Wh, not Whᵀ (invisible
    while Wh is symmetric, so it needs H ≥ 2)."""

    @classmethod
    def rnn_step_backward(cls, dnext_h: Any, cache: Any) -> tuple[Any, ...]:
        x, prev_h, Wx, Wh, next_h = cache
        da = dnext_h * (1 - next_h**2)
        return da @ Wx.T, da @ Wh, x.T @ da, prev_h.T @ da, da.sum(axis=0)  # slip: Wh.T


class Dh0FromWrongStep(RNNLayers):
    """WRONG: dh0 is the gradient leaving the last step (t = T−1) computed, the first
    one of the backward loop, instead of the one leaving step 0."""

    @classmethod
    def rnn_backward(cls, dh: Any, cache: Any) -> tuple[Any, ...]:
        dx: list[Any] = []
        dWx, dWh, db = 0.0, 0.0, 0.0
        dprev_h = np.zeros_like(dh[:, 0])
        dh0 = None
        for t in reversed(range(dh.shape[1])):
            dx_t, dprev_h, dWx_t, dWh_t, db_t = cls.rnn_step_backward(dh[:, t] + dprev_h, cache[t])
            if dh0 is None:
                dh0 = dprev_h  # slip: kept from t = T − 1; dh0 is dprev_h after t = 0
            dx.insert(0, dx_t)
            dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
        return np.stack(dx, axis=1), dh0, dWx, dWh, db


class UpstreamOnlyAtLastStep(RNNLayers):
    """WRONG: the upstream dh enters only at the last step, as if only h_{T−1} fed the
    layer above; every h_t does, so dh[:, t] must be added at every step."""

    @classmethod
    def rnn_backward(cls, dh: Any, cache: Any) -> tuple[Any, ...]:
        dx: list[Any] = []
        dWx, dWh, db = 0.0, 0.0, 0.0
        T = dh.shape[1]
        dprev_h = dh[:, T - 1]  # slip: this is the only upstream gradient used
        for t in reversed(range(T)):
            dx_t, dprev_h, dWx_t, dWh_t, db_t = cls.rnn_step_backward(dprev_h, cache[t])
            dx.insert(0, dx_t)
            dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
        return np.stack(dx, axis=1), dprev_h, dWx, dWh, db


class DbNotSummedOverBatch(RNNLayers):
    """WRONG: db is averaged over the batch; b is shared by every sequence, so its
    gradient is the sum (right only when N = 1)."""

    @classmethod
    def rnn_step_backward(cls, dnext_h: Any, cache: Any) -> tuple[Any, ...]:
        x, prev_h, Wx, Wh, next_h = cache
        da = dnext_h * (1 - next_h**2)
        return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.mean(axis=0)  # slip: .sum


class ChangesUpstreamInPlace(RNNLayers):
    """WRONG: adds the carried gradient into the caller's dh in place
    (``dh[:, t] += dprev_h``); the gradients are right, but the caller's dh is not."""

    @classmethod
    def rnn_backward(cls, dh: Any, cache: Any) -> tuple[Any, ...]:
        dx: list[Any] = []
        dWx, dWh, db = 0.0, 0.0, 0.0
        dprev_h = np.zeros_like(dh[:, 0])
        for t in reversed(range(dh.shape[1])):
            dh[:, t] += dprev_h  # slip: writes into the caller's array
            dx_t, dprev_h, dWx_t, dWh_t, db_t = cls.rnn_step_backward(dh[:, t], cache[t])
            dx.insert(0, dx_t)
            dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
        return np.stack(dx, axis=1), dprev_h, dWx, dWh, db


CS231N_SLIPS = (
    TransposedWhInBackward,
    Dh0FromWrongStep,
    UpstreamOnlyAtLastStep,
    DbNotSummedOverBatch,
    ChangesUpstreamInPlace,
)
