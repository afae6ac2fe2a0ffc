"""--style tutorial: the classic WildML tutorial's class (Britz 2015).

    Cls(word_dim, hidden_dim, bptt_truncate), with attributes U (H, D), V (D, H), W (H, H)
    and bptt(x, y) -> [dU, dV, dW]

for one sequence of token ids x (T,) with targets y (T,) in [0, D); no biases, zero
initial state, tanh, summed loss, and ``bptt_truncate = k`` in the window sense (the
loss at t reaches steps t … max(0, t−k)). verify builds the instance and then sets U,
V, W to the problem's weights. --full passes bptt_truncate = T (k ≥ T−1 is full BPTT).
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
    facts,
    require_callable,
    type_name,
)
from manual_bptt.errors import UsageError


class TutorialStyle(Style):
    name = "tutorial"
    summary = "Cls(word_dim, hidden_dim, bptt_truncate) with U, V, W and bptt(x, y) -> [dU, dV, dW]"
    gradients = (
        Gradient("U", "dU", "bptt"),
        Gradient("V", "dV", "bptt"),
        Gradient("W", "dW", "bptt"),
    )
    sizes = ("T", "D", "H")  # one sequence, K = D
    real_sizes = (
        {"T": 25, "N": 1, "D": 200, "H": 50, "K": 200},
    )  # a small vocabulary; the tutorial uses 8000
    space = Space(
        activations=("tanh",),
        modes=("full", "truncate"),
        batched=(False,),
        tokens=(True,),
        biases=(False,),
        h0=(False,),
        mask=(False,),
        reductions=("sum",),
        max_T=12,
        min_scale=0.1,
        max_scale=2.0,
        same_vocab=True,
    )

    def bind(self, obj: Target, where: str) -> Target:
        require_callable(obj, where, (1, 1, 1), "Cls(word_dim, hidden_dim, bptt_truncate)")
        method = getattr(obj, "bptt", None)
        if method is None:
            raise UsageError(f"{where} has no method bptt(x, y)")
        if facts(obj)["class"]:
            require_callable(method, f"{where}.bptt", (None, None, None), "self.bptt(x, y)")
        return obj

    def observe(self, target: Target, case: Case, seen: Observed) -> Observed:
        import torch_reference

        p = case.params
        twin = self.twin(
            target, case, lambda: torch_reference.bptt(p, case.x, case.y, **case.kwargs()).grads
        )
        k = case.T if case.truncate is None else case.truncate
        made = "Cls(word_dim, hidden_dim, bptt_truncate)"
        with seen.attempt():
            model = seen.call(made, target, p.D, p.H, k, names=("word_dim", "hidden_dim", "k"))
            if seen.get(made, model, "bptt") is None:
                message = f"{made} returned {type_name(model)}, not an object with bptt(x, y)"
                seen.interface.append(message)
                seen.failures[f"{made} returned no model"] = message
                return seen
            for name in ("U", "V", "W"):
                seen.set("the model", model, name, getattr(p, name).copy())
            bptt = seen.get("the model", model, "bptt")
            returned = seen.call("bptt", bptt, case.x, case.y, names=("x", "y"))
            dU, dV, dW = seen.unpack("bptt", returned, ("dU", "dV", "dW"))
            seen.gradients.update(U=(dU, twin["U"]), V=(dV, twin["V"]), W=(dW, twin["W"]))
            for name in ("U", "V", "W"):
                own = seen.get("the model", model, name)
                seen.changed(f"its own {name}", "bptt", getattr(p, name), own)
        return seen

    def arrays(self, case: Case) -> dict[str, np.ndarray]:
        p = case.params
        return {"x": case.x, "y": case.y, "U": p.U, "V": p.V, "W": p.W}


STYLE = TutorialStyle
