"""An independent check that leans on nobody's autograd: central differences of L.

∂L/∂θ_i ≈ (L(θ + ε e_i) − L(θ − ε e_i)) / 2ε in float64, for every entry of every
argument, on small random cases, against manual_bptt.bptt's full-BPTT gradient.
(Truncated gradients are not derivatives of L, so only full BPTT is checked here;
truncation is pinned by the twin and by the metamorphic properties.)
"""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import given

import manual_bptt
from manual_bptt.cases import Case
from manual_bptt.compare import FINITE_DIFFERENCE, assert_grads_close
from manual_bptt.strategies import cases

EPS = 1e-6  # balances truncation error O(ε²) against round-off O(1e-16·|L|/ε)


def central_differences(case: Case) -> dict[str, np.ndarray]:
    """Every entry of every differentiable argument, perturbed one at a time."""
    kwargs = {k: v for k, v in case.kwargs().items() if k not in ("truncate", "chunk")}
    arrays = dict(case.params.as_dict())
    h0 = np.zeros((case.y.shape[1], case.params.H)) if case.y.ndim == 2 else np.zeros(case.params.H)
    arrays["h0"] = h0 if case.h0 is None else case.h0
    if np.issubdtype(case.x.dtype, np.floating):
        arrays["x"] = case.x

    def loss_at(name: str, value: np.ndarray) -> float:
        current = {**arrays, name: value}
        params = manual_bptt.Params(**{k: current[k] for k in "UWVbc"})
        return manual_bptt.loss(
            params, current.get("x", case.x), case.y, **{**kwargs, "h0": current["h0"]}
        )

    grads = {}
    for name, value in arrays.items():
        g = np.zeros_like(value)
        for i in np.ndindex(value.shape):
            plus, minus = value.copy(), value.copy()
            plus[i] += EPS
            minus[i] -= EPS
            g[i] = (loss_at(name, plus) - loss_at(name, minus)) / (2 * EPS)
        grads[name] = g
    return grads


@given(cases(max_T=6, max_N=2, max_dim=4, max_scale=2.0, truncation=False))
def test_full_bptt_equals_central_differences(case: Case) -> None:
    case = dataclasses.replace(case, truncate=None, chunk=None)
    manual = manual_bptt.bptt(case.params, case.x, case.y, **case.kwargs())
    assert_grads_close(manual.grads, central_differences(case), FINITE_DIFFERENCE,
                       case.reproduction())  # fmt: skip
