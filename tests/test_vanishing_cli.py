"""bptt vanishing as a user runs it: the files it writes, the numbers behind them, and
its errors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from manual_bptt.cli import main
from manual_bptt.vanishing.decomposition import contribution_norms
from manual_bptt.vanishing.study import FACTORS, STUDY_ACTIVATIONS, study_case

PICTURES = ("heatmap.png", "decay.png", "jacobians.png")


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the PNG header."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("matplotlib")
    out = tmp_path_factory.mktemp("vanishing")
    assert main(["vanishing", "--out", str(out), "--T", "12", "--seed", "3"]) == 0
    return out


def test_writes_three_pictures_a_report_and_the_numbers(written: Path) -> None:
    for name in PICTURES:
        width, height = png_size(written / name)
        assert width >= 500, (name, width)
        assert height >= 300, (name, height)
        assert (written / name).stat().st_size < 150_000, f"{name} is too big to commit"
    for name in ("report.md", "heatmap.csv", "decay.csv", "jacobians.csv"):
        assert (written / name).stat().st_size > 0, name


def test_heatmap_numbers_are_the_contribution_norms(written: Path) -> None:
    case = study_case(12, "tanh", seed=3)
    expected = contribution_norms(case.params, case.x, case.y, param="U")
    got = np.loadtxt(written / "heatmap.csv", delimiter=",")
    np.testing.assert_allclose(got, expected, rtol=1e-6)  # written with 7 digits


def test_decay_and_jacobian_csvs_hold_every_lag_of_every_network(written: Path) -> None:
    decay = np.loadtxt(written / "decay.csv", delimiter=",")
    regimes = len(FACTORS) * len(STUDY_ACTIVATIONS)
    assert decay.shape == (12, 1 + regimes)
    np.testing.assert_array_equal(decay[:, 0], np.arange(12))
    jac = np.loadtxt(written / "jacobians.csv", delimiter=",")
    assert jac.shape == (12, 1 + 2 * regimes)
    norms, bounds = jac[:, 1::2], jac[:, 2::2]
    assert np.all(norms <= bounds * (1 + 1e-6))  # every norm under its bound
    np.testing.assert_allclose(norms[0], 1.0)  # ∂h_t/∂h_t = I


def test_report_states_the_conditions_and_shows_them_on_examples(written: Path) -> None:
    report = (written / "report.md").read_text()
    assert "σ_max(W) < 1/γ is sufficient" in report
    assert "σ_max(W) > 1/γ is necessary, not sufficient" in report
    assert "Below 1/γ every network vanishes, as the bound guarantees" in report
    for section in (
        "## The conditions on examples",
        "## heatmap.png",
        "## decay.png",
        "## jacobians.png",
        "## Kravets's 3-step example: ∂E/∂U over the three inputs",
        "## The tutorial's example: ∂E_3/∂W in four parts",
    ):
        assert section in report
    assert "## The long-range experiment" not in report  # only with --experiment


def test_report_gives_both_worked_examples_and_their_sums(written: Path) -> None:
    report = (written / "report.md").read_text()
    kravets, tutorial = report.split("## Kravets's 3-step example")[1].split("## The tutorial's")
    for k in range(3):
        assert f"∂E_2/∂U via step {k}: ‖·‖_F = " in kravets
    assert "All parts of all losses sum to bptt's ∂L/∂U" in kravets
    for k in range(4):
        assert f"∂E_3/∂W via step {k}: ‖·‖_F = " in tutorial
    assert "∂E_3/∂W via step 0: ‖·‖_F = 0\n" in tutorial  # zero initial state: exactly 0
    assert "All parts of all losses sum to bptt's ∂L/∂W" in tutorial


def test_experiment_flag_appends_the_long_range_table(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("matplotlib")
    from manual_bptt.vanishing import experiment

    tiny = experiment.Task(L=3, T=6, hidden=8, steps=5)
    monkeypatch.setattr(experiment, "Task", lambda seed: replace(tiny, seed=seed))
    assert main(["vanishing", "--out", str(tmp_path), "--T", "4", "--experiment"]) == 0
    report = (tmp_path / "report.md").read_text()
    assert "## The long-range experiment" in report
    assert "| window k=1 < L, tanh |" in report
    assert "Wall time" in report


def test_other_parameters_can_be_drawn(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    assert main(["vanishing", "--out", str(tmp_path), "--T", "5", "--param", "W"]) == 0
    assert "‖∂E_t/∂W via step k‖" in (tmp_path / "report.md").read_text()


@pytest.mark.parametrize("T", ["1", "501"])
def test_T_out_of_range_is_refused_with_the_range(tmp_path: Path, T: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["vanishing", "--out", str(tmp_path), "--T", T])
    assert exit_info.value.code == 2  # a usage error, not 1 ("something disagrees")
    assert "--T: must be an integer from 2 to 500" in capsys.readouterr().err


def test_help_states_the_conditions(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["vanishing", "--help"])
    out = capsys.readouterr().out
    assert "σ_max(W) < 1/γ is sufficient" in out
    assert "--experiment" in out


@pytest.fixture(scope="module")
def cells_written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("matplotlib")
    out = tmp_path_factory.mktemp("cells")
    args = ["vanishing", "--out", str(out), "--T", "12", "--cell", "all", "--forget-bias", "1"]
    assert main([*args, "--steps", "3"]) == 0
    return out


def test_cell_all_draws_every_cell_and_reports_the_gates(cells_written: Path) -> None:
    width, height = png_size(cells_written / "cells.png")
    assert width >= 800
    assert height >= 500
    assert (cells_written / "cells.png").stat().st_size < 400_000
    report = (cells_written / "report.md").read_text()
    section = report.split("## The cells side by side (cells.png)")[1]
    for label in ("tanh RNN", "LSTM", "LSTM, forget bias +1", "GRU"):
        for state in ("initial", "trained"):
            assert f"| {label}, {state} |" in section, (label, state)
    assert "gradient at lag 10" in section
    assert "gradient at lag 20" not in section  # T = 12: lag 20 is outside
    assert "| f: 0." in section  # the LSTM's mean forget gate
    assert "| z: 0." in section  # the GRU's mean update gate


def test_the_forget_bias_opens_the_forget_gate(cells_written: Path) -> None:
    """b_f = +1 moves the mean forget gate from about σ(0) = 0.5 to about σ(1) = 0.73."""
    rows = (cells_written / "report.md").read_text().splitlines()

    def gate(label: str) -> float:
        row = next(r for r in rows if r.startswith(f"| {label}, initial |"))
        return float(row.split("| f: ")[1].split(" ")[0])

    assert 0.45 < gate("LSTM") < 0.55
    assert 0.68 < gate("LSTM, forget bias +1") < 0.78


def test_cell_experiment_runs_the_three_cell_table(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    args = ["vanishing", "--out", str(tmp_path), "--T", "6", "--cell", "gru", "--experiment"]
    assert main([*args, "--lags", "4", "--seeds", "0", "1", "--steps", "2"]) == 0
    report = (tmp_path / "report.md").read_text()
    assert "## The long-range experiment, every cell" in report
    assert "| 4 | GRU, full BPTT | " in report
    assert "| 4 | GRU, window k=2 < L | " in report
    assert "seed 0 | seed 1 | mean" in report


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--forget-bias", "2"], "--forget-bias goes with --cell"),
        (["--seeds", "1", "2"], "--seeds goes with --cell"),
        (["--steps", "5"], "--steps goes with --cell"),
        (
            ["--cell", "gru", "--forget-bias", "1"],
            "--forget-bias is the LSTM's: use --cell lstm or all",
        ),
    ],
)
def test_cell_options_without_their_cell_are_usage_errors(tmp_path, capsys, extra, message) -> None:
    """Exit 2, one line, before any work: not 1, which says something disagrees."""
    assert main(["vanishing", "--out", str(tmp_path / "v"), *extra]) == 2
    assert capsys.readouterr().err == f"bptt vanishing: error: {message}\n"
    assert not (tmp_path / "v").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--cell", "rnn", "--steps", "0"], "argument --steps: must be an integer ≥ 1; got 0"),
        (["--cell", "rnn", "--lags", "0"], "argument --lags: must be an integer ≥ 1; got 0"),
        (["--cell", "rnn", "--seeds", "-1"], "argument --seeds: must be an integer ≥ 0; got -1"),
        (
            ["--cell", "lstm", "--forget-bias", "nan"],
            "argument --forget-bias: must be a finite number; got nan",
        ),
        (
            ["--cell", "lstm", "--forget-bias=-inf"],
            "argument --forget-bias: must be a finite number; got -inf",
        ),
        (
            ["--cell", "lstm", "--forget-bias", "1e400"],
            "argument --forget-bias: must be a finite number; got 1e400",
        ),
        (
            ["--cell", "lstm", "--forget-bias", "one"],
            "argument --forget-bias: must be a finite number; got 'one'",
        ),
    ],
)
def test_cell_numbers_are_refused_in_one_line(tmp_path, capsys, extra, message) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["vanishing", "--out", str(tmp_path), *extra])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.endswith(f"bptt vanishing: error: {message}\n")
