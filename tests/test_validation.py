"""Bad input gets a clear error that names the argument, never a wrong answer.

Every face (manual, naive, twin) shares the boundary in manual_bptt/inputs.py, so each
case is checked on all three: same exception type, message naming the argument.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import manual_bptt
import torch_reference
from manual_bptt import Params, init_params

FACES = [manual_bptt.bptt, manual_bptt.naive_bptt, torch_reference.bptt]
D, H, K, T, N = 3, 4, 5, 6, 2


@pytest.fixture
def good() -> dict:
    rng = np.random.default_rng(0)
    return {
        "params": init_params(D, H, K),
        "x": rng.normal(size=(T, N, D)),
        "y": rng.integers(0, K, size=(T, N)),
    }


def call(face, good: dict, **changes):
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
def test_parameter_shapes_must_fit_together(name: str, shape: tuple, phrase: str) -> None:
    arrays = init_params(D, H, K).as_dict()
    arrays[name] = np.zeros(shape)
    with pytest.raises(ValueError, match=re.escape(phrase)):
        Params(**arrays)


def test_parameters_must_share_one_float_dtype() -> None:
    arrays = init_params(D, H, K).as_dict()
    with pytest.raises(TypeError, match="all parameters must share one dtype"):
        Params(**{**arrays, "W": arrays["W"].astype(np.float32)})
    with pytest.raises(TypeError, match=r"Params\.U must be float32 or float64"):
        Params(**{k: v.astype(np.int64) for k, v in arrays.items()})
    with pytest.raises(TypeError, match=r"Params\.b must be a numpy array"):
        Params(**{**arrays, "b": [0.0] * H})


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
    gru = init_params(D, H, K, cell="gru")
    arrays = lstm.as_dict()
    with pytest.raises(TypeError, match="all parameters must share one dtype"):
        type(lstm)(**{**arrays, "V": arrays["V"].astype(np.float32)})
    with pytest.raises(TypeError, match=r"LSTMParams\.b must be a numpy array"):
        type(lstm)(**{**arrays, "b": [0.0] * 4 * H})
    bad = gru.as_dict()
    bad["bh"] = bad["bh"].copy()
    bad["bh"][2] = np.inf
    with pytest.raises(ValueError, match=r"GRUParams\.bh must be finite; entry \(2,\)"):
        type(gru)(**bad)
    with pytest.raises(ValueError, match=r"GRUParams\.reset must be one of \('after', 'before'\)"):
        type(gru)(**gru.as_dict(), reset="middle")


@pytest.mark.parametrize(
    ("kwargs", "error", "phrase"),
    [
        ({"cell": "transformer"}, ValueError, "cell must be one of ('rnn', 'lstm', 'gru')"),
        (
            {"cell": "lstm", "scheme": "identity"},
            ValueError,
            'scheme="identity" is for the vanilla',
        ),
        ({"cell": "gru", "reset": "sideways"}, ValueError, "GRUParams.reset must be one of"),
    ],
)
def test_init_params_refuses_bad_cells(kwargs, error, phrase) -> None:
    with pytest.raises(error, match=re.escape(phrase)):
        init_params(D, H, K, **kwargs)


def test_vanishing_tools_say_they_are_for_the_vanilla_cell(good) -> None:
    # contributions take every cell (issue 13); the product bound is the vanilla cell's.
    lstm = init_params(D, H, K, cell="lstm")
    with pytest.raises(TypeError, match="written for the vanilla RNN"):
        manual_bptt.jacobian_row(lstm, good["x"])


def test_forward_checks_the_gated_options_too(good) -> None:
    with pytest.raises(ValueError, match="a GRU has no cell state"):
        manual_bptt.forward(init_params(D, H, K, cell="gru"), good["x"], c0=np.zeros((N, H)))
    with pytest.raises(ValueError, match="the LSTM has its own nonlinearities"):
        manual_bptt.forward(init_params(D, H, K, cell="lstm"), good["x"], activation="relu")
