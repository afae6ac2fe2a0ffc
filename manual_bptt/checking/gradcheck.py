"""Numerical derivatives, to check analytic gradients without trusting any autograd.

Three ways to differentiate a scalar function f of named float64 arrays θ:

    forward difference   (f(θ + εv) − f(θ)) / ε            error O(ε) + O(u·|f|/ε)
    central difference   (f(θ + εv) − f(θ − εv)) / 2ε      error O(ε²) + O(u·|f|/ε)
    complex step         Im f(θ + i·h·v) / h               error O(h²), no cancellation

(u ≈ 1.1e-16 is float64's unit round-off.) With v = e_i, the i-th unit vector, each
gives one entry of ∇f ("full" mode, two evaluations per entry); with a random v it
gives the directional derivative ⟨∇f, v⟩ in two evaluations ("fast" mode, as
torch.autograd.gradcheck's fast_mode does). The complex step (Squire & Trapp, SIAM
Review 1998) needs f to be analytic and written so that it runs on complex arrays:
manual_bptt.loss does, for tanh, sigmoid and identity, not for relu.

:func:`bptt_objective` turns one BPTT problem into such an f, for full BPTT and for
both truncations (see its docstring for how a truncated gradient becomes the exact
gradient of a function).

What central differences can resolve. Each estimate D(ε) = (f₊ − f₋)/2ε, with
f± = f(θ ± εv), carries an error of at most about

    B = c·u·(|f₊| + |f₋|)/2ε + |D(ε) − D(2ε)|              (c = ROUNDING)

The first term is round-off: each f± is computed with an error of a few u·|f| (more
when the forward pass is long), divided by 2ε. The second is truncation: D(ε) =
∇f·v + Cε² + O(ε⁴), so D(ε) − D(2ε) = −3Cε² is three times the truncation error of
D(ε) (Richardson's estimate), with that factor of 3 kept as margin; it also catches
round-off that c misses. Where an estimate differs from the analytic value by more than
the tolerance allows but by no more than B (so B itself is above the tolerance: a loss
of 1e35 at ε = 1e-6 has B ≈ 7e26), finite differences cannot resolve that entry at
this scale: it is counted as unresolved (:class:`FDAgreement`), neither agreement nor
disagreement. A difference beyond both the tolerance and B is a disagreement. D(2ε)
costs two more calls of f, made only for the entries that need it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from manual_bptt.compare import FINITE_DIFFERENCE, Agreement, Tolerance, agreement
from manual_bptt.crossentropy import log_softmax, nll
from manual_bptt.inputs import Options, prepare
from manual_bptt.lstm import LSTMCache
from manual_bptt.naive import first_reachable_step
from manual_bptt.network import run_cell
from manual_bptt.params import CellParams
from manual_bptt.progress import Progress

if TYPE_CHECKING:
    from typing_extensions import Unpack

Arrays = Mapping[str, NDArray[Any]]
Objective = Callable[[Arrays], float | complex]

EPS = 1e-6  # central differences: truncation O(ε²) ≈ 1e-12 against round-off u·|f|/ε ≈ 1e-10·|f|
COMPLEX_STEP = 1e-20  # any h far below √u works: there is no subtraction to lose digits in
UNIT_ROUNDOFF = float(np.finfo(np.float64).eps) / 2  # u ≈ 1.1e-16
# c in the round-off term of the error bound B (module docstring). Measured on correct
# gradients, every entry of 122,000 (vanilla tanh, sigmoid, relu and identity, LSTM, GRU;
# T = 8, H = 5 and T = 16, H = 8; weight scale 1 to 1e6; full and truncated; seeds 0, 1):
# none missed both the tolerance and B. The worst |D(ε) − g| / max(allowed, B) was 0.8
# with c = 32 (relu at scale 1e6, whose long sums of huge terms round to about 20·u·|f|)
# and 0.57 with c = 64. At an ordinary loss (|f| ≈ 50) the round-off term is then
# 64·u·100/2e-6 ≈ 4e-7: only a gradient off by less than that could go unjudged there.
ROUNDING = 64.0


def central_differences(
    f: Objective, arrays: Arrays, *, eps: float = EPS, progress: Progress | None = None
) -> dict[str, NDArray[np.float64]]:
    """∂f/∂θ_i ≈ (f(θ + ε e_i) − f(θ − ε e_i)) / 2ε for every entry of every array.

    Args:
        f: scalar function of a dict of arrays shaped like ``arrays``.
        arrays: the point θ, name → float64 array of any shape (not changed). Other
            dtypes are refused: θ ± ε would be rounded (float32: 1e-6 is below its
            resolution at 1) or truncated (integers) before f sees it.
        eps: the step ε, finite and > 0.
        progress: a bar to advance by one per entry, if any.
    Returns:
        name → array of the same shape: the numerical gradient. Costs 2·Σ sizes calls.
    """
    return _central_entries(f, arrays, eps, progress)[0]


def _central_entries(
    f: Objective, arrays: Arrays, eps: float, progress: Progress | None
) -> tuple[dict[str, NDArray[np.float64]], dict[str, NDArray[np.float64]]]:
    """(D(ε) for every entry, its round-off bound c·u·(|f₊| + |f₋|)/2ε), shaped like arrays."""
    check_step("eps", eps)
    check_float64_arrays(arrays)
    grads, rounding = {}, {}
    for name, value in arrays.items():
        g = np.zeros(value.shape, dtype=np.float64)
        r = np.zeros(value.shape, dtype=np.float64)
        for index in np.ndindex(value.shape):
            plus = _at(f, arrays, name, index, +eps)
            minus = _at(f, arrays, name, index, -eps)
            g[index] = (plus - minus) / (2 * eps)
            r[index] = rounding_bound(plus, minus, eps)
            if progress is not None:
                progress.update()
        grads[name], rounding[name] = g, r
    return grads, rounding


def rounding_bound(plus: float, minus: float, eps: float) -> float:
    """c·u·(|f₊| + |f₋|)/2ε: the round-off part of a central difference's error bound."""
    with np.errstate(over="ignore", invalid="ignore"):
        return float(ROUNDING * UNIT_ROUNDOFF * (abs(plus) + abs(minus)) / (2 * eps))


def check_step(name: str, eps: object) -> None:
    """ValueError unless the step size is a finite real number > 0."""
    if isinstance(eps, bool) or not isinstance(eps, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a finite number > 0; got {type(eps).__name__} {eps!r}")
    if not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"{name} must be a finite number > 0; got {eps!r}")


def check_float64_arrays(arrays: object, what: str = "arrays") -> None:
    """TypeError unless ``arrays`` maps names to float64 ndarrays (complex128 for the
    complex step is made inside, from float64 points)."""
    if not isinstance(arrays, Mapping):
        raise TypeError(
            f"{what} must be a mapping of name → float64 array; got {type(arrays).__name__}"
        )
    for name, value in arrays.items():
        if not isinstance(value, np.ndarray) or value.dtype != np.float64:
            got = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
            raise TypeError(
                f"{what}[{name!r}] must be a float64 numpy array; got {got}: finite "
                f"differences of other dtypes are rounded or truncated "
                f"(convert with .astype(np.float64))"
            )


def check_same_names(grads: Arrays, arrays: Arrays) -> None:
    """ValueError naming the arrays that ``grads`` lacks."""
    missing = [name for name in arrays if name not in grads]
    if missing:
        raise ValueError(
            f"grads has no gradient for {', '.join(map(repr, missing))}; arrays has "
            f"{sorted(arrays)}, grads {sorted(grads)}"
        )


def _at(f: Objective, arrays: Arrays, name: str, index: tuple[int, ...], step: float) -> float:
    moved = arrays[name].copy()  # a copy: the caller's array is never touched
    moved[index] += step
    return float(np.real(f({**arrays, name: moved})))


def random_directions(
    arrays: Arrays, seed: int | np.random.Generator = 0
) -> dict[str, NDArray[np.float64]]:
    """One random unit vector (Frobenius norm 1) per array, shaped like it."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, value in arrays.items():
        v = rng.normal(size=value.shape)
        out[name] = v / max(float(np.linalg.norm(v)), 1e-300)
    return out


def along(f: Objective, arrays: Arrays, directions: Arrays, step: complex) -> float | complex:
    """f(θ + step·v), where v is ``directions`` for the arrays it names (0 elsewhere)."""
    moved = {k: (a + step * directions[k] if k in directions else a) for k, a in arrays.items()}
    return f(moved)


def directional_central(f: Objective, arrays: Arrays, v: Arrays, *, eps: float = EPS) -> float:
    """(f(θ + εv) − f(θ − εv)) / 2ε ≈ ⟨∇f, v⟩."""
    check_step("eps", eps)
    return (
        float(np.real(along(f, arrays, v, eps))) - float(np.real(along(f, arrays, v, -eps)))
    ) / (2 * eps)


def directional_forward(f: Objective, arrays: Arrays, v: Arrays, *, eps: float) -> float:
    """(f(θ + εv) − f(θ)) / ε ≈ ⟨∇f, v⟩."""
    check_step("eps", eps)
    return (float(np.real(along(f, arrays, v, eps))) - float(np.real(f(arrays)))) / eps


def complex_step(f: Objective, arrays: Arrays, v: Arrays, *, h: float = COMPLEX_STEP) -> float:
    """Im f(θ + i·h·v) / h = ⟨∇f, v⟩ + O(h²), exact to round-off for analytic f."""
    check_step("h", h)
    return float(np.imag(along(f, arrays, v, 1j * h))) / h


CANNOT_RESOLVE = "finite differences cannot resolve this gradient at this scale"


@dataclass(frozen=True)
class FDAgreement(Agreement):
    """An Agreement with central differences that also says what they could not resolve.

    Attributes (beyond Agreement's):
        unresolved: how many entries (directions, in fast mode) differ from their estimate
            by more than ``allowed`` but by no more than the estimate's error bound B
            (module docstring), and estimates that are not finite (f overflowed at θ ± εv).
            They are not judged: ``passed`` is about the other entries only.
        bound: the largest B among them (inf for an estimate that is not finite), 0 when
            there are none. B is its round-off part alone where that already covers |Δ|.
    When only unresolved entries differ, worst_index and the values are of the worst of
    them; when some judged entry disagrees, of the worst judged one.
    """

    unresolved: int = 0
    bound: float = 0.0

    def describe(self) -> str:
        """Agreement's line, then how many entries were unresolved and why."""
        line = super().describe()
        if self.unresolved:
            entries = "entry" if self.unresolved == 1 else "entries"
            line += (
                f"; {self.unresolved} {entries} within the estimates' error bound (up to "
                f"{self.bound:.3g}): {CANNOT_RESOLVE}"
            )
        return line


def _error_bound(
    numeric: float, rounding: float, diff: float, at_2eps: Callable[[], float]
) -> float:
    """B = rounding + |D(ε) − D(2ε)| for one estimate D(ε) = ``numeric``; inf when it is
    not finite; ``rounding`` alone when that already covers ``diff`` (saving the two
    calls of f that D(2ε) = ``at_2eps()`` costs)."""
    if not (np.isfinite(numeric) and np.isfinite(rounding)):
        return float("inf")
    if diff <= rounding:
        return rounding
    return rounding + abs(numeric - at_2eps())


def _judge(
    name: str,
    got: Any,
    numeric: NDArray[np.float64],
    rounding: NDArray[np.float64],
    tol: Tolerance,
    at_2eps: Callable[[tuple[int, ...]], float],
) -> FDAgreement:
    """compare.agreement of ``got`` with the estimates ``numeric`` (same shape), with the
    entries that finite differences cannot resolve left unjudged (FDAgreement)."""
    got = np.asarray(got, dtype=np.float64)
    finite = np.isfinite(numeric)
    expected = np.where(finite, numeric, got)  # an estimate that overflowed says nothing
    base = agreement(name, got, expected, tol)  # refuses mismatched shapes
    with np.errstate(invalid="ignore"):
        diff = np.abs(got - expected)
    diff = np.where(np.isnan(diff), np.inf, diff)  # inf − inf: reported as a mismatch
    unresolved = ~finite & np.isfinite(got)
    bound = np.where(finite, 0.0, np.inf)
    for row in np.argwhere((diff > base.allowed) & np.isfinite(got)):
        index = tuple(int(i) for i in row)
        bound[index] = _error_bound(
            float(numeric[index]),
            float(rounding[index]),
            float(diff[index]),
            partial(at_2eps, index),
        )
        unresolved[index] = diff[index] <= bound[index]
    count = int(unresolved.sum())
    if count == 0:
        return FDAgreement(**vars(base))
    judged = np.where(unresolved, -1.0, diff)
    wrong = judged > base.allowed
    shown = judged if wrong.any() else np.where(finite, diff, -1.0)
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(shown)), shown.shape))
    ref = float(np.max(np.abs(expected)))
    worst = float(diff[index])
    return FDAgreement(
        **{
            **vars(base),
            "worst_index": index,
            "max_abs": worst,
            "max_rel": worst / ref if ref > 0 else (0.0 if worst == 0 else float("inf")),
            "expected": float(numeric[index]),
            "got": float(got[index]),
            "passed": bool(np.all(np.isfinite(got))) and not wrong.any(),
        },
        unresolved=count,
        bound=float(bound[unresolved].max()),
    )


def full_check(
    f: Objective,
    grads: Arrays,
    arrays: Arrays,
    *,
    tol: Tolerance = FINITE_DIFFERENCE,
    eps: float = EPS,
    progress: Progress | None = None,
) -> list[FDAgreement]:
    """Full mode: every entry of every array by central differences, judged under ``tol``
    where finite differences can resolve it (module docstring: the error bound B).

    Args:
        f, arrays, eps, progress: as for :func:`central_differences`.
        grads: name → the analytic gradient, shaped like ``arrays[name]``.
    Returns:
        one FDAgreement per array, in ``arrays``' order. Costs 2·Σ sizes calls of f,
        and 2 more for each entry whose difference round-off alone does not explain.
    """
    check_same_names(grads, arrays)
    numeric, rounding = _central_entries(f, arrays, eps, progress)

    def at_2eps(name: str) -> Callable[[tuple[int, ...]], float]:
        def d(index: tuple[int, ...]) -> float:
            plus = _at(f, arrays, name, index, 2 * eps)
            return (plus - _at(f, arrays, name, index, -2 * eps)) / (4 * eps)

        return d

    return [
        _judge(name, grads[name], numeric[name], rounding[name], tol, at_2eps(name))
        for name in arrays
    ]


def directional_check(
    f: Objective,
    grads: Arrays,
    arrays: Arrays,
    *,
    seed: int = 0,
    tol: Tolerance = FINITE_DIFFERENCE,
    method: str = "central",
) -> list[FDAgreement]:
    """Fast mode: for each array, compare ⟨g, v⟩ with the numerical ⟨∇f, v⟩ along a
    random unit direction v in that array alone (two calls of f per array; one for
    method="complex"). Allowed: atol + rtol·‖g‖₂ (|⟨g, v⟩| ≤ ‖g‖₂ for unit v). A central
    difference that misses by more than allowed but within its error bound B (module
    docstring; two more calls of f when round-off alone does not cover it) is unresolved,
    not failed; the complex step subtracts nothing, so it has no such case.

    Args:
        f, arrays: as for :func:`central_differences`.
        grads: name → the analytic gradient, shaped like ``arrays[name]``; every name of
            ``arrays`` must be there.
        seed: draws the directions (:func:`random_directions`); the same seed, the same v.
        method: "central" or "complex"; anything else is refused (a misspelt "complex"
            must not quietly run central differences).
    Returns:
        one FDAgreement per array, in ``arrays``' order: expected = the numerical ⟨∇f, v⟩,
        got = ⟨g, v⟩, norm = ‖g‖₂, worst_index = (), unresolved 0 or 1.
    """
    if method not in ("central", "complex"):
        raise ValueError(f"method must be 'central' or 'complex'; got {method!r}")
    check_float64_arrays(arrays)
    check_same_names(grads, arrays)
    directions = random_directions(arrays, seed)
    rows = []
    for name in arrays:
        v = {name: directions[name]}
        if method == "complex":
            numeric, rounding = complex_step(f, arrays, v), 0.0
        else:
            plus, minus = (float(np.real(along(f, arrays, v, step))) for step in (EPS, -EPS))
            numeric, rounding = (plus - minus) / (2 * EPS), rounding_bound(plus, minus, EPS)
        analytic = float(np.sum(np.asarray(grads[name], dtype=np.float64) * directions[name]))
        diff = abs(analytic - numeric)
        norm = float(np.linalg.norm(np.asarray(grads[name], dtype=np.float64)))
        allowed = tol.atol + tol.rtol * norm
        row = FDAgreement(
            name=name,
            max_abs=diff,
            max_rel=diff / abs(numeric) if numeric else (0.0 if diff == 0 else float("inf")),
            norm=norm,
            worst_index=(),
            expected=numeric,
            got=analytic,
            allowed=allowed,
            passed=bool(np.isfinite(analytic)) and diff <= allowed,
        )
        if not row.passed and method == "central" and np.isfinite(analytic):
            bound = _error_bound(
                numeric, rounding, diff, partial(directional_central, f, arrays, v, eps=2 * EPS)
            )
            if diff <= bound or not np.isfinite(numeric):
                row = replace(row, passed=True, unresolved=1, bound=bound)
        rows.append(row)
    return rows


def gradcheck(
    f: Objective,
    grads: Arrays,
    arrays: Arrays,
    *,
    mode: str = "full",
    tol: Tolerance = FINITE_DIFFERENCE,
    seed: int = 0,
) -> list[FDAgreement]:
    """Check analytic ``grads`` of f at ``arrays`` by central differences.

    mode="full": every entry (2 calls of f per entry), report per array with the
    worst entry (:func:`full_check`); mode="fast": one random direction per array
    (2 calls per array, :func:`directional_check`). Either leaves unjudged what finite
    differences cannot resolve (module docstring). Returns one FDAgreement per array,
    in ``arrays``' order.
    """
    check_same_names(grads, arrays)
    if mode == "full":
        return full_check(f, grads, arrays, tol=tol)
    if mode == "fast":
        return directional_check(f, grads, arrays, seed=seed, tol=tol)
    raise ValueError(f"mode must be 'full' or 'fast'; got {mode!r}")


@dataclass(frozen=True)
class BPTTObjective:
    """A BPTT problem as a scalar function of its differentiable arrays.

    Attributes:
        f: arrays → loss, where arrays has the parameters (params.NAMES), "h0" ((N, H)),
            the LSTM's "c0" ((N, H)) and, for float inputs, "x" ((T, N, D)); runs on
            float64 or complex128 arrays.
        arrays: the point at which bptt's gradient is the gradient of f (float64 copies).
    """

    f: Objective
    arrays: dict[str, NDArray[Any]]

    def batched_grads(self, grads: Arrays) -> dict[str, NDArray[Any]]:
        """bptt's grads reshaped like ``arrays`` (unbatched h0 and x get their N = 1 axis)."""
        return {
            k: np.reshape(np.asarray(grads[k], np.float64), v.shape) for k, v in self.arrays.items()
        }


def bptt_objective(
    params: CellParams,
    x: Any,
    y: Any,
    **options: Unpack[Options],
) -> BPTTObjective:
    """The function whose exact gradient bptt computes, for the same arguments, any cell.

    Full BPTT: f is the loss L (5) itself.

    Truncated BPTT is not the gradient of L, but it is the exact gradient of another
    function: hold fixed, at their values under the current θ, the states where the
    truncation cuts the gradient (the whole state: h, and s for the LSTM). With S_s the
    state entering step s under θ (S_0 = h0, and c0)
    and r(t) the first step the loss at step t may reach (max(0, t−k) for truncate=k;
    the start of t's chunk for chunk=k; its block's first reachable step for
    tbptt=(k1, k2), truncation.py),

        f(θ') = Σ_t E_t( steps r(t) … t run with θ' from S_{r(t)} )

    where the entering state is h0' (and c0') itself when r(t) = 0 (so they keep their gradient)
    and the constant S_{r(t)} otherwise; when r(t) > t (TBPTT with k2 < k1: the loss
    reaches no step) E_t reads the constant h_t, so only V and c move it. f(θ) = L(θ),
    and ∇f(θ) is exactly the truncated gradient, so finite differences of f check it.
    Randomized truncation's gradient is not the gradient of such a function: refused.

    The runs are shared (:func:`_shared_runs`): the logits at step t of a run from
    S_r depend on steps r … t only, so the losses with the same r(t) read theirs from
    one run, and runs of the same length go side by side as one batch of sequences.
    Truncate=k then costs two runs per call (one from h0, one for every window of
    k + 1 steps), chunk=k one or two, instead of one run per loss.
    """
    batch = prepare(params, x, y, **options)
    if batch.links is not None:
        raise ValueError(
            "randomized truncation weighs paths by ξ: its gradient is not that of a "
            "truncated loss, so finite differences cannot check it (compare with the "
            "twin, torch_reference.bptt, instead)"
        )
    arrays: dict[str, NDArray[Any]] = {
        k: np.array(v, dtype=np.float64) for k, v in params.as_dict().items()
    }
    arrays["h0"] = np.array(batch.h0, dtype=np.float64)
    if batch.c0 is not None:
        arrays["c0"] = np.array(batch.c0, dtype=np.float64)
    if not batch.tokens:
        arrays["x"] = np.array(batch.x, dtype=np.float64)
    float_params = params.astype(np.float64)
    cache = run_cell(
        float_params,
        arrays.get("x", batch.x),
        arrays["h0"],
        arrays.get("c0"),
        batch.tokens,
        batch.activation,
    )
    frozen = cache.h_prev  # S_s, (T, N, H)
    frozen_s = cache.s_prev if isinstance(cache, LSTMCache) else None  # the LSTM's s part
    mask = batch.mask.astype(np.float64)
    scale = batch.loss_scale
    reach = [first_reachable_step(t, batch) for t in range(batch.T)]
    truncated = batch.truncated
    frozen_h = cache.h  # h_t, (T, N, H): what a loss that reaches no step reads
    unreached = [t for t, r in enumerate(reach) if r > t]  # TBPTT with k2 < k1
    runs = _shared_runs(reach)

    def f(values: Arrays) -> float | complex:
        # One dtype for all: complex128 as soon as any array carries a complex step.
        dtype = np.result_type(*(np.asarray(v).dtype for v in values.values()))
        if dtype.kind == "c" and batch.activation.name == "relu":
            raise ValueError(
                "the complex step needs an analytic φ (tanh, sigmoid or identity); relu is "
                "not differentiable as a complex function: use central differences"
            )
        p = params.with_arrays(**{k: np.asarray(values[k], dtype) for k in params.NAMES})
        xs = np.asarray(values["x"], dtype) if "x" in values else batch.x
        h_start, c_start = values["h0"], values.get("c0")

        def run(xs: NDArray[Any], h: Any, c: Any) -> NDArray[np.floating]:
            c = None if c is None else np.asarray(c, dtype)
            cache = run_cell(p, xs, np.asarray(h, dtype), c, batch.tokens, batch.activation)
            logits: NDArray[np.floating] = cache.o  # (T, N, K), complex for the complex step
            return logits

        if not truncated:
            return _total(nll(log_softmax(run(xs, h_start, c_start)), batch.y, mask, scale))
        total: Any = 0.0
        if unreached:  # o_t = V h_t + c (3) on the constant h_t
            o = np.asarray(frozen_h[unreached], dtype) @ p.V.T + p.c
            total = total + nll(log_softmax(o), batch.y[unreached], mask[unreached], scale)
        for length, starts, steps, columns, losses in runs:
            # the runs from each start r, side by side: (length, N·len(starts), ·)
            x_run = np.concatenate([xs[r : r + length] for r in starts], axis=1)
            h_run = np.concatenate([h_start if r == 0 else frozen[r] for r in starts])
            c_run = None
            if c_start is not None:
                c_run = np.concatenate(
                    [c_start if r == 0 or frozen_s is None else frozen_s[r] for r in starts]
                )
            o = run(x_run, h_run, c_run)
            # o at step t − r(t) of the run from r(t), for each loss t: (losses, N, K)
            o = o.reshape(length, len(starts), -1, o.shape[-1])[steps, columns]
            total = total + nll(log_softmax(o), batch.y[losses], mask[losses], scale)
        return _total(total)

    return BPTTObjective(f=f, arrays=arrays)


SharedRun = tuple[int, list[int], NDArray[np.intp], NDArray[np.intp], NDArray[np.intp]]


def _shared_runs(reach: list[int]) -> list[SharedRun]:
    """The runs a truncated objective makes, from r(t) = ``reach[t]`` for each loss t.

    The losses with the same r(t) share one run from S_r, as long as the last of them
    needs; the runs of the same length go together. One (length, starts, steps,
    columns, losses) per length: the run from starts[j] is the j-th block of N
    sequences, and the loss at step losses[i] reads step steps[i] = losses[i] − r of
    block columns[i]. Every loss appears once, in order of t within each run.
    """
    last: dict[int, int] = {}
    for t, r in enumerate(reach):
        if r <= t:  # a loss that reaches no step (r > t) needs no run
            last[r] = max(t, last.get(r, t))
    by_length: dict[int, list[int]] = {}
    for r, t in last.items():
        by_length.setdefault(t - r + 1, []).append(r)
    runs = []
    for length, starts in by_length.items():
        block = {r: j for j, r in enumerate(starts)}
        losses = [t for t, r in enumerate(reach) if r in block and r <= t]
        runs.append(
            (
                length,
                starts,
                np.array([t - reach[t] for t in losses], dtype=np.intp),
                np.array([block[reach[t]] for t in losses], dtype=np.intp),
                np.array(losses, dtype=np.intp),
            )
        )
    return runs


def _total(value: Any) -> float | complex:
    return complex(value) if np.iscomplexobj(value) else float(value)


@dataclass(frozen=True)
class StepSizeErrors:
    """|numerical − analytic| of ⟨∇f, v⟩ against the step size, for the ε-plot.

    Attributes:
        eps: step sizes ε (or h for the complex step), (S,).
        forward, central, complex: absolute errors of each method at each step, (S,);
            complex is None when f cannot run on complex numbers (relu).
        reference: the analytic ⟨g, v⟩ they are measured against.
    """

    eps: NDArray[np.float64]
    forward: NDArray[np.float64]
    central: NDArray[np.float64]
    complex: NDArray[np.float64] | None
    reference: float


def step_size_errors(
    objective: BPTTObjective,
    grads: Arrays,
    *,
    eps: NDArray[np.float64] | None = None,
    seed: int = 0,
    with_complex: bool = True,
) -> StepSizeErrors:
    """Errors of forward, central and complex-step derivatives along one random unit
    direction v in all arrays at once, for ε = 1e-16 … 1e-1 by default (S = 61)."""
    steps = np.logspace(-16, -1, 61) if eps is None else np.asarray(eps, dtype=np.float64)
    for e in steps.ravel():
        check_step("eps", float(e))
    v = random_directions(objective.arrays, seed)
    g = objective.batched_grads(grads)
    reference = float(sum(np.sum(g[k] * v[k]) for k in v))
    f = objective.f

    def errors(method: Callable[[float], float]) -> NDArray[np.float64]:
        return np.array([abs(method(float(e)) - reference) for e in steps])

    return StepSizeErrors(
        eps=steps,
        forward=errors(lambda e: directional_forward(f, objective.arrays, v, eps=e)),
        central=errors(lambda e: directional_central(f, objective.arrays, v, eps=e)),
        complex=errors(lambda e: complex_step(f, objective.arrays, v, h=e))
        if with_complex
        else None,
        reference=reference,
    )
