"""The reference derivative of the generic forms: numerical, from the user's own forward.

With no twin to ask, the expected gradient of a scalar φ(θ) (⟨dout, forward(θ)⟩ for
the layer form, the loss for the loss form) is computed from calls of φ alone, each
one call of the user's code in the worker. gradcheck.py's estimates and error bounds
are used as they are:

- the complex step, Im φ(θ + i·h·v)/h, exact to round-off, where the user's forward
  carries complex numbers through. That is detected on every problem (1 + 2 calls): φ
  must return a complex value along a random direction v, and that value must agree
  with the central difference along v within its error bound. A forward that writes
  into ``np.zeros`` buffers (the imaginary part is dropped), takes ``abs`` or compares
  numbers fails one of the two, and central differences are used instead.
- otherwise central differences, D(ε) = (φ₊ − φ₋)/2ε, each with its error bound
  B = c·u·(|φ₊| + |φ₋|)/2ε + |D(ε) − D(2ε)| (Richardson's estimate of the truncation
  error, two more calls, made only where round-off alone does not explain a miss). An
  entry that misses the tolerance by no more than B is "unresolved": reported as such,
  never as wrong (gradcheck.FDAgreement).

Cost, per problem: arrays with at most :data:`SMALL` entries in all (what shrinking
produces) are checked entry by entry, one call per entry with the complex step, two
with central differences. Larger problems are checked first along :data:`DIRECTIONS`
random directions per array (one call, or two, per direction); only an array that
fails one of them is then checked entry by entry, so that its worst entry is named.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import NDArray

from manual_bptt.checking.gradcheck import (
    COMPLEX_STEP,
    EPS,
    FDAgreement,
    _at,
    _central_entries,
    _error_bound,
    _judge,
    along,
    directional_central,
    directional_check,
    random_directions,
    rounding_bound,
)
from manual_bptt.checking.guard import CodeFailed
from manual_bptt.compare import FINITE_DIFFERENCE, Tolerance, agreement

Arrays = Mapping[str, NDArray[Any]]
Objective = Callable[[Arrays], "float | complex"]

SMALL = 64  # entries in all, at most: checked entry by entry at once
DIRECTIONS = 2  # random directions per array before any entry-by-entry check
# The complex step subtracts nothing: its error is round-off in φ's own derivative.
# Measured against the twin on the project's own cells through the layer form (tests/
# test_generic_verify.py): the worst was below 1e-12 of ‖g‖∞; 1e-8 leaves room for
# forwards that sum many more terms, and still fails a gradient wrong in its 8th digit.
COMPLEX = Tolerance(rtol=1e-8, atol=1e-10)
# Central differences: compare.FINITE_DIFFERENCE, as measured for BPTT problems.
CENTRAL = FINITE_DIFFERENCE


class NotComplex(Exception):
    """φ returned a real value for complex arguments: the complex step cannot be used."""


@dataclass
class Cost:
    """What one reference cost: the method, the calls of φ, the arrays done entry by entry."""

    method: str = "central differences"
    calls: int = 0
    entry_by_entry: list[str] = field(default_factory=list)


def _counted(f: Objective, cost: Cost) -> Objective:
    def g(values: Arrays) -> float | complex:
        cost.calls += 1
        return f(values)

    return g


def complex_step_works(f: Objective, arrays: Arrays, seed: int) -> bool:
    """Whether Im φ(θ + ihv)/h agrees with the central difference along one random v
    (within max(CENTRAL's allowance, the central estimate's error bound B))."""
    v = random_directions(arrays, seed)
    try:
        value = along(f, arrays, v, 1j * COMPLEX_STEP)
    except (NotComplex, CodeFailed):  # e.g. a real buffer refused the complex result
        return False
    if not np.iscomplexobj(value):
        return False
    derivative = float(np.imag(value)) / COMPLEX_STEP
    plus, minus = (float(np.real(along(f, arrays, v, s))) for s in (EPS, -EPS))
    central = (plus - minus) / (2 * EPS)
    diff = abs(derivative - central)
    allowed = CENTRAL.atol + CENTRAL.rtol * abs(central)
    if diff <= allowed:
        return True
    bound = _error_bound(
        central,
        rounding_bound(plus, minus, EPS),
        diff,
        partial(directional_central, f, arrays, v, eps=2 * EPS),
    )
    return bool(np.isfinite(derivative) and diff <= bound)


def _complex_entries(f: Objective, arrays: Arrays, name: str) -> NDArray[np.float64]:
    """Im φ(θ + ih·e_i)/h for every entry i of ``arrays[name]``."""
    value = arrays[name]
    out = np.zeros(value.shape)
    for index in np.ndindex(value.shape):
        moved = value.astype(np.complex128)
        moved[index] += 1j * COMPLEX_STEP
        out[index] = float(np.imag(f({**arrays, name: moved}))) / COMPLEX_STEP
    return out


def _entry_by_entry(
    f: Objective, got: NDArray[np.float64], arrays: Arrays, name: str, method: str
) -> FDAgreement:
    if method == "complex step":
        expected = _complex_entries(f, arrays, name)
        return FDAgreement(**vars(agreement(name, got, expected, COMPLEX)))
    only = {name: arrays[name]}

    def restricted(values: Arrays) -> float | complex:
        return f({**arrays, **values})

    numeric, rounding = _central_entries(restricted, only, EPS, None)

    def at_2eps(index: tuple[int, ...]) -> float:
        plus = _at(restricted, only, name, index, 2 * EPS)
        return (plus - _at(restricted, only, name, index, -2 * EPS)) / (4 * EPS)

    return _judge(name, got, numeric[name], rounding[name], CENTRAL, at_2eps)


def reference_agreements(
    f: Objective,
    grads: Mapping[str, NDArray[np.float64]],
    arrays: Arrays,
    *,
    seed: int = 0,
    small: int = SMALL,
) -> tuple[dict[str, FDAgreement], Cost]:
    """Each gradient in ``grads`` against φ's numerical derivative at ``arrays``.

    Args:
        f: φ, a scalar function of a dict shaped like ``arrays`` (float64 or complex128
            arrays); it may raise NotComplex for complex arguments.
        grads: name → the gradient to check, shaped like ``arrays[name]`` (float64).
        arrays: the point θ, name → float64 array; names not in ``grads`` stay fixed.
        seed: draws the directions; small: see :data:`SMALL`.
    Returns:
        (name → FDAgreement in ``grads``' order: entry by entry, or along a direction
        with worst_index (); the Cost).
    """
    cost = Cost()
    g = _counted(f, cost)
    if complex_step_works(g, arrays, seed):
        try:
            found = _agreements(g, grads, arrays, seed, small, "complex step", cost)
        except (NotComplex, CodeFailed):  # one array's path drops or refuses complex values
            cost.entry_by_entry.clear()
        else:
            cost.method = "complex step"
            return found, cost
    return _agreements(g, grads, arrays, seed, small, "central differences", cost), cost


def _agreements(
    g: Objective,
    grads: Mapping[str, NDArray[np.float64]],
    arrays: Arrays,
    seed: int,
    small: int,
    method: str,
    cost: Cost,
) -> dict[str, FDAgreement]:
    names = list(grads)
    total = sum(int(arrays[n].size) for n in names)
    out: dict[str, FDAgreement] = {}
    if total > small:
        only = {n: arrays[n] for n in names}

        def restricted(values: Arrays) -> float | complex:
            return g({**arrays, **values})

        kind = "complex" if method == "complex step" else "central"
        for k in range(DIRECTIONS):
            rows = directional_check(
                restricted,
                grads,
                only,
                seed=seed * DIRECTIONS + k + 1,
                tol=COMPLEX if kind == "complex" else CENTRAL,
                method=kind,
            )
            for row in rows:  # per array, the first failure, else the closest pass
                kept = out.get(row.name)
                if kept is None or (kept.passed and (not row.passed or _share(row) > _share(kept))):
                    out[row.name] = row
    for name in names:
        if name not in out or not out[name].passed:
            out[name] = _entry_by_entry(g, np.asarray(grads[name]), arrays, name, method)
            cost.entry_by_entry.append(name)
    return {n: out[n] for n in names}


def _share(a: FDAgreement) -> float:
    return a.max_abs / a.allowed if a.allowed > 0 else 0.0


def renamed(a: FDAgreement, name: str) -> FDAgreement:
    """The same comparison under another name (the style's, e.g. "dWx")."""
    return replace(a, name=name)


def describe_cost(stats: Mapping[str, Any]) -> str:
    """One line: how often each method was used, and the calls of the user's forward."""
    problems = int(stats.get("problems", 0))
    if not problems:
        return ""
    cs, cd = int(stats.get("complex step", 0)), int(stats.get("central differences", 0))
    calls = int(stats.get("calls", 0))
    entries = int(stats.get("entry by entry", 0))
    return (
        f"reference derivative: the complex step on {cs} of {problems} problem runs, central "
        f"differences on {cd}; {calls} calls of your forward for it ({calls / problems:.1f} "
        f"a run); {entries} arrays checked entry by entry, the rest along "
        f"{DIRECTIONS} random directions each"
    )
