"""A truncated objective's shared runs compute the function its docstring defines.

gradcheck.bptt_objective evaluates f(θ') = Σ_t E_t(steps r(t) … t run with θ' from
S_{r(t)}) by sharing runs: the losses with the same r(t) read their logits from one
run, and runs of the same length go side by side as one batch. Here f is computed the
plain way, one run per loss through manual_bptt.forward, and the two must agree, for
every cell, float inputs and token ids, a mask, both reductions, and truncations whose
windows and chunks fit T evenly, raggedly, or not at all (k ≥ T).
"""

from __future__ import annotations

import numpy as np
import pytest

import manual_bptt
from manual_bptt import init_params
from manual_bptt.checking.gradcheck import bptt_objective
from manual_bptt.crossentropy import log_softmax

# Both sides sum the same per-step losses in a different order (per run against per
# loss), and the batched products may round differently: a few units of float64's
# round-off in a loss of order 10 (measured: at most 2.1e-15 relative).
RTOL = 1e-13
T, N, D, H, K = 7, 2, 4, 3, 5
TRUNCATIONS = [
    {"truncate": 0},
    {"truncate": 1},
    {"truncate": 3},
    {"truncate": T + 2},
    {"chunk": 1},
    {"chunk": 3},  # 3, 3 and a ragged last chunk of 1
    {"chunk": T},
    {"chunk": T + 4},
]


def _per_loss(params, values, x, y, mask, scale, reach, frozen) -> float:
    """f by its definition: one run per loss t, from h0 (and c0) when r(t) = 0, else
    from the states of the unperturbed forward pass entering step r(t)."""
    p = params.with_arrays(**{k: values[k] for k in params.NAMES})
    xs = values.get("x", x)
    total = 0.0
    for t, r in enumerate(reach):
        start = {"h0": values["h0"] if r == 0 else frozen["h"][r]}
        if "c0" in values:
            start["c0"] = values["c0"] if r == 0 else frozen["s"][r]
        o = manual_bptt.forward(p, xs[r : t + 1], **start).o[-1]  # (N, K)
        picked = np.take_along_axis(log_softmax(o), y[t][:, None], axis=-1)[:, 0]
        total += -scale * float((mask[t] * picked).sum())
    return total


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("tokens", [False, True], ids=["floats", "tokens"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize(
    "truncation", TRUNCATIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items())
)
def test_shared_runs_give_the_per_loss_objective(cell, tokens, reduction, truncation) -> None:
    rng = np.random.default_rng(7)
    params = init_params(D, H, K, cell=cell, seed=2)
    x = rng.integers(0, D, (T, N)) if tokens else rng.normal(size=(T, N, D))
    y = rng.integers(0, K, (T, N))
    mask = rng.random((T, N)) > 0.25
    objective = bptt_objective(params, x, y, mask=mask, reduction=reduction, **truncation)
    k = truncation.get("truncate")
    chunk = truncation.get("chunk")
    reach = [max(0, t - k) if k is not None else (t // chunk) * chunk for t in range(T)]
    unperturbed = manual_bptt.forward(params, x)  # S_s: the states entering each step
    frozen = {
        "h": np.concatenate([unperturbed.h0[None], unperturbed.h[:-1]]),
        "s": None
        if unperturbed.s is None
        else np.concatenate([np.zeros((1, N, H)), unperturbed.s[:-1]]),
    }
    scale = 1.0 / mask.sum() if reduction == "mean" else 1.0
    for _ in range(2):  # a point away from θ, where frozen states and h0 differ
        values = {k: v + 0.3 * rng.normal(size=v.shape) for k, v in objective.arrays.items()}
        expected = _per_loss(params, values, x, y, mask, scale, reach, frozen)
        assert objective.f(values) == pytest.approx(expected, rel=RTOL, abs=0)
