"""`bptt verify` cannot be fooled or stalled by the code it runs: exit codes 0/1/2, one-line
usage errors before any search, sys.exit as a finding, a time limit per call, and the
code's own output kept out of the report."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest

from manual_bptt.checking.guard import CodeFailed, call, time_limit_works
from manual_bptt.cli import main

CORRECT = textwrap.dedent(
    """
    import manual_bptt

    def bptt(params, x, y, **options):
        return manual_bptt.bptt(params, x, y, **options)
    """
)


def write(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(CORRECT + textwrap.dedent(body))
    return str(path)


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(["verify", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_correct_code_exits_0(tmp_path, capsys) -> None:
    code, out, _ = run([write(tmp_path, "ok.py", "") + ":bptt", "--examples", "20"], capsys)
    assert code == 0
    assert "every gradient agrees with autograd on all 20 examples" in out


def test_sys_exit_in_a_call_is_a_finding_not_a_success(tmp_path, capsys) -> None:
    spec = write(
        tmp_path, "quits.py", "def quits(params, x, y, **options):\n    raise SystemExit(0)\n"
    )
    code, out, _ = run([spec + ":quits", "--examples", "20"], capsys)
    assert code == 1
    assert "f called sys.exit(0)" in out


def test_sys_exit_on_import_is_never_a_success(tmp_path, capsys, monkeypatch) -> None:
    (tmp_path / "exits_on_import.py").write_text("import sys\nsys.exit(0)\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    code, _, err = run(["exits_on_import:bptt"], capsys)
    assert code == 2
    assert "importing exits_on_import called sys.exit(0)" in err


@pytest.mark.skipif(not time_limit_works(), reason="the time limit needs POSIX timers")
def test_a_hanging_call_becomes_a_finding_that_names_the_call(tmp_path, capsys) -> None:
    body = "import time\ndef hangs(params, x, y, **options):\n    time.sleep(60)\n"
    started = time.monotonic()
    code, out, _ = run([write(tmp_path, "hangs.py", body) + ":hangs", "--timeout", "0.3"], capsys)
    assert time.monotonic() - started < 10  # one time-out ends the search: no 200 × 0.3 s
    assert code == 1
    assert "f did not return within 0.3 s (--timeout)" in out
    assert "not shrunk" in out


@pytest.mark.skipif(not time_limit_works(), reason="the time limit needs POSIX timers")
def test_the_time_limit_is_not_swallowed_by_except_exception() -> None:
    def stubborn() -> None:
        try:
            time.sleep(60)
        except Exception:  # noqa: BLE001, S110 (what careless code does)
            pass
        time.sleep(60)

    with pytest.raises(CodeFailed, match=r"stubborn did not return within 0\.2 s"):
        call("stubborn", stubborn, timeout=0.2)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["manual_bptt.checking.gallery:TUTORIAL_SLIPS"], "is not callable (it is a tuple)"),
        (["manual_bptt.checking.gallery:no_such"], "defines no no_such"),
        (["no_such_module_here:f"], "cannot import no_such_module_here"),
        (["manual_bptt.cells:init_params"], "cannot be called as f(params, x, y, **options)"),
        (["manual_bptt.checking.gallery", "--style", "cs231n"], "defines no rnn_forward"),
        (["manual_bptt:forward", "--style", "min-char-rnn"], "cannot be called as lossFun"),
        (["manual_bptt:bptt", "--style", "cs231n", "--activation", "relu"], "--activation"),
        (["manual_bptt:bptt", "--style", "tutorial", "--batched"], "cannot draw batched True"),
        (
            ["manual_bptt:bptt", "--clip-value", "none"],
            "--style project takes no option --clip-value",
        ),
        (
            ["manual_bptt:bptt", "--style", "min-char-rnn", "--clip-value", "-1"],
            "--clip-value must",
        ),
    ],
)
def test_usage_errors_exit_2_in_one_line_without_a_search(argv, message, capsys) -> None:
    started = time.monotonic()
    code, out, err = run(argv, capsys)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert out == ""
    assert time.monotonic() - started < 5


def test_a_wrong_interface_on_the_first_call_is_a_usage_error(tmp_path, capsys) -> None:
    body = "def two(dh, cache):\n    return 1, 2\ndef rnn_forward(x, h0, Wx, Wh, b):\n    return x, None\n"
    path = tmp_path / "layers.py"
    path.write_text(body.replace("def two", "def rnn_backward"))
    code, _, err = run([str(path), "--style", "cs231n"], capsys)
    assert code == 2
    assert "rnn_backward returned 2 values; expected 5: (dx, dh0, dWx, dWh, db)" in err


def test_what_the_code_prints_does_not_garble_the_report(tmp_path, capsys) -> None:
    body = (
        "import sys\n"
        "def noisy(params, x, y, **options):\n"
        "    print('GARBAGE ' * 50)\n"
        "    sys.stderr.write('MORE GARBAGE')\n"
        "    return bptt(params, x, y, **options)\n"
    )
    code, out, err = run(
        [write(tmp_path, "noisy.py", body) + ":noisy", "--examples", "10", "--json"], capsys
    )
    assert code == 0
    assert "GARBAGE" not in out + err
    assert json.loads(out)["passed"] is True


def test_an_exception_in_the_call_is_reported_beside_the_gradient_verdicts(tmp_path, capsys):
    body = (
        "def fails_on_tokens(params, x, y, **options):\n"
        "    if x.ndim < 3 and x.dtype.kind == 'i':\n"
        "        raise IndexError('tokens not handled')\n"
        "    return bptt(params, x, y, **options)\n"
    )
    # 20 problems (the default 200 before): verify reports the raise from a budget of 1 up
    argv = [write(tmp_path, "partial.py", body) + ":fails_on_tokens", "--examples", "20"]
    code, out, _ = run(argv, capsys)
    assert code == 1
    assert "also: f raised IndexError: tokens not handled" in out
    (line,) = [line for line in out.splitlines() if line.startswith("  dU (f; grads['U'])")]
    assert "agrees on the" in line
    assert line.endswith("problems where it was compared")


def test_a_non_finite_gradient_is_wrong_even_where_autograd_agrees_in_size(tmp_path, capsys):
    body = (
        "import numpy as np\n"
        "def nan_in_w(params, x, y, **options):\n"
        "    result = bptt(params, x, y, **options)\n"
        "    grads = dict(result.grads)\n"
        "    grads['W'] = np.full_like(grads['W'], np.nan)\n"
        "    return manual_bptt.BPTTResult(result.loss, grads)\n"
    )
    # 20 problems: dW is NaN on every one (the default 200 before)
    argv = [write(tmp_path, "nan.py", body) + ":nan_in_w", "--examples", "20", "--json"]
    code, out, _ = run(argv, capsys)
    assert code == 1
    report = json.loads(out, parse_constant=lambda name: pytest.fail(f"bare {name} in JSON"))
    assert [k for k, g in report["gradients"].items() if not g["ok"]] == ["W"]
    assert report["gradients"]["W"]["counterexample"]["T"] == 1
    assert report["gradients"]["W"]["worst"]["got"] == "nan"  # valid JSON: no bare NaN
