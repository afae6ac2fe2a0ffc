"""--style cs231n: the recurrent layer of Stanford CS231n's assignment 3 (rnn_layers.py).

A module (or a namespace object) defining, batch-major, with tanh:

    rnn_forward(x, h0, Wx, Wh, b) -> (h, cache)      x (N, T, D), h0 (N, H), Wx (D, H),
                                                     Wh (H, H), b (H,); h (N, T, H)
    rnn_backward(dh, cache) -> (dx, dh0, dWx, dWh, db)   dh (N, T, H), the upstream gradient

and, if both are defined, the single step they are built from:

    rnn_step_forward(x, prev_h, Wx, Wh, b) -> (next_h, cache)    x (N, D), prev_h (N, H)
    rnn_step_backward(dnext_h, cache) -> (dx, dprev_h, dWx, dWh, db)

In docs/derivation.md's notation Wx = Uᵀ and Wh = Wᵀ (row vectors: h_t = tanh(x_t Wx + h_{t−1} Wh
+ b)). The layer is checked on its own, as the course checks it: the expected gradients
are autograd's vector–Jacobian product of Σ dh ⊙ h for a random upstream dh, never all
ones (which hides transpositions). The step functions are checked on the problem's first
step with its own random dnext_h. The forward's h (and next_h) must match too.
"""

from __future__ import annotations

import numpy as np

from manual_bptt.cases import Case
from manual_bptt.checking.strategies import Space
from manual_bptt.checking.styles.base import (
    Gradient,
    Observed,
    Style,
    Target,
)
from manual_bptt.inputs import require_vanilla

LAYER_NAMES = ("dx", "dh0", "dWx", "dWh", "db")
STEP_NAMES = ("dx", "dprev_h", "dWx", "dWh", "db")
KEYS = ("x", "h0", "U", "W", "b")  # the project's names, in the order of the names above
RELATIONS = ("", "", "dWx = dUᵀ", "dWh = dWᵀ", "")


# The problems the course's batch-major layers take: tanh, full BPTT, float inputs (N, T,
# D), no mask, summed loss. cs231n_lstm draws the same for the LSTM.
SPACE = Space(
    activations=("tanh",),
    modes=("full",),
    batched=(True,),
    tokens=(False,),
    biases=(False, True),
    h0=(False, True),
    mask=(False,),
    reductions=("sum",),
    max_T=8,
    max_N=3,
    max_dim=6,
    max_H=6,
    min_scale=0.1,
    max_scale=2.0,
    same_vocab=True,
)


def upstream(case: Case) -> np.ndarray:
    """The random upstream gradient dh (N, T, H) of a problem, fixed by its seed."""
    rng = np.random.default_rng([case.recipe["seed"], 231])
    T, N, H = case.T, case.x.shape[1], case.params.H
    return rng.normal(size=(N, T, H)).astype(case.params.dtype)


class CS231nStyle(Style):
    name = "cs231n"
    summary = "rnn_forward(x, h0, Wx, Wh, b) / rnn_backward(dh, cache), batch-major (+ step pair)"
    gradients = tuple(
        Gradient(key, name, "rnn_backward", rel)
        for key, name, rel in zip(KEYS, LAYER_NAMES, RELATIONS, strict=True)
    ) + tuple(
        Gradient(f"step:{key}", name, "rnn_step_backward", rel)
        for key, name, rel in zip(KEYS, STEP_NAMES, RELATIONS, strict=True)
    )
    sizes = ("N", "T", "D", "H")  # no output layer
    real_sizes = ({"T": 20, "N": 10, "D": 32, "H": 32, "K": 1},)  # the assignment's own test sizes
    functions = ("rnn_forward(x, h0, Wx, Wh, b)", "rnn_backward(dh, cache)")
    step_functions = ("rnn_step_forward(x, prev_h, Wx, Wh, b)", "rnn_step_backward(dnext_h, cache)")
    space = SPACE

    def bind(self, obj: Target, where: str) -> Target:
        return self.bind_functions(obj, where)

    def observe(self, target: Target, case: Case, seen: Observed) -> Observed:
        from torch_reference.network import hidden_states_vjp

        p = require_vanilla(case.params, "this style")
        x = np.ascontiguousarray(case.x.transpose(1, 0, 2))  # (N, T, D)
        h0 = np.zeros((x.shape[0], p.H), p.dtype) if case.h0 is None else case.h0
        dh = upstream(case)
        h, grads = hidden_states_vjp(p, case.x, h0, dh.transpose(1, 0, 2))
        expected = (
            grads["x"].transpose(1, 0, 2),
            grads["h0"],
            grads["U"].T,
            grads["W"].T,
            grads["b"],
        )
        self._run(
            seen,
            target,
            "rnn_forward",
            "rnn_backward",
            "h",
            "",
            (x, h0, p.U.T.copy(), p.W.T.copy(), p.b.copy()),
            dh,
            h.transpose(1, 0, 2),
            expected,
        )
        if self.has_steps(target):
            h1, g1 = hidden_states_vjp(p, case.x[:1], h0, dh[:, :1].transpose(1, 0, 2))
            expected1 = (g1["x"][0], g1["h0"], g1["U"].T, g1["W"].T, g1["b"])
            self._run(
                seen,
                target,
                "rnn_step_forward",
                "rnn_step_backward",
                "next_h",
                "step:",
                (x[:, 0].copy(), h0.copy(), p.U.T.copy(), p.W.T.copy(), p.b.copy()),
                dh[:, 0].copy(),
                h1[0],
                expected1,
            )
        return seen

    def _run(
        self,
        seen: Observed,
        target: Target,
        fwd: str,
        bwd: str,
        out: str,
        prefix: str,
        args: tuple[np.ndarray, ...],
        dh: np.ndarray,
        h: np.ndarray,
        expected: tuple[np.ndarray, ...],
    ) -> None:
        """Call one forward/backward pair and record h and the five gradients."""
        names = ("x", "h0" if not prefix else "prev_h", "Wx", "Wh", "b")
        upstream_name = "dh" if not prefix else "dnext_h"
        with seen.attempt():
            forward = seen.call(fwd, seen.get(fwd, target, fwd), *args, names=names)
            got_h, cache = seen.unpack(fwd, forward, (out, "cache"))
            seen.outputs[f"{prefix}{out}"] = (f"{fwd}'s {out}", got_h, h)
            backward = seen.get(bwd, target, bwd)
            returned = seen.call(bwd, backward, dh, cache, names=(upstream_name, "cache"))
            got = seen.unpack(bwd, returned, STEP_NAMES if prefix else LAYER_NAMES)
            for key, g, e in zip(KEYS, got, expected, strict=True):
                seen.gradients[prefix + key] = (g, e)

    def arrays(self, case: Case) -> dict[str, np.ndarray]:
        p = require_vanilla(case.params, "this style")
        h0 = np.zeros((case.x.shape[1], p.H)) if case.h0 is None else case.h0
        return {
            "x": case.x.transpose(1, 0, 2),
            "h0": h0,
            "Wx": p.U.T,
            "Wh": p.W.T,
            "b": p.b,
            "dh": upstream(case),
        }


STYLE = CS231nStyle
