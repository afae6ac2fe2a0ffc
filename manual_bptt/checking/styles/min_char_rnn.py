"""--style min-char-rnn: the loss function of Karpathy's min-char-rnn.py (2015).

    lossFun(inputs, targets, hprev) -> loss, dWxh, dWhh, dWhy, dbh, dby, h_last

inputs, targets: lists of T ints in [0, V); hprev (H, 1). The function reads its weights
from its module's globals, as the original does: Wxh (H, V), Whh (H, H), Why (V, H),
bh (H, 1), by (V, 1), and vocab_size = V, hidden_size = H. verify sets all seven before
each call and restores what was there after it. Biases are columns; in the notation of
docs/derivation.md Wxh = U, Whh = W, Why = V, bh = b, by = c, hprev = h0, with one-hot inputs
(D = K = V), tanh, the summed cross-entropy and full BPTT over the sequence.

The original clips every gradient to [−5, 5] inside lossFun (against exploding
gradients). So here the expected gradients are clipped the same way by default
(option clip_value=5.0; None compares the true gradients). The returned loss and
h_last (the state after the last step, (H, 1)) are checked too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from manual_bptt.cases import Case
from manual_bptt.checking.strategies import Space
from manual_bptt.checking.styles.base import (
    Gradient,
    Observed,
    Style,
    Target,
    facts,
    require_callable,
)
from manual_bptt.errors import UsageError
from manual_bptt.inputs import require_vanilla

RETURNS = ("loss", "dWxh", "dWhh", "dWhy", "dbh", "dby", "h_last")
DEFAULT_CLIP = 5.0  # min-char-rnn.py: np.clip(dparam, -5, 5, out=dparam)


class MinCharRNNStyle(Style):
    name = "min-char-rnn"
    summary = "lossFun(inputs, targets, hprev) reading Wxh, Whh, Why, bh, by from its globals"
    gradients = (
        Gradient("U", "dWxh", "lossFun", "dWxh = dU"),
        Gradient("W", "dWhh", "lossFun", "dWhh = dW"),
        Gradient("V", "dWhy", "lossFun", "dWhy = dV"),
        Gradient("b", "dbh", "lossFun", "dbh = db as a column (H, 1)"),
        Gradient("c", "dby", "lossFun", "dby = dc as a column (V, 1)"),
    )
    sizes = ("T", "D", "H")  # one sequence, V = D = K
    real_sizes = (
        {"T": 25, "N": 1, "D": 60, "H": 100, "K": 60},
    )  # the original's seq_length, hidden_size, a text's alphabet
    space = Space(
        activations=("tanh",),
        modes=("full",),
        batched=(False,),
        tokens=(True,),
        biases=(False, True),
        h0=(False, True),
        mask=(False,),
        reductions=("sum",),
        max_T=10,
        max_dim=6,
        max_H=6,
        min_scale=0.1,
        max_scale=2.0,
        same_vocab=True,
    )
    option_names = ("clip_value",)

    @property
    def clip_value(self) -> float | None:
        clip: float | None = self.options.get("clip_value", DEFAULT_CLIP)
        return clip

    def bind(self, obj: Target, where: str) -> Target:
        require_callable(obj, where, (None, None, None), "lossFun(inputs, targets, hprev)")
        if not facts(obj)["function"]:
            raise UsageError(
                f"{where} is not a Python function, so it has no module globals to read its weights from"
            )
        return obj

    def observe(self, target: Target, case: Case, seen: Observed) -> Observed:
        import torch_reference
        from torch_reference.network import hidden_states_vjp

        p = require_vanilla(case.params, "this style")
        hprev = np.zeros((p.H, 1), p.dtype) if case.h0 is None else case.h0[:, None].copy()

        def answer() -> tuple[Any, np.ndarray]:
            onehot = np.eye(p.D, dtype=p.dtype)[case.x][:, None, :]  # (T, 1, V)
            h, _ = hidden_states_vjp(p, onehot, hprev.T, np.zeros((case.T, 1, p.H), p.dtype))
            return torch_reference.bptt(p, case.x, case.y, h0=hprev[:, 0]), h

        twin, h = self.twin(target, case, answer)
        clip = self.clip_value
        expected = [twin.grads[k] for k in ("U", "W", "V")]
        expected += [twin.grads["b"][:, None], twin.grads["c"][:, None]]
        if clip is not None:
            expected = [np.clip(e, -clip, clip) for e in expected]
        weights = {
            "Wxh": p.U.copy(),
            "Whh": p.W.copy(),
            "Why": p.V.copy(),
            "bh": p.b[:, None].copy(),
            "by": p.c[:, None].copy(),
            "vocab_size": p.D,
            "hidden_size": p.H,
        }
        inputs, targets = [int(t) for t in case.x], [int(t) for t in case.y]
        with seen.attempt():
            returned = seen.call(
                "lossFun",
                target,
                inputs,
                targets,
                hprev,
                names=("inputs", "targets", "hprev"),
                module_globals=weights,
            )
            loss, *grads, h_last = seen.unpack("lossFun", returned, RETURNS)
            for gradient, g, e in zip(self.gradients, grads, expected, strict=True):
                seen.gradients[gradient.key] = (g, e)
            seen.outputs["loss"] = ("lossFun's loss", loss, np.asarray(twin.loss))
            seen.outputs["h_last"] = ("lossFun's h_last", h_last, h[-1, 0][:, None])
        return seen

    def arrays(self, case: Case) -> dict[str, Any]:
        p = require_vanilla(case.params, "this style")
        hprev = np.zeros((p.H, 1)) if case.h0 is None else case.h0[:, None]
        return {
            "inputs": case.x,
            "targets": case.y,
            "hprev": hprev,
            "Wxh": p.U,
            "Whh": p.W,
            "Why": p.V,
            "bh": p.b[:, None],
            "by": p.c[:, None],
        }


STYLE = MinCharRNNStyle
