"""The bptt command as a user runs it: exit codes, tables, JSON, errors, pictures."""

from __future__ import annotations

import json
import os
import re
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
    import manual_bptt.backward

    real = manual_bptt.backward.bptt

    def off_by_a_bit(*args, **kwargs):
        result = real(*args, **kwargs)
        grads = dict(result.grads)
        grads["W"] = grads["W"] * (1 + 1e-6)
        return manual_bptt.BPTTResult(result.loss, grads)

    # bptt check calls manual_bptt.backward.bptt, the function the package exports
    monkeypatch.setattr(manual_bptt.backward, "bptt", off_by_a_bit)
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


def test_check_table_names_the_cell(capsys) -> None:
    assert main(["check", "--cell", "gru", "--full", "--fd", "off", "--T", "3"]) == 0
    assert "GRU (reset after)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["check", "--cell", "lstm", "--activation", "relu"],
            (
                "bptt check: error: --activation is the vanilla cell's; --cell lstm has its own "
                "nonlinearities (σ and tanh)"
            ),
        ),
        (
            ["check", "--reset", "before"],
            "bptt check: error: --reset chooses the GRU's variant; add --cell gru (got --cell rnn)",
        ),
        (
            ["check", "--cell", "lstm", "--reset", "after"],
            "bptt check: error: --reset chooses the GRU's variant; add --cell gru (got --cell lstm)",
        ),
        (
            ["check", "--scale", "1e308", "--fd", "off"],
            (
                "bptt check: error: --scale 1e+308: the biases, drawn from (−scale, scale), "
                "overflow float64; choose a smaller scale"
            ),
        ),
        (
            ["epsilon-plot", "--out", "TMP"],
            (
                "bptt epsilon-plot: --out: pictures are written as PNG: name a .png file; 'TMP' "
                "is a folder"
            ),
        ),
    ],
)
def test_options_that_cannot_be_used_are_usage_errors_in_one_line(
    argv, message, capsys, tmp_path
) -> None:
    """Exit 2 (a usage error), not 1 (some gradient disagrees), and no traceback."""
    argv = [a.replace("TMP", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    assert capsys.readouterr().err == message.replace("TMP", str(tmp_path)) + "\n"
    assert not tmp_path.with_name(tmp_path.name + ".png").exists()  # nothing beside --out


def test_check_leaves_to_autograd_what_finite_differences_cannot_resolve(capsys) -> None:
    """relu at weight scale 1e3: a loss of 9e35, whose central differences at ε = 1e-6
    carry an error bound of 6e27. Manual and autograd agree, so the check passes; the
    gradients finite differences cannot resolve are named, not called disagreements."""
    assert main(["check", "--activation", "relu", "--scale", "1e3", "--fd", "fast"]) == 0
    out = capsys.readouterr().out
    assert "DISAGREE" not in out
    assert "FAIL" not in out
    lines = out.splitlines()
    assert re.fullmatch(
        r"all gradients agree with autograd; finite differences cannot resolve 11 of the 21 "
        r"at this scale \(\d+\.\d s\)",
        lines[-1],
    )
    full = lines.index("full: loss 8.95523828773e+35 (autograd 8.95523828773e+35)")
    assert re.fullmatch(r"  c +30\.2 .* pass \(autograd only\)", lines[full + 7])
    number = r"\d\.\de[+-]\d\d"
    assert re.fullmatch(
        r"  c: finite differences cannot resolve this gradient at this scale \(error bound "
        rf"{number} > allowed 3\.0e-05\)",
        lines[full + 10],  # under the table: U, W, V, b, c, h0, x
    )


def test_check_json_counts_what_finite_differences_cannot_resolve(capsys) -> None:
    argv = ["check", "--json", "--activation", "relu", "--scale", "1e3", "--fd", "fast", "--full"]
    assert main(argv) == 0
    (mode,) = json.loads(capsys.readouterr().out)["modes"]
    rows = {row["name"]: row for row in mode["fd"]}
    assert {name: row["unresolved"] for name, row in rows.items()} == {
        "U": 0,
        "W": 0,
        "V": 0,
        "b": 0,
        "c": 1,
        "h0": 0,
        "x": 0,
    }
    assert rows["c"]["passed"] is True
    assert rows["c"]["bound"] > rows["c"]["allowed"]


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
    # 20 problems, as test_gallery.py searches this slip: dU and dW both fail by then
    slip = "manual_bptt.checking.gallery:DropsRecurrentTerm"
    code = main(["verify", slip, "--style", "tutorial", "--examples", "20"])
    out = capsys.readouterr().out
    assert code == 1
    assert "minimal counterexample" in out
    assert "MISMATCH" in out
    lines = [line for line in out.splitlines() if line.startswith("  reproduce: ")]
    assert len(lines) == 2  # one per wrong gradient: dU and dW
    line = lines[0].removeprefix("  reproduce: ")
    assert line.startswith('python -c "from manual_bptt.cases import make_case')
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
    target = "manual_bptt.checking.gallery:TutorialRNN"
    assert main(["verify", target, "--style", "project", "--examples", "5"]) == 2
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

    from manual_bptt.cli.check import announce, estimate

    args = argparse.Namespace(fd="full", tokens=False, force=False, cell="rnn")
    sizes = {"T": 12, "N": 3, "D": 8, "H": 150, "K": 5}
    # U 1200 + W 22500 + V 750 + b 150 + c 5 + h0 450 + x 288 entries, twice, three modes
    evaluations, memory = estimate(args, sizes, 3)
    assert evaluations == 2 * 25343 * 3
    line = announce(args, sizes, evaluations, memory)
    assert line is not None
    assert line.startswith("bptt check: about 152,058 finite-difference evaluations")
    small = {**sizes, "H": 16}
    assert estimate(args, small, 3)[0] == 4926
    assert announce(args, small, *estimate(args, small, 3)) is None  # small work is not
    assert capsys.readouterr().err == ""  # estimating says nothing
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


def test_hours_of_work_suggest_fd_fast_in_the_first_line() -> None:
    """T = 300, H = 200 is below the refusal limit, but hours of work: the line printed
    before it starts gives the time as timed and what --fd fast would cost instead."""
    import argparse

    from manual_bptt.cli.check import announce, estimate

    args = argparse.Namespace(fd="full", tokens=False, force=False, cell="rnn")
    sizes = {"T": 300, "N": 3, "D": 8, "H": 200, "K": 5}
    evaluations, memory = estimate(args, sizes, 3)
    assert announce(args, sizes, evaluations, memory, seconds=14_000.0) == (
        "bptt check: about 303,630 finite-difference evaluations (forward passes over T·N = "
        "900 steps of H = 200, about 3 h 53 min as timed) and 23 MiB of arrays; --fd fast "
        "checks one random direction per gradient instead, in 42 evaluations"
    )
    fast = argparse.Namespace(fd="fast", tokens=False, force=False, cell="rnn")
    assert announce(fast, sizes, *estimate(fast, sizes, 3)) is None


def test_check_says_first_what_long_work_costs_and_then_how_it_goes(monkeypatch, capsys):
    """Standard error is not a terminal under capsys, as in a pipe or a CI log: the first
    line is the estimate with the suggestion, then plain progress lines, the last at 100%."""
    from manual_bptt.cli import check

    monkeypatch.setattr(check, "SAY_FD_EVALUATIONS", 50)  # announce this small work
    monkeypatch.setattr(check, "PROGRESS_EVERY", 0.0)  # and show its progress at once
    argv = ["check", "--full", "--T", "3", "--N", "1", "--D", "2", "--H", "3", "--K", "2"]
    assert main(argv) == 0
    first, *progress = capsys.readouterr().err.splitlines()
    # U 6 + W 9 + V 6 + b 3 + c 2 + h0 3 + x 6 = 35 entries, twice; fast: 7 gradients, twice
    assert re.fullmatch(
        r"bptt check: about 70 finite-difference evaluations \(forward passes over T·N = 3 "
        r"steps of H = 3, about 0 s as timed\) and 0 MiB of arrays; --fd fast checks one "
        r"random direction per gradient instead, in 14 evaluations",
        first,
    )
    assert progress
    for line in progress:
        assert re.fullmatch(
            r"finite differences: \d+/35 \(\d+%\), 0:0\d elapsed, 0:\d\d left", line
        )
    assert progress[-1].startswith("finite differences: 35/35 (100%)")  # entries, 2 calls each


def test_a_reader_that_goes_away_ends_the_command_quietly_and_not_with_success(
    monkeypatch, capsys
) -> None:
    """bptt gallery | head: no "cannot write" complaint, and exit 141 (128 + SIGPIPE)
    rather than 0, so that `set -o pipefail` cannot pass a report that was cut short.
    Standard output is a pipe whose reader has gone (every write fails)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    with os.fdopen(write_end, "w") as gone:
        monkeypatch.setattr(sys, "stdout", gone)
        assert main(["gallery"]) == 141
    assert capsys.readouterr().err == ""
