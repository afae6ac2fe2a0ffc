"""A reduced long-range experiment: a window shorter than the dependency cannot learn it.

Delay L = 4, 4 symbols (chance 25%), 600 SGD steps, seed 0 (about a second). Measured:
full BPTT and k = 6 ≥ L reach 100%, k = 2 < L stays at 36% (the untrained recurrence
keeps a little of the token by chance). The bounds leave room for BLAS rounding."""

from __future__ import annotations

from manual_bptt.experiment import Task, default_settings, run_experiment


def test_truncation_shorter_than_the_dependency_cannot_learn_it() -> None:
    task = Task(L=4, T=10, hidden=16, steps=600)
    full, short, long = default_settings(task)[:3]
    assert short.truncate is not None
    assert short.truncate < task.L
    assert long.truncate is not None
    assert long.truncate >= task.L
    rows = {r["setting"]: r["accuracy"] for r in run_experiment(task, [full, short, long],
                                                                 show_progress=False)}  # fmt: skip
    assert rows[full.label] >= 0.9
    assert rows[long.label] >= 0.9
    assert rows[short.label] <= 0.5
