"""Measure the differences behind the tolerances of the vanishing-gradient tests.

    python benchmarks/measure_vanishing.py [--examples 1000] [--clip-sets 3000]

Contributions (tests/test_contributions_vs_autograd.py), over random problems drawn by the test
suite's strategies, manual_bptt.contributions against torch_reference.contributions:
  - whole array: ‖a − e‖∞ / ‖e‖∞ of the (T, T, …) contributions of every parameter
    (the FLOAT64 policy), cases(max_T=12, max_N=3, max_dim=6), every weight scale to 4;
  - block by block: the worst ‖a_b − e_b‖∞ / ‖e_b‖∞ over single [t, k] blocks of U, W
    and b (δ x_kᵀ, δ h_{k−1}ᵀ and δ themselves), one sequence, weight scale 0.1 to 1
    (the BLOCKWISE tolerance).
Clipping (tests/test_clipping_vs_torch.py): clip_grad_norm against torch.nn.utils.clip_grad_norm_
on random gradient sets (1 to 5 arrays of up to 1,600 entries, scales 1e-6 to 1e3),
the worst relative difference of the norm and of the clipped entries, in units in the
last place of float64 and of float32.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings

import torch_reference
from manual_bptt.cases import Case
from manual_bptt.checking.strategies import cases
from manual_bptt.vanishing.clipping import clip_grad_norm
from manual_bptt.vanishing.decomposition import PARAMS, contributions

BLOCKWISE_PARAMS = ("U", "W", "b")


def relative(a: np.ndarray, e: np.ndarray) -> float:
    """‖a − e‖∞ / ‖e‖∞ (0 when both are zero, inf when only e is)."""
    ref, diff = np.abs(e).max(initial=0.0), np.abs(a - e).max(initial=0.0)
    if ref == 0:
        return 0.0 if diff == 0 else float("inf")
    return float(diff / ref)


def worst_contributions(strategy, names: tuple[str, ...], blockwise: bool, examples: int) -> dict:
    """The worst relative difference of manual from twin contributions over ``examples``
    cases: whole arrays, or (blockwise) each [t, k] block against its own size."""
    worst = {"error": 0.0, "where": "", "cases": 0, "arrays": 0}

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
    @given(strategy)
    def run(case: Case) -> None:
        worst["cases"] += 1
        for param in names:
            if param == "x" and np.issubdtype(case.x.dtype, np.integer):
                continue
            a = case.call(contributions, param=param)
            e = case.call(torch_reference.contributions, param=param)
            worst["arrays"] += 1
            T = case.T
            if blockwise:
                pairs = zip(a.reshape(T * T, -1), e.reshape(T * T, -1), strict=True)
                error = max(relative(ab, eb) for ab, eb in pairs)
            else:
                error = relative(a, e)
            if error > worst["error"]:
                worst.update(error=error, where=f"{param} in {case.describe()}")

    run()
    return worst


def worst_clipping(dtype: type, sets: int, seed: int = 0) -> tuple[float, float]:
    """(worst relative difference of the norm, of the clipped entries), in ulps."""
    rng = np.random.default_rng(seed)
    worst_norm = worst_entry = 0.0
    tiny = np.finfo(dtype).tiny
    for _ in range(sets):
        grads = {
            f"g{j}": np.array(rng.normal(size=tuple(rng.integers(1, 41, size=rng.integers(1, 3))))
                              * 10 ** rng.uniform(-6, 3), dtype=dtype)
            for j in range(rng.integers(1, 6))
        }  # fmt: skip
        max_norm = float(10 ** rng.uniform(-3, 3))
        clipped, norm = clip_grad_norm(grads, max_norm)
        tensors = []
        for g in grads.values():
            p = torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype, requires_grad=True)
            p.grad = torch.tensor(g)
            tensors.append(p)
        torch_norm = float(torch.nn.utils.clip_grad_norm_(tensors, max_norm))
        worst_norm = max(worst_norm, abs(norm - torch_norm) / torch_norm)
        for got, p in zip(clipped.values(), tensors, strict=True):
            want = p.grad.numpy()
            worst_entry = max(worst_entry,
                              float(np.max(np.abs(got - want) / np.maximum(np.abs(want), tiny))))  # fmt: skip
    eps = float(np.finfo(dtype).eps)
    return worst_norm / eps, worst_entry / eps


def main() -> None:
    """Print the contribution and clipping measurements (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--clip-sets", type=int, default=3000)
    args = parser.parse_args()
    n = args.examples
    rows = [
        ("contributions, whole array, full range",
         worst_contributions(cases(max_T=12, max_N=3, max_dim=6), PARAMS, False, n)),
        ("contributions, block by block, N = 1, scale 0.1 to 1",
         worst_contributions(cases(max_T=12, max_N=1, max_dim=5, min_scale=0.1, max_scale=1.0),
                             BLOCKWISE_PARAMS, True, n)),
    ]  # fmt: skip
    for label, w in rows:
        print(f"{label}: worst {w['error']:.2e} over {w['cases']} cases "
              f"({w['arrays']} arrays); {w['where']}")  # fmt: skip
    for dtype in (np.float64, np.float32):
        norm_ulps, entry_ulps = worst_clipping(dtype, args.clip_sets)
        print(f"clip_grad_norm against torch, {np.dtype(dtype).name}, {args.clip_sets} sets: "
              f"norm {norm_ulps:.1f} ulp, clipped entries {entry_ulps:.1f} ulp")  # fmt: skip


if __name__ == "__main__":
    main()
