"""Measure the differences behind the tolerance policy in manual_bptt/compare.py.

    python benchmarks/measure_tolerances.py [--examples 2000] [--cell rnn|lstm|gru]

For random problems drawn by the test suite's strategies, the worst difference of
manual_bptt.bptt from the autograd twin (float64 over the full range, float32 on its
bounded domain) and from central differences (float64, full and truncated BPTT),
each as |Δ| / max(1, ‖reference‖∞). The tolerances must sit well above these.
A fourth row shows why float32 has a bounded domain: float32 gradients against the
same problem's float64 gradients at weight scales 2.5 to 3 and T up to 40.

With --cell lstm or gru, the gated cell's rows instead (the GRU draws both reset
variants; T ≤ 24 in float64 as in its tests, float32 on its bounded domain), and two more: the twin against torch.nn.LSTM /
torch.nn.GRU (full BPTT; the GRU's "after" variant, which is nn.GRU's) in float64 and
in float32 on the bounded domain, each as |Δ| / ‖reference‖∞ too.
"""

from __future__ import annotations

import argparse

import numpy as np
from hypothesis import HealthCheck, given, settings

import manual_bptt
import torch_reference
from manual_bptt.cases import Case, make_case
from manual_bptt.checking.gradcheck import bptt_objective, central_differences
from manual_bptt.checking.strategies import cases, float32_cases


def worst_over(strategy, reference, examples: int) -> tuple[float, str, int]:
    """(worst |Δ|/max(1, ‖ref‖∞), where, examples run) of manual against ``reference``."""
    worst = [0.0, "", 0]

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
    @given(strategy)
    def run(case: Case) -> None:
        got, expected = reference(case)
        worst[2] += 1
        for k, e in expected.items():
            e = np.asarray(e, np.float64)
            share = np.abs(np.asarray(got[k], np.float64) - e).max() / max(1.0, np.abs(e).max())
            if share > worst[0]:
                worst[:2] = [float(share), f"{k} in {case.describe()}"]

    run()
    return worst[0], worst[1], worst[2]


def against_twin(case: Case) -> tuple[dict, dict]:
    """(manual's gradients, the twin's) for one case."""
    manual = case.call(manual_bptt.bptt)
    return manual.grads, case.call(torch_reference.bptt).grads


def against_central_differences(case: Case) -> tuple[dict, dict]:
    """(manual's gradients, central differences of the same objective) for one case."""
    manual = case.call(manual_bptt.bptt)
    objective = case.call(bptt_objective)
    return objective.batched_grads(manual.grads), central_differences(objective.f, objective.arrays)


def against_float64(case: Case) -> tuple[dict, dict]:
    """(manual's float32 gradients, manual's float64 gradients of the same problem)."""
    manual = case.call(manual_bptt.bptt)
    wide = make_case(**{**case.recipe, "dtype": "float64"})
    return manual.grads, wide.call(manual_bptt.bptt).grads


def twin_against_torch_nn(case: Case) -> tuple[dict, dict]:
    """(the twin's gradients, torch.nn's module's) for one full-BPTT batched case."""
    from torch_reference.nn import TorchNN

    twin = case.call(torch_reference.bptt).grads
    return twin, TorchNN.on_case(case).result().grads


def main() -> None:
    """Print the worst differences (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--cell", choices=["rnn", "lstm", "gru"], default="rnn")
    args = parser.parse_args()
    n, cell = args.examples, args.cell
    gated = {} if cell == "rnn" else {"cell": cell, "max_T": 24}
    rows = [
        ("float64 vs autograd", cases(**gated), against_twin, n),
        ("float32 vs autograd (bounded)", float32_cases(**{k: v for k, v in gated.items()
                                                           if k == "cell"}), against_twin, n),
        ("central differences", cases(max_T=6, max_N=2, max_dim=4, max_scale=2.0,
                                      **{k: v for k, v in gated.items() if k == "cell"}),
         against_central_differences, max(1, n // 5)),
        ("float32 outside its domain", cases(dtype="float32", min_scale=2.5, max_scale=3.0),
         against_float64, max(1, n // 5)),
    ]  # fmt: skip
    if cell != "rnn":
        nn_only = {"cell": cell, "resets": ("after",), "modes": ("full",), "batched": True,
                   "max_T": 24}  # fmt: skip
        rows += [
            (f"twin vs torch.nn.{cell.upper()} float64", cases(**nn_only),
             twin_against_torch_nn, n),
            (f"twin vs torch.nn.{cell.upper()} float32 (bounded)",
             float32_cases(**{k: v for k, v in nn_only.items() if k != "max_T"}),
             twin_against_torch_nn, n),
        ]  # fmt: skip
    for label, strategy, reference, examples in rows:
        share, where, ran = worst_over(strategy, reference, examples)
        print(f"{label}: worst |Δ|/max(1, ‖ref‖∞) = {share:.2e} over {ran} examples ({where})")


if __name__ == "__main__":
    main()
