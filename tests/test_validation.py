"""Bad input gets a clear error that names the argument, never a wrong answer.

Every face (manual, naive, twin) shares the boundary in manual_bptt/inputs.py, so each
case is checked on all three: same exception type, message naming the argument.
"""

from __future__ import annotations

import re
import warnings
from typing import Any, cast

import numpy as np
import pytest
import torch

import manual_bptt
import torch_reference
from manual_bptt import Params, init_params
from manual_bptt.checking.gradcheck import bptt_objective
from manual_bptt.compare import FLOAT64, assert_grads_close
from manual_bptt.gru import GRUParams
from manual_bptt.inputs import require_vanilla
from manual_bptt.truncation import RandomTruncation

FACES = [manual_bptt.bptt, manual_bptt.naive_bptt, torch_reference.bptt]
D, H, K, T, N = 3, 4, 5, 6, 2


def _good() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {
        "params": init_params(D, H, K),
        "x": rng.normal(size=(T, N, D)),
        "y": rng.integers(0, K, size=(T, N)),
    }


@pytest.fixture
def good() -> dict[str, Any]:
    return _good()


def call(face, good: dict[str, Any], **changes):
    args = {**good, **changes}
    return face(args.pop("params"), args.pop("x"), args.pop("y"), **args)


BAD_CALLS = [
    # (changes, exception, a phrase the message must contain)
    ({"x": np.zeros((T, N, D + 1))}, ValueError, "x's last axis must be D = 3"),
    ({"x": np.zeros((T, D))}, ValueError, "y must have shape (T,) = (6,)"),
    ({"x": np.zeros(T)}, ValueError, "token ids must have an integer dtype"),
    ({"x": np.zeros((T, N, D, 1))}, ValueError, "float inputs x must have shape"),
    ({"x": np.full((T, N), D)}, ValueError, "x (token ids) must hold integers in [0, D) = [0, 3)"),
    ({"x": np.full((T, N), -1)}, ValueError, "entry (0, 0) is -1"),
    ({"x": np.zeros((T, N), dtype=bool)}, TypeError, "got a bool array"),
    ({"x": np.zeros((T, N, D), dtype=np.complex128)}, TypeError, "x has dtype complex128"),
    ({"x": np.zeros((T, N, D), dtype=np.float32)}, TypeError, "x has dtype float32 but"),
    ({"x": np.zeros((0, N, D)), "y": np.zeros((0, N), int)}, ValueError, "T ≥ 1"),
    ({"x": np.zeros((T, 0, D)), "y": np.zeros((T, 0), int)}, ValueError, "N ≥ 1"),
    ({"x": np.array([["a"]])}, TypeError, "x must be float inputs or integer token ids"),
    ({"y": np.full((T, N), K)}, ValueError, "y must hold integers in [0, K) = [0, 5)"),
    ({"y": np.zeros((T, N)) + 0.0}, TypeError, "y must hold integer class ids"),
    ({"y": np.zeros((T, N + 1), int)}, ValueError, "y must have shape (T, N) = (6, 2)"),
    ({"y": np.zeros((T + 1, N), int)}, ValueError, "y must have shape (T, N) = (6, 2)"),
    ({"h0": np.zeros((N, H + 1))}, ValueError, "h0 must have shape (N, H) = (2, 4)"),
    ({"h0": np.zeros(H)}, ValueError, "h0 must have shape (N, H)"),
    ({"h0": np.zeros((N, H), np.float32)}, TypeError, "h0 has dtype float32"),
    ({"mask": np.ones((T, N + 1))}, ValueError, "mask must have shape (T, N) = (6, 2)"),
    ({"mask": np.full((T, N), 0.5)}, ValueError, "mask must hold only 0 and 1"),
    ({"truncate": -1}, ValueError, "truncate must be ≥ 0"),
    ({"truncate": 2.0}, TypeError, "truncate must be an integer"),
    ({"truncate": True}, TypeError, "truncate must be an integer"),
    ({"chunk": 0}, ValueError, "chunk must be ≥ 1"),
    ({"truncate": 2, "chunk": 3}, ValueError, "give at most one of truncate"),
    ({"tbptt": (1, 2), "chunk": 3}, ValueError, "give at most one of truncate"),
    ({"activation": "softplus"}, ValueError, "activation must be one of 'tanh', 'sigmoid'"),
    ({"reduction": "max"}, ValueError, "reduction must be one of"),
    ({"params": {"U": 1}}, TypeError, "params must be a manual_bptt.Params (or LSTMParams"),
]


@pytest.mark.parametrize("face", FACES, ids=lambda f: f.__module__)
@pytest.mark.parametrize(("changes", "error", "phrase"), BAD_CALLS)
def test_bad_argument_raises_a_message_naming_it(face, good, changes, error, phrase) -> None:
    with pytest.raises(error, match=re.escape(phrase)):
        call(face, good, **changes)


@pytest.mark.parametrize("face", FACES, ids=lambda f: f.__module__)
@pytest.mark.parametrize("field", ["x", "h0"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_inputs_is_refused(face, good, field, bad) -> None:
    arr, index = (np.zeros((T, N, D)), (1, 1, 2)) if field == "x" else (np.zeros((N, H)), (1, 3))
    arr[index] = bad
    with pytest.raises(ValueError, match=re.escape(f"{field} must be finite; entry {index}")):
        call(face, good, **{field: arr})


@pytest.mark.parametrize("name", ["U", "W", "V", "b", "c"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_parameters_is_refused(name: str, bad: float) -> None:
    arrays = init_params(D, H, K).as_dict()
    arrays[name] = arrays[name].copy()
    arrays[name].flat[0] = bad
    with pytest.raises(ValueError, match=rf"Params\.{name} must be finite"):
        Params(**arrays)


@pytest.mark.parametrize(
    ("name", "shape", "phrase"),
    [
        ("W", (H, H + 1), "W must have shape (H, H) = (4, 4) to match U's H = 4"),
        ("V", (K, H + 1), "V must have shape (K, H) = (5, 4)"),
        ("b", (H + 1,), "b must have shape (H,) = (4,)"),
        ("c", (K, 1), "c must have shape (K,) = (5,)"),
        ("U", (H,), "U must have shape (H, D)"),
    ],
)
def test_parameter_shapes_must_fit_together(name: str, shape: tuple[int, ...], phrase: str) -> None:
    arrays = init_params(D, H, K).as_dict()
    arrays[name] = np.zeros(shape)
    with pytest.raises(ValueError, match=re.escape(phrase)):
        Params(**arrays)


def test_parameters_must_share_one_float_dtype() -> None:
    arrays = init_params(D, H, K).as_dict()
    with pytest.raises(TypeError, match="all parameters must share one dtype"):
        Params(**{**arrays, "W": arrays["W"].astype(np.float32)})
    with pytest.raises(TypeError, match=r"Params\.U must be float32 or float64"):
        Params(**cast(Any, {k: v.astype(np.int64) for k, v in arrays.items()}))
    with pytest.raises(TypeError, match=r"Params\.b must be a numpy array"):
        Params(**cast(Any, {**arrays, "b": [0.0] * H}))


def test_complex_parameters_are_for_the_complex_step_only(good) -> None:
    complex_params = init_params(D, H, K).astype(np.complex128)
    with pytest.raises(TypeError, match="complex128 ones are for the complex-step check"):
        manual_bptt.bptt(complex_params, good["x"], good["y"])
    with pytest.raises(ValueError, match="relu is not"):
        manual_bptt.loss(complex_params, good["x"], good["y"], activation="relu")
    assert isinstance(manual_bptt.loss(complex_params, good["x"], good["y"]), complex)


@pytest.mark.parametrize(
    ("kwargs", "error", "phrase"),
    [
        ({"D": 0}, ValueError, "D must be an integer ≥ 1"),
        ({"scheme": "xavier"}, ValueError, "scheme must be one of"),
        ({"dtype": np.int32}, TypeError, "dtype must be float32 or float64"),
    ],
)
def test_init_params_refuses_bad_sizes_and_options(kwargs, error, phrase) -> None:
    sizes = {"D": D, "H": H, "K": K}
    with pytest.raises(error, match=re.escape(phrase)):
        init_params(
            **{**sizes, **{k: v for k, v in kwargs.items() if k in sizes}},
            **{k: v for k, v in kwargs.items() if k not in sizes},
        )


def test_forward_checks_its_inputs_too() -> None:
    with pytest.raises(ValueError, match="x's last axis must be D = 3"):
        manual_bptt.forward(init_params(D, H, K), np.zeros((T, N, D + 1)))
    with pytest.raises(ValueError, match="activation must be one of"):
        manual_bptt.forward(init_params(D, H, K), np.zeros((T, N, D)), activation="gelu")


# The gated cells share the boundary; what is new is checked on every face.
GATED_BAD_CALLS = [
    # (cell, changes, exception, a phrase the message must contain)
    ("lstm", {"activation": "relu"}, ValueError, "the LSTM has its own nonlinearities"),
    ("gru", {"activation": "sigmoid"}, ValueError, "the GRU has its own nonlinearities"),
    ("gru", {"c0": np.zeros((N, H))}, ValueError, "a GRU has no cell state: give h0 only"),
    ("rnn", {"c0": np.zeros((N, H))}, ValueError, "a vanilla RNN has no cell state"),
    ("lstm", {"c0": np.zeros((N, H + 1))}, ValueError, "c0 must have shape (N, H) = (2, 4)"),
    ("lstm", {"c0": np.zeros((N, H), np.float32)}, TypeError, "c0 has dtype float32"),
    ("lstm", {"c0": np.full((N, H), np.nan)}, ValueError, "c0 must be finite; entry (0, 0)"),
    ("lstm", {"h0": np.zeros((N, H + 1))}, ValueError, "h0 must have shape (N, H) = (2, 4)"),
    ("gru", {"x": np.zeros((T, N, D + 1))}, ValueError, "x's last axis must be D = 3"),
]


@pytest.mark.parametrize("face", FACES, ids=lambda f: f.__module__)
@pytest.mark.parametrize(("cell", "changes", "error", "phrase"), GATED_BAD_CALLS)
def test_gated_bad_argument_raises_a_message_naming_it(
    face, good, cell, changes, error, phrase
) -> None:
    params = init_params(D, H, K, cell=cell)
    with pytest.raises(error, match=re.escape(phrase)):
        call(face, {**good, "params": params}, **changes)


@pytest.mark.parametrize(
    ("cell", "name", "shape", "phrase"),
    [
        ("lstm", "U", (3 * H, D), "U must have shape (4H, D) = (16, 3) to match W's H = 4"),
        ("lstm", "W", (4 * H, H + 1), "U must have shape (4H, D) = (20, 3) to match W's H = 5"),
        ("lstm", "b", (3 * H,), "b must have shape (4H,) = (16,)"),
        ("lstm", "V", (K, H + 1), "V must have shape (K, H) = (5, 4)"),
        ("gru", "bh", (4 * H,), "bh must have shape (3H,) = (12,)"),
        ("gru", "W", (3 * H,), "W must have shape (3H, H)"),
        ("gru", "c", (K, 1), "c must have shape (K,) = (5,)"),
    ],
)
def test_gated_parameter_shapes_must_fit_together(cell, name, shape, phrase) -> None:
    params = init_params(D, H, K, cell=cell)
    with pytest.raises(ValueError, match=re.escape(phrase)):
        type(params)(**{**params.as_dict(), name: np.zeros(shape)})


def test_gated_parameters_are_checked_like_the_vanilla_ones() -> None:
    lstm = init_params(D, H, K, cell="lstm")
    gru = cast(GRUParams, init_params(D, H, K, cell="gru"))
    arrays = lstm.as_dict()
    with pytest.raises(TypeError, match="all parameters must share one dtype"):
        type(lstm)(**{**arrays, "V": arrays["V"].astype(np.float32)})
    with pytest.raises(TypeError, match=r"LSTMParams\.b must be a numpy array"):
        type(lstm)(**{**arrays, "b": [0.0] * 4 * H})
    bad: dict[str, Any] = gru.as_dict()
    bad["bh"] = bad["bh"].copy()
    bad["bh"][2] = np.inf
    with pytest.raises(ValueError, match=r"GRUParams\.bh must be finite; entry \(2,\)"):
        type(gru)(**bad)
    with pytest.raises(ValueError, match=r"GRUParams\.reset must be one of \('after', 'before'\)"):
        type(gru)(**gru.as_dict(), reset="middle")
    bad = lstm.as_dict()
    bad["W"] = bad["W"].copy()
    bad["W"][1, 0] = np.nan
    with pytest.raises(ValueError, match=r"^LSTMParams\.W must be finite; entry \(1, 0\)"):
        type(lstm)(**bad)


@pytest.mark.parametrize(
    ("kwargs", "error", "phrase"),
    [
        ({"cell": "transformer"}, ValueError, "cell must be one of ('rnn', 'lstm', 'gru')"),
        (
            {"cell": "lstm", "scheme": "identity"},
            ValueError,
            'scheme="identity" is for the vanilla',
        ),
        ({"cell": "gru", "reset": "sideways"}, ValueError, "reset must be one of"),
    ],
)
def test_init_params_refuses_bad_cells(kwargs, error, phrase) -> None:
    with pytest.raises(error, match=re.escape(phrase)):
        init_params(D, H, K, **kwargs)


def test_vanishing_tools_say_they_are_for_the_vanilla_cell(good) -> None:
    # contributions take every cell (issue 13); the product bound is the vanilla cell's.
    lstm = init_params(D, H, K, cell="lstm")
    with pytest.raises(TypeError, match="written for the vanilla RNN"):
        manual_bptt.jacobian_row(cast(Any, lstm), good["x"])


def test_forward_checks_the_gated_options_too(good) -> None:
    with pytest.raises(ValueError, match="a GRU has no cell state"):
        manual_bptt.forward(init_params(D, H, K, cell="gru"), good["x"], c0=np.zeros((N, H)))
    with pytest.raises(ValueError, match="the LSTM has its own nonlinearities"):
        manual_bptt.forward(init_params(D, H, K, cell="lstm"), good["x"], activation="relu")


# ---------------------------------------------------------------------------------------
# Input kinds: every array argument of every face is either converted exactly (the same
# result as the plain ndarray gives) or refused naming the argument (docs/using.md, "Bad input").


def _tokens_problem() -> dict[str, Any]:
    rng = np.random.default_rng(1)
    return {
        "params": init_params(D, H, K, seed=1),
        "x": rng.integers(0, D, size=(T, N)),
        "y": rng.integers(0, K, size=(T, N)),
        "h0": rng.normal(size=(N, H)),
        "mask": (rng.random((T, N)) < 0.7).astype(np.float64),
    }


def _floats_problem() -> dict[str, Any]:
    return {**_tokens_problem(), "x": np.random.default_rng(2).normal(size=(T, N, D))}


def _objective(params, x, y, **o):
    objective = bptt_objective(params, x, y, **o)
    return objective.f(objective.arrays)


# (name, function(params, x, y, **options), whether it reads y and mask)
KIND_FACES = [
    ("manual_bptt.bptt", manual_bptt.bptt, True),
    ("manual_bptt.naive_bptt", manual_bptt.naive_bptt, True),
    ("torch_reference.bptt", torch_reference.bptt, True),
    ("manual_bptt.loss", manual_bptt.loss, True),
    (
        "manual_bptt.contributions",
        lambda p, x, y, **o: manual_bptt.contributions(p, x, y, param="W", **o),
        True,
    ),
    (
        "torch_reference.contributions",
        lambda p, x, y, **o: torch_reference.contributions(p, x, y, param="W", **o),
        True,
    ),
    ("gradcheck.bptt_objective", _objective, True),
    (
        "manual_bptt.forward",
        lambda p, x, y, h0=None, mask=None: manual_bptt.forward(p, x, h0=h0),
        False,
    ),
    (
        "manual_bptt.hidden_jacobians",
        lambda p, x, y, h0=None, mask=None: manual_bptt.hidden_jacobians(p, x, h0=h0),
        False,
    ),
]


def _flipped(a: np.ndarray) -> np.ndarray:
    """The same numbers as a, as a view with a negative stride on axis 0."""
    return np.flip(np.flip(a, 0).copy(), 0)


def _read_only(a: np.ndarray) -> np.ndarray:
    out: np.ndarray = a.copy()
    out.flags.writeable = False
    return out


def _big_endian(a: np.ndarray) -> np.ndarray:
    swapped: np.ndarray = a.astype(a.dtype.newbyteorder(">"))
    return swapped


def _params_as(kind):
    return lambda p: Params(**{k: kind(v) for k, v in p.as_dict().items()})


def _matrix_params(p: Params) -> Params:
    return Params(U=np.asmatrix(p.U), W=np.asmatrix(p.W), V=np.asmatrix(p.V), b=p.b, c=p.c)


_NEGATIVE_STRIDES_PARAMS = _params_as(_flipped)
_FORTRAN_PARAMS = _params_as(np.asfortranarray)
_LAYOUTS = (_NEGATIVE_STRIDES_PARAMS, _FORTRAN_PARAMS)


def _kinds(kind: str, convert, arguments: str, params=None) -> list[Any]:
    """One row per argument named in ``arguments`` ("token x" is x on the token
    problem), each converted by ``convert``; params by ``params`` (default: convert
    applied to each array)."""
    rows = []
    for argument in arguments.split(", "):
        if argument == "params":
            rows.append(
                (f"{kind} params", "params", params or _params_as(convert), _floats_problem)
            )
        elif argument == "token x":
            rows.append((f"{kind} token x", "x", convert, _tokens_problem))
        else:
            rows.append((f"{kind} {argument}", argument, convert, _floats_problem))
    return rows


# (id, argument, how the plain array is turned into this kind, problem)
CONVERTED_KINDS = [
    # a matrix mask was once a wrong loss, silently
    *_kinds("matrix", np.asmatrix, "mask, y, h0, token x"),
    ("matrix params", "params", _matrix_params, _floats_problem),
    *_kinds("big-endian", _big_endian, "x, token x, y, h0, mask, params"),
    *_kinds(
        "negative strides", _flipped, "x, token x, y, h0, mask, params", _NEGATIVE_STRIDES_PARAMS
    ),
    *_kinds("Fortran", np.asfortranarray, "x, y, h0, params", _FORTRAN_PARAMS),
    *_kinds("read-only", _read_only, "x, y, h0, mask, params"),
    *_kinds("list", np.ndarray.tolist, "x, token x, y, h0, mask"),
    ("tuple y", "y", lambda a: tuple(map(tuple, a)), _floats_problem),
    ("int32 y", "y", lambda a: a.astype(np.int32), _floats_problem),
    ("uint8 y", "y", lambda a: a.astype(np.uint8), _floats_problem),
    ("uint8 token x", "x", lambda a: a.astype(np.uint8), _tokens_problem),
    ("int32 token x", "x", lambda a: a.astype(np.int32), _tokens_problem),
    ("bool mask", "mask", lambda a: a.astype(bool), _floats_problem),
    ("int8 mask", "mask", lambda a: a.astype(np.int8), _floats_problem),
]


def _same(got: object, want: object, exact: bool) -> None:
    """Bitwise equal; or, where only the parameters' memory layout differs (BLAS may then
    sum in another order), equal under the float64 policy."""

    def check(a: object, e: object, name: str) -> None:
        if exact:
            np.testing.assert_array_equal(a, e, err_msg=name)
        else:
            assert_grads_close({name: np.asarray(a)}, {name: np.asarray(e)}, FLOAT64)

    if isinstance(want, manual_bptt.BPTTResult):
        assert isinstance(got, manual_bptt.BPTTResult)
        check(got.loss, want.loss, "loss")
        assert got.grads.keys() == want.grads.keys()
        for name in want.grads:
            check(got.grads[name], want.grads[name], name)
    elif isinstance(want, manual_bptt.ForwardResult):
        for name in ("a", "h", "h0", "o", "y_hat"):
            check(getattr(got, name), getattr(want, name), name)
    else:
        check(got, want, "result")


def _kind_params(cases: list[Any]) -> list[Any]:
    out = []
    for case in cases:
        argument = case[1]
        for name, face, reads_y in KIND_FACES:
            if reads_y or argument not in ("y", "mask"):
                out.append(pytest.param(*case[1:], face, id=f"{case[0]}-{name}"))
    return out


def _call_kind(face, problem: dict[str, Any], argument: str, value: object):
    args = {**problem, argument: value}
    return face(args.pop("params"), args.pop("x"), args.pop("y"), **args)


# np.matrix itself warns that it is not recommended; that is the caller's business.
@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
@pytest.mark.parametrize(("argument", "kind", "problem", "face"), _kind_params(CONVERTED_KINDS))
def test_input_kinds_are_converted_exactly(argument, kind, problem, face) -> None:
    plain = problem()
    want = _call_kind(face, plain, argument, plain[argument])
    layout_only = argument == "params" and kind in (_LAYOUTS)
    _same(_call_kind(face, plain, argument, kind(plain[argument])), want, not layout_only)


def _masked(a: np.ndarray) -> np.ma.MaskedArray:
    hidden = np.zeros(a.shape, dtype=bool)
    hidden.flat[0] = True
    data = a.copy()
    if data.dtype.kind == "f":
        data.flat[0] = np.nan  # the number under the mask must never be used
    return np.ma.masked_array(data, mask=hidden)


def _tensor(a: np.ndarray, requires_grad: bool = False):
    import torch

    return torch.tensor(a, requires_grad=requires_grad)


MASKED = "must be a plain NumPy array, not a masked array"
OBJECTS = "must be a numeric array; got an array of Python objects"
TENSOR = "must be a NumPy array, not a torch.Tensor; pass"

# (id, argument, kind, problem, exception, the phrase that names the argument)
REFUSED_KINDS = [
    ("masked x (NaN under the mask)", "x", _masked, _floats_problem, TypeError, "x " + MASKED),
    ("masked token x", "x", _masked, _tokens_problem, TypeError, "x " + MASKED),
    ("masked y", "y", _masked, _floats_problem, TypeError, "y " + MASKED),
    ("masked h0", "h0", _masked, _floats_problem, TypeError, "h0 " + MASKED),
    ("masked mask", "mask", _masked, _floats_problem, TypeError, "mask " + MASKED),
    (
        "masked params",
        "params",
        _params_as(_masked),
        _floats_problem,
        TypeError,
        "Params.U " + MASKED,
    ),
    ("object x", "x", lambda a: a.astype(object), _floats_problem, TypeError, "x " + OBJECTS),
    ("object token x", "x", lambda a: a.astype(object), _tokens_problem, TypeError, "x " + OBJECTS),
    ("object y", "y", lambda a: a.astype(object), _floats_problem, TypeError, "y " + OBJECTS),
    ("object h0", "h0", lambda a: a.astype(object), _floats_problem, TypeError, "h0 " + OBJECTS),
    (
        "object mask",
        "mask",
        lambda a: a.astype(object),
        _floats_problem,
        TypeError,
        "mask " + OBJECTS,
    ),
    ("tensor x", "x", _tensor, _floats_problem, TypeError, "x " + TENSOR),
    (
        "tensor x requiring grad",
        "x",
        lambda a: _tensor(a, True),
        _floats_problem,
        TypeError,
        "x " + TENSOR,
    ),
    ("tensor token x", "x", _tensor, _tokens_problem, TypeError, "x " + TENSOR),
    ("tensor y", "y", _tensor, _floats_problem, TypeError, "y " + TENSOR),
    ("tensor h0", "h0", lambda a: _tensor(a, True), _floats_problem, TypeError, "h0 " + TENSOR),
    ("tensor mask", "mask", _tensor, _floats_problem, TypeError, "mask " + TENSOR),
    (
        "tensor params",
        "params",
        lambda p: Params(**{**p.as_dict(), "W": _tensor(p.W, True)}),
        _floats_problem,
        TypeError,
        "Params.W " + TENSOR,
    ),
    (
        "ragged list x",
        "x",
        lambda a: [a[0].tolist(), a[1, :1].tolist()],
        _floats_problem,
        TypeError,
        "x must be array-like",
    ),
]


@pytest.mark.parametrize(
    ("argument", "kind", "problem", "error", "phrase", "face"), _kind_params(REFUSED_KINDS)
)
def test_input_kinds_that_cannot_mean_plain_numbers_are_refused(
    argument, kind, problem, error, phrase, face
) -> None:
    plain = problem()
    # For the parameters, Params itself refuses the kind, before any face runs.
    with pytest.raises(error, match=re.escape(phrase)):
        _call_kind(face, plain, argument, kind(plain[argument]))


# ---------------------------------------------------------------------------------------
# The other public functions: each bad argument named, never a wrong number or numpy's words.


def _sum_of(arrays) -> float:
    return float(sum(np.sum(a) for a in arrays.values()))


def _central(arrays, **kw):
    from manual_bptt.checking.gradcheck import central_differences

    return central_differences(_sum_of, arrays, **kw)


def _gradcheck(grads, arrays):
    from manual_bptt.checking.gradcheck import gradcheck

    return gradcheck(_sum_of, grads, arrays)


def _jacobians_with(bad: float):
    J = manual_bptt.hidden_jacobians(init_params(D, H, K), np.zeros((T, D)))
    J[2, 1, 0, 0] = bad
    return J


OTHER_BAD_CALLS = [
    # (id, call, exception, phrase)
    (
        "central differences of integers",  # gave [500000, 500000] for the gradient of a sum
        lambda: _central({"w": np.array([1, 2])}),
        TypeError,
        "arrays['w'] must be a float64",
    ),
    (
        "central differences in float32",  # gave 1.907 for 2
        lambda: _central({"w": np.ones(2, np.float32)}),
        TypeError,
        "got float32",
    ),
    ("central differences of a list", lambda: _central({"w": [1.0, 2.0]}), TypeError, "got list"),
    (
        "eps = 0",
        lambda: _central({"w": np.ones(2)}, eps=0.0),
        ValueError,
        "eps must be a finite number > 0; got 0.0",
    ),
    ("eps < 0", lambda: _central({"w": np.ones(2)}, eps=-1e-6), ValueError, "eps must be"),
    ("eps = inf", lambda: _central({"w": np.ones(2)}, eps=np.inf), ValueError, "eps must be"),
    ("eps = nan", lambda: _central({"w": np.ones(2)}, eps=np.nan), ValueError, "eps must be"),
    ("eps a string", lambda: _central({"w": np.ones(2)}, eps="1e-6"), TypeError, "eps must be"),
    (
        "gradcheck without a gradient",  # was a bare KeyError
        lambda: _gradcheck({"u": np.ones(2)}, {"u": np.ones(2), "w": np.ones(3)}),
        ValueError,
        "grads has no gradient for 'w'",
    ),
    (
        "init_params scale = inf",
        lambda: init_params(D, H, K, scale=np.inf),
        ValueError,
        "scale must be a finite number > 0; got inf",
    ),
    (
        "init_params scale = -1",
        lambda: init_params(D, H, K, scale=-1),
        ValueError,
        "scale must be a finite number > 0; got -1",
    ),
    (
        "init_params scale = 0",
        lambda: init_params(D, H, K, scale=0.0),
        ValueError,
        "scale must be a finite number > 0",
    ),
    (
        "init_params scale = nan",
        lambda: init_params(D, H, K, scale=np.nan),
        ValueError,
        "scale must be a finite number > 0",
    ),
    (
        "init_params scale = 1e308",
        lambda: init_params(1, H, K, scale=1e308),
        ValueError,
        "scale must be small enough for float64 weights",
    ),
    (
        "init_params scale = 1e300 in float32",
        lambda: init_params(D, H, K, scale=1e300, dtype=np.float32),
        ValueError,
        "scale must be small enough for float32 weights",
    ),
    (
        "init_params scale a string",
        lambda: init_params(D, H, K, scale=cast(Any, "2")),
        TypeError,
        "scale must be a number > 0",
    ),
    (
        "init_params seed = -1",
        lambda: init_params(D, H, K, seed=-1),
        ValueError,
        "seed must be an integer ≥ 0 or a numpy.random.Generator; got -1",
    ),
    (
        "init_params seed = 1.5",
        lambda: init_params(D, H, K, seed=cast(Any, 1.5)),
        TypeError,
        "seed must be an integer ≥ 0",
    ),
    (
        "init_params H = 2.0",
        lambda: init_params(D, cast(Any, 2.0), K),
        ValueError,
        "H must be an integer ≥ 1",
    ),
    (
        "sigma_max of a vector",
        lambda: manual_bptt.sigma_max(np.ones(H)),
        ValueError,
        "W must have shape (H, H); got shape (4,)",
    ),
    (
        "sigma_max of a stack",
        lambda: manual_bptt.sigma_max(np.ones((2, H, H))),
        ValueError,
        "W must be one matrix",
    ),
    (
        "sigma_max of NaN",
        lambda: manual_bptt.sigma_max(np.full((H, H), np.nan)),
        ValueError,
        "W must be finite; entry (0, 0) is nan",
    ),
    (
        "sigma_max of a tensor",
        lambda: manual_bptt.sigma_max(_tensor(np.eye(H))),
        TypeError,
        "W " + TENSOR,
    ),
    (
        "spectral_norms of NaN",
        lambda: manual_bptt.spectral_norms(_jacobians_with(np.nan)),
        ValueError,
        "J must be finite; entry (2, 1, 0, 0) is nan",
    ),
    (
        "spectral_norms of inf",
        lambda: manual_bptt.spectral_norms(_jacobians_with(np.inf)),
        ValueError,
        "J must be finite",
    ),
    (
        "spectral_norms of a matrix",
        lambda: manual_bptt.spectral_norms(np.eye(H)),
        ValueError,
        "J must have shape (T, T, H, H) or (T, H, H); got shape (4, 4)",
    ),
    (
        "contributions of an unknown name, twin",  # returned h0's contributions
        lambda: torch_reference.contributions(
            init_params(D, H, K), np.zeros((T, D)), np.zeros(T, int), param="u"
        ),
        ValueError,
        "param must be one of ('U', 'W', 'V', 'b', 'c', 'h0', 'x') for the rnn cell; got 'u'",
    ),
    (
        "contributions of an unknown name, manual",
        lambda: manual_bptt.contributions(
            init_params(D, H, K), np.zeros((T, D)), np.zeros(T, int), param="u"
        ),
        ValueError,
        "param must be one of ('U', 'W', 'V', 'b', 'c', 'h0', 'x') for the rnn cell; got 'u'",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "phrase"), [pytest.param(*c[1:], id=c[0]) for c in OTHER_BAD_CALLS]
)
def test_other_public_functions_name_their_bad_argument(call, error, phrase) -> None:
    with pytest.raises(error, match=re.escape(phrase)):
        call()


@pytest.mark.parametrize(("cell", "G"), [("rnn", ""), ("lstm", 4), ("gru", 3)])
@pytest.mark.parametrize(
    ("name", "shape", "message"),
    [
        ("V", "{K}", "V must have shape (K, H); got shape ({K},)"),
        ("U", "{D}", "U must have shape ({G}H, D); got shape ({D},)"),
        ("U", "{GH} 0", "D, H and K must be at least 1; got D=0, H={H}, K={K}"),
        ("V", "0 {H}", "D, H and K must be at least 1; got D={D}, H={H}, K=0"),
    ],
)
def test_parameters_of_the_wrong_rank_or_empty_are_refused_in_words(
    cell: str, G: int | str, name: str, shape: str, message: str
) -> None:
    sizes = {"G": G, "D": D, "H": H, "K": K, "GH": (G or 1) * H}
    arrays = init_params(D, H, K, cell=cell).as_dict()
    arrays[name] = np.zeros(tuple(int(n) for n in shape.format(**sizes).split()))
    if arrays["V"].shape[0] == 0:
        arrays["c"] = np.zeros(0)
    with pytest.raises(ValueError, match=f"^{re.escape(message.format(**sizes))}$"):
        type(init_params(D, H, K, cell=cell))(**arrays)


@pytest.mark.parametrize(("cell", "G"), [("lstm", 4), ("gru", 3)])
def test_a_gated_w_of_the_wrong_rank_is_refused_in_words(cell: str, G: int) -> None:
    arrays = {**init_params(D, H, K, cell=cell).as_dict(), "W": np.zeros(H)}
    message = f"W must have shape ({G}H, H); got shape ({H},)"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        type(init_params(D, H, K, cell=cell))(**arrays)


@pytest.mark.parametrize("face", FACES)
@pytest.mark.parametrize(
    ("params_dtype", "input_dtype"), [("float32", "float64"), ("float64", "float32")]
)
@pytest.mark.parametrize("name", ["x", "h0"])
def test_inputs_of_another_float_dtype_are_refused_never_cast(
    face, params_dtype: str, input_dtype: str, name: str
) -> None:
    """Only the complex step casts (float64 inputs to complex128 parameters); a float32
    x or h0 beside float64 parameters, or the reverse, is a TypeError naming it."""
    params = init_params(D, H, K, dtype=params_dtype)
    inputs = {"x": np.zeros((T, N, D), params_dtype), "h0": np.zeros((N, H), params_dtype)}
    inputs[name] = inputs[name].astype(input_dtype)
    message = (
        f"{name} has dtype {input_dtype} but the parameters are {params_dtype}; "
        f"convert with {name}.astype(np.{params_dtype})"
    )
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        face(params, inputs["x"], np.zeros((T, N), int), h0=inputs["h0"])


def _bptt_with(**changes):
    """manual_bptt.bptt on the good problem with some arguments changed, to call later."""
    good = _good()
    return lambda: call(manual_bptt.bptt, good, **changes)


def _mask_with_a_half() -> np.ndarray:
    mask = np.ones((T, N))
    mask[0, 0] = 0.0  # a valid 0 before the bad entry: the bad one must be named
    mask[2, 1] = 0.5
    return mask


def _y_with_a_bad_class_after_a_zero() -> np.ndarray:
    y = np.zeros((T, N), int)
    y[1, 1] = K + 2
    return y


# Each message whole, start to end: a partial match lets a message be decorated, recased
# or lose its details unnoticed (mutation testing found many such).
WORD_FOR_WORD = [
    (_bptt_with(truncate="3"), TypeError, "truncate must be an integer or None; got str '3'"),
    (
        _bptt_with(x=np.zeros((0, N, D)), y=np.zeros((0, N), int)),
        ValueError,
        "x must hold at least one step (T ≥ 1); got T = 0",
    ),
    (
        _bptt_with(x=np.zeros((T, 0, D)), y=np.zeros((T, 0), int)),
        ValueError,
        "x must hold at least one sequence (N ≥ 1); got N = 0",
    ),
    (
        _bptt_with(x=np.zeros((T, 0), int), y=np.zeros((T, 0), int)),
        ValueError,
        "x must hold at least one sequence (N ≥ 1); got N = 0",
    ),
    (
        _bptt_with(y=_y_with_a_bad_class_after_a_zero()),
        ValueError,
        f"y must hold integers in [0, K) = [0, {K}); entry (1, 1) is {K + 2}",
    ),
    (
        _bptt_with(x=np.zeros((T, D)), y=np.zeros(T, int), h0=np.zeros(H + 1)),
        ValueError,
        f"h0 must have shape (H,) = ({H},) to match x and U; got ({H + 1},)",
    ),
    (
        _bptt_with(mask=_mask_with_a_half()),
        ValueError,
        "mask must hold only 0 and 1; entry (2, 1) is 0.5",
    ),
    (
        _bptt_with(mask=np.array(["1"] * T * N).reshape(T, N)),
        TypeError,
        "mask must be bool or 0/1 numbers; got dtype <U1",
    ),
    (
        _bptt_with(x=np.ones((T, N, D), bool)),
        TypeError,
        "x must be float inputs or integer token ids; got a bool array",
    ),
    (
        _bptt_with(x=np.zeros((T, N, D), int)),
        ValueError,
        f"token ids x must have shape (T, N) or (T,); got shape ({T}, {N}, {D})",
    ),
    (
        _bptt_with(x=np.ones(T), y=np.zeros(T, int)),
        ValueError,
        (
            "float inputs x must have shape (T, N, D) or (T, D) (token ids must have an integer "
            f"dtype); got shape ({T},)"
        ),
    ),
    (
        _bptt_with(x=np.ones((T, N, D, 1))),
        ValueError,
        f"float inputs x must have shape (T, N, D) or (T, D); got shape ({T}, {N}, {D}, 1)",
    ),
    (
        _bptt_with(trunc=3, chnk=2),
        TypeError,
        (
            "unexpected keyword argument 'trunc'; the options after (params, x, y) are h0, c0, "
            "mask, activation, truncate, chunk, tbptt, randomized, reduction"
        ),
    ),
    (
        _bptt_with(truncate=2, chunk=3),
        ValueError,
        (
            "give at most one of truncate (per-loss window), chunk (framework-style chunks), "
            "tbptt (TBPTT(k1, k2)) and randomized; got truncate=2 and chunk=3"
        ),
    ),
    (
        _bptt_with(chunk=3, tbptt=(2, 4)),
        ValueError,
        (
            "give at most one of truncate (per-loss window), chunk (framework-style chunks), "
            "tbptt (TBPTT(k1, k2)) and randomized; got chunk=3 and tbptt=(2, 4)"
        ),
    ),
    (
        _bptt_with(truncate=1, randomized=RandomTruncation("d2l", 0.5)),
        ValueError,
        (
            "give at most one of truncate (per-loss window), chunk (framework-style chunks), "
            "tbptt (TBPTT(k1, k2)) and randomized; got truncate=1 and randomized"
        ),
    ),
    (
        _bptt_with(tbptt=(0, 3)),
        ValueError,
        "tbptt's k1 and k2 must both be ≥ 1; got (0, 3)",
    ),
    (
        _bptt_with(tbptt=(2, -1)),
        ValueError,
        "tbptt's k1 and k2 must both be ≥ 1; got (2, -1)",
    ),
    (
        _bptt_with(tbptt=4),
        TypeError,
        "tbptt must be a pair (k1, k2) of integers or None; got 4",
    ),
    (
        _bptt_with(tbptt=(2.5, 3)),
        TypeError,
        "tbptt must be a pair (k1, k2) of integers or None; got (2.5, 3)",
    ),
    (
        _bptt_with(tbptt=(1, 2, 3)),
        TypeError,
        "tbptt must be a pair (k1, k2) of integers or None; got (1, 2, 3)",
    ),
    (
        _bptt_with(randomized="d2l"),
        TypeError,
        "randomized must be a RandomTruncation or the links ξ, a 1-D array of T numbers; got str",
    ),
    (
        _bptt_with(randomized=np.ones(T + 1)),
        ValueError,
        f"randomized's links ξ must be {T} real numbers (one per step); got float64 ({T + 1},)",
    ),
    (
        _bptt_with(randomized=np.r_[np.ones(T - 1), -1.0]),
        ValueError,
        "randomized's links ξ must be finite and ≥ 0",
    ),
    (
        _bptt_with(randomized=np.r_[np.ones(T - 1), np.inf]),
        ValueError,
        "randomized's links ξ must be finite and ≥ 0",
    ),
    (
        lambda: RandomTruncation("geometric", 0.5),
        ValueError,
        "random truncation's kind must be one of ('d2l', 'artbp'); got 'geometric'",
    ),
    (
        lambda: RandomTruncation("d2l", 0.0),
        ValueError,
        "d2l's π must be in (0, 1]; got 0.0",
    ),
    (
        lambda: RandomTruncation("d2l", 1.5),
        ValueError,
        "d2l's π must be in (0, 1]; got 1.5",
    ),
    (
        lambda: RandomTruncation("artbp", 0),
        ValueError,
        "artbp's a must be a finite number > 0; got 0",
    ),
    (
        lambda: RandomTruncation("artbp", cast(Any, "2")),
        TypeError,
        "random truncation's parameter must be a number; got str",
    ),
    (
        lambda: RandomTruncation("d2l", 0.5, seed=cast(Any, 1.5)),
        TypeError,
        "random truncation's seed must be an integer; got 1.5",
    ),
    (
        lambda: RandomTruncation("d2l", 0.5, seed=-1),
        ValueError,
        "random truncation's seed must be ≥ 0 (a seed of numpy's default_rng); got -1",
    ),
    (
        lambda: manual_bptt.loss(
            init_params(D, H, K).astype(np.complex128),
            np.zeros((T, N, D)),
            np.zeros((T, N), int),
            activation="relu",
        ),
        ValueError,
        (
            "the complex step needs an analytic φ (tanh, sigmoid or identity); relu is not "
            "differentiable as a complex function"
        ),
    ),
    (
        _bptt_with(params={"U": 1}),
        TypeError,
        (
            "params must be a manual_bptt.Params (or LSTMParams, GRUParams); got dict. Build "
            "one with Params(U=..., W=..., V=..., b=..., c=...) or init_params(D, H, K, "
            'cell="rnn" | "lstm" | "gru").'
        ),
    ),
    (
        lambda: Params(**cast(Any, {**init_params(D, H, K).as_dict(), "b": [0.0] * H})),
        TypeError,
        "Params.b must be a numpy array; got list",
    ),
    (
        _bptt_with(x=np.ma.masked_array(np.zeros((T, N, D)))),
        TypeError,
        (
            "x must be a plain NumPy array, not a masked array: the entries under its mask "
            "would be used as they are; pass x.filled(...) (or the mask option for masked "
            "losses)"
        ),
    ),
    (
        _bptt_with(x=torch.nn.Parameter(torch.zeros(T, N, D, dtype=torch.float64))),
        TypeError,
        (
            "x must be a NumPy array, not a torch.nn.parameter.Parameter; pass "
            "x.detach().cpu().numpy()"
        ),
    ),
    (
        _bptt_with(x=np.zeros((T, D)), y=np.zeros(T, int), mask=np.ones(T - 1)),
        ValueError,
        f"mask must have shape (T,) = ({T},) to match y; got ({T - 1},)",
    ),
    (
        lambda: manual_bptt.hidden_jacobians(
            cast(Any, init_params(D, H, K, cell="lstm")), np.zeros((T, D))
        ),
        TypeError,
        (
            "this Jacobian tool is written for the vanilla RNN (Params); got LSTMParams; "
            "state_jacobians takes every cell"
        ),
    ),
    (
        lambda: require_vanilla(init_params(D, H, K, cell="gru"), "this style"),
        TypeError,
        "this style is written for the vanilla RNN (Params); got GRUParams",
    ),
    (lambda: init_params(D, H, 0), ValueError, "K must be an integer ≥ 1; got 0"),
    (
        lambda: init_params(D, H, K, seed=cast(Any, 1.5)),
        TypeError,
        "seed must be an integer ≥ 0 or a numpy.random.Generator; got float 1.5",
    ),
    (
        lambda: init_params(D, H, K, scale=cast(Any, "1")),
        TypeError,
        "scale must be a number > 0; got str '1'",
    ),
    (
        lambda: init_params(D, H, K, cell="gru", scheme="identity"),
        ValueError,
        "scheme=\"identity\" is for the vanilla cell (relu); got cell='gru'",
    ),
    (
        lambda: init_params(D, H, K, cell="rnn", reset="middle"),
        ValueError,
        "reset must be one of ('after', 'before'); got 'middle'",
    ),
    (
        lambda: init_params(D, H, K, cell="gru", reset="middle"),
        ValueError,
        "reset must be one of ('after', 'before'); got 'middle'",
    ),
    (
        lambda: init_params(D, H, K, cell="lstm", reset="before"),
        ValueError,
        "reset='before' is the GRU's variant; got cell='lstm'",
    ),
    (
        lambda: init_params(D, H, K, reset="before"),
        ValueError,
        "reset='before' is the GRU's variant; got cell='rnn'",
    ),
]


@pytest.mark.parametrize(("call", "error", "message"), WORD_FOR_WORD)
def test_refusals_word_for_word(call, error, message: str) -> None:
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        call()


def test_init_params_defaults_and_the_normal_scheme() -> None:
    np.testing.assert_array_equal(
        init_params(D, H, K, seed=3).U, init_params(D, H, K, seed=3, scale=1.0).U
    )
    # "normal": N(0, (scale/√n_in)²) entries; "uniform": U(±scale/√n_in), whose std is 1/√3 of it
    wide = init_params(400, 100, 2, scheme="normal", scale=2.0, seed=0)
    bound = 2.0 / np.sqrt(400)
    assert abs(wide.U.mean()) < 0.02 * bound
    assert wide.U.std() == pytest.approx(bound, rel=0.02)


@pytest.mark.parametrize(
    "mask", [None, np.ones((T, N), bool), np.ones((T, N), int), np.ones((T, N), np.float32)]
)
def test_the_prepared_mask_is_in_the_parameters_dtype(mask) -> None:
    from manual_bptt.inputs import prepare

    params = init_params(D, H, K, dtype=np.float32)
    x, y = np.zeros((T, N, D), np.float32), np.zeros((T, N), int)
    batch = prepare(params, x, y, mask=mask)
    assert batch.mask.dtype == np.float32
    np.testing.assert_array_equal(batch.mask, np.ones((T, N)))


def test_init_params_identity_scheme_and_float32_gru() -> None:
    relu = init_params(D, H, K, scheme="identity", scale=0.5, seed=1)
    np.testing.assert_array_equal(relu.W, 0.5 * np.eye(H))
    assert not np.array_equal(init_params(D, H, K, scale=0.5, seed=1).W, relu.W)
    gru = init_params(D, H, K, cell="gru", dtype=np.float32)
    assert {a.dtype for a in gru.as_dict().values()} == {np.dtype(np.float32)}


def test_init_params_overflow_is_refused_without_numpys_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "overflow encountered in cast" would raise
        with pytest.raises(ValueError, match=r"^scale must be small enough for float32 weights"):
            init_params(D, H, K, scale=1e300, dtype=np.float32)
