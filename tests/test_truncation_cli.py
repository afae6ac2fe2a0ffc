"""bptt truncation as a user runs it: the files it writes, the numbers behind its bias
and cost columns, and its refusals.

The bias column must be exactly 0 (round-off) where a truncation lets every loss reach
every step (window k ≥ T − 1, chunk k ≥ T, TBPTT(k1, k2) with k2 ≥ k1·⌈T/k1⌉, or
k2 ≥ T when k1 ≥ T) and clearly positive everywhere else: a wrong k2 boundary shows in both directions. The
cost column is checked against counts made by hand for T = 6.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from manual_bptt.cli import main
from manual_bptt.truncation import RandomTruncation
from manual_bptt.vanishing import truncation_study as ts
from manual_bptt.vanishing.experiment import Setting, cell_table_task, initial_params

# Full BPTT and a truncation that reaches every step compute the same sums in another
# order (lag by lag, block by block): their relative difference is a few units of
# float64's 2.2e-16 per term, far below this.
ROUND_OFF = 1e-13
# A truncation that misses steps misses the gradient the last loss sends through them;
# at initialisation on T = 6 that is at least about 1e-4 of ‖g_full‖ (the smallest seen,
# TBPTT's last block missing step 0 only); far above round-off.
CLEARLY_POSITIVE = 1e-8


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the PNG header."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    pytest.importorskip("matplotlib")
    out = tmp_path_factory.mktemp("truncation")
    capture = out / "stdout.txt"
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["truncation", "--quick", "--out", str(out / "run")]) == 0
    capture.write_text(buffer.getvalue())
    return out / "run", buffer.getvalue()


def test_quick_run_writes_its_table_json_and_picture(quick_run: tuple[Path, str]) -> None:
    out, printed = quick_run
    width, height = png_size(out / "truncation.png")
    assert width >= 600, width
    assert height >= 600, height
    assert (out / "truncation.png").stat().st_size < 200_000, "too big to commit"
    table = (out / "truncation.md").read_text()
    assert printed.startswith(table)  # the same tables, printed and written
    for section in (
        "## rnn, at initialisation (held-out accuracy ",
        "## rnn, after 40 steps of full BPTT (held-out accuracy ",
        "## lstm, at initialisation (held-out accuracy ",
        "## lstm, after 40 steps of full BPTT (held-out accuracy ",
        "## Training with each estimator, L = 5",
    ):
        assert section in table
    record = json.loads((out / "truncation.json").read_text())
    assert record["settings"]["task"]["T"] == 6
    assert record["settings"]["ks"] == [2, 3, 8]
    # every (cell, state): full BPTT and five estimators per k
    assert len(record["measured"]) == 2 * 2 * (1 + 5 * 3)
    estimators = [r["estimator"] for r in record["trained"]]
    assert estimators == [
        "full BPTT",
        "window k=2",
        "chunk k=2",
        "TBPTT(1, 2)",
        "d2l π=0.5",
        "artbp a=0.667",
    ]
    for r in record["measured"]:
        assert math.isfinite(r["bias"]), r
        assert math.isfinite(r["variance"]), r
        random = r["kind"] in ("d2l", "artbp")
        assert (r["variance"] > 0) == random, r  # 0 exactly for the deterministic ones
        assert r["draws"] == (10 if random else 1), r
    # the trained network is another point: its gradients are not the initial ones
    by_state = {
        state: [r["bias"] for r in record["measured"] if r["cell"] == "rnn" and r["state"] == state]
        for state in ("initialisation", "trained")
    }
    assert by_state["initialisation"] != by_state["trained"]


def test_quick_run_prints_the_hand_counted_costs(quick_run: tuple[Path, str]) -> None:
    """T = 6. Window k: losses at t = 0 … 5 reach min(t, k) + 1 steps. TBPTT(1, 2):
    blocks of one step, each reaching 2 steps back but not before 0: 1 + 2·5 = 11."""
    record = json.loads((quick_run[0] / "truncation.json").read_text())
    cost = {r["estimator"]: r["cost"] for r in record["measured"]}
    assert cost == {
        "full BPTT": 6,
        "window k=2": 1 + 2 + 3 + 3 + 3 + 3,
        "chunk k=2": 6,
        "TBPTT(1, 2)": 1 + 2 + 2 + 2 + 2 + 2,
        "d2l π=0.5": 6,
        "artbp a=0.667": 6,
        "window k=3": 1 + 2 + 3 + 4 + 4 + 4,
        "chunk k=3": 6,
        "TBPTT(1, 3)": 1 + 2 + 3 + 3 + 3 + 3,
        "d2l π=0.667": 6,
        "artbp a=1.26": 6,
        "window k=8": 1 + 2 + 3 + 4 + 5 + 6,
        "chunk k=8": 6,
        "TBPTT(4, 8)": 4 + 6,  # blocks 0–3 and 4–5, both reaching step 0
        "d2l π=0.875": 6,
        "artbp a=4.19": 6,
    }


@pytest.mark.parametrize(
    ("k1", "k2", "steps"),
    [
        (2, 4, 2 + 4 + 4),  # blocks 0–1 (from 0), 2–3 (from 0), 4–5 (from 2)
        (3, 2, 2 + 2),  # k2 < k1: blocks 0–2 and 3–5 each backpropagate 2 steps
        (4, 7, 4 + 5),  # the short last block 4–5 reaches back to step 1, not 0
        (6, 6, 6),
        (1, 1, 6),  # every loss reaches its own step only
    ],
)
def test_tbptt_cost_is_the_sum_of_its_windows_counted_by_hand(k1: int, k2: int, steps: int) -> None:
    assert ts.Estimator("tbptt", k2, k1=k1).cost(6) == steps


def _bias(cell: str, estimator: ts.Estimator, T: int = 6) -> float:
    task = cell_table_task(T - 1, seed=3)
    task = ts.quick(task)
    params = initial_params(task, Setting("", cell=cell))
    batch = ts.measurement_batch(task)
    g_full = ts.flat_grad(params, *batch)
    bias: float = ts.measure(params, batch, estimator, g_full, [0, 1])["bias"]
    return bias


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_window_and_chunk_bias_is_zero_exactly_when_they_reach_every_step(cell: str) -> None:
    T = 6  # the quick task: the last step, T − 1 = 5, is scored
    for k in range(1, T + 3):
        window = _bias(cell, ts.Estimator("window", k), T)
        chunk = _bias(cell, ts.Estimator("chunk", k), T)
        if k >= T - 1:  # the last loss reaches steps 5 … 5 − k ≤ 0: every step
            assert window <= ROUND_OFF, (cell, k, window)
        else:
            assert window > CLEARLY_POSITIVE, (cell, k, window)
        if k >= T:  # one chunk holds the whole sequence
            assert chunk <= ROUND_OFF, (cell, k, chunk)
        else:
            assert chunk > CLEARLY_POSITIVE, (cell, k, chunk)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_tbptt_bias_is_zero_exactly_when_k2_reaches_k1_times_the_blocks(cell: str) -> None:
    T = 6
    for k1 in range(1, T + 2):
        # the last block's pass reaches step 0 from k2 = k1·⌈T/k1⌉ on; one block (k1 ≥ T)
        # from k2 = T on, since it holds the sequence's T steps only
        boundary = T if k1 >= T else k1 * math.ceil(T / k1)
        for k2 in range(1, boundary + 3):
            bias = _bias(cell, ts.Estimator("tbptt", k2, k1=k1), T)
            if k2 >= boundary:
                assert bias <= ROUND_OFF, (cell, k1, k2, bias)
            else:
                assert bias > CLEARLY_POSITIVE, (cell, k1, k2, bias)


@pytest.mark.parametrize("kind", ["d2l", "artbp"])
def test_randomized_mean_is_within_a_few_standard_errors_of_the_full_gradient(kind: str) -> None:
    """Unbiased: E‖ḡ − g_full‖² = variance/M·‖g_full‖², so the mean of M draws is off by
    about its standard error; over fixed seeds, by under 3 of them (a 1-in-9 event at
    worst, by Markov's inequality, for an unbiased estimator)."""
    task = ts.quick(cell_table_task(5, seed=4))
    params = initial_params(task, Setting("", cell="rnn"))
    batch = ts.measurement_batch(task)
    g_full = ts.flat_grad(params, *batch)
    param = ts.d2l_keep(3) if kind == "d2l" else ts.artbp_a(3)
    estimator = ts.Estimator(kind, 3, param=param)
    row = ts.measure(params, batch, estimator, g_full, ts.draw_seeds(0, 400))
    assert row["sample_variance"] > 0
    assert row["sample_bias"] < 3 * row["exact_standard_error"], row


# The exact moments and the enumeration sum the same 2^(T−1) terms in other orders.
EXACT = 1e-12


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize(("kind", "param"), [("d2l", 0.6), ("artbp", 1.3), ("artbp", 0.2)])
def test_exact_mean_and_variance_equal_the_enumeration_of_every_pattern(
    cell: str, kind: str, param: float
) -> None:
    """E[g] and E‖g − E g‖² summed over every pattern of cuts with its probability
    (RandomTruncation.outcomes, T = 6) are what the table's exact columns give, and
    E[g] is g_full: bias 0 to round-off."""
    task = ts.quick(cell_table_task(5, seed=2))
    params = initial_params(task, Setting("", cell=cell))
    batch = ts.measurement_batch(task)
    g_full = ts.flat_grad(params, *batch)
    random = RandomTruncation(kind, param)
    outcomes = [(p, ts.flat_grad(params, *batch, randomized=xi)) for p, xi in random.outcomes(6)]
    mean = sum(p * g for p, g in outcomes)
    variance = sum(p * float(np.sum((g - mean) ** 2)) for p, g in outcomes)
    exact_mean, exact_variance = ts.exact_moments(params, batch, random)
    scale = float(np.linalg.norm(g_full))
    assert float(np.linalg.norm(exact_mean - mean)) <= EXACT * scale
    assert float(np.linalg.norm(exact_mean - g_full)) <= EXACT * scale
    assert exact_variance == pytest.approx(variance, rel=EXACT)
    row = ts.measure(params, batch, ts.Estimator(kind, 3, param=param), g_full, [0, 1])
    assert row["bias"] <= EXACT
    assert row["variance"] == pytest.approx(variance / scale**2, rel=EXACT)


def test_exact_moments_refuse_a_loss_before_the_last_step() -> None:
    task = replace(ts.quick(cell_table_task(5)), scored="every", T=8)
    params = initial_params(task, Setting(""))
    batch = ts.measurement_batch(task)
    message = "exact moments need the last step alone scored: mask[:-1] must be 0"
    with pytest.raises(ValueError, match=re.escape(message)):
        ts.exact_moments(params, batch, RandomTruncation("d2l", 0.5))


def test_artbp_reaches_k_steps_as_often_as_d2l() -> None:
    for k in (2, 5, 10, 20, 40):
        pi, a = ts.d2l_keep(k), ts.artbp_a(k)
        assert 1 / (1 - pi) == pytest.approx(k)  # d2l's mean segment length
        assert a / (a + k) == pytest.approx(pi**k)  # the same chance to survive k links


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--ks", "0"],
            "argument --ks: must be an integer ≥ 2 (d2l's π = 1 − 1/k is 0 at k = 1); got 0",
        ),
        (
            ["--ks", "5", "-1"],
            "argument --ks: must be an integer ≥ 2 (d2l's π = 1 − 1/k is 0 at k = 1); got -1",
        ),
        (
            ["--ks", "1"],
            "argument --ks: must be an integer ≥ 2 (d2l's π = 1 − 1/k is 0 at k = 1); got 1",
        ),
        (["--ks", "two"], "argument --ks: must be an integer ≥ 2; got 'two'"),
        (
            ["--train-ks", "0"],
            "argument --train-ks: must be an integer ≥ 2 (d2l's π = 1 − 1/k is 0 at k = 1); got 0",
        ),
        (["--cells", "tree"], "argument --cells: must be one of rnn, lstm, gru; got 'tree'"),
        (
            ["--cells", "rnn", "LSTM"],
            "argument --cells: must be one of rnn, lstm, gru; got 'LSTM'",
        ),
        (
            ["--train-cells", "tree"],
            "argument --train-cells: must be one of rnn, lstm, gru; got 'tree'",
        ),
        (
            ["--draws", "1"],
            "argument --draws: must be an integer ≥ 2 (a variance needs two draws); got 1",
        ),
        (["--L", "0"], "argument --L: must be an integer from 1 to 499; got 0"),
        (["--L", "500"], "argument --L: must be an integer from 1 to 499; got 500"),
    ],
)
def test_wrong_input_is_one_argparse_line(
    argv: list[str], message: str, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["truncation", "--quick", "--out", str(out), *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    last = err.rstrip("\n").split("\n")[-1]
    assert re.fullmatch(re.escape(f"bptt truncation: error: {message}"), last), last
    assert "Traceback" not in err
    assert not out.exists()  # refused before any work


def test_an_out_that_is_a_file_is_refused_in_one_line(tmp_path: Path, capsys) -> None:
    taken = tmp_path / "taken"
    taken.write_text("")
    assert main(["truncation", "--quick", "--out", str(taken)]) == 2
    assert (
        capsys.readouterr().err == f"bptt truncation: --out must be a folder; {taken} is a file\n"
    )


def test_measure_refuses_a_randomized_estimator_with_one_draw() -> None:
    task = ts.quick(cell_table_task(5))
    params = initial_params(task, Setting(""))
    batch = ts.measurement_batch(task)
    g = ts.flat_grad(params, *batch)
    with pytest.raises(
        ValueError, match=re.escape("a randomized estimator needs at least 2 draws; got 1")
    ):
        ts.measure(params, batch, ts.Estimator("d2l", 2, param=0.5), g, [0])


class Counter:
    """A stand-in progress bar that counts the units of work it is told of."""

    def __init__(self) -> None:
        self.done = 0

    def update(self, n: int = 1) -> None:
        self.done += n


@pytest.mark.parametrize(
    ("cells", "train_cells", "seeds"),
    [
        (("rnn",), ("rnn",), (0,)),
        (("rnn", "lstm"), (), (0,)),
        (("lstm",), ("rnn",), (1, 2)),  # a cell trained, not measured, seeds without 0
        (("rnn",), ("rnn",), (2, 0)),
    ],
)
def test_the_progress_bar_counts_the_work_done_and_the_measured_network_uses_seed(
    cells: tuple[str, ...], train_cells: tuple[str, ...], seeds: tuple[int, ...]
) -> None:
    task = replace(ts.quick(cell_table_task(5)), steps=3, seed=0)
    study = ts.Study(task, cells, ks=(2, 4), draws=2, train_cells=train_cells, seeds=seeds)
    counter = Counter()
    measured, trained = ts.run_study(study, counter)  # type: ignore[arg-type]
    assert counter.done == study.units()
    assert {r["cell"] for r in measured} == set(cells)
    assert len(measured) == len(cells) * 2 * (1 + 5 * 2)
    assert sorted((r["cell"], r["seed"]) for r in trained if r["kind"] == "full") == sorted(
        (cell, seed) for cell in train_cells for seed in seeds
    )
    assert len(trained) == len(train_cells) * len(seeds) * 6
    # the measured "trained" network is --seed's (0), whatever the training seeds
    params = initial_params(task, Setting("", cell=cells[0]))
    batch = ts.measurement_batch(task)
    g_full = ts.flat_grad(params, *batch)
    window = ts.measure(params, batch, ts.Estimator("window", 2), g_full, [0, 1])
    first = next(r for r in measured if r["estimator"] == "window k=2")
    assert first["bias"] == window["bias"]
