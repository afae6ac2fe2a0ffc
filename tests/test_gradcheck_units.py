"""gradcheck's numerical derivatives and records, on a function whose every error is known.

f(θ) = Σ θ³ over the entries of all arrays has ∇f = 3θ² and, along a direction v,

    forward   (f(θ + εv) − f(θ)) / ε       = ⟨∇f, v⟩ + ε·Σ 3θv² + ε²·Σ v³
    central   (f(θ + εv) − f(θ − εv)) / 2ε = ⟨∇f, v⟩ + ε²·Σ v³
    complex   Im f(θ + ihv) / h            = ⟨∇f, v⟩ − h²·Σ v³

exactly (f is a cubic), so each method's value, not just its rough size, can be
pinned. These tests pin what mutation testing found free to change: the sign and
operator of the forward difference, the step actually used, the seed's effect, the
fields of each record and the messages.
"""

from __future__ import annotations

import re
from typing import Any, cast

import numpy as np
import pytest

import manual_bptt
from manual_bptt.cases import make_case
from manual_bptt.checking.gradcheck import (
    EPS,
    ROUNDING,
    BPTTObjective,
    FDAgreement,
    bptt_objective,
    central_differences,
    complex_step,
    directional_central,
    directional_check,
    directional_forward,
    full_check,
    gradcheck,
    random_directions,
    step_size_errors,
)
from manual_bptt.compare import FINITE_DIFFERENCE, Tolerance, compare_grads


def cube_sum(arrays) -> float | complex:
    total: float | complex = sum(np.sum(a**3) for a in arrays.values())
    return total


def point() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {"a": rng.normal(size=(2, 3)), "b": rng.normal(size=4)}


def exact_grads(arrays) -> dict[str, np.ndarray]:
    return {k: 3 * a**2 for k, a in arrays.items()}


def terms(arrays, v) -> tuple[float, float, float]:
    """⟨∇f, v⟩, Σ 3θv², Σ v³ over the arrays v names."""
    inner = sum(float(np.sum(3 * arrays[k] ** 2 * v[k])) for k in v)
    second = sum(float(np.sum(3 * arrays[k] * v[k] ** 2)) for k in v)
    third = sum(float(np.sum(v[k] ** 3)) for k in v)
    return inner, second, third


def test_each_method_has_exactly_its_textbook_error() -> None:
    arrays = point()
    v = random_directions(arrays, 3)
    inner, second, third = terms(arrays, v)
    eps = 1e-2
    assert directional_forward(cube_sum, arrays, v, eps=eps) == pytest.approx(
        inner + eps * second + eps**2 * third, rel=1e-10
    )
    assert directional_central(cube_sum, arrays, v, eps=eps) == pytest.approx(
        inner + eps**2 * third, rel=1e-10
    )
    assert complex_step(cube_sum, arrays, v, h=eps) == pytest.approx(
        inner - eps**2 * third, rel=1e-12
    )


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda a, v: directional_forward(cube_sum, a, v, eps=0.0), "eps"),
        (lambda a, v: directional_central(cube_sum, a, v, eps=-1e-3), "eps"),
        (lambda a, v: complex_step(cube_sum, a, v, h=float("inf")), "h"),
    ],
)
def test_a_bad_step_is_refused_by_name(call, name) -> None:
    arrays = point()
    with pytest.raises(ValueError, match=f"^{name} must be a finite number > 0"):
        call(arrays, random_directions(arrays))


def test_fast_mode_records_what_it_compared() -> None:
    arrays = point()
    grads = exact_grads(arrays)
    rows = directional_check(cube_sum, grads, arrays, seed=4)
    v = random_directions(arrays, 4)
    assert [r.name for r in rows] == ["a", "b"]
    for r in rows:
        inner = terms(arrays, {r.name: v[r.name]})[0]
        norm = float(np.linalg.norm(grads[r.name]))
        assert r.got == pytest.approx(inner, rel=1e-14)
        assert r.expected == pytest.approx(inner, abs=1e-8)  # round-off u·|f|/ε
        assert r.max_abs == abs(r.got - r.expected)
        assert r.max_rel == r.max_abs / abs(r.expected)
        assert r.norm == pytest.approx(norm, rel=1e-14)
        assert r.allowed == FINITE_DIFFERENCE.atol + FINITE_DIFFERENCE.rtol * r.norm
        assert r.worst_index == ()
        assert r.passed


def test_fast_mode_takes_the_norm_in_float64_of_a_float32_gradient() -> None:
    arrays = {"a": np.zeros(2)}
    rows = directional_check(cube_sum, {"a": np.array([1.0, 1e-4], np.float32)}, arrays)
    # float32 would round sqrt(1 + 1e-8) to 1
    assert rows[0].norm == pytest.approx(np.sqrt(1 + float(np.float32(1e-4)) ** 2), rel=1e-15)
    assert rows[0].norm != 1.0


def square_sum(arrays) -> float:
    return float(sum(np.sum(a**2) for a in arrays.values()))


def test_fast_mode_with_a_zero_derivative() -> None:
    """At θ = 0, central differences of Σ θ² are exactly 0 along any v (f(εv) = f(−εv)):
    a right zero gradient agrees exactly (even with no tolerance at all) and relatively
    0; a wrong one is infinitely far, relatively."""
    arrays = {"a": np.zeros(3)}
    none = Tolerance(rtol=0.0, atol=0.0)
    [right] = directional_check(square_sum, {"a": np.zeros(3)}, arrays, tol=none)
    assert (right.max_abs, right.max_rel, right.allowed, right.passed) == (0.0, 0.0, 0.0, True)
    [wrong] = directional_check(square_sum, {"a": np.ones(3)}, arrays)
    assert wrong.expected == 0.0
    assert wrong.max_rel == float("inf")
    assert not wrong.passed


def test_the_seed_chooses_the_direction_and_only_the_seed() -> None:
    arrays = point()
    wrong = {k: g * 1.5 for k, g in exact_grads(arrays).items()}

    def gots(rows) -> list[float]:
        return [r.got for r in rows]

    default = gots(directional_check(cube_sum, wrong, arrays))
    assert default == gots(directional_check(cube_sum, wrong, arrays, seed=0))
    assert default == gots(gradcheck(cube_sum, wrong, arrays, mode="fast"))
    other = gots(directional_check(cube_sum, wrong, arrays, seed=1))
    assert other != default
    assert other == gots(gradcheck(cube_sum, wrong, arrays, mode="fast", seed=1))


def test_fast_mode_passes_the_tolerance_on() -> None:
    arrays = point()
    loose = Tolerance(rtol=0.5, atol=2.0)
    rows = gradcheck(cube_sum, exact_grads(arrays), arrays, mode="fast", tol=loose)
    assert [r.allowed for r in rows] == [2.0 + 0.5 * r.norm for r in rows]


def test_an_unknown_method_is_refused_not_run_as_central_differences() -> None:
    arrays = point()
    with pytest.raises(ValueError, match="method must be 'central' or 'complex'; got 'compelx'"):
        directional_check(cube_sum, exact_grads(arrays), arrays, method="compelx")


def test_missing_gradients_are_all_named() -> None:
    arrays = {"a": np.zeros(1), "b": np.zeros(1), "c": np.zeros(1)}
    message = "grads has no gradient for 'a', 'c'; arrays has ['a', 'b', 'c'], grads ['b']"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        directional_check(cube_sum, {"b": np.zeros(1)}, arrays)


def cube_objective() -> BPTTObjective:
    return BPTTObjective(f=cube_sum, arrays=point())


def test_step_size_errors_at_given_steps_are_the_textbook_errors() -> None:
    objective = cube_objective()
    steps = np.array([1e-1, 1e-2], np.float32)  # any real steps; reported as float64
    # cast: step_size_errors takes any real steps (a list too), though eps is annotated float64
    errors = step_size_errors(
        objective, exact_grads(objective.arrays), eps=cast(Any, steps), seed=5
    )
    v = random_directions(objective.arrays, 5)
    inner, second, third = terms(objective.arrays, v)
    assert errors.eps.dtype == np.float64
    np.testing.assert_array_equal(errors.eps, steps)
    assert errors.reference == pytest.approx(inner, rel=1e-14)
    e = steps.astype(np.float64)
    np.testing.assert_allclose(errors.forward, np.abs(e * second + e**2 * third), rtol=1e-8)
    np.testing.assert_allclose(errors.central, np.abs(e**2 * third), rtol=1e-8)
    assert errors.complex is not None
    np.testing.assert_allclose(errors.complex, np.abs(e**2 * third), rtol=1e-8)


def test_step_size_errors_default_grid_seed_and_no_complex() -> None:
    objective = cube_objective()
    grads = exact_grads(objective.arrays)
    default = step_size_errors(objective, grads, with_complex=False)
    np.testing.assert_array_equal(default.eps, np.logspace(-16, -1, 61))
    assert default.complex is None
    seed0 = step_size_errors(objective, grads, seed=0, with_complex=False)
    assert default.reference == seed0.reference
    assert step_size_errors(objective, grads, seed=1).reference != default.reference


def test_step_size_errors_refuse_a_bad_step_by_name() -> None:
    objective = cube_objective()
    with pytest.raises(ValueError, match=r"^eps must be a finite number > 0; got 0\.0"):
        step_size_errors(objective, exact_grads(objective.arrays), eps=cast(Any, [1e-3, 0.0]))


def test_random_directions_are_unit_vectors_shaped_like_the_arrays() -> None:
    arrays = {"one": np.zeros(1), "many": np.zeros((3, 4)), "empty": np.zeros((0, 2))}
    v = random_directions(arrays)
    assert {k: d.shape for k, d in v.items()} == {k: a.shape for k, a in arrays.items()}
    assert np.linalg.norm(v["one"]) == pytest.approx(1.0, rel=1e-15)
    assert np.linalg.norm(v["many"]) == pytest.approx(1.0, rel=1e-15)
    for k in arrays:
        np.testing.assert_array_equal(v[k], random_directions(arrays, 0)[k])
    assert not np.array_equal(v["many"], random_directions(arrays, 1)["many"])


def test_bptt_objective_of_a_float32_problem_is_float64_throughout() -> None:
    """The arrays are float64 copies (central differences refuse anything else), f is the
    loss of the float64 copy of the problem, and its gradient is that copy's truncated one."""
    case = make_case(T=5, N=2, D=3, H=3, K=3, seed=6, dtype="float32", with_h0=True, truncate=2)
    objective = case.call(bptt_objective)
    assert {k: a.dtype for k, a in objective.arrays.items()} == dict.fromkeys(
        [*case.params.NAMES, "h0", "x"], np.dtype(np.float64)
    )
    as64 = case.params.astype(np.float64)
    value = objective.f(objective.arrays)
    assert type(value) is float
    assert case.h0 is not None
    expected = manual_bptt.bptt(
        as64, case.x.astype(np.float64), case.y, h0=case.h0.astype(np.float64), truncate=2
    )
    assert value == pytest.approx(expected.loss, rel=1e-14)
    grads = objective.batched_grads(expected.grads)
    assert all(r.passed for r in directional_check(objective.f, grads, objective.arrays))


def test_lstm_objective_has_a_float64_c0() -> None:
    case = make_case(T=3, N=2, D=2, H=2, K=2, seed=6, dtype="float32", cell="lstm", with_h0=True)
    objective = case.call(bptt_objective)
    assert objective.arrays["c0"].dtype == np.float64


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: central_differences(cube_sum, cast(Any, [np.zeros(2)])),
            "arrays must be a mapping of name → float64 array; got list",
        ),
        (
            lambda: central_differences(cube_sum, point(), eps=cast(Any, "1e-6")),
            "eps must be a finite number > 0; got str '1e-6'",
        ),
        (
            lambda: complex_step(cube_sum, point(), point(), h=True),
            "h must be a finite number > 0; got bool True",
        ),
    ],
)
def test_wrong_types_are_refused_in_words(call, message) -> None:
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        call()


# What finite differences can resolve: the error bound B of gradcheck's docstring.

SINE_K = 1e4


def sine_sum(arrays) -> float:
    """Σ sin(Kθ): |f| ≤ its size, but its third derivative is −K³ cos(Kθ), so at K = 1e4
    a central difference's truncation error, about ε²K³/6 ≈ 0.17, is far above round-off."""
    return float(sum(np.sum(np.sin(SINE_K * a)) for a in arrays.values()))


def sine_point() -> dict[str, np.ndarray]:
    return {"a": np.array([0.3, -1.1])}


def sine_grads(arrays) -> dict[str, np.ndarray]:
    return {k: SINE_K * np.cos(SINE_K * a) for k, a in arrays.items()}


def _moved(arrays, i: int, step: float) -> dict[str, np.ndarray]:
    a = arrays["a"].copy()
    a[i] += step
    return {"a": a}


def _central_at(f, arrays, i: int, eps: float) -> float:
    slope: float = (f(_moved(arrays, i, eps)) - f(_moved(arrays, i, -eps))) / (2 * eps)
    return slope


def test_the_error_bound_is_round_off_plus_the_two_step_difference() -> None:
    """Both entries miss the exact gradient by more than the allowed 1e-7 + 1e-6·‖D‖∞,
    by truncation, not round-off: unresolved, with B = c·u·(|f₊| + |f₋|)/2ε + |D(ε) − D(2ε)|."""
    arrays = sine_point()
    exact = sine_grads(arrays)
    [row] = full_check(sine_sum, exact, arrays)
    u = np.finfo(np.float64).eps / 2
    bounds = []
    for i in range(2):
        f_plus, f_minus = sine_sum(_moved(arrays, i, EPS)), sine_sum(_moved(arrays, i, -EPS))
        rounding = ROUNDING * u * (abs(f_plus) + abs(f_minus)) / (2 * EPS)
        d1, d2 = _central_at(sine_sum, arrays, i, EPS), _central_at(sine_sum, arrays, i, 2 * EPS)
        assert abs(d1 - exact["a"][i]) > row.allowed > rounding
        bounds.append(rounding + abs(d1 - d2))
    assert (row.unresolved, row.passed) == (2, True)
    assert row.bound == pytest.approx(max(bounds), rel=1e-12)
    [fast] = directional_check(sine_sum, exact, arrays)
    assert (fast.unresolved, fast.passed) == (1, True)
    assert fast.bound > fast.max_abs > fast.allowed


def test_a_difference_beyond_the_error_bound_is_still_a_disagreement() -> None:
    """An error bound above the tolerance leaves unjudged only what it covers: a gradient
    off by 10 where B ≈ 0.5 fails, in full and in fast mode."""
    arrays = sine_point()
    wrong = {"a": sine_grads(arrays)["a"] + 10.0}
    [row] = full_check(sine_sum, wrong, arrays)
    assert (row.unresolved, row.passed) == (0, False)
    [fast] = directional_check(sine_sum, wrong, arrays)
    assert (fast.unresolved, fast.passed) == (0, False)


def test_an_estimate_that_is_not_finite_is_unresolved() -> None:
    """f overflows just past θ: D(ε) is inf and says nothing, so it is not a disagreement."""

    def wall(arrays) -> float:
        a = arrays["a"]
        return float(np.sum(np.where(a > 0.5, np.inf, a**2)))

    arrays = {"a": np.array([0.5 - 1e-7, 0.2])}
    [row] = full_check(wall, {"a": 2 * arrays["a"]}, arrays)
    assert (row.unresolved, row.bound, row.passed) == (1, float("inf"), True)
    assert row.worst_index == (1,)  # the worst entry that has an estimate
    [fast] = directional_check(wall, {"a": 2 * arrays["a"]}, arrays)
    assert (fast.unresolved, fast.bound, fast.passed) == (1, float("inf"), True)


def relu_at(scale: float):
    case = make_case(T=4, N=2, D=3, H=3, K=3, seed=0, scale=scale, activation="relu", with_h0=True)
    objective = case.call(bptt_objective)
    return objective, objective.batched_grads(case.call(manual_bptt.bptt).grads)


def test_a_loss_too_large_to_difference_leaves_its_gradient_unresolved_not_failed() -> None:
    """relu at weight scale 1e3: a loss near 8e13, so c moved by ε = 1e-6 is lost against
    logits of that size. Judged plainly, dc disagrees; its error bound covers that."""
    objective, grads = relu_at(1e3)
    assert objective.f(objective.arrays) > 1e13
    numeric = central_differences(objective.f, objective.arrays)
    plain = compare_grads(grads, numeric, FINITE_DIFFERENCE)
    assert [a.name for a in plain if not a.passed] == ["c"]
    rows = {r.name: r for r in full_check(objective.f, grads, objective.arrays)}
    assert all(r.passed for r in rows.values())
    assert rows["c"].unresolved == 3
    assert rows["c"].bound > rows["c"].allowed
    fast = {r.name: r for r in directional_check(objective.f, grads, objective.arrays)}
    assert all(r.passed for r in fast.values())
    assert fast["c"].unresolved == 1


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_a_wrong_gradient_at_an_ordinary_scale_is_still_caught(activation: str) -> None:
    """At weight scale 1 the error bound is far below the tolerance: nothing is left
    unresolved, and dW off by 1e-4 of itself fails in full and in fast mode."""
    case = make_case(T=5, N=2, D=3, H=4, K=3, seed=2, activation=activation, with_h0=True)
    objective = case.call(bptt_objective)
    grads = objective.batched_grads(case.call(manual_bptt.bptt).grads)
    wrong = {**grads, "W": grads["W"] * (1 + 1e-4)}
    for check in (full_check, directional_check):
        right = check(objective.f, grads, objective.arrays)
        assert all(r.passed and r.unresolved == 0 for r in right), check.__name__
        rows = {r.name: r for r in check(objective.f, wrong, objective.arrays)}
        assert not rows["W"].passed, check.__name__
        assert all(r.unresolved == 0 for r in rows.values()), check.__name__


def test_an_unresolved_gradient_is_described_in_words() -> None:
    row = FDAgreement("c", 5.0, float("inf"), 30.2, (1,), 0.0, 5.0, 3e-5, True, 3, 6.4e27)
    assert row.describe() == (
        "c[1]: expected 0, got 5, |Δ| = 5 (allowed 3e-05, relative inf) ok; 3 entries within "
        "the estimates' error bound (up to 6.4e+27): finite differences cannot resolve this "
        "gradient at this scale"
    )
