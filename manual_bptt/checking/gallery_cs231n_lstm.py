"""CS231n-style LSTM slips (``--style cs231n-lstm``), each a namespace of the four functions.

:class:`LSTMLayers` is CORRECT: CS231n assignment 3's LSTM interface, batch-major, gate
blocks in the course's order (i, f, o, g), zero initial cell state, the layer backward
built from the step backward. Each slip below it changes one line, said in its
docstring (and marked ``# slip``), and ``bptt verify`` names exactly the gradients it
breaks:

    bptt verify manual_bptt.checking.gallery_cs231n_lstm:CellStateCarryDropped \\
        --style cs231n-lstm

Classmethods, so that a slip in the step backward reaches the layer backward too.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _sigmoid(a: Any) -> Any:
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e))


class LSTMLayers:
    """CORRECT: a = x_t Wx + h_{t−1} Wh + b, (i, f, o) = σ, g = tanh of its four blocks,
    c_t = f c_{t−1} + i g, h_t = o tanh(c_t); x (N, T, D), Wx (D, 4H), Wh (H, 4H)."""

    @classmethod
    def lstm_step_forward(
        cls, x: Any, prev_h: Any, prev_c: Any, Wx: Any, Wh: Any, b: Any
    ) -> tuple[Any, Any, dict[str, Any]]:
        """x (N, D), prev_h, prev_c (N, H) → next_h, next_c (N, H), cache."""
        H = prev_h.shape[1]
        a = x @ Wx + prev_h @ Wh + b
        i, f, o = _sigmoid(a[:, :H]), _sigmoid(a[:, H : 2 * H]), _sigmoid(a[:, 2 * H : 3 * H])
        g = np.tanh(a[:, 3 * H :])
        next_c = f * prev_c + i * g
        next_h = o * np.tanh(next_c)
        cache = {
            "x": x,
            "prev_h": prev_h,
            "prev_c": prev_c,
            "next_c": next_c,
            "Wx": Wx,
            "Wh": Wh,
            "i": i,
            "f": f,
            "o": o,
            "g": g,
        }
        return next_h, next_c, cache

    @classmethod
    def gate_gradients(cls, dnext_h: Any, dnext_c: Any, k: dict[str, Any]) -> tuple[Any, Any]:
        """dnext_h, dnext_c (N, H) → da (N, 4H) in the order (i, f, o, g), dprev_c (N, H)."""
        i, f, o, g, tanh_c = k["i"], k["f"], k["o"], k["g"], np.tanh(k["next_c"])
        dc = dnext_c + dnext_h * o * (1 - tanh_c**2)
        di, df, do, dg = dc * g, dc * k["prev_c"], dnext_h * tanh_c, dc * i
        da = np.hstack([di * i * (1 - i), df * f * (1 - f), do * o * (1 - o), dg * (1 - g**2)])
        return da, dc * f

    @classmethod
    def lstm_step_backward(cls, dnext_h: Any, dnext_c: Any, cache: Any) -> tuple[Any, ...]:
        """→ dx (N, D), dprev_h, dprev_c (N, H), dWx (D, 4H), dWh (H, 4H), db (4H,)."""
        da, dprev_c = cls.gate_gradients(dnext_h, dnext_c, cache)
        x, prev_h, Wx, Wh = cache["x"], cache["prev_h"], cache["Wx"], cache["Wh"]
        return da @ Wx.T, da @ Wh.T, dprev_c, x.T @ da, prev_h.T @ da, da.sum(axis=0)

    @classmethod
    def lstm_forward(cls, x: Any, h0: Any, Wx: Any, Wh: Any, b: Any) -> tuple[Any, Any]:
        """x (N, T, D), h0 (N, H) → h (N, T, H), the steps' caches; c_{−1} = 0."""
        h, caches, prev_h, prev_c = [], [], h0, np.zeros_like(h0)
        for t in range(x.shape[1]):
            prev_h, prev_c, cache = cls.lstm_step_forward(x[:, t], prev_h, prev_c, Wx, Wh, b)
            h.append(prev_h)
            caches.append(cache)
        return np.stack(h, axis=1), caches

    @classmethod
    def lstm_backward(cls, dh: Any, cache: Any) -> tuple[Any, ...]:
        """dh (N, T, H) → dx (N, T, D), dh0 (N, H), dWx (D, 4H), dWh (H, 4H), db (4H,)."""
        dx: list[Any] = []
        dWx, dWh, db = 0.0, 0.0, 0.0
        dprev_h, dprev_c = np.zeros_like(dh[:, 0]), np.zeros_like(dh[:, 0])
        for t in reversed(range(dh.shape[1])):
            dx_t, dprev_h, dprev_c, dWx_t, dWh_t, db_t = cls.lstm_step_backward(
                dh[:, t] + dprev_h, dprev_c, cache[t]
            )
            dx.insert(0, dx_t)
            dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
        return np.stack(dx, axis=1), dprev_h, dWx, dWh, db


class CellStateCarryDropped(LSTMLayers):
    """WRONG: the layer backward hands each step a zero dnext_c instead of the dprev_c
    the later step returned, so the gradient never flows back along the cell state,
    the path the LSTM is built for (the step functions are right; needs T ≥ 2)."""

    @classmethod
    def lstm_backward(cls, dh: Any, cache: Any) -> tuple[Any, ...]:
        dx: list[Any] = []
        dWx, dWh, db = 0.0, 0.0, 0.0
        dprev_h = np.zeros_like(dh[:, 0])
        for t in reversed(range(dh.shape[1])):
            zero = np.zeros_like(dprev_h)  # slip: should be the dprev_c of step t + 1
            dx_t, dprev_h, _, dWx_t, dWh_t, db_t = cls.lstm_step_backward(
                dh[:, t] + dprev_h, zero, cache[t]
            )
            dx.insert(0, dx_t)
            dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
        return np.stack(dx, axis=1), dprev_h, dWx, dWh, db


class ForgetsTanhDerivativeOfC(LSTMLayers):
    """WRONG: through h_t = o ⊙ tanh(c_t) the gradient reaching c_t is taken as
    dnext_h ⊙ o, forgetting the factor tanh'(c_t) = 1 − tanh²(c_t)."""

    @classmethod
    def gate_gradients(cls, dnext_h: Any, dnext_c: Any, k: dict[str, Any]) -> tuple[Any, Any]:
        i, f, o, g, tanh_c = k["i"], k["f"], k["o"], k["g"], np.tanh(k["next_c"])
        dc = dnext_c + dnext_h * o  # slip: * (1 - tanh_c**2) forgotten
        di, df, do, dg = dc * g, dc * k["prev_c"], dnext_h * tanh_c, dc * i
        da = np.hstack([di * i * (1 - i), df * f * (1 - f), do * o * (1 - o), dg * (1 - g**2)])
        return da, dc * f


class GatesInTorchOrder(LSTMLayers):
    """WRONG: the forward slices the gates as (i, f, o, g), the backward stacks their
    gradients as (i, f, g, o), torch.nn.LSTM's order (dprev_c is still right: it does
    not pass through the stacked blocks)."""

    @classmethod
    def gate_gradients(cls, dnext_h: Any, dnext_c: Any, k: dict[str, Any]) -> tuple[Any, Any]:
        i, f, o, g, tanh_c = k["i"], k["f"], k["o"], k["g"], np.tanh(k["next_c"])
        dc = dnext_c + dnext_h * o * (1 - tanh_c**2)
        di, df, do, dg = dc * g, dc * k["prev_c"], dnext_h * tanh_c, dc * i
        blocks = [di * i * (1 - i), df * f * (1 - f), dg * (1 - g**2), do * o * (1 - o)]
        return np.hstack(blocks), dc * f  # slip: the course's order is (i, f, o, g)


class DnextCNotAdded(LSTMLayers):
    """WRONG: the step backward takes the gradient of c_t only through h_t and drops
    the dnext_c it is given (the gradient from c_{t+1}, or from above)."""

    @classmethod
    def gate_gradients(cls, dnext_h: Any, dnext_c: Any, k: dict[str, Any]) -> tuple[Any, Any]:
        i, f, o, g, tanh_c = k["i"], k["f"], k["o"], k["g"], np.tanh(k["next_c"])
        dc = dnext_h * o * (1 - tanh_c**2)  # slip: dnext_c + ... dropped
        di, df, do, dg = dc * g, dc * k["prev_c"], dnext_h * tanh_c, dc * i
        da = np.hstack([di * i * (1 - i), df * f * (1 - f), do * o * (1 - o), dg * (1 - g**2)])
        return da, dc * f


class ForgetGateWithNextC(LSTMLayers):
    """WRONG: the forget gate's gradient is taken with the new cell state c_t instead of
    c_{t−1}, the one f multiplies (dprev_c = dc ⊙ f is still right)."""

    @classmethod
    def gate_gradients(cls, dnext_h: Any, dnext_c: Any, k: dict[str, Any]) -> tuple[Any, Any]:
        i, f, o, g, tanh_c = k["i"], k["f"], k["o"], k["g"], np.tanh(k["next_c"])
        dc = dnext_c + dnext_h * o * (1 - tanh_c**2)
        di, df, do, dg = dc * g, dc * k["next_c"], dnext_h * tanh_c, dc * i  # slip: prev_c
        da = np.hstack([di * i * (1 - i), df * f * (1 - f), do * o * (1 - o), dg * (1 - g**2)])
        return da, dc * f


CS231N_LSTM_SLIPS = (
    CellStateCarryDropped,
    ForgetsTanhDerivativeOfC,
    GatesInTorchOrder,
    DnextCNotAdded,
    ForgetGateWithNextC,
)
