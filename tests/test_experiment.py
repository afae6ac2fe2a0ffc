"""A reduced long-range experiment: a window shorter than the dependency cannot learn it.

Delay L = 6, 4 symbols (chance 25%), T = 14, H = 24, 800 SGD steps, tanh; full BPTT,
a window k = 3 < L and a window k = 8 ≥ L (two to three seconds). Measured with
REDUCED's seed set to 0, 1, …, 9: full BPTT 92.9–96.1%, k = 8 93.1–96.9%, k = 3
30.2–42.7%. The short window is above chance because it can still learn to read out
and carry what the state entering its window happens to hold about the token; it never
comes near the others. The bounds below sit outside every measured seed.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from manual_bptt.vanishing.experiment import (
    Task,
    cell_settings,
    cell_table_task,
    default_settings,
    initial_params,
    make_batch,
    run_experiment,
    train,
)

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


# The three cells on the recall-the-first-token task of the cell table (L = 6, H = 16,
# batch 32, 300 Adam steps, about a second a run). Measured on seeds 0–3: full BPTT
# reaches 100% for the LSTM with forget bias +1 and for the GRU on every seed (the tanh
# RNN 47% on seed 0, 100% on the others, so it is left out here); a window k = 3 < L
# reaches 28–93%, since at L = 6 the untrained state still holds the first token when
# the window opens: the short window's failure shows at longer L (README's table).
def reduced_cell_task(seed: int) -> Task:
    return replace(cell_table_task(6, seed, steps=300), hidden=16, batch=32)


@pytest.mark.parametrize(("cell", "forget_bias"), [("lstm", 1.0), ("gru", 0.0)])
def test_the_gated_cells_learn_the_reduced_recall_with_full_bptt(
    cell: str, forget_bias: float
) -> None:
    task = reduced_cell_task(0)
    full = cell_settings(task, cell, forget_bias)[0]
    assert full.truncate is None
    accuracy, _ = train(task, full)
    assert accuracy >= 0.9


def test_recall_the_first_token_scores_the_last_step_only() -> None:
    task = reduced_cell_task(0)
    x, y, mask = make_batch(task, np.random.default_rng(0))
    assert x.shape == (task.L + 1, task.batch)
    np.testing.assert_array_equal(y[-1], x[0])
    assert mask[-1].all()
    assert not mask[:-1].any()


def test_the_forget_bias_is_the_lstms_f_rows_only() -> None:
    task = reduced_cell_task(0)
    plain = initial_params(task, cell_settings(task, "lstm")[0])
    biased = initial_params(task, cell_settings(task, "lstm", 1.0)[0])
    H = task.hidden
    np.testing.assert_array_equal(
        biased.b - plain.b, np.r_[np.zeros(H), np.ones(H), np.zeros(2 * H)]
    )
    with pytest.raises(ValueError, match="forget_bias is the LSTM's"):
        initial_params(task, replace(cell_settings(task, "gru")[0], forget_bias=1.0))
