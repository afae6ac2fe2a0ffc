"""Generic verify on published min-char-rnn shapes (issue 23): a size passed as a plain int
(``NAME:=SIZE``), sizes kept in module globals that the file sets from its data
(``--globals``), and forwards, backwards and losses in other files (``OTHER.py:NAME``).

The examples are examples/generic/char_rnn_train.py (a class, ``train(inputs, targets,
vocab_size, hprev)``, its sizes read from globals), char_rnn_script.py (a script,
``V = vocab_size = len(chars)``) and dlai_forward.py + dlai_backward.py (deeplearning.ai's
layout); each has a ``*_slip.py`` copy with one classic slip.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

from manual_bptt.checking.shapes import ShapesError, make_problem, parse_globals, parse_shapes
from manual_bptt.checking.source import load
from manual_bptt.checking.styles import UsageError, make_style
from manual_bptt.checking.styles.layer import LayerStyle
from manual_bptt.checking.styles.loss import LossStyle
from manual_bptt.checking.verify import evaluate, verify
from manual_bptt.checking.worker import run_call
from manual_bptt.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "generic"
CHAR_ARGS = "inputs:T:list<V targets:T:list<V hprev:H,1"
CHAR_PARAMS = "Wxh:H,V Whh:H,H Why:V,H bh:H,1 by:V,1"
SIZES = "vocab_size=V hidden_size=H"
DLAI_SHAPES = "x:X,M,T a0:A,M Wax:A,X Waa:A,A ba:A,1"


def _example(name: str, slip: bool) -> tuple[str, str, dict[str, str]]:
    """(target, style, options) of a new example, as its docstring's command gives them."""
    suffix = "_slip" if slip else ""
    if name == "char_rnn_train":
        return (
            str(EXAMPLES / f"char_rnn_train{suffix}.py"),
            "loss",
            {
                "object": "MinCharRNN(25, 0.1)",
                "loss": "train",
                "args": "inputs:T:list<V targets:T:list<V vocab_size:=V hprev:H,1",
                "params": CHAR_PARAMS,
                "globals": SIZES,
            },
        )
    if name == "char_rnn_script":
        return (
            str(EXAMPLES / f"char_rnn_script{suffix}.py"),
            "loss",
            {"loss": "lossFun", "args": CHAR_ARGS, "params": CHAR_PARAMS, "globals": SIZES},
        )
    return (
        str(EXAMPLES / f"dlai_backward{suffix}.py"),
        "layer",
        {
            "forward": f"{EXAMPLES / 'dlai_forward.py'}:rnn_forward",
            "backward": "rnn_backward",
            "shapes": DLAI_SHAPES,
        },
    )


def _argv(name: str, slip: bool) -> list[str]:
    target, _, options = _example(name, slip)
    return [target, *(w for k, v in options.items() for w in (f"--{k}", v))]


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(["verify", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- the shapes language: a size as a plain int, and --globals ------------------------------


def test_a_plain_int_is_the_value_of_its_size_and_draws_nothing() -> None:
    with_int = make_problem(shapes="x:T,V n:=2*T+V m:=3 W:V,V", seed=5, T=3, V=2)
    without = make_problem(shapes="x:T,V W:V,V", seed=5, T=3, V=2)
    assert with_int.values["n"] == 8
    assert type(with_int.values["n"]) is int
    assert with_int.values["m"] == 3
    # the arrays are those of the same seed without the ints: they consume no randomness
    assert np.array_equal(with_int.values["W"], without.values["W"])
    assert with_int.with_new_weights().values["n"] == 8


def test_globals_are_names_and_sizes_in_order() -> None:
    pairs = parse_globals("vocab_size=V  hidden_size=4*H+1")
    assert [(name, size.text, size.value({"V": 3, "H": 2})) for name, size in pairs] == [
        ("vocab_size", "V", 3),
        ("hidden_size", "4*H+1", 9),
    ]


SIZE = (
    "is not a size (sums and products of single capital letters and integers, such as 4*H or H+D)"
)
G = '; write e.g. --globals "vocab_size=V hidden_size=H"'
A = '; write e.g. --args "inputs:T:list<V targets:T:list<V hprev:H,1"'
PARSE_REFUSALS = [
    (
        parse_globals,
        "vocab_size",
        f"--globals entry 'vocab_size': an entry is NAME=SIZE, e.g. vocab_size=V{G}",
    ),
    (
        parse_globals,
        "vocab_size=",
        f"--globals entry 'vocab_size=': an entry is NAME=SIZE, e.g. vocab_size=V{G}",
    ),
    (
        parse_globals,
        "vocab_size:=V",
        f"--globals entry 'vocab_size:=V': a global is NAME=SIZE (NAME:=SIZE is an argument's){G}",
    ),
    (parse_globals, "1v=V", f"--globals entry '1v=V': '1v' is not a Python name{G}"),
    (parse_globals, "v=V-1", f"--globals entry 'v=V-1': 'V-1' {SIZE}{G}"),
    (parse_globals, "v=V v=H", f"--globals entry 'v': the name v is given twice{G}"),
    (parse_globals, " ", f"--globals is empty{G}"),
    (
        lambda text: parse_shapes(text, "--args"),
        "n:=",
        f"--args entry 'n:=': a plain int is NAME:=SIZE, e.g. vocab_size:=V{A}",
    ),
    (lambda text: parse_shapes(text, "--args"), "n:=v", f"--args entry 'n:=v': 'v' {SIZE}{A}"),
    (
        lambda text: parse_shapes(text, "--args"),
        "n:=0",
        f"--args entry 'n:=0': the size '0' is not at least 1{A}",
    ),
    (
        lambda text: parse_shapes(text, "--args"),
        "2n:=V",
        f"--args entry '2n:=V': '2n' is not a Python name{A}",
    ),
]


@pytest.mark.parametrize(("parse", "text", "message"), PARSE_REFUSALS)
def test_ints_and_globals_outside_the_language_are_refused_in_one_line(
    parse, text, message
) -> None:
    with pytest.raises(ShapesError) as raised:
        parse(text)
    assert re.fullmatch(re.escape(message), str(raised.value)), str(raised.value)


# -- the command line refuses, in one line, before any search --------------------------------

SCRIPT = str(EXAMPLES / "char_rnn_script.py")
LOSS = ["--loss", "lossFun", "--args", CHAR_ARGS, "--params", CHAR_PARAMS]
NOT_A_SIZE = "not a size (--globals sets module globals that hold ints or are unset)"
CLI_REFUSALS = [
    (
        [*LOSS, "--globals", "vocab_size=K"],
        (
            "--globals entry 'vocab_size=K' uses the size K, which no array of --args or --params "
            "has (their sizes are T, V, H)"
        ),
    ),
    (
        ["--loss", "f", "--args", "x:T n:=K", "--params", "W:T"],
        (
            "--args entry 'n:=K' uses the size K, which no array of --args or --params has "
            "(their sizes are T)"
        ),
    ),
    (
        ["--forward", "f", "--backward", "g", "--shapes", "x:N n:=2*H"],
        (
            "--shapes entry 'n:=2*H' uses the size H, which no array of --shapes has "
            "(their sizes are N)"
        ),
    ),
    (
        [*LOSS, "--globals", "vocab_sise=V"],
        (
            f"--globals entry 'vocab_sise=V': vocab_sise is no module global of {SCRIPT} (no "
            "statement sets it and no function reads it)"
        ),
    ),
    (
        [*LOSS, "--globals", "lossFun=V"],
        f"--globals entry 'lossFun=V': lossFun in {SCRIPT} is of type function, {NOT_A_SIZE}",
    ),
    (
        [*LOSS, "--globals", "learning_rate=H"],
        f"--globals entry 'learning_rate=H': learning_rate in {SCRIPT} is of type float, {NOT_A_SIZE}",
    ),
    (
        [*LOSS, "--globals", "len=V"],
        f"--globals entry 'len=V': len is one of Python's builtins, not a global of {SCRIPT}",
    ),
    ([*LOSS, "--globals", "Wxh=V"], "Wxh is in both --globals and --params; give it once"),
    (
        ["--globals", "vocab_size=V"],
        "--globals sets module globals for the layer or loss form; give --forward or --loss too",
    ),
    (
        [*LOSS[2:], "--loss", f"{SCRIPT}:lossFun", "--object", "RNN(V)"],
        (
            f"--loss {SCRIPT}:lossFun names a function of another file; with --object, --loss is "
            "a method of the object's class (--loss NAME)"
        ),
    ),
]


@pytest.mark.parametrize(("flags", "message"), CLI_REFUSALS)
def test_a_bad_int_global_or_other_file_is_refused_in_one_line(flags, message, capsys) -> None:
    code, _, err = _run([SCRIPT, *flags], capsys)
    assert code == 2
    *before, last = err.rstrip("\n").split("\n")
    assert all(line.startswith("took from ") for line in before), err  # what was loaded
    assert re.fullmatch(re.escape(f"bptt verify: {message}"), last), err


# -- the three examples: the correct one exits 0, the slip names its gradient ------------------

# (example, the gradients its slip gets wrong; every other one agrees)
SLIPS = {
    "char_rnn_train": {"bh"},
    "char_rnn_script": {"by"},
    "dlai": {"Wax"},
}


@pytest.mark.parametrize("example", sorted(SLIPS))
def test_the_correct_example_agrees_with_its_own_forward(example) -> None:
    target, style, options = _example(example, slip=False)
    report = verify(target, style=make_style(style, **options), max_examples=12)
    assert report.passed, report
    assert all(v.compared == 12 for v in report.verdicts)


@pytest.mark.parametrize("example", sorted(SLIPS))
def test_the_slip_is_named_and_nothing_else(example) -> None:
    target, style, options = _example(example, slip=True)
    report = verify(target, style=make_style(style, **options), max_examples=12)
    wrong = {v.gradient.key for v in report.verdicts if not v.ok}
    assert wrong == SLIPS[example], (wrong, report.other)
    assert not report.other
    assert len(report.verdicts) == 5


@pytest.mark.parametrize("example", sorted(SLIPS))
def test_the_command_exits_0_for_the_example_and_1_naming_the_slip(example, capsys) -> None:
    code, out, _ = _run([*_argv(example, slip=False), "--examples", "5"], capsys)
    assert code == 0, out
    code, out, _ = _run([*_argv(example, slip=True), "--examples", "5"], capsys)
    assert code == 1, out
    (key,) = SLIPS[example]
    function = "rnn_backward" if example == "dlai" else _example(example, False)[2]["loss"]
    assert re.search(rf"\n  d{key} \({function}\) +WRONG\n", out), out
    assert f"\nWRONG d{key} ({function}); minimal counterexample" in out


# -- what the globals do, and what a hostile file cannot do with them -------------------------


def test_without_globals_the_missing_size_is_a_finding_that_says_how_to_set_it(capsys) -> None:
    code, out, _ = _run([SCRIPT, *LOSS, "--examples", "3"], capsys)
    assert code == 1
    assert (
        "lossFun raised NameError: name 'vocab_size' is not defined; char_rnn_script needs the "
        "name vocab_size, defined at line 21, which was skipped (it raised NameError: name "
        "'chars' is not defined); if vocab_size is a size, set it with --globals "
        '"vocab_size=SIZE"'
    ) in out


def test_the_globals_follow_the_sizes_of_each_problem() -> None:
    """Each problem's call sees its own sizes: a first problem's values kept would give the
    next one arrays of the wrong shape."""
    target, style, options = _example("char_rnn_script", slip=False)
    adapter = make_style(style, **options)
    assert isinstance(adapter, LossStyle)
    for V, H in ((3, 2), (1, 4), (5, 1)):
        case = make_problem(shapes=adapter.shapes, seed=V, keep=3, T=2, V=V, H=H)
        outcome = evaluate(target, adapter, case)  # type: ignore[arg-type]  # a Drawn problem
        assert outcome.passed, outcome.describe()
        assert set(outcome.agreements) == {"Wxh", "Whh", "Why", "bh", "by"}


def test_a_global_set_for_a_call_is_taken_away_after_it_in_this_process_too() -> None:
    """The in-process path (an object no worker can load): a class's constructor reads the
    global; afterwards the module holds what it held."""
    space: dict[str, object] = {"__name__": "local"}
    exec(  # noqa: S102 (a class of a module of its own, as a loaded file would have)
        textwrap.dedent(
            """
            hidden_size = 100
            class Net:
                def __init__(self):
                    self.h = hidden_size
            """
        ),
        space,
    )
    net, changed = run_call(
        "Net()", space["Net"], (), {}, timeout=None, seed=0, module_globals={"hidden_size": 3}
    )
    assert net.h == 3
    assert changed == []
    assert space["hidden_size"] == 100


def _mutating_script(tmp_path: Path) -> str:
    text = (EXAMPLES / "char_rnn_script.py").read_text()
    text = text.replace(
        "def lossFun(inputs, targets, hprev):",
        "def lossFun(inputs, targets, hprev):\n    global vocab_size",
    ).replace(
        "    return loss, dWxh,",
        "    vocab_size = vocab_size + 1  # the global, changed\n    return loss, dWxh,",
    )
    path = tmp_path / "mutates.py"
    path.write_text(text)
    return str(path)


def test_a_global_the_code_changes_is_reported_and_fails_under_strict_inputs(
    tmp_path, capsys
) -> None:
    target = _mutating_script(tmp_path)
    argv = [target, *LOSS, "--globals", SIZES, "--examples", "3"]
    code, out, _ = _run(argv, capsys)
    assert code == 0
    assert "\nwarning: lossFun changed the global vocab_size in place (first seen at" in out
    code, out, _ = _run([*argv, "--strict-inputs"], capsys)
    assert code == 1
    assert "lossFun changed the global vocab_size in place (--strict-inputs)" in out


# -- functions from other files ---------------------------------------------------------------


def test_loss_from_another_file_is_the_one_checked(capsys) -> None:
    """--loss OTHER.py:NAME: the slip of the other file is found, not the target's lossFun."""
    slip = str(EXAMPLES / "char_rnn_script_slip.py")
    argv = [SCRIPT, "--loss", f"{slip}:lossFun", "--args", CHAR_ARGS, "--params", CHAR_PARAMS]
    code, out, _ = _run([*argv, "--globals", SIZES, "--examples", "5"], capsys)
    assert code == 1
    assert re.search(r"\n  dby \(lossFun\) +WRONG\n", out), out
    assert re.search(r"\n  dbh \(lossFun\) +agrees on all 5 problems\n", out), out


def test_globals_reach_the_forward_and_the_backward_in_two_files(tmp_path, capsys) -> None:
    """The layer form, its two functions each reading a global of its own file."""
    (tmp_path / "fwd.py").write_text(
        textwrap.dedent(
            """
            import numpy as np
            n_a = int(open("sizes.txt").read())  # set from data: never run by verify

            def forward(x, a0, Wax, Waa):
                a, states = a0, np.zeros((n_a, x.shape[1], x.shape[2]))
                for t in range(x.shape[2]):
                    a = np.tanh(Wax @ x[:, :, t] + Waa @ a)
                    states[:, :, t] = a
                return states, (x, a0, Wax, Waa, states)
            """
        )
    )
    (tmp_path / "bwd.py").write_text(
        textwrap.dedent(
            """
            import numpy as np

            def backward(da, cache):
                x, a0, Wax, Waa, states = cache
                dx, dWax, dWaa = np.zeros_like(x), np.zeros_like(Wax), np.zeros_like(Waa)
                dnext = np.zeros((n_a, x.shape[1]))
                for t in reversed(range(x.shape[2])):
                    prev = states[:, :, t - 1] if t else a0
                    d = (da[:, :, t] + dnext) * (1 - states[:, :, t] ** 2)
                    dx[:, :, t], dWax, dWaa = Wax.T @ d, dWax + d @ x[:, :, t].T, dWaa + d @ prev.T
                    dnext = Waa.T @ d
                return dx, dnext, dWax, dWaa
            """
        )
    )
    argv = [str(tmp_path / "bwd.py"), "--forward", f"{tmp_path / 'fwd.py'}:forward"]
    argv += ["--backward", "backward", "--shapes", "x:X,M,T a0:A,M Wax:A,X Waa:A,A"]
    code, out, _ = _run([*argv, "--globals", "n_a=A", "--examples", "5"], capsys)
    assert code == 0, out
    assert re.search(r"\n  dWaa \(backward\) +agrees on all 5 problems\n", out), out


def test_a_subclass_without_methods_of_its_own_gets_the_globals_of_its_file(tmp_path, capsys):
    """--object "Sub(25, 0.1)" where Sub(MinCharRNN) only inherits: the globals are those
    of the file both classes are in."""
    path = tmp_path / "sub.py"
    text = (EXAMPLES / "char_rnn_train.py").read_text().replace('if __name__ == "__main__":', "")
    path.write_text(text.split("\n    char_to_ix")[0] + "\nclass Sub(MinCharRNN):\n    pass\n")
    options = _example("char_rnn_train", slip=False)[2]
    argv = [str(path), *(w for k, v in options.items() for w in (f"--{k}", v))]
    argv[argv.index("--object") + 1] = "Sub(25, 0.1)"
    code, out, err = _run([*argv, "--examples", "3"], capsys)
    assert code == 0, out + err


def test_a_numpy_integer_global_is_a_size_and_an_array_is_not(tmp_path) -> None:
    path = tmp_path / "sizes.py"
    path.write_text(
        "import numpy as np\nn = np.int64(3)\ntable = np.zeros(3)\n\ndef f(x):\n    return n * table\n"
    )
    fn = load(f"{path}:f")
    options = {"forward": "f", "backward": "f", "shapes": "x:N"}
    style = make_style("layer", **options, globals="n=N")
    assert isinstance(style, LayerStyle)
    style.check_globals([(fn, str(path))])  # np.int64(3) is a size
    style = make_style("layer", **options, globals="table=N")
    assert isinstance(style, LayerStyle)
    with pytest.raises(UsageError) as raised:
        style.check_globals([(fn, str(path))])
    message = f"--globals entry 'table=N': table in {path} is of type ndarray, {NOT_A_SIZE}"
    assert re.fullmatch(re.escape(message), str(raised.value)), str(raised.value)
