"""The bptt command as a user runs it: exit codes, tables, JSON, errors, pictures."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from manual_bptt.cli import main


def test_check_with_no_options_passes_and_prints_every_gradient(capsys) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    for mode in ("full:", "truncate=3:", "chunk=4:"):
        assert mode in out
    for name in ("U", "W", "V", "b", "c", "h0", "x"):
        assert f"\n  {name} " in out
    assert "all gradients agree" in out


def test_check_json_is_machine_readable(capsys) -> None:
    assert main(["check", "--json", "--T", "4", "--H", "3", "--truncate", "1", "--tokens"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is True
    (mode,) = report["modes"]
    assert mode["mode"] == "truncate=1"
    assert {row["name"] for row in mode["fd"]} == {"U", "W", "V", "b", "c", "h0"}


def test_check_fails_with_exit_1_when_a_gradient_is_wrong(monkeypatch, capsys) -> None:
    import manual_bptt

    real = manual_bptt.bptt

    def off_by_a_bit(*args, **kwargs):
        result = real(*args, **kwargs)
        grads = dict(result.grads)
        grads["W"] = grads["W"] * (1 + 1e-6)
        return manual_bptt.BPTTResult(result.loss, grads)

    monkeypatch.setattr(manual_bptt, "bptt", off_by_a_bit)
    assert main(["check", "--full", "--fd", "fast"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out
    assert "SOME GRADIENTS DISAGREE" in out


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["--cell", "lstm"], ["U", "W", "b", "V", "c", "h0", "c0", "x"]),
        (["--cell", "gru", "--reset", "before", "--tokens"], ["U", "W", "b", "bh", "V", "c", "h0"]),
    ],
)
def test_check_runs_the_gated_cells_with_their_own_gradients(argv, names, capsys) -> None:
    assert main(["check", "--json", "--T", "5", "--H", "3", "--D", "3", *argv]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is True
    assert report["cell"] in ("lstm", "gru (reset before)")
    assert [m["mode"] for m in report["modes"]] == ["full", "truncate=3", "chunk=4"]
    for mode in report["modes"]:
        assert [row["name"] for row in mode["twin"]] == names
        assert [row["name"] for row in mode["fd"]] == names


def test_check_table_names_the_cell_and_refuses_an_activation_for_it(capsys) -> None:
    assert main(["check", "--cell", "gru", "--full", "--fd", "off", "--T", "3"]) == 0
    assert "GRU (reset after)" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="--activation is the vanilla cell's"):
        main(["check", "--cell", "lstm", "--activation", "relu"])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_sweep_searches_a_gated_cell(cell: str, capsys) -> None:
    assert main(["sweep", "--cell", cell, "--examples", "5"]) == 0
    assert f"manual_bptt.bptt ({cell}) agrees with autograd on all 5 examples" in (
        capsys.readouterr().out
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check", "--H", "0"], "argument --H: must be an integer ≥ 1; got 0"),
        (["check", "--truncate", "-1"], "argument --truncate: must be an integer ≥ 0; got -1"),
        (["check", "--chunk", "0"], "argument --chunk: must be an integer ≥ 1; got 0"),
        (["check", "--scale", "-1"], "argument --scale: must be a finite number > 0; got -1"),
        (["check", "--T", "two"], "argument --T: must be an integer ≥ 1; got 'two'"),
        (["verify", "m:f", "--examples", "0"], "argument --examples: must be an integer ≥ 1"),
        (["sweep", "--examples", "-5"], "argument --examples: must be an integer ≥ 1; got -5"),
        (["check", "--scale", "inf"], "argument --scale: must be a finite number > 0; got inf"),
        (["check", "--scale", "1e400"], "argument --scale: must be a finite number > 0; got 1e400"),
        (["check", "--scale", "nan"], "argument --scale: must be a finite number > 0; got nan"),
        (["check", "--seed", "-1"], "argument --seed: must be an integer ≥ 0; got -1"),
        (["vanishing", "--seed", "-1"], "argument --seed: must be an integer ≥ 0; got -1"),
        (["epsilon-plot", "--seed", "-1"], "argument --seed: must be an integer ≥ 0; got -1"),
        (["vanishing", "--T", "1"], "argument --T: must be an integer from 2 to 500; got 1"),
        (["vanishing", "--T", "501"], "argument --T: must be an integer from 2 to 500; got 501"),
        (
            ["epsilon-plot", "--out", "/no/such/dir/x.png"],
            "argument --out: the folder '/no/such/dir' does not exist",
        ),
        (["vanishing", "--out", "/no/such/dir"], "argument --out: the folder '/no/such' does not"),
    ],
)
def test_nonsense_numbers_are_refused_in_one_line(argv, message, capsys, tmp_path) -> None:
    missing = str(tmp_path.resolve() / "missing")
    argv = [a.replace("MISSING", missing) for a in argv]
    message = message.replace("MISSING", missing)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "missing").exists()  # nothing made on the way out


def test_sweep_runs_and_reports_counts(capsys) -> None:
    assert main(["sweep", "--examples", "20"]) == 0
    assert "agrees with autograd on all 20 examples" in capsys.readouterr().out


def test_verify_reports_a_counterexample_and_a_reproduction(capsys) -> None:
    code = main(
        ["verify", "manual_bptt.checking.gallery:DropsRecurrentTerm", "--style", "tutorial"]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "minimal counterexample" in out
    assert "MISMATCH" in out
    lines = [line for line in out.splitlines() if line.startswith("  reproduce: ")]
    assert len(lines) == 2  # one per wrong gradient: dU and dW
    line = lines[0].removeprefix("  reproduce: ")
    assert line.startswith('python -c "from manual_bptt.checking.cases import make_case')
    program, *arguments = shlex.split(line)  # this interpreter, not whichever python is on PATH
    assert program == "python"
    rerun = subprocess.run(
        [sys.executable, *arguments], capture_output=True, text=True, check=False
    )
    assert "wrong gradient: dU" in rerun.stdout, rerun.stderr


def test_verify_passes_correct_code_and_refuses_unloadable_names(capsys) -> None:
    assert (
        main(
            [
                "verify",
                "manual_bptt.checking.gallery:TutorialRNN",
                "--style",
                "tutorial",
                "--examples",
                "30",
            ]
        )
        == 0
    )
    assert main(["verify", "no_such_module:thing"]) == 2
    assert main(["verify", "missing-colon"]) == 2


def test_epsilon_plot_writes_a_png(tmp_path: Path, capsys) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "eps.png"
    assert main(["epsilon-plot", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "central differences are best" in capsys.readouterr().out


def test_python_m_manual_bptt_runs_the_check() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "manual_bptt", "--full", "--fd", "off"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all gradients agree" in result.stdout


@pytest.mark.parametrize("command", ["epsilon-plot", "vanishing"])
def test_missing_matplotlib_says_how_to_install_it(monkeypatch, tmp_path, capsys, command) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    out = tmp_path / ("e.png" if command == "epsilon-plot" else "v")
    assert main([command, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "plots need matplotlib" in err
    assert "pip install" in err
    assert not out.exists()  # failed before any work or any file


def test_code_that_fails_to_import_is_reported_in_one_line(tmp_path, capsys) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def bptt(:\n")
    assert main(["verify", f"{broken}:bptt"]) == 2
    err = capsys.readouterr().err
    assert "cannot parse broken.py, line 1:" in err
    assert "Traceback" not in err


def test_a_class_verified_in_project_style_is_a_usage_error_with_a_hint(capsys) -> None:
    assert main(["verify", "manual_bptt.checking.gallery:TutorialRNN", "--examples", "5"]) == 2
    err = capsys.readouterr().err
    assert "cannot be called as f(params, x, y, **options)" in err
    assert "add --style tutorial" in err


def test_output_paths_that_cannot_be_used_are_refused_in_one_line(tmp_path, capsys) -> None:
    assert main(["epsilon-plot", "--out", str(tmp_path / "picture.pdf")]) == 2
    assert "name a .png file" in capsys.readouterr().err
    a_file = tmp_path / "taken"
    a_file.write_text("")
    assert main(["vanishing", "--out", str(a_file)]) == 2
    assert "--out must be a folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check", "--H", "100000"], "above the limits of 1,000,000 evaluations and 2 GiB"),
        (["check", "--H", "100000", "--fd", "off"], "229,351 MiB of arrays, above the limits"),
        (["check", "--H", "3000"], "about 54,307,758 finite-difference evaluations"),
        (
            ["check", "--scale", "1e308", "--D", "1"],
            "--scale 1e+308: scale must be small enough for float64 weights",
        ),
    ],
)
def test_work_that_cannot_be_done_is_refused_in_one_line_before_it_starts(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("bptt check: error: ")
    assert message in err
    assert err.count("\n") == 1


def test_out_of_memory_is_one_line(monkeypatch, capsys) -> None:
    from manual_bptt.cli import check

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(check, "make_case", no_memory)
    assert main(["check", "--H", "100000", "--fd", "off", "--force"]) == 2
    assert capsys.readouterr().err.endswith("error: out of memory; choose smaller sizes\n")


def test_big_work_is_estimated_before_it_starts(capsys) -> None:
    import argparse

    from manual_bptt.cli.check import estimate

    args = argparse.Namespace(fd="full", tokens=False, force=False, cell="rnn")
    sizes = {"T": 12, "N": 3, "D": 8, "H": 150, "K": 5}
    # U 1200 + W 22500 + V 750 + b 150 + c 5 + h0 450 + x 288 entries, twice, three modes
    assert estimate(args, sizes, 3)[0] == 2 * 25343 * 3
    assert "bptt check: about 152,058 finite-difference evaluations" in capsys.readouterr().err
    assert estimate(args, {**sizes, "H": 16}, 3)[0] == 4926
    assert capsys.readouterr().err == ""  # small work is not announced
    # The LSTM at H = 16: U 4·128 + W 4·256 + b 4·16 + V 80 + c 5 + h0 48 + c0 48 + x 288
    lstm = argparse.Namespace(fd="full", tokens=False, force=False, cell="lstm")
    assert estimate(lstm, {**sizes, "H": 16}, 1)[0] == 2 * (512 + 1024 + 64 + 80 + 5 + 96 + 288)


def _strict(text: str):
    def refuse(constant: str):
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_check_json_is_strict_when_numbers_are_not_finite(capsys) -> None:
    code = main(
        [
            "check",
            "--json",
            "--activation",
            "relu",
            "--scale",
            "100",
            "--T",
            "300",
            "--full",
            "--fd",
            "off",
        ]
    )
    report = _strict(capsys.readouterr().out)
    assert code == 3
    assert report["passed"] is False
    assert report["overflow"].startswith("full: the network overflows at step 182")
    (mode,) = report["modes"]
    assert mode["loss"] == "nan"
    assert mode["twin"][0]["max_abs"] in ("inf", "nan")
