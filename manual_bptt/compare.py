"""How two gradients are compared: the tolerance policy, and a report that says where.

Policy (one tensor at a time, "relative to the gradient's size"): an actual gradient a
agrees with the expected gradient e when every entry satisfies

    |a_i − e_i| ≤ atol + rtol · ‖e‖∞

A norm-wise bound rather than an entrywise one: an entry that is tiny only because
large terms cancelled carries rounding error of the size of those terms, so judging it
against its own size would fail correct code, and judging |a−e|/(|a|+|e|) would be 0/0
where both vanish. The reported relative error is ‖a − e‖∞ / ‖e‖∞ (0 when both are 0).

The constants below were measured, not chosen: see the comments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import DTypeLike, NDArray


@dataclass(frozen=True)
class Tolerance:
    """atol + rtol·‖expected‖∞ bounds every entry's absolute difference."""

    rtol: float
    atol: float

    def allowed(self, expected: NDArray[np.floating]) -> float:
        return self.atol + self.rtol * _inf_norm(expected)


# float64, over the full domain of strategies.cases (T ≤ 40, weight scale 1e-3 to 4:
# tiny, saturating tanh and sigmoid, exploding relu and identity): over 1,900 random
# cases the worst manual-vs-autograd difference needed rtol 4.2e-14 beside atol 1e-12.
# rtol 1e-10 leaves three orders of margin and still fails a gradient wrong in its
# tenth significant digit; atol 1e-12 covers entries where O(1) terms cancel.
FLOAT64 = Tolerance(rtol=1e-10, atol=1e-12)

# float32, only on the bounded domain of strategies.float32_cases (weight scale ≤ 1,
# T ≤ 20): over 1,600 random cases the worst difference needed rtol 7.5e-6 beside
# atol 1e-7 (7.3e-5 with no atol at all). The policy is stated for that domain only:
# saturating and exploding chains lose float32 digits with T and scale, and
# benchmarks/measure_tolerances.py's last row measures how many (float32 against
# float64 at weight scales 2.5–3, T ≤ 40: 1.2e-5 of max(1, ‖g‖∞) over 200 cases).
FLOAT32 = Tolerance(rtol=1e-4, atol=1e-6)

# Central differences in float64 (ε = 1e-6: truncation O(ε²), round-off ≈ 1e-10·|L|)
# against the manual gradient, full and truncated BPTT: over 300 random small cases
# (T ≤ 6, sizes ≤ 4, weight scale ≤ 2) the worst |Δ| was 1.1e-8; atol 1e-7 leaves ten
# times that, and rtol 1e-6 covers gradients larger than 1.
# benchmarks/measure_tolerances.py measures all three policies' worst cases again;
# with --cell lstm|gru it measures the gated cells (docs/testing.md: well inside all three).
FINITE_DIFFERENCE = Tolerance(rtol=1e-6, atol=1e-7)


def tolerance_for(dtype: DTypeLike) -> Tolerance:
    """FLOAT64 or FLOAT32 by dtype."""
    return FLOAT32 if np.dtype(dtype) == np.float32 else FLOAT64


def _inf_norm(a: NDArray[np.floating]) -> float:
    return float(np.max(np.abs(a))) if a.size else 0.0


def _two_norm(a: NDArray[np.floating], inf_norm: float) -> float:
    """‖a‖₂ computed on a / ‖a‖∞, so that entries near float64's limit do not overflow
    in the squares (‖a‖₂ ≤ √size · ‖a‖∞ fits unless ‖a‖∞ itself is that close).
    0 for a zero array, inf or NaN when a holds them."""
    if 0 < inf_norm < np.inf:
        return inf_norm * float(np.linalg.norm(a / inf_norm))
    return float(np.linalg.norm(a))


@dataclass(frozen=True)
class Agreement:
    """How one gradient compares with its reference.

    Attributes:
        name: which gradient ("U", "W", …).
        max_abs: ‖a − e‖∞.
        max_rel: ‖a − e‖∞ / ‖e‖∞ (0 when both are 0, inf when only e is 0).
        norm: ‖e‖₂, the reference gradient's Frobenius norm.
        worst_index: index of the entry with the largest |a − e| (() when empty).
        expected, got: the two values at that entry.
        allowed: atol + rtol·‖e‖∞ under the tolerance used.
        passed: max_abs ≤ allowed (and both finite).
    """

    name: str
    max_abs: float
    max_rel: float
    norm: float
    worst_index: tuple[int, ...]
    expected: float
    got: float
    allowed: float
    passed: bool

    def describe(self) -> str:
        """One line: which gradient, which entry, expected, got, allowed."""
        verdict = "ok" if self.passed else "MISMATCH"
        return (
            f"{self.name}{list(self.worst_index)}: expected {self.expected:.10g}, "
            f"got {self.got:.10g}, |Δ| = {self.max_abs:.3g} "
            f"(allowed {self.allowed:.3g}, relative {self.max_rel:.3g}) {verdict}"
        )


def agreement(
    name: str, got: NDArray[np.floating], expected: NDArray[np.floating], tol: Tolerance
) -> Agreement:
    """Compare one gradient with its reference under ``tol``; shapes must match."""
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        raise ValueError(f"gradient {name} has shape {got.shape}, its reference {expected.shape}")
    with np.errstate(invalid="ignore"):  # inf − inf is NaN, reported below as a mismatch
        diff = np.abs(got - expected)
    if diff.size == 0:
        return Agreement(name, 0.0, 0.0, 0.0, (), 0.0, 0.0, tol.atol, True)
    finite = bool(np.all(np.isfinite(got)) and np.all(np.isfinite(expected)))
    diff = np.where(np.isnan(diff), np.inf, diff)
    idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape))
    max_abs = float(diff[idx])
    ref = _inf_norm(expected)
    if ref > 0:
        max_rel = max_abs / ref
    else:
        max_rel = 0.0 if max_abs == 0 else float("inf")
    allowed = tol.allowed(expected)
    return Agreement(
        name=name,
        max_abs=max_abs,
        max_rel=max_rel,
        norm=_two_norm(expected, ref),
        worst_index=idx,
        expected=float(expected[idx]),
        got=float(got[idx]),
        allowed=allowed,
        passed=finite and max_abs <= allowed,
    )


def compare_grads(
    got: Mapping[str, NDArray[np.floating]],
    expected: Mapping[str, NDArray[np.floating]],
    tol: Tolerance,
) -> list[Agreement]:
    """One Agreement per gradient, in expected's order; the two must have the same keys."""
    if set(got) != set(expected):
        raise ValueError(
            f"gradients differ in names: got {sorted(got)}, expected {sorted(expected)}"
        )
    return [agreement(name, got[name], expected[name], tol) for name in expected]


def assert_grads_close(
    got: Mapping[str, NDArray[np.floating]],
    expected: Mapping[str, NDArray[np.floating]],
    tol: Tolerance,
    context: str = "",
) -> None:
    """AssertionError listing every gradient that disagrees (which entry, expected, got)."""
    bad = [a for a in compare_grads(got, expected, tol) if not a.passed]
    if bad:
        head = f"{context}: " if context else ""
        lines = "\n  ".join(a.describe() for a in bad)
        raise AssertionError(
            f"{head}{len(bad)} gradient(s) disagree "
            f"(policy |Δ| ≤ {tol.atol:g} + {tol.rtol:g}·‖expected‖∞):\n  {lines}"
        )
