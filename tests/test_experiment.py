"""A reduced long-range experiment: a window shorter than the dependency cannot learn it.

Delay L = 6, 4 symbols (chance 25%), T = 14, H = 24, 800 SGD steps, tanh; full BPTT,
a window k = 3 < L and a window k = 8 ≥ L (two to three seconds). Measured with
REDUCED's seed set to 0, 1, …, 9: full BPTT 92.9–96.1%, k = 8 93.1–96.9%, k = 3
30.2–42.7%. The short window is above chance because it can still learn to read out
and carry what the state entering its window happens to hold about the token; it never
comes near the others. The bounds below sit outside every measured seed.
"""

from __future__ import annotations

import numpy as np

from manual_bptt.vanishing.experiment import Task, default_settings, make_batch, run_experiment

REDUCED = Task(L=6, T=14, hidden=24, steps=800, seed=0)


def test_truncation_shorter_than_the_dependency_cannot_learn_it() -> None:
    full, short, long = default_settings(REDUCED)[:3]
    assert short.truncate is not None
    assert short.truncate < REDUCED.L
    assert long.truncate is not None
    assert long.truncate >= REDUCED.L
    rows = run_experiment(REDUCED, [full, short, long], show_progress=False)
    acc = {r["setting"]: r["accuracy"] for r in rows}
    assert acc[full.label] >= 0.85
    assert acc[long.label] >= 0.85
    assert acc[short.label] <= 0.6
    assert acc[full.label] - acc[short.label] >= 0.3


def test_the_target_is_the_token_L_steps_earlier_and_earlier_steps_are_masked() -> None:
    x, y, mask = make_batch(REDUCED, np.random.default_rng(0))
    assert x.shape == y.shape == mask.shape == (REDUCED.T, REDUCED.batch)
    np.testing.assert_array_equal(y[REDUCED.L :], x[: -REDUCED.L])
    assert not mask[: REDUCED.L].any()
    assert mask[REDUCED.L :].all()
    assert x.min() >= 0
    assert x.max() < REDUCED.symbols
