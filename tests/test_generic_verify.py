"""The generic verify forms (issue 19): the shapes language, the layer and loss forms on the
seven examples in examples/generic/, and the numerical reference against the twin."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manual_bptt.checking.numeric_reference import reference_agreements
from manual_bptt.checking.shapes import (
    Drawn,
    ShapesError,
    bounds_for,
    drawn_problems,
    make_problem,
    parse_shapes,
)
from manual_bptt.checking.styles import UsageError, make_style
from manual_bptt.checking.styles.layer import GenericStyle
from manual_bptt.checking.verify import verify
from manual_bptt.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "generic"
LSTM_GATES = "x:N,T,D h0:N,H Wf:D+H,H Wi:D+H,H Wo:D+H,H Wg:D+H,H bf:H bi:H bo:H bg:H"
MIN_CHAR_ARGS = "inputs:T:list<V targets:T:list<V hprev:H,1"
MIN_CHAR_PARAMS = "Wxh:H,V Whh:H,H Why:V,H bh:H,1 by:V,1"

# -- the shapes language ------------------------------------------------------------------


def test_sizes_are_sums_of_products_of_letters_and_integers() -> None:
    p = make_problem(
        shapes="x:N,T,D Wx:D+H,4*H b:4*H+1 ids:N:ints<V inputs:T:list<V",
        seed=1,
        N=2,
        T=3,
        D=1,
        H=2,
        V=5,
    )
    assert p.values["x"].shape == (2, 3, 1)
    assert p.values["Wx"].shape == (3, 8)
    assert p.values["b"].shape == (9,)
    assert p.values["ids"].dtype == np.int64
    assert ((p.values["ids"] >= 0) & (p.values["ids"] < 5)).all()
    assert isinstance(p.values["inputs"], list)
    assert all(type(i) is int and 0 <= i < 5 for i in p.values["inputs"])


def test_a_problem_is_rebuilt_exactly_from_its_recipe() -> None:
    p = make_problem(shapes="x:N,T h:N:ints<V", seed=7, N=3, T=2, V=4)
    q = make_problem(**p.recipe)
    assert all(np.array_equal(p.values[k], q.values[k]) for k in p.values)


def test_new_weights_keep_the_leading_inputs_and_redraw_the_rest() -> None:
    p = make_problem(shapes="x:N,T W:T,T", seed=7, N=3, T=2, keep=1)
    q = p.with_new_weights()
    assert np.array_equal(p.values["x"], q.values["x"])
    assert not np.array_equal(p.values["W"], q.values["W"])


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_every_letter_is_drawn_within_its_bound(data) -> None:
    shapes = "x:N,T,D h0:N,H Wx:D,4*H"
    bounds = bounds_for(parse_shapes(shapes), {"H": 2})
    p = data.draw(drawn_problems(shapes, bounds))
    assert all(1 <= p.sizes[k] <= bounds[k] for k in "NTDH")
    assert p.sizes["H"] <= 2


EX = '; write e.g. --shapes "x:N,T,D h0:N,H Wx:D,4*H Wh:H,4*H b:4*H"'
SIZE = (
    "is not a size (sums and products of single capital letters and integers, such as 4*H or H+D)"
)
REFUSALS = [
    ("x:n", f"--shapes entry 'x:n': 'n' {SIZE}{EX}"),
    ("x:N-1", f"--shapes entry 'x:N-1': 'N-1' {SIZE}{EX}"),
    ("x:HD", f"--shapes entry 'x:HD': 'HD' {SIZE}{EX}"),
    (
        "x",
        (
            f"--shapes entry 'x': an entry is NAME:DIMS, NAME:DIMS:ints<S, NAME:DIM:list<S or "
            f"NAME:=SIZE{EX}"
        ),
    ),
    ("1x:N", f"--shapes entry '1x:N': '1x' is not a Python name{EX}"),
    ("x:N:float", f"--shapes entry 'x:N:float': 'float' is not ints<S or list<S{EX}"),
    ("x:N,T:list<V", f"--shapes entry 'x:N,T:list<V': a list has one size (NAME:T:list<V){EX}"),
    ("x:0", f"--shapes entry 'x:0': the size '0' is not at least 1{EX}"),
    ("x:N x:T", f"--shapes entry 'x': the name x is given twice{EX}"),
    ("", f"--shapes is empty{EX}"),
]


@pytest.mark.parametrize(("text", "message"), REFUSALS)
def test_the_shapes_language_refuses_anything_else_in_one_line_with_an_example(
    text, message
) -> None:
    with pytest.raises(ShapesError, match=f"^{re.escape(message)}$"):
        parse_shapes(text)


def test_a_params_refusal_shows_a_params_example() -> None:
    message = (
        "--params entry 'W:h': 'h' " + SIZE + '; write e.g. --params "Wxh:H,V Whh:H,H Why:V,H '
        'bh:H,1 by:V,1"'
    )
    with pytest.raises(ShapesError, match=f"^{re.escape(message)}$"):
        parse_shapes("W:h", "--params")


# -- the command line ---------------------------------------------------------------------

CLI_REFUSALS = [
    (
        ["--forward", "f", "--loss", "g"],
        "--forward (the layer form) and --loss (the loss form) cannot be given together",
    ),
    (["--forward", "f", "--style", "cs231n"], "--style cs231n takes no --forward"),
    (["--forward", "f"], "--style layer needs --forward, --backward, --shapes"),
    (
        ["--forward", "f", "--backward", "g", "--shapes", "x:N", "--max-V", "3"],
        "--max-V names no size of the description (its sizes are N) (given --max-V)",
    ),
    (["--max-V", "3"], "--max-V bounds a size of --shapes, --args or --params; give them too"),
    (
        ["--forward", "f", "--backward", "g", "--shapes", "x:N", "--activation", "relu"],
        (
            "--style layer draws sizes only (--max-LETTER); it takes no --activation "
            "(given --activation)"
        ),
    ),
    (
        ["--loss", "L", "--args", "a:N", "--params", "W:N", "--object", "RNN(v)"],
        (
            "--object 'RNN(v)' is not a call of a class of the file with sizes or numbers; "
            'write e.g. --object "RNN(V, H, 0.1)"'
        ),
    ),
    (
        ["--loss", "L", "--args", "a:N", "--params", "W:N", "--object", "RNN(V)"],
        (
            "--object 'RNN(V)' uses the size V, which no array of --args or --params has "
            "(their sizes are N)"
        ),
    ),
]


@pytest.mark.parametrize(("flags", "message"), CLI_REFUSALS)
def test_the_generic_forms_refuse_a_bad_command_in_one_line(flags, message, capsys) -> None:
    assert main(["verify", str(EXAMPLES / "lstm_gates.py"), *flags]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(re.escape(f"bptt verify: {message}") + r"\n", err), err


# -- the examples: each correct version passes, each slip names its wrong gradients ----------

LAYER = {
    "lstm_gates": ("lstm_forward", "lstm_backward", LSTM_GATES),
    "stacked_rnn": (
        "stacked_forward",
        "stacked_backward",
        "x:N,T,D h0a:N,H h0b:N,H W1x:D,H W1h:H,H b1:H W2x:H,H W2h:H,H b2:H",
    ),
    "peephole_lstm": (
        "peephole_forward",
        "peephole_backward",
        "x:N,T,D h0:N,H Wx:D,4*H Wh:H,4*H b:4*H pi:H pf:H po:H",
    ),
    "layernorm_rnn": (
        "ln_rnn_forward",
        "ln_rnn_backward",
        "x:N,T,D h0:N,H Wx:D,H Wh:H,H b:H gamma:H beta:H",
    ),
}
# (target, style options, the gradients the slip gets wrong: at least these, and not the others)
SLIPS = {
    "lstm_gates": ({"x", "h0", "Wf", "bf"}, set()),
    "stacked_rnn": ({"b1", "b2"}, {"x", "h0a", "h0b", "W1x", "W1h", "W2x", "W2h"}),
    "peephole_lstm": ({"x", "h0", "Wx", "Wh", "b"}, set()),
    "layernorm_rnn": ({"x", "h0", "Wx", "Wh"}, set()),
    "char_rnn_class": ({"Whh"}, {"Wxh", "Why", "bh", "by"}),
    "char_lstm": ({"Wx", "Wh", "b"}, {"Wy", "by"}),
    "fbt": ({"x", "h0", "Wx", "Wh", "b"}, set()),
}


def _options(example: str, slip: bool) -> tuple[str, str, dict[str, Any]]:
    """(target, style, options) of an example, as its docstring's command gives them."""
    suffix = "_slip" if slip else ""
    if example in LAYER:
        fwd, bwd, shapes = LAYER[example]
        target = str(EXAMPLES / f"{example}{suffix}.py")
        return target, "layer", {"forward": fwd, "backward": bwd, "shapes": shapes}
    if example == "fbt":
        return (
            str(EXAMPLES / "fbt_forward.py"),
            "layer",
            {
                "forward": "rnn_forward",
                "backward": f"{EXAMPLES / f'fbt_backward{suffix}.py'}:rnn_backward",
                "shapes": "x:D,N,T h0:H,N Wx:H,D Wh:H,H b:H,1",
            },
        )
    target = str(EXAMPLES / f"{example}{suffix}.py")
    if example == "char_rnn_class":
        return (
            target,
            "loss",
            {
                "loss": "lossFun",
                "args": MIN_CHAR_ARGS,
                "params": MIN_CHAR_PARAMS,
                "object": "CharRNN(V, H, 0.1)",
            },
        )
    return (
        target,
        "loss",
        {
            "loss": "lossFun",
            "args": MIN_CHAR_ARGS + " cprev:H,1",
            "params": "Wx:4*H,V Wh:4*H,H b:4*H,1 Wy:V,H by:V,1",
        },
    )


@pytest.mark.parametrize("example", sorted(SLIPS))
def test_the_correct_example_agrees_with_its_own_forward(example) -> None:
    target, style, options = _options(example, slip=False)
    report = verify(target, style=make_style(style, **options), max_examples=12)
    assert report.passed, report
    assert all(v.compared == 12 for v in report.verdicts)


@pytest.mark.parametrize("example", sorted(SLIPS))
def test_the_slip_is_named_at_a_minimal_case(example) -> None:
    target, style, options = _options(example, slip=True)
    report = verify(target, style=make_style(style, **options), max_examples=12)
    wrong = {v.gradient.key for v in report.verdicts if not v.ok}
    named, spared = SLIPS[example]
    assert named <= wrong, (wrong, report.other)
    assert not wrong & spared
    assert not report.other
    for v in report.verdicts:
        if v.finding is not None:
            sizes = cast(Drawn, v.finding.case).sizes  # a generic form's problem
            assert v.finding.worst is not None
            assert v.finding.worst.worst_index != ()
            # shrunk: every size at most 3 (the peephole slip's dpi shows from T = 3 on)
            assert all(n <= 3 for n in sizes.values()), sizes


def test_the_command_runs_the_layer_form_and_names_the_slip(capsys) -> None:
    fwd, bwd, shapes = LAYER["stacked_rnn"]
    argv = ["verify", str(EXAMPLES / "stacked_rnn_slip.py"), "--forward", fwd]
    argv += ["--backward", bwd, "--shapes", shapes, "--examples", "10"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert re.search(r"\n  db2 \(stacked_backward\) +WRONG\n", out)
    assert re.search(r"\n  dW2x \(stacked_backward\) +agrees on all 10 problems\n", out)
    assert "reference derivative: the complex step on" in out


# -- the numerical reference against the twin, on the project's own cells ------------------

TWIN_TOL = 1e-8  # the bar: the numerical reference within 1e-8 of the twin
CELL_PARAMS = {
    "rnn": "U:H,D W:H,H V:K,H b:H c:K",
    "lstm": "U:4*H,D W:4*H,H b:4*H V:K,H c:K",
    "gru": "U:3*H,D W:3*H,H b:3*H bh:3*H V:K,H c:K",
}


def _project_loss(cell: str) -> types.SimpleNamespace:
    """The project's own loss as a generic loss form: loss(x, y, h0) reading its cell's
    parameters from module globals; the gradients it returns are the twin's."""
    import torch_reference
    from manual_bptt.cells import init_params
    from manual_bptt.checking.gradcheck import bptt_objective

    names = [e.split(":")[0] for e in CELL_PARAMS[cell].split()]
    space: dict[str, Any] = {"np": np}

    def loss(x, y, h0):
        arrays = {k: space[k] for k in names}
        shapes = {k: np.shape(v) for k, v in arrays.items()}
        H, D = shapes["W"][1], shapes["U"][1]
        K = shapes["V"][0]
        real = init_params(D, H, K, seed=0, cell=cell).with_arrays(
            **{k: np.real(v) for k, v in arrays.items()}
        )
        objective = bptt_objective(real, x, y, h0=h0)  # the LSTM's c0 is in its arrays
        value = objective.f({**objective.arrays, **arrays})
        if np.iscomplexobj(value):
            return (value, *(np.zeros(shapes[k]) for k in names))
        twin = torch_reference.bptt(real, x, y, h0=h0)
        return (value, *(twin.grads[k] for k in names))

    function = types.FunctionType(loss.__code__, space, "loss", None, loss.__closure__)
    return types.SimpleNamespace(loss=function)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_the_numeric_reference_agrees_with_the_twin_on_the_project_cells(cell) -> None:
    style = cast(
        GenericStyle,
        make_style(
            "loss", loss="loss", args="x:T,N,D y:T,N:ints<K h0:N,H", params=CELL_PARAMS[cell]
        ),
    )
    target = _project_loss(cell)
    report = verify(target, style=style, max_examples=8, real_sizes=False)
    assert report.passed, report
    assert style.stats["complex step"] == style.stats["problems"] > 0
    assert report.closest is not None
    assert report.closest.max_abs <= TWIN_TOL * max(1.0, abs(report.closest.expected))


def test_reference_agreements_names_the_wrong_entry_of_a_wrong_gradient() -> None:
    arrays = {"a": np.array([0.3, -0.2]), "b": np.array([[0.5]])}

    def f(values):
        return np.sum(np.sin(values["a"])) * values["b"][0, 0]

    right = {"a": np.cos(arrays["a"]) * 0.5, "b": np.array([[np.sum(np.sin(arrays["a"]))]])}
    wrong = {**right, "a": right["a"] * np.array([1.0, 1.1])}
    ok, cost = reference_agreements(f, right, arrays)
    assert all(a.passed for a in ok.values())
    assert cost.method == "complex step"
    bad, _ = reference_agreements(f, wrong, arrays)
    assert not bad["a"].passed
    assert bad["a"].worst_index == (1,)
    assert bad["b"].passed


def test_a_forward_that_drops_the_imaginary_part_is_checked_by_central_differences() -> None:
    arrays = {"a": np.array([0.3, -0.2])}

    def f(values):
        out = np.zeros(2)  # a real buffer: the complex step's imaginary part is lost
        out[:] = np.real(np.tanh(values["a"]))
        return float(np.sum(out)) if not np.iscomplexobj(values["a"]) else complex(np.sum(out))

    grads = {"a": 1 - np.tanh(arrays["a"]) ** 2}
    found, cost = reference_agreements(f, grads, arrays)
    assert cost.method == "central differences"
    assert found["a"].passed


def test_module_is_importable_without_the_examples_on_the_path() -> None:
    assert str(EXAMPLES) not in sys.path
    with pytest.raises(UsageError):
        make_style("layer", forward="f", backward="b", shapes="x:n")


def test_the_python_api_passes_the_correct_layer_and_raises_the_slips_report() -> None:
    from manual_bptt.testing import assert_layer_correct, assert_loss_correct

    fwd, bwd, shapes = LAYER["stacked_rnn"]
    assert_layer_correct(
        str(EXAMPLES / "stacked_rnn.py"), forward=fwd, backward=bwd, shapes=shapes, examples=8
    )
    with pytest.raises(AssertionError, match=r"WRONG db2 \(stacked_backward\)"):
        assert_layer_correct(
            str(EXAMPLES / "stacked_rnn_slip.py"),
            forward=fwd,
            backward=bwd,
            shapes=shapes,
            examples=8,
            max_sizes={"H": 2},
        )
    _, _, options = _options("char_rnn_class", slip=True)
    with pytest.raises(AssertionError, match=r"WRONG dWhh \(lossFun\)"):
        assert_loss_correct(
            str(EXAMPLES / "char_rnn_class_slip.py"), **options, examples=8, max_sizes={"V": 2}
        )
