"""`bptt gallery` as a teacher uses it: every slip listed with a hint, its code shown as
it is, its diff from the correct version (which must really be correct), verify run on
it, and a name it does not know refused in one line with the near matches."""

from __future__ import annotations

import inspect
import io
import re
import tokenize
from typing import Any

import pytest

from manual_bptt.checking import (
    gallery,
    gallery_cs231n,
    gallery_cs231n_lstm,
    gallery_min_char_rnn,
)
from manual_bptt.checking.strategies import cases
from manual_bptt.checking.verify import verify
from manual_bptt.cli import main
from manual_bptt.cli.gallery import FIXES, HINTS, corrected, parts, slips

EVERY_SLIP = [
    *gallery.TUTORIAL_SLIPS,
    *gallery.PROJECT_SLIPS,
    *(fn for fn, _, _ in gallery.GATED_SLIPS),
    *gallery_cs231n.CS231N_SLIPS,
    *gallery_cs231n_lstm.CS231N_LSTM_SLIPS,
    *gallery_min_char_rnn.MIN_CHAR_RNN_SLIPS,
]
NAMES: list[str] = [slip.__name__ for slip in EVERY_SLIP]  # type: ignore[attr-defined]
# Problems per verify when a corrected slip is checked: enough for each slip itself to
# fail (test_gallery.py measured 1 to 8 needed, and the test below asserts it fails),
# and for the corrected one to agree on that many problems.
FIX_EXAMPLES = 40


def test_every_slip_in_the_gallery_is_listed_once_with_its_hint(capsys) -> None:
    assert list(slips()) == NAMES
    assert set(HINTS) == set(NAMES)  # no slip without a hint, no hint without a slip
    assert main(["gallery"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith("  ")]
    assert [row[0] for row in rows] == NAMES
    for name in NAMES:
        assert re.search(rf"^  {name} +{re.escape(HINTS[name])}$", out, re.MULTILINE), name
    headings = [line for line in out.splitlines() if line.startswith("--style ")]
    assert headings == [
        "--style tutorial (rnn cell; correct: TutorialRNN)",
        "--style project (rnn cell)",
        "--style project --cell lstm (lstm cell)",
        "--style project --cell gru (gru cell)",
        "--style cs231n (rnn cell; correct: RNNLayers)",
        "--style cs231n-lstm (lstm cell; correct: LSTMLayers)",
        "--style min-char-rnn (rnn cell; correct: lossFun)",
    ]


@pytest.mark.parametrize(
    ("name", "parts_shown"),
    [
        ("CurrentStateInDW", [gallery.CurrentStateInDW]),
        (
            "lstm_forget_gate_with_s_t",
            [gallery._lstm_step_forget_with_new_state, gallery.lstm_forget_gate_with_s_t],
        ),
        ("bias_gradient_before_tanh", [gallery_min_char_rnn.bias_gradient_before_tanh]),
    ],
)
def test_a_slip_is_shown_as_its_source_word_for_word(name, parts_shown, capsys) -> None:
    assert main(["gallery", name]) == 0
    expected = []
    for part in parts_shown:
        lines, start = inspect.getsourcelines(part)
        path = inspect.getfile(part).replace("\\", "/").split("/manual_bptt/", 1)[1]
        expected.append(f"# manual_bptt/{path}:{start}\n{''.join(lines).rstrip()}")
    assert capsys.readouterr().out == "\n\n".join(expected) + "\n"


def slipped_lines(name: str) -> list[str]:
    """The code of each line of the slip's source that a ``# slip`` comment marks."""
    source = "".join(inspect.getsource(part) for part in parts(slips()[name]))
    marked = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT and re.match(r"#\s*slip\b", token.string, re.IGNORECASE):
            code = token.line[: token.start[1]].strip()
            if code:
                marked.append(code)
    return marked


@pytest.mark.parametrize("name", NAMES)
def test_the_diff_changes_the_slipped_lines_under_the_slips_own_words(name, capsys) -> None:
    assert main(["gallery", name, "--diff"]) == 0
    out = capsys.readouterr().out
    said = inspect.getdoc(slips()[name].obj)
    assert said is not None
    assert out.startswith("\n".join(f"# {line}".rstrip() for line in said.splitlines()))
    lines = out.splitlines()
    added = [line[1:].strip() for line in lines if line[:1] == "+" and line[:3] != "+++"]
    removed = [line[1:].strip() for line in lines if line[:1] == "-" and line[:3] != "---"]
    assert added or removed, out
    for code in slipped_lines(name) if added else []:  # a slip that only leaves a line out
        assert code in added, f"{name}: the slipped line {code!r} is not in its diff"
    assert "# slip" not in out.lower(), "comments are left out of the diff"


def in_a_copy_of_its_module(name: str, source: str, step: Any) -> dict[str, Any]:
    """The gallery module's names, with ``source`` (the step or function, put right)
    defined in place of the slip's, as a local copy: the gallery itself is unchanged."""
    namespace = dict(vars(gallery))
    exec(compile(source, f"<{name}, put right>", "exec"), namespace)  # noqa: S102 (the gallery's own code)
    if step is not slips()[name].obj:  # a gated slip: its wrapper must call the new step
        wrapper = inspect.getsource(slips()[name].obj)
        exec(compile(wrapper, f"<{name}>", "exec"), namespace)  # noqa: S102
    return namespace


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FIXES))
def test_each_slip_put_right_by_its_fix_passes_verify_and_the_slip_does_not(name) -> None:
    slip = slips()[name]
    assert slip.correct is None  # only the slips without a correct twin are put right
    step = parts(slip)[0]
    namespace = in_a_copy_of_its_module(name, corrected(name, inspect.getsource(step)), step)
    put_right = namespace[name]
    assert put_right is not slip.obj
    strategy = cases(
        cell=slip.cell, max_T=6, max_N=3, max_dim=4, resets=slip.resets or ("after", "before")
    )
    for target, should_pass in ((put_right, True), (slip.obj, False)):
        report = verify(target, style="project", max_examples=FIX_EXAMPLES, strategy=strategy)
        assert report.passed is should_pass, (name, should_pass, report.findings)


def test_every_slip_without_a_correct_twin_has_a_fix() -> None:
    without = [name for name, slip in slips().items() if slip.correct is None]
    assert without == list(FIXES)
    for name in without:
        assert corrected(name, inspect.getsource(parts(slips()[name])[0])) != ""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ForgetTanh"], "no slip named 'ForgetTanh'; near: ForgetsTanhDerivative"),
        (
            ["currentstateindw", "--diff"],
            "no slip named 'currentstateindw'; near: CurrentStateInDW",
        ),
        (
            ["lstm_forget", "--check"],
            (
                "no slip named 'lstm_forget'; near: lstm_forget_gate_with_s_t, "
                "lstm_forgets_tanh_derivative"
            ),
        ),
        (["zzz"], "no slip named 'zzz'; 'bptt gallery' lists all 30"),
        ([""], "no slip named ''; 'bptt gallery' lists all 30"),
        (
            ["TutorialRNN"],
            (
                "TutorialRNN is the correct implementation of --style tutorial, not a slip; "
                "bptt verify manual_bptt.checking.gallery:TutorialRNN --style tutorial checks it"
            ),
        ),
        (
            ["CurrentStateInDW", "--examples", "5"],
            "--examples goes with --check, which runs verify on the slip",
        ),
        (["--seed", "1"], "--seed goes with --check, which runs verify on the slip"),
        (["--diff"], "--diff needs a NAME; 'bptt gallery' lists them"),
        (["--check"], "--check needs a NAME; 'bptt gallery' lists them"),
    ],
)
def test_a_name_it_does_not_know_is_refused_in_one_line(argv, message, capsys) -> None:
    assert main(["gallery", *argv]) == 2
    captured = capsys.readouterr()
    assert re.fullmatch(re.escape(f"bptt gallery: error: {message}\n"), captured.err)
    assert captured.out == ""


@pytest.mark.parametrize(
    ("name", "command", "shown"),
    [
        (
            "CurrentStateInDW",
            "verify manual_bptt.checking.gallery:CurrentStateInDW --style tutorial",
            ["  dW (bptt)  WRONG", "  sizes: T=1, D=2, H=1"],
        ),
        (  # an argument changed in place: a failure here, not verify's default warning
            "ChangesUpstreamInPlace",
            "verify manual_bptt.checking.gallery_cs231n:ChangesUpstreamInPlace --style cs231n",
            [
                "  dx (rnn_backward)                   agrees on all 22 problems",
                "rnn_backward changed dh in place (--strict-inputs); minimal counterexample",
                "  sizes: N=1, T=2, D=1, H=1",
            ],
        ),
        (
            "gru_reset_differentiated_before_the_product",
            (
                "verify manual_bptt.checking.gallery:gru_reset_differentiated_before_the_product"
                " --style project --cell gru --reset after"
            ),
            ["  dU (f; grads['U'])", "WRONG dW (f; grads['W']); minimal counterexample"],
        ),
    ],
)
def test_check_runs_verify_in_a_worker_and_shows_what_each_wrong_gradient_shrinks_to(
    name, command, shown, capsys
) -> None:
    assert main(["gallery", name, "--check", "--examples", "20"]) == 1
    out = capsys.readouterr().out
    first, *rest = out.splitlines()
    assert first == f"running: bptt {command} --strict-inputs --examples 20 --seed 0"
    assert "FAILED" in rest[0]
    for line in shown:
        assert any(row.startswith(line) for row in rest), (line, out)
    assert "the code ran in a worker process of its own" in out
