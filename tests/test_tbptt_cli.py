"""TBPTT(k1, k2) on the command line: bptt check --tbptt, and verify --tbptt-only, which
passes correct code and finds a slip at a window boundary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from manual_bptt.cli import main


def test_check_tbptt_checks_manual_against_autograd_and_finite_differences(capsys) -> None:
    assert main(["check", "--tbptt", "2,4", "--T", "7", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is True
    (mode,) = report["modes"]
    assert mode["mode"] == "tbptt=(2, 4)"
    assert {row["name"] for row in mode["fd"]} >= {"U", "W", "h0"}
    assert all(row["passed"] for row in mode["fd"] + mode["twin"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check", "--tbptt", "2"], "argument --tbptt: must be two integers ≥ 1 as K1,K2; got '2'"),
        (
            ["check", "--tbptt", "0,3"],
            "argument --tbptt: must be two integers ≥ 1 as K1,K2; got '0,3'",
        ),
        (
            ["check", "--tbptt", "a,b"],
            "argument --tbptt: must be two integers ≥ 1 as K1,K2; got 'a,b'",
        ),
        (
            ["check", "--tbptt", "2,4", "--chunk", "3"],
            "argument --chunk: not allowed with argument --tbptt",
        ),
    ],
)
def test_tbptt_arguments_are_refused_in_one_line(argv, message, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == f"bptt check: error: {message}"


def test_verify_tbptt_only_passes_the_project_and_finds_a_boundary_slip(
    tmp_path: Path, capsys
) -> None:
    assert main(["verify", "manual_bptt:bptt", "--tbptt-only", "--examples", "40"]) == 0
    slip = tmp_path / "slip.py"
    slip.write_text(
        "import manual_bptt\n"
        "def f(params, x, y, tbptt=None, **options):\n"
        "    k1, k2 = tbptt\n"
        "    # one step short wherever the windows overlap\n"
        "    return manual_bptt.bptt(params, x, y, tbptt=(k1, k2 - 1 if k2 > k1 else k2), **options)\n"
    )
    capsys.readouterr()
    assert main(["verify", f"{slip}:f", "--tbptt-only", "--examples", "40"]) == 1
    out = capsys.readouterr().out
    assert "tbptt=(1, 2)" in out
    assert "MISMATCH" in out


def test_verify_tbptt_only_refuses_code_without_a_tbptt_option_before_the_search(
    tmp_path: Path, capsys
) -> None:
    """A usage error (exit 2, one line), as for any other option the signature lacks,
    not a failed search that blames the gradients."""
    old = tmp_path / "old.py"
    old.write_text(
        "import manual_bptt\n"
        "def f(params, x, y, *, h0=None, mask=None, activation='tanh', truncate=None,\n"
        "      chunk=None, reduction='sum'):\n"
        "    return manual_bptt.bptt(params, x, y, h0=h0, mask=mask, truncate=truncate)\n"
    )
    assert main(["verify", f"{old}:f", "--tbptt-only"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        f"bptt verify: {old}:f(params, x, y, *, h0=None, mask=None, activation='tanh', "
        "truncate=None, chunk=None, reduction='sum') cannot be called as "
        "f(params, x, y, **options): got an unexpected keyword argument 'tbptt'"
    )
