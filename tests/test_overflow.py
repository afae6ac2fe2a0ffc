"""A forward pass that leaves float's range is reported, not hidden (docs/using.md, "Overflow").

Every face issues one manual_bptt.OverflowWarning naming the first step where a state
or the logits stopped being finite, with the same words, and lets no numpy
RuntimeWarning out; a finite network issues none; `bptt check` says so with exit 3.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any, cast

import numpy as np
import pytest

import manual_bptt
import torch_reference
from manual_bptt import OverflowWarning, Params, init_params
from manual_bptt.cli import main

# relu with weights at 1e3: the state grows by about 1e3 per step and leaves float64's
# range at step 109 (o_109 is the first non-finite logits); measured, and the same on
# every face because each computes the same forward numbers.
T, N, D, H, K = 120, 2, 3, 8, 5
FIRST_BAD_STEP = 109


def _problem(dtype=np.float64) -> tuple[Params, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    params = init_params(D, H, K, scale=1e3, dtype=dtype)
    return params, rng.normal(size=(T, N, D)).astype(dtype), rng.integers(0, K, (T, N))


FACES = [
    ("manual_bptt.bptt", manual_bptt.bptt),
    (
        "manual_bptt.bptt truncate=3",
        lambda p, x, y, **o: manual_bptt.bptt(p, x, y, truncate=3, **o),
    ),
    ("manual_bptt.naive_bptt", manual_bptt.naive_bptt),
    ("torch_reference.bptt", torch_reference.bptt),
    (
        "torch_reference.bptt truncate=3",
        lambda p, x, y, **o: torch_reference.bptt(p, x, y, truncate=3, **o),
    ),
    (
        "torch_reference.bptt chunk=5",
        lambda p, x, y, **o: torch_reference.bptt(p, x, y, chunk=5, **o),
    ),
    ("manual_bptt.loss", manual_bptt.loss),
    ("manual_bptt.forward", lambda p, x, y, **o: manual_bptt.forward(p, x, **o)),
    (
        "manual_bptt.contributions",
        lambda p, x, y, **o: manual_bptt.contributions(p, x[:110], y[:110], param="W", **o),
    ),
    (
        "torch_reference.contributions",
        lambda p, x, y, **o: torch_reference.contributions(p, x[:110], y[:110], param="W", **o),
    ),
    (
        "manual_bptt.hidden_jacobians",
        lambda p, x, y, **o: manual_bptt.hidden_jacobians(p, x[:110], **o),
    ),
]


def _warnings_of(call) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return caught


@pytest.mark.parametrize("face", [f for _, f in FACES], ids=[name for name, _ in FACES])
def test_overflow_is_one_warning_naming_the_first_bad_step(face) -> None:
    params, x, y = _problem()
    caught = _warnings_of(lambda: face(params, x, y, activation="relu"))
    assert [w.category for w in caught] == [OverflowWarning], [str(w.message) for w in caught]
    assert cast(OverflowWarning, caught[0].message).step == FIRST_BAD_STEP
    # attributed to the line that called the face, not to a line inside the project
    assert caught[0].filename == __file__, caught[0].filename
    assert str(caught[0].message) == (
        f"the network overflows at step t = {FIRST_BAD_STEP}: o_t (the logits) holds inf or "
        "NaN, so the loss and the gradients are not finite either"
    )


def test_a_state_that_overflows_is_named_as_the_state() -> None:
    # identity φ, W = 1e200·I: h_t grows 1e200-fold per step and overflows at step 2,
    # so h_t itself, not only the logits computed from it, is named.
    params = Params(**{**init_params(D, H, K).as_dict(), "W": 1e200 * np.eye(H)})
    x = np.ones((4, D))
    for face in (manual_bptt.bptt, manual_bptt.naive_bptt, torch_reference.bptt):
        caught = _warnings_of(lambda f=face: f(params, x, np.zeros(4, int), activation="identity"))
        assert [str(w.message)[:60] for w in caught] == [
            "the network overflows at step t = 2: h_t (the state) holds i"
        ], face
        assert caught[0].filename == __file__, face


def test_float32_overflow_is_reported_too() -> None:
    params, x, y = _problem(np.float32)
    caught = _warnings_of(lambda: manual_bptt.bptt(params, x, y, activation="relu"))
    assert [w.category for w in caught] == [OverflowWarning]
    step = cast(OverflowWarning, caught[0].message).step
    assert step is not None
    assert step < FIRST_BAD_STEP  # float32's range ends far sooner


@pytest.mark.parametrize("face", [f for _, f in FACES], ids=[name for name, _ in FACES])
def test_a_finite_network_warns_nothing(face) -> None:
    params, x, y = _problem()
    # The same network, stopped at step 60: loss about 1e170, large but finite.
    assert _warnings_of(lambda: face(params, x[:60], y[:60], activation="relu")) == []


def test_gradients_that_overflow_behind_a_finite_loss_are_reported() -> None:
    # h stays 0 (x = 0, b = 0, tanh(0) = 0), so the logits are c and the loss is finite,
    # but δ = Vᵀ ∂L/∂o ≈ 1e300 grows tenfold per step back through W = 10·I.
    V = np.linspace(-1e300, 1e300, K)[:, None] * np.ones(H)  # rows differ: Vᵀ ∂L/∂o ≠ 0
    params = Params(U=np.zeros((H, D)), W=10 * np.eye(H), V=V, b=np.zeros(H), c=np.zeros(K))
    x, y = np.zeros((12, D)), np.zeros(12, int)
    for face in (manual_bptt.bptt, manual_bptt.naive_bptt, torch_reference.bptt):
        caught = _warnings_of(lambda f=face: f(params, x, y))
        assert [w.category for w in caught] == [OverflowWarning], face
        assert cast(OverflowWarning, caught[0].message).step is None
        assert "the gradients overflow: the loss is finite but grads[" in str(caught[0].message)
        assert caught[0].filename == __file__, face


def test_bptt_check_says_the_network_overflows_with_exit_code_3(capsys) -> None:
    code = main(
        ["check", "--activation", "relu", "--scale", "100", "--T", "300", "--full", "--fd", "off"]
    )
    out = capsys.readouterr().out
    assert code == 3
    assert (
        out.strip()
        .splitlines()[-1]
        .startswith("full: the network overflows at step 182; the gradients cannot be compared")
    )
    assert "DISAGREE" not in out


# The gated cells' states are bounded, so only logits can leave float's range. Biases
# of ±100 saturate the gates so that every h_t ≈ tanh(1) ≈ 0.76 (LSTM: i, f, g, o ≈ 1)
# or ≈ 1 (GRU: z ≈ 0, n ≈ 1); with V = 1e308 everywhere, o_t = c + V h_t is then
# infinite from the first step on.
GATE_BIAS = {
    "lstm": np.full(4 * H, 100.0),
    "gru": np.concatenate([np.zeros(H), np.full(H, -100.0), np.full(H, 100.0)]),
}


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize(
    "face", [manual_bptt.bptt, manual_bptt.naive_bptt, torch_reference.bptt, manual_bptt.loss]
)
def test_a_gated_cell_whose_logits_overflow_is_reported(cell: str, face) -> None:
    params = init_params(D, H, K, cell=cell)
    params = params.with_arrays(V=np.full((K, H), 1e308), b=GATE_BIAS[cell])
    x = np.random.default_rng(1).normal(size=(4, N, D))
    y = np.zeros((4, N), dtype=int)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        face(params, x, y)
    kinds = [w.category for w in caught]
    assert OverflowWarning in kinds, kinds
    assert all(issubclass(k, OverflowWarning) for k in kinds), kinds  # numpy stays quiet
    assert {w.filename for w in caught} == {__file__}


# Gradients that overflow in the backward pass alone, one gradient at a time, behind a
# finite loss and finite logits: each case leaves every other gradient finite, so a
# detector that looked only at the loss, the small gradients or a few sums (∂L/∂b,
# ∂L/∂c) would miss it. T = 4 steps, D = 1, H = 3, K = 2; y = 0 everywhere unless given.
_T, _D, _H, _K = 4, 1, 3, 2
_OPPOSED_V = np.array([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]])  # Vᵀ ∂L/∂o same sign in every unit


def _vanilla(U: float, W: float, V: np.ndarray) -> Params:
    return Params(
        U=np.full((_H, _D), U), W=np.full((_H, _H), W), V=V, b=np.zeros(_H), c=np.zeros(_K)
    )


def _gradients_overflow(name: str) -> str:
    """The whole message result.py issues when grads[name] is the first non-finite one."""
    return (
        f"the gradients overflow: the loss is finite but grads[{name!r}] holds inf or NaN "
        "(exploding gradients)"
    )


BACKWARD_ONLY = {
    # identity φ, h_t = U x_t = 1.5e308 (finite), V = 1e-300 keeps the logits small;
    # ∂L/∂V = Σ_t ∂L/∂o_t h_tᵀ sums four terms of 0.5 · 1.5e308. Δ = Vᵀ ∂L/∂o = 0.
    "V": (_vanilla(1.5e308, 0.0, np.full((_K, _H), 1e-300)), np.ones((_T, _D)), {}),
    # identity φ, x_t = 1.5e308 against U = 1e-300: h_t and the logits are small, but
    # ∂L/∂U = Σ_t Δ_t x_tᵀ multiplies x itself.
    "U": (
        _vanilla(1e-300, 0.0, np.array([[1.0, -1.0, 0.5], [-1.0, 0.5, 1.0]])),
        np.full((_T, _D), 1.5e308),
        {},
    ),
    # identity φ, U = 1e308 against x_t = 1e-308: h_t = 1, but ∂L/∂x_t = Uᵀ Δ_t sums
    # three terms of about 2e308 (y = 1, the wrong class, keeps Δ near 2).
    "x": (_vanilla(1e308, 0.0, _OPPOSED_V), np.full((_T, _D), 1e-308), {"y": 1}),
    # h_t = 0 throughout (x = 0, b = 0), so W = 1e308 never meets a non-zero state; with
    # truncate=0, Δ_t = Vᵀ ∂L/∂o_t alone and only ∂L/∂h0 = Wᵀ Δ_0 goes through W.
    "h0": (_vanilla(0.0, 1e308, _OPPOSED_V), np.zeros((_T, _D)), {"truncate": 0}),
}


@pytest.mark.parametrize("name", list(BACKWARD_ONLY))
def test_a_gradient_that_alone_overflows_in_the_backward_pass_is_reported(name: str) -> None:
    params, x, given = BACKWARD_ONLY[name]
    options: dict[str, Any] = dict(given)
    y = np.full(_T, options.pop("y", 0))
    activation = "tanh" if name == "h0" else "identity"
    caught = _warnings_of(lambda: manual_bptt.bptt(params, x, y, activation=activation, **options))
    assert [str(w.message) for w in caught] == [_gradients_overflow(name)]
    message = caught[0].message
    assert isinstance(message, OverflowWarning)
    assert message.step is None
    assert caught[0].filename == __file__
    # and it is the only gradient that overflowed: the loss and the others are finite
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OverflowWarning)
        result = manual_bptt.bptt(params, x, y, activation=activation, **options)
    assert np.isfinite(result.loss)
    assert [k for k, g in result.grads.items() if not np.isfinite(g).all()] == [name]


# Every entry of every gradient, for each cell, float inputs and token ids (with ids
# that leave columns of ∂L/∂U untouched): a NaN, +inf or −inf written into that one
# entry after the backward pass, before bptt builds its result, is reported, naming the
# gradient. A detector that skipped any entry (a large gradient, the columns of tokens
# that do not occur) would miss some.
_PLANT_CASES = [
    ("rnn", False),
    ("rnn", True),
    ("lstm", False),
    ("lstm", True),
    ("gru", False),
    ("gru", True),
]


def _plant_problem(cell: str, tokens: bool):
    rng = np.random.default_rng(3)
    T_, N_, D_, H_, K_ = 3, 2, 5, 2, 3
    params = init_params(D_, H_, K_, cell=cell, seed=1)
    x = np.array([[0, 2], [2, 3], [0, 0]]) if tokens else rng.normal(size=(T_, N_, D_))
    return params, x, rng.integers(0, K_, (T_, N_))


@pytest.mark.parametrize(("cell", "tokens"), _PLANT_CASES)
def test_a_nonfinite_value_in_any_single_gradient_entry_is_reported(
    cell: str, tokens: bool, monkeypatch
) -> None:
    backward_module = importlib.import_module("manual_bptt.backward")
    params, x, y = _plant_problem(cell, tokens)
    clean = manual_bptt.bptt(params, x, y)
    assert _warnings_of(lambda: manual_bptt.bptt(params, x, y)) == []
    target: dict[str, object] = {}

    def planting(function):
        def run(*args, **kwargs):
            grads = function(*args, **kwargs)
            grads[target["name"]][target["index"]] = target["value"]
            return grads

        return run

    monkeypatch.setattr(backward_module, "backward", planting(backward_module.backward))
    monkeypatch.setattr(backward_module, "gated_backward", planting(backward_module.gated_backward))
    planted = 0
    for name, g in clean.grads.items():
        batched = g.reshape(-1, *g.shape) if name in ("h0", "c0") and g.ndim == 1 else g
        for index in np.ndindex(batched.shape):
            for value in (np.nan, np.inf, -np.inf):
                target.update(name=name, index=index, value=value)
                caught = _warnings_of(lambda: manual_bptt.bptt(params, x, y))
                assert [str(w.message) for w in caught] == [_gradients_overflow(name)], (
                    name,
                    index,
                    value,
                )
                planted += 1
    assert planted == 3 * sum(g.size for g in clean.grads.values())


def test_finite_gradients_whose_sum_overflows_are_not_reported() -> None:
    # Entries of ±1.5e308 are finite, but any sum of two of the same sign is inf: a
    # detector that trusted a sum alone would raise a false alarm on correct gradients.
    result_module = importlib.import_module("manual_bptt.result")
    grads = {"U": np.full((2, 2), 1.5e308), "W": np.array([1.5e308, -1.5e308, -1.5e308])}
    assert _warnings_of(lambda: result_module._report_gradient_overflow(1.0, grads)) == []


def test_the_first_gradient_holding_a_nonfinite_value_is_the_one_named() -> None:
    result_module = importlib.import_module("manual_bptt.result")
    grads = {"U": np.ones(3), "W": np.array([1.0, np.nan]), "V": np.array([np.inf])}
    caught = _warnings_of(lambda: result_module._report_gradient_overflow(1.0, grads))
    assert [str(w.message) for w in caught] == [_gradients_overflow("W")]
    # a loss that is not finite has been reported by the forward pass: nothing more
    assert _warnings_of(lambda: result_module._report_gradient_overflow(np.nan, grads)) == []
