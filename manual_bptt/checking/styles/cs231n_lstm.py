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

import numpy as np

from manual_bptt.cases import Case
from manual_bptt.checking.styles.base import (
    Gradient,
    Observed,
    Style,
    Target,
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
    real_sizes = ({"T": 20, "N": 10, "D": 32, "H": 32, "K": 1},)  # the assignment's own test sizes
    functions = ("lstm_forward(x, h0, Wx, Wh, b)", "lstm_backward(dh, cache)")
    step_functions = (
        "lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b)",
        "lstm_step_backward(dnext_h, dnext_c, cache)",
    )
    cells = ("lstm",)
    space = replace(SPACE, cells=("lstm",))  # the vanilla style's problems, for the LSTM

    def bind(self, obj: Target, where: str) -> Target:
        return self.bind_functions(obj, where)

    def observe(self, target: Target, case: Case, seen: Observed) -> Observed:
        from torch_reference.lstm import layer_vjp

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
            forward = seen.call(
                "lstm_forward",
                seen.get("lstm_forward", target, "lstm_forward"),
                x,
                h0,
                *weights,
                names=("x", "h0", "Wx", "Wh", "b"),
            )
            got_h, cache = seen.unpack("lstm_forward", forward, ("h", "cache"))
            seen.outputs["h"] = ("lstm_forward's h", got_h, h.transpose(1, 0, 2))
            backward = seen.get("lstm_backward", target, "lstm_backward")
            returned = seen.call("lstm_backward", backward, dh, cache, names=("dh", "cache"))
            got = seen.unpack("lstm_backward", returned, LAYER_NAMES)
            expected = (g["x"].transpose(1, 0, 2), g["h0"], *self._course(g, rows))
            for key, value, e in zip(LAYER_KEYS, got, expected, strict=True):
                seen.gradients[key] = (value, e)
        if self.has_steps(target):
            self._observe_step(seen, target, case, p, x, h0, weights, dh)
        return seen

    def _observe_step(
        self,
        seen: Observed,
        target: Target,
        case: Case,
        p: LSTMParams,
        x: np.ndarray,
        h0: np.ndarray,
        weights: tuple[np.ndarray, ...],
        dh: np.ndarray,
    ) -> None:
        """lstm_step_forward / lstm_step_backward on the problem's first step."""
        from torch_reference.lstm import layer_vjp

        rows = course_rows(p.H)
        prev_c, dnext_c = step_extras(case)
        dnext_h = dh[:, 0].copy()
        h1, s1, g = layer_vjp(p, case.x[:1], h0, prev_c, dnext_h[None], dnext_c)
        with seen.attempt():
            forward = seen.call(
                "lstm_step_forward",
                seen.get("lstm_step_forward", target, "lstm_step_forward"),
                x[:, 0].copy(),
                h0,
                prev_c,
                *weights,
                names=("x", "prev_h", "prev_c", "Wx", "Wh", "b"),
            )
            got_h, got_c, cache = seen.unpack(
                "lstm_step_forward", forward, ("next_h", "next_c", "cache")
            )
            seen.outputs["step:next_h"] = ("lstm_step_forward's next_h", got_h, h1[0])
            seen.outputs["step:next_c"] = ("lstm_step_forward's next_c", got_c, s1)
            returned = seen.call(
                "lstm_step_backward",
                seen.get("lstm_step_backward", target, "lstm_step_backward"),
                dnext_h,
                dnext_c,
                cache,
                names=("dnext_h", "dnext_c", "cache"),
            )
            got = seen.unpack("lstm_step_backward", returned, STEP_NAMES)
            expected = (g["x"][0], g["h0"], g["c0"], *self._course(g, rows))
            for key, value, e in zip(STEP_KEYS, got, expected, strict=True):
                seen.gradients[f"step:{key}"] = (value, e)

    @staticmethod
    def _course(g: dict[str, np.ndarray], rows: np.ndarray) -> tuple[np.ndarray, ...]:
        """dWx, dWh, db in the course's layout from autograd's dU, dW, db."""
        return g["U"][rows].T, g["W"][rows].T, g["b"][rows]

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
