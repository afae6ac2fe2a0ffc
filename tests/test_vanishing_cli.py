"""bptt vanishing as a user runs it: the files it writes, the numbers behind them, and
its errors."""

from __future__ import annotations

import sys
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
    for section in ("## The conditions on examples", "## heatmap.png", "## decay.png",
                    "## jacobians.png", "## The 3-step worked example"):  # fmt: skip
        assert section in report
    assert "## The long-range experiment" not in report  # only with --experiment


def test_report_gives_the_worked_example_and_its_sum(written: Path) -> None:
    report = (written / "report.md").read_text()
    for k in range(3):
        assert f"via step {k} (‖·‖_F = " in report
    assert "All components of all losses sum to bptt's ∂L/∂U" in report


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


def test_missing_matplotlib_says_how_to_install_it(monkeypatch, tmp_path: Path, capsys) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    assert main(["vanishing", "--out", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err
    assert "plots need matplotlib" in err
    assert "pip install" in err
    assert not (tmp_path / "v").exists()  # failed before any work or any file


def test_help_states_the_conditions(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["vanishing", "--help"])
    out = capsys.readouterr().out
    assert "σ_max(W) < 1/γ is sufficient" in out
    assert "--experiment" in out
