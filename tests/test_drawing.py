"""verify draws what the interface accepts, and as much of it as is asked.

Masks of bool, int64 or float64 0/1; token ids and targets in int64 or int32; float
arrays in C order, Fortran order or strided (cases.in_layout); --max-T and --max-H
honoured as asked, or refused in one line.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

import manual_bptt
import torch_reference
from manual_bptt.cases import IDS_DTYPES, LAYOUTS, MASK_DTYPES, Case, in_layout, make_case
from manual_bptt.checking.strategies import Space, _one_of, problems
from manual_bptt.checking.styles import STYLES, UsageError, make_style
from manual_bptt.cli import main
from manual_bptt.compare import FLOAT64
from manual_bptt.result import BPTTResult
from tests.helpers import assert_results_agree

FACES = {"manual": manual_bptt.bptt, "autograd": torch_reference.bptt}
CELLS = ("rnn", "lstm", "gru")
SIZES: dict[str, Any] = {"T": 3, "N": 2, "D": 4, "H": 2, "K": 3, "seed": 7}  # make_case(**SIZES)
# The recipe's keys before the new options: a recipe at their defaults reads the same.
OLD_KEYS = [
    *("T", "N", "D", "H", "K", "seed", "scale", "activation", "tokens", "batched"),
    *("with_h0", "with_mask", "truncate", "chunk", "reduction", "dtype", "biases"),
]


def results(case: Case) -> dict[str, BPTTResult]:
    """Each face's result on case."""
    return {name: case.call(face) for name, face in FACES.items()}


def assert_same_result(got: Case, want: dict[str, BPTTResult], context: str) -> None:
    """Each face gives got exactly its result on the other case (``want``), and the manual
    gradients agree with autograd's: the boundary turns every mask dtype into the same
    0.0/1.0 and reads every integer width as the same ids."""
    mine = results(got)
    for name, b in want.items():
        a = mine[name]
        assert a.loss == b.loss, f"{context}, {name}: loss {a.loss!r}, expected {b.loss!r}"
        assert list(a.grads) == list(b.grads)
        for key in b.grads:
            np.testing.assert_array_equal(a.grads[key], b.grads[key], f"{context}, {name}: {key}")
    assert_results_agree(mine["manual"], mine["autograd"], FLOAT64, context)


@given(st.data())
def test_every_mask_dtype_holds_the_bool_masks_pattern_and_gives_its_gradients(data) -> None:
    cell = data.draw(st.sampled_from(CELLS), label="cell")
    space = Space(cells=(cell,), mask=(True,), mask_dtypes=("bool",))
    case = data.draw(problems(space), label="case")
    want = results(case)
    for mask_dtype in MASK_DTYPES[1:]:
        other = make_case(**case.recipe, mask_dtype=mask_dtype)
        assert other.mask is not None
        assert case.mask is not None
        assert other.mask.dtype == np.dtype(mask_dtype)
        assert set(np.unique(other.mask).tolist()) <= {0, 1}
        np.testing.assert_array_equal(other.mask != 0, case.mask)
        assert_same_result(other, want, f"mask_dtype={mask_dtype}")


@given(st.data())
def test_int32_ids_and_targets_give_the_int64_ones_gradients(data) -> None:
    cell = data.draw(st.sampled_from(CELLS), label="cell")
    case = data.draw(problems(Space(cells=(cell,), ids_dtypes=("int64",))), label="case")
    other = make_case(**case.recipe, ids_dtype="int32")
    assert other.y.dtype == np.int32
    assert case.y.dtype == np.int64
    np.testing.assert_array_equal(other.y, case.y)
    assert other.x.dtype == (np.int32 if case.recipe["tokens"] else case.x.dtype)
    np.testing.assert_array_equal(other.x, case.x)
    assert_same_result(other, results(case), "ids_dtype=int32")


def test_a_recipe_at_the_defaults_reads_as_it_always_has() -> None:
    case = make_case(**SIZES, with_mask=True, tokens=True)
    assert list(case.recipe) == OLD_KEYS
    assert case.layout == "C"
    assert case.reproduction() == (
        "from manual_bptt.cases import make_case; case = make_case(T=3, N=2, D=4, "
        "H=2, K=3, seed=7, scale=1.0, activation='tanh', tokens=True, batched=True, "
        "with_h0=False, with_mask=True, truncate=None, chunk=None, reduction='sum', "
        "dtype='float64', biases=True)"
    )


def test_a_recipe_names_the_options_away_from_their_defaults_and_rebuilds_the_case() -> None:
    chosen: dict[str, Any] = {"mask_dtype": "float64", "ids_dtype": "int32", "layout": "strided"}
    case = make_case(**SIZES, with_mask=True, tokens=True, **chosen)
    assert list(case.recipe) == [*OLD_KEYS, *chosen]
    assert {k: case.recipe[k] for k in chosen} == chosen
    assert case.reproduction().endswith(
        "biases=True, mask_dtype='float64', ids_dtype='int32', layout='strided')"
    )
    again = make_case(**case.recipe)
    assert again.layout == "strided"
    assert again.recipe == case.recipe
    for name in ("x", "y", "mask"):
        np.testing.assert_array_equal(getattr(again, name), getattr(case, name))
        assert getattr(again, name).dtype == getattr(case, name).dtype


def test_a_mask_dtype_without_a_mask_is_left_out_of_the_recipe() -> None:
    case = make_case(**SIZES, mask_dtype="int64")
    assert case.mask is None
    assert list(case.recipe) == OLD_KEYS


def test_make_case_keeps_the_arrays_c_ordered_whatever_the_layout() -> None:
    """The layout is stored, not applied: in_layout gives the arrays in it."""
    for layout in LAYOUTS:
        case = make_case(**SIZES, with_mask=True, with_h0=True, layout=layout)
        assert case.layout == layout
        arrays = [case.x, case.y, case.h0, case.mask, *case.params.as_dict().values()]
        assert all(a is not None and a.flags.c_contiguous for a in arrays)


MAKE_CASE_REFUSALS = [
    ({"mask_dtype": "int8"}, "mask_dtype must be one of ('bool', 'int64', 'float64'); got 'int8'"),
    ({"ids_dtype": "uint8"}, "ids_dtype must be one of ('int64', 'int32'); got 'uint8'"),
    ({"layout": "K"}, "layout must be one of ('C', 'F', 'strided'); got 'K'"),
]


@pytest.mark.parametrize(("option", "message"), MAKE_CASE_REFUSALS)
def test_make_case_refuses_an_unknown_dtype_or_layout_word_for_word(option, message) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        make_case(**SIZES, with_mask=True, **option)


SHAPES = [(), (1,), (5,), (1, 1), (4, 1), (1, 4), (3, 4), (2, 3, 4), (6, 1, 3), (0, 3)]
DTYPES = ["float64", "float32", "int64", "int32", "bool"]


def sample(shape: tuple[int, ...], dtype: str) -> np.ndarray:
    values = np.asarray(np.random.default_rng(len(shape)).normal(size=shape) * 3)
    return np.asarray(values > 0) if dtype == "bool" else values.astype(dtype)


def several_axes_long(shape: tuple[int, ...]) -> bool:
    """Whether C and F order differ for this shape (two axes longer than 1)."""
    return sum(n > 1 for n in shape) >= 2


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_in_layout_gives_equal_values_in_the_asked_layout_and_leaves_its_input_alone(
    layout: str, shape: tuple[int, ...], dtype: str
) -> None:
    array = sample(shape, dtype)
    kept = array.copy()
    array.flags.writeable = False  # in_layout would raise if it wrote to it
    got = in_layout(array, layout)
    assert got.shape == array.shape
    assert got.dtype == array.dtype
    np.testing.assert_array_equal(got, kept)
    np.testing.assert_array_equal(array, kept)
    assert not np.shares_memory(got, array)
    assert got.flags.writeable
    if layout == "C":
        assert got.flags.c_contiguous
    if layout == "F":
        assert got.flags.f_contiguous
        assert got.flags.c_contiguous == (not several_axes_long(shape))
    if layout == "strided":
        # NumPy calls an array of at most one entry contiguous whatever its strides
        # (and gives an empty one strides of 0).
        assert got.flags.c_contiguous == got.flags.f_contiguous == (got.size <= 1)
        if got.size > 1:
            assert got.strides[-1] == 2 * got.itemsize


@pytest.mark.parametrize(("dtype", "gap"), [("float64", np.nan), ("int64", 0), ("bool", False)])
def test_a_strided_array_reads_nan_between_its_entries_when_it_is_float(dtype, gap) -> None:
    got = in_layout(sample((3, 4), dtype), "strided")
    assert got.base is not None
    assert got.base.shape == (3, 8)
    np.testing.assert_array_equal(got.base[:, 1::2], np.full((3, 4), gap, dtype))


def test_in_layout_refuses_an_unknown_layout_word_for_word() -> None:
    message = "layout must be one of ('C', 'F', 'strided'); got 'A'"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        in_layout(np.zeros(3), "A")


def drawn(case: Case, option: str) -> str | None:
    """The option as seen on the case's arrays (or stored on it, for the layout)."""
    if option == "mask_dtype":
        return None if case.mask is None else case.mask.dtype.name
    if option == "ids_dtype":
        ids: str = case.y.dtype.name
        return ids
    return case.layout


FINDING = settings(database=None, max_examples=500, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize(
    ("option", "value"),
    [
        *(("mask_dtype", v) for v in MASK_DTYPES),
        *(("ids_dtype", v) for v in IDS_DTYPES),
        *(("layout", v) for v in LAYOUTS),
    ],
)
def test_problems_draw_every_mask_dtype_ids_dtype_and_layout(option: str, value: str) -> None:
    case = find(problems(Space()), lambda c: drawn(c, option) == value, settings=FINDING)
    assert drawn(case, option) == value


@given(problems(Space(mask=(False,), tokens=(False,))))
def test_without_a_mask_the_mask_dtype_has_no_effect_and_dense_inputs_keep_their_dtype(
    case: Case,
) -> None:
    assert case.mask is None
    assert "mask_dtype" not in case.recipe
    assert case.x.dtype == np.float64
    assert case.y.dtype.name == case.recipe.get("ids_dtype", "int64")


def test_dense_inputs_still_draw_int32_targets() -> None:
    space = Space(mask=(False,), tokens=(False,))
    case = find(problems(space), lambda c: c.y.dtype == np.int32, settings=FINDING)
    assert case.x.dtype == np.float64


@pytest.mark.parametrize("style", list(STYLES))
def test_max_T_and_max_H_are_honoured_as_asked_above_or_below_the_styles_own(style) -> None:
    assert (make_style(style).space_for(max_T=50, max_H=100).max_T) == 50
    assert (make_style(style).space_for(max_T=50, max_H=100).max_H) == 100
    small = make_style(style).space_for(max_T=2, max_H=1)
    assert (small.max_T, small.max_H) == (2, 1)


def test_problems_reach_the_asked_max_T_and_max_H() -> None:
    space = Space().narrowed(max_T=50, max_H=100)
    assert find(problems(space), lambda c: c.T == 50, settings=FINDING).T == 50
    assert find(problems(space), lambda c: c.params.H == 100, settings=FINDING).params.H == 100


def test_float32_keeps_its_bounded_domain_and_honours_a_max_T_inside_it() -> None:
    space = make_style("project").space_for(dtypes="float32")
    assert (space.dtypes, space.max_T, space.max_scale) == (("float32",), 20, 1.0)
    wider = Space(max_T=40, max_scale=3.0, dtypes=("float64", "float32"))
    assert (wider.narrowed(dtypes="float32").max_T, wider.max_scale) == (20, 3.0)
    assert wider.narrowed(dtypes="float32").max_scale == 1.0
    assert wider.narrowed(dtypes="float64").max_T == 40
    assert make_style("project").space_for(dtypes="float32", max_T=20).max_T == 20
    assert make_style("project").space_for(dtypes="float32", max_T=7).max_T == 7


# Space.narrowed's refusals read after "--style X cannot draw " (Style.space_for) and as
# a line of their own.
CEILING_T = "beyond, exploding chains lose more float64 digits than compare.FLOAT64 allows"
CEILING_H = "beyond, code written as plain loops nears the per-call time-out"
FLOAT32 = "float32 draws T ≤ 20, the domain compare.FLOAT32 is stated for"
NARROWED_REFUSALS = [
    ({"max_T": 51}, f"T up to 51 (it draws T ≤ 50: {CEILING_T})"),
    ({"max_H": 257}, f"H up to 257 (it draws H ≤ 256: {CEILING_H})"),
    ({"max_T": 0}, "T up to 0 (T is at least 1)"),
    ({"max_H": -3}, "H up to -3 (H is at least 1)"),
    ({"max_T": 2.5}, "T up to 2.5 (max_T must be an integer)"),
    ({"max_H": True}, "H up to True (max_H must be an integer)"),
    ({"dtypes": "float32", "max_T": 21}, f"T up to 21 in float32 ({FLOAT32})"),
    ({"max_T": 50, "dtypes": "float32"}, f"T up to 50 in float32 ({FLOAT32})"),
]


@pytest.mark.parametrize(("choices", "message"), NARROWED_REFUSALS)
def test_narrowed_refuses_what_it_cannot_draw_word_for_word(choices, message) -> None:
    space = Space(dtypes=("float64", "float32"))
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        space.narrowed(**choices)
    with pytest.raises(
        UsageError, match=f"^{re.escape('--style project cannot draw ' + message)}$"
    ):
        make_style("project").space_for(**choices)


def test_the_command_refuses_a_float32_max_T_beyond_its_domain_in_one_line(capsys) -> None:
    argv = ["verify", "manual_bptt:bptt", "--dtype", "float32", "--max-T", "50"]
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        f"bptt verify: --style project cannot draw T up to 50 in float32 ({FLOAT32}) "
        "(given --dtype, --max-T)\n"
    )


def test_the_command_refuses_a_max_T_above_the_ceiling_in_one_line(capsys) -> None:
    assert main(["verify", "manual_bptt:bptt", "--max-T", "500", "--style", "cs231n"]) == 2
    assert capsys.readouterr().err == (
        f"bptt verify: --style cs231n cannot draw T up to 500 (it draws T ≤ 50: {CEILING_T}) "
        "(given --max-T)\n"
    )


def _draws(strategy: st.SearchStrategy[Any]) -> list[str]:
    """The reprs of 30 values the strategy draws with a fixed seed, or the error raised."""
    seen: list[str] = []

    @settings(database=None, derandomize=True, max_examples=30)
    @given(strategy)
    def draw(value: Any) -> None:
        seen.append(repr(value))

    try:
        draw()
    except Exception as err:  # noqa: BLE001 (the refusal is part of what is compared)
        return [type(err).__name__]
    return seen


@pytest.mark.parametrize(
    "values",
    [
        ("full", "chunk", "truncate"),
        ["full", "chunk"],  # a user's Space may hold a list
        (0, 1),  # equal to (False, True), drawn before it here, but not the same draws
        (0.0, -0.0),
        (["tanh"], ["relu"]),  # unhashable
        {"full", "chunk"},  # no stable order: Hypothesis refuses it
        {"full": 1, "chunk": 2},
    ],
)
def test_a_spaces_tuple_is_drawn_exactly_as_sampled_from_draws_it(values: Any) -> None:
    # strategies makes each sampled_from once per tuple (a quarter of drawing a problem):
    # the same draws, and the same refusals, as a new sampled_from at every draw
    for warm in ((False, True), (0.0, 0.0)):
        _draws(_one_of(warm))
    assert _draws(_one_of(values)) == _draws(st.sampled_from(values))
