"""A forward pass that leaves float's range is reported, not hidden (docs/using.md, "Overflow").

Every face issues one manual_bptt.OverflowWarning naming the first step where a state
or the logits stopped being finite, with the same words, and lets no numpy
RuntimeWarning out; a finite network issues none; `bptt check` says so with exit 3.
"""

from __future__ import annotations

import warnings
from typing import cast

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
