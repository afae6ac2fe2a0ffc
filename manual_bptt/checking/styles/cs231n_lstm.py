"""--style cs231n-lstm: the LSTM layer of Stanford CS231n's assignment 3 (rnn_layers.py).

A module (or a namespace object) defining, batch-major:

    lstm_forward(x, h0, Wx, Wh, b) -> (h, cache)     x (N, T, D), h0 (N, H), Wx (D, 4H),
                                                     Wh (H, 4H), b (4H,); h (N, T, H)
    lstm_backward(dh, cache) -> (dx, dh0, dWx, dWh, db)   dh (N, T, H), the upstream gradient

with the initial cell state zero (the course's lstm_forward takes none), and, if both
are defined, the single step they are built from:

    lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b) -> (next_h, next_c, cache)
    lstm_step_backward(dnext_h, dnext_c, cache) -> (dx, dprev_h, dprev_c, dWx, dWh, db)

The course's gate blocks are (i, f, o, g): columns [0, H) the input gate, [H, 2H) the
forget gate, [2H, 3H) the output gate, [3H, 4H) the candidate. This project's (and
torch.nn.LSTM's) are (i, f, g, o), rows of U and W. So, with P the permutation of
4H rows that takes this project's blocks (i, f, g, o) to the course's (i, f, o, g),
Wx = (P U)ᵀ, Wh = (P W)ᵀ, b_course = P b; and dWx = (P dU)ᵀ, and so on.

Checked as the course checks it: the layer against autograd's vector–Jacobian product
of Σ dh ⊙ h for a random upstream dh (never all ones, which hides permutations); the
step on the problem's first step, from the problem's h0 and a random prev_c (never
zero, which hides the forget gate), against the product with a random dnext_h and
dnext_c. The forward's h (next_h, next_c) must match too.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from manual_bptt.checking.cases import Case
from manual_bptt.checking.guard import call
from manual_bptt.checking.styles.base import (
    Gradient,
    Observed,
    Style,
    snapshot,
)

# lstm_backward returns what rnn_backward does: dx, dh0, dWx, dWh, db (keys x, h0, U, W, b)
from manual_bptt.checking.styles.cs231n import KEYS as LAYER_KEYS
from manual_bptt.checking.styles.cs231n import LAYER_NAMES, SPACE
from manual_bptt.lstm import LSTMParams

STEP_NAMES = ("dx", "dprev_h", "dprev_c", "dWx", "dWh", "db")
STEP_KEYS = ("x", "h0", "c0", "U", "W", "b")
RELATION = {
    "U": "dWx = (P dU)ᵀ, P: gates (i, f, g, o) → (i, f, o, g)",
    "W": "dWh = (P dW)ᵀ, P as for dWx",
    "b": "db = P db",
    "c0": "dprev_c: the cell state s_{t−1}'s",
}
COURSE_BLOCKS = (0, 1, 3, 2)  # the course's block k is this project's block COURSE_BLOCKS[k]


def course_rows(H: int) -> np.ndarray:
    """P as an index: rows of this project's (4H, ·) arrays in the course's gate order."""
    return np.concatenate([np.arange(j * H, (j + 1) * H) for j in COURSE_BLOCKS])


def _random(case: Case, salt: int, shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng([case.recipe["seed"], salt])
    return rng.normal(size=shape).astype(case.params.dtype)


def upstream(case: Case) -> np.ndarray:
    """The random upstream gradient dh (N, T, H) of a problem, fixed by its seed."""
    return _random(case, 231, (case.x.shape[1], case.T, case.params.H))


def step_extras(case: Case) -> tuple[np.ndarray, np.ndarray]:
    """The step check's prev_c and dnext_c (N, H) each, random, fixed by the seed."""
    N, H = case.x.shape[1], case.params.H
    return 0.5 * _random(case, 232, (N, H)), _random(case, 233, (N, H))


def _lstm(case: Case) -> LSTMParams:
    if not isinstance(case.params, LSTMParams):
        raise TypeError(f"--style cs231n-lstm checks an LSTM; got {type(case.params).__name__}")
    return case.params


class CS231nLSTMStyle(Style):
    name = "cs231n-lstm"
    summary = "lstm_forward(x, h0, Wx, Wh, b) / lstm_backward(dh, cache), gates (i, f, o, g)"
    gradients = tuple(
        Gradient(key, name, "lstm_backward", RELATION.get(key, ""))
        for key, name in zip(LAYER_KEYS, LAYER_NAMES, strict=True)
    ) + tuple(
        Gradient(f"step:{key}", name, "lstm_step_backward", RELATION.get(key, ""))
        for key, name in zip(STEP_KEYS, STEP_NAMES, strict=True)
    )
    sizes = ("N", "T", "D", "H")  # no output layer
    functions = ("lstm_forward(x, h0, Wx, Wh, b)", "lstm_backward(dh, cache)")
    step_functions = (
        "lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b)",
        "lstm_step_backward(dnext_h, dnext_c, cache)",
    )
    cells = ("lstm",)
    space = replace(SPACE, cells=("lstm",))  # the vanilla style's problems, for the LSTM

    def bind(self, obj: Any, where: str) -> Any:
        return self.bind_functions(obj, where)

    def observe(self, target: Any, case: Case, timeout: float | None) -> Observed:
        from torch_reference.lstm import layer_vjp

        seen = Observed()
        p = _lstm(case)
        rows = course_rows(p.H)
        x = np.ascontiguousarray(case.x.transpose(1, 0, 2))  # (N, T, D)
        N = x.shape[0]
        h0 = np.zeros((N, p.H), p.dtype) if case.h0 is None else case.h0
        weights = (p.U[rows].T.copy(), p.W[rows].T.copy(), p.b[rows].copy())
        dh = upstream(case)
        zero = np.zeros((N, p.H), p.dtype)
        h, _, g = layer_vjp(p, case.x, h0, zero, dh.transpose(1, 0, 2))
        with seen.attempt():
            args = (x, h0, *weights)
            before, dh_before = snapshot(args), dh.copy()
            try:
                forward = call("lstm_forward", target.lstm_forward, *args, timeout=timeout)
                got_h, cache = seen.unpack("lstm_forward", forward, ("h", "cache"))
                seen.outputs["h"] = ("lstm_forward's h", got_h, h.transpose(1, 0, 2))
                returned = call("lstm_backward", target.lstm_backward, dh, cache, timeout=timeout)
                got = seen.unpack("lstm_backward", returned, LAYER_NAMES)
                expected = (g["x"].transpose(1, 0, 2), g["h0"], *self._course(g, rows))
                for key, value, e in zip(LAYER_KEYS, got, expected, strict=True):
                    seen.gradients[key] = (value, e)
            finally:
                self._unchanged(seen, ("x", "h0", "Wx", "Wh", "b"), before, args, "lstm")
                seen.changed("dh", "lstm_backward", dh_before, dh)
        if self.has_steps(target):
            self._observe_step(seen, target, case, p, x, h0, weights, dh, timeout)
        return seen

    def _observe_step(
        self,
        seen: Observed,
        target: Any,
        case: Case,
        p: LSTMParams,
        x: np.ndarray,
        h0: np.ndarray,
        weights: tuple[np.ndarray, ...],
        dh: np.ndarray,
        timeout: float | None,
    ) -> None:
        """lstm_step_forward / lstm_step_backward on the problem's first step."""
        from torch_reference.lstm import layer_vjp

        rows = course_rows(p.H)
        prev_c, dnext_c = step_extras(case)
        dnext_h = dh[:, 0].copy()
        h1, s1, g = layer_vjp(p, case.x[:1], h0, prev_c, dnext_h[None], dnext_c)
        with seen.attempt():
            args = (x[:, 0].copy(), h0.copy(), prev_c, *(w.copy() for w in weights))
            before, upstream_before = snapshot(args), (dnext_h.copy(), dnext_c.copy())
            try:
                forward = call(
                    "lstm_step_forward", target.lstm_step_forward, *args, timeout=timeout
                )
                got_h, got_c, cache = seen.unpack(
                    "lstm_step_forward", forward, ("next_h", "next_c", "cache")
                )
                seen.outputs["step:next_h"] = ("lstm_step_forward's next_h", got_h, h1[0])
                seen.outputs["step:next_c"] = ("lstm_step_forward's next_c", got_c, s1)
                returned = call(
                    "lstm_step_backward",
                    target.lstm_step_backward,
                    dnext_h,
                    dnext_c,
                    cache,
                    timeout=timeout,
                )
                got = seen.unpack("lstm_step_backward", returned, STEP_NAMES)
                expected = (g["x"][0], g["h0"], g["c0"], *self._course(g, rows))
                for key, value, e in zip(STEP_KEYS, got, expected, strict=True):
                    seen.gradients[f"step:{key}"] = (value, e)
            finally:
                names = ("x", "prev_h", "prev_c", "Wx", "Wh", "b")
                self._unchanged(seen, names, before, args, "lstm_step")
                seen.changed("dnext_h", "lstm_step_backward", upstream_before[0], dnext_h)
                seen.changed("dnext_c", "lstm_step_backward", upstream_before[1], dnext_c)

    @staticmethod
    def _course(g: dict[str, np.ndarray], rows: np.ndarray) -> tuple[np.ndarray, ...]:
        """dWx, dWh, db in the course's layout from autograd's dU, dW, db."""
        return g["U"][rows].T, g["W"][rows].T, g["b"][rows]

    @staticmethod
    def _unchanged(
        seen: Observed, names: tuple[str, ...], before: Any, after: Any, pair: str
    ) -> None:
        for name, a, b in zip(names, before, after, strict=True):
            seen.changed(name, f"{pair}_forward or {pair}_backward", a, b)

    def arrays(self, case: Case) -> dict[str, np.ndarray]:
        p = _lstm(case)
        rows = course_rows(p.H)
        h0 = np.zeros((case.x.shape[1], p.H)) if case.h0 is None else case.h0
        prev_c, dnext_c = step_extras(case)
        return {
            "x": case.x.transpose(1, 0, 2),
            "h0": h0,
            "Wx": p.U[rows].T,
            "Wh": p.W[rows].T,
            "b": p.b[rows],
            "dh": upstream(case),
            "prev_c (step check)": prev_c,
            "dnext_c (step check)": dnext_c,
        }


STYLE = CS231nLSTMStyle
