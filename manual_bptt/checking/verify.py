"""Property-test somebody else's BPTT against the autograd twin, and name everything wrong.

The interfaces understood are the styles in manual_bptt/checking/styles/ (project,
tutorial, cs231n, min-char-rnn, …). For one problem, :func:`evaluate` runs the code
under test through its style and compares every gradient (and every other returned
value, such as a loss) with autograd's under the tolerance policy of compare.py.

:func:`verify` searches in two phases, both with Hypothesis and the same seed:

1. draw ``max_examples`` problems from the style's space and evaluate each, noting for
   every gradient on how many problems it agreed, and every other failure (an
   exception, a time-out, a changed input, a wrong shape, a wrong loss);
2. for each gradient that was wrong somewhere, and each other failure, search again
   with a property that fails only when *that* one fails, so that Hypothesis shrinks it
   to its own minimal counterexample. A bug that breaks dU and dW is thus reported as
   two findings, each at the smallest problem that shows it.

Each distinct problem is evaluated once in a run: the shrinking of one wrong gradient
tries many of the problems another's tried, so an outcome is kept under its problem's
pickled bytes and its arrays' layouts, and read again. Nondeterminism is judged within
one evaluation, which runs the problem twice, and each finding's minimal problem is
evaluated once more at the end: a failure that does not show again there is shown where
the search first saw it, marked nondeterministic. Phase 2 starts where phase 1 left off: each shrinking is given
(through a Hypothesis example database of its own) the first problem on which its
failure was seen and the minimal problems found for the failures shrunk before it, and
shrinks from the smallest of them that fails, with no search before it.

Time-outs are not shrunk (every attempt would cost the whole limit), and the first one
ends the search. Output printed by the code under test is captured (guard.py).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import pickle
import sys
import time
import types
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
from hypothesis import strategies as st
from hypothesis.database import ExampleDatabase, InMemoryExampleDatabase, choices_to_bytes
from hypothesis.errors import Flaky

from manual_bptt.cases import Case, make_case
from manual_bptt.checking import guard
from manual_bptt.checking.guard import DEFAULT_TIMEOUT, CodeFailed
from manual_bptt.checking.source import load
from manual_bptt.checking.strategies import Space
from manual_bptt.checking.styles import STYLES, Gradient, Style, UsageError, make_style
from manual_bptt.checking.styles.base import MATTERS, Observed
from manual_bptt.checking.worker import Remote, Worker, checked_timeout
from manual_bptt.compare import Agreement, Tolerance, agreement, tolerance_for
from manual_bptt.progress import Progress

__all__ = [
    "STYLES",
    "Finding",
    "Outcome",
    "Report",
    "UsageError",
    "evaluate",
    "load",
    "reproduction",
    "verify",
]


@dataclass(frozen=True)
class Outcome:
    """Everything compared on one problem.

    Attributes:
        case: the problem.
        agreements: gradient key → its comparison with autograd (right or wrong).
        problems: failure key → (a sentence, the comparison if it is a wrong value).
        interface: sentences saying the code lacks the style's interface.
        changes: key → (sentence, role) for each argument changed in place (a
            warning; a failure too, among ``problems``, under ``strict_inputs``).
    """

    case: Case
    agreements: dict[str, Agreement]
    problems: dict[str, tuple[str, Agreement | None]]
    interface: list[str] = field(default_factory=list)
    changes: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def failing(self) -> set[str]:
        """The keys of every wrong gradient and every other failure."""
        return {k for k, a in self.agreements.items() if not a.passed} | set(self.problems)

    def failing_in_order(self) -> list[str]:
        """:attr:`failing` in the order the outcome holds them, gradients first: the same
        in every process, where a set of strings is not (hashing is randomised)."""
        wrong = [k for k, a in self.agreements.items() if not a.passed]
        return list(dict.fromkeys([*wrong, *self.problems]))

    @property
    def passed(self) -> bool:
        return not self.failing

    def describe(self) -> str:
        """The problem's sizes, then one line per wrong gradient or other failure."""
        lines = [f"sizes and options: {self.case.describe()}"]
        for a in self.agreements.values():
            lines.append(f"{'wrong gradient' if not a.passed else 'agrees'}: {a.describe()}")
        for sentence, worst in self.problems.values():
            lines.append(sentence + (f": {worst.describe()}" if worst is not None else ""))
        for sentence, role in self.changes.values():
            lines.append(f"warning: {sentence}; {MATTERS[role]}")
        if self.passed:
            lines.append("no failure: every gradient agrees with autograd")
        return "\n".join(lines)


def strict_array(value: Any, expected: np.ndarray) -> tuple[np.ndarray | None, str]:
    """``value`` as a real float64 array of ``expected``'s exact shape, or (None, why not).

    Accepted: a NumPy array or scalar, a list or tuple of numbers, a torch tensor
    (converted in the worker), of a real or complex dtype whose imaginary part is zero
    (a scalar expected takes any one-entry array). Refused: anything else, with the
    reason: an object that is not an array, bools, an imaginary part, another shape.
    """
    from manual_bptt.checking.styles.base import type_name
    from manual_bptt.checking.worker import Remote

    if isinstance(value, Remote) or not isinstance(
        value, (np.ndarray, np.generic, list, tuple, int, float, complex)
    ):
        return None, f"not an array (a {type_name(value)})"
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as err:
        return None, f"not an array ({err})"
    if array.dtype.kind not in "iufc":
        return None, f"an array of {array.dtype} (numbers are expected)"
    if array.dtype.kind == "c":
        imaginary = float(np.max(np.abs(array.imag), initial=0.0))
        if imaginary != 0.0 or not np.isfinite(imaginary):
            return (
                None,
                f"complex, with an imaginary part up to {imaginary:.3g} (a gradient is real)",
            )
        array = array.real
    if array.shape != expected.shape and not (expected.shape == () and array.size == 1):
        return None, f"of shape {array.shape}"
    return array.astype(np.float64).reshape(expected.shape), ""


def evaluate(
    target: Any,
    style: str | Style,
    case: Case,
    *,
    timeout: float | None = DEFAULT_TIMEOUT,
    strict_inputs: bool = False,
    **style_options: Any,
) -> Outcome:
    """Run ``target`` on one problem in ``style`` and compare everything with autograd.

    The problem is run three times: as drawn; again, the same (different results are
    "nondeterministic"; this run is only compared with the first, so a style may skip
    a costly reference there); and with new weights and the same inputs (a result kept from
    the first call, a stale cache, shows as wrong there). Each run seeds the global
    random generators with its own seed, drawn from the problem's.

    Args:
        target: the code under test: a string as ``bptt verify`` takes it (run in a
            worker process of its own), a Remote from a :class:`Worker`, or an object
            (run in this process).
        style: a style's name ("project", "tutorial", "cs231n", "min-char-rnn", …) or
            a Style.
        case: the problem (e.g. ``make_case(...)`` from a reproduction line).
        timeout: seconds allowed per call of the code under test (None: no limit).
        strict_inputs: an argument changed in place is a failure (default: a warning).
        style_options: the style's own options (min-char-rnn: clip_value).
    Returns:
        Outcome with one Agreement per gradient and every other failure.
    Raises:
        UsageError: the case is not one the style can take, or the target cannot be
            loaded.
    """
    checked_timeout(timeout)
    adapter = style if isinstance(style, Style) else make_style(style, **style_options)
    reason = adapter.refuses(case)
    if reason:
        raise UsageError(f"--style {adapter.name} cannot take this case: {reason}")
    if isinstance(target, str):
        with Worker(target, timeout) as worker:
            return evaluate(
                worker.start(), adapter, case, timeout=timeout, strict_inputs=strict_inputs
            )
    tol = tolerance_for(case.dtype if hasattr(case, "dtype") else case.params.dtype)
    base = int(case.recipe.get("seed", 0)) * 7919
    adapter.forget_twin()
    first = _observe(adapter, target, case, timeout, base + 100)
    agreements, problems_ = _compare(adapter, first, tol)
    again = _observe(adapter, target, case, timeout, base + 200, reference=False)
    sentence = _nondeterminism(adapter, first, again, tol)
    if sentence:
        problems_["nondeterministic"] = (sentence, None)
    fresh_case = with_new_weights(case)
    fresh_agreements, fresh_problems = _compare(
        adapter, _observe(adapter, target, fresh_case, timeout, base + 300), tol
    )
    # the second problem's failures count as the gradient's own (a stale cache shows here)
    for key, a in fresh_agreements.items():
        if not a.passed and (key not in agreements or agreements[key].passed):
            agreements[key] = replace(a, name=f"{a.name} with new weights, the same inputs")
    for key, (sentence_, worst) in fresh_problems.items():
        problems_.setdefault(key, (f"with new weights and the same inputs, {sentence_}", worst))
    changes = dict(first.changes)
    if strict_inputs:
        for key, (sentence_, _) in changes.items():
            problems_[key] = (sentence_ + " (--strict-inputs)", None)
    return Outcome(case, agreements, problems_, list(first.interface), changes)


def with_new_weights(case: Case) -> Case:
    """``case`` with other weights of the same shapes and the same inputs (a problem of
    another kind, such as the generic forms' shapes.Drawn, says itself which)."""
    if hasattr(case, "with_new_weights"):
        return case.with_new_weights()  # type: ignore[no-any-return]
    other = make_case(**{**case.recipe, "seed": (int(case.recipe.get("seed", 0)) + 1) % 2**32})
    return replace(case, params=other.params)


def _observe(
    adapter: Style,
    target: Any,
    case: Case,
    timeout: float | None,
    seed: int,
    reference: bool = True,
) -> Observed:
    seen = Observed(
        timeout=timeout, seed=seed, layout=getattr(case, "layout", "C"), reference=reference
    )
    if isinstance(target, Remote):
        target._worker.new_problem()
        return adapter.observe(target, case, seen)
    try:
        return adapter.observe(target, case, seen)
    except Exception as err:  # noqa: BLE001
        # In this process the style reads the code's own objects (a mapping's
        # __getitem__, a __len__): what they raise is a finding, never the search's
        # own AssertionError, which would end the search as if nothing were wrong.
        name = type(err).__name__
        seen.failures[f"reading its result raised {name}"] = (
            f"reading what the code under test returned raised {name}: {err}"
        )
        return seen


def _compare(
    adapter: Style, seen: Observed, tol: Tolerance
) -> tuple[dict[str, Agreement], dict[str, tuple[str, Agreement | None]]]:
    """Every gradient and output of one run against autograd's, strictly."""
    agreements: dict[str, Agreement] = {}
    problems_: dict[str, tuple[str, Agreement | None]] = {
        key: (sentence, None) for key, sentence in seen.failures.items()
    }
    for key, (got, expected) in seen.gradients.items():
        g = adapter.gradient(key)
        array, why = strict_array(got, expected)
        if array is None:
            problems_[f"shape of {key}"] = (
                f"{g.function} returned {g.name} {why}; expected shape {expected.shape}",
                None,
            )
            continue
        agreements[key] = seen.judged.get(key) or agreement(g.name, array, expected, tol)
    for key, (what, got, expected) in seen.outputs.items():
        array, why = strict_array(got, expected)
        if array is None:
            problems_[f"shape of {key}"] = (
                f"{what} is {why}; expected shape {expected.shape}",
                None,
            )
            continue
        a = agreement(key, array, expected, tol)
        if not a.passed:
            problems_[f"wrong {key}"] = (f"{what} is wrong", a)
    return agreements, problems_


def _nondeterminism(adapter: Style, first: Observed, again: Observed, tol: Tolerance) -> str:
    """A sentence if two runs of one problem disagree with each other; else ""."""
    # the second run computes no reference, so it cannot fail where only that failed
    ran, ran_again = (set(s.failures) - first.from_reference for s in (first, again))
    if ran != ran_again:
        differ = sorted(ran ^ ran_again)
        return f"nondeterministic: on the same problem twice, only one call had: {differ[0]}"
    pairs = [
        (k, first.gradients[k][0], again.gradients[k][0])
        for k in first.gradients
        if k in again.gradients
    ]
    pairs += [
        (k, first.outputs[k][1], again.outputs[k][1]) for k in first.outputs if k in again.outputs
    ]
    for key, one, two in pairs:
        shape = np.shape(
            first.gradients[key][1] if key in first.gradients else first.outputs[key][2]
        )
        a, _ = strict_array(one, np.zeros(shape))
        b, _ = strict_array(two, np.zeros(shape))
        if a is None or b is None:
            continue
        if not agreement(key, b, a, tol).passed and not (np.isnan(a).any() and np.isnan(b).any()):
            name = adapter.gradient(key).name if key in first.gradients else key
            return (
                f"nondeterministic: two calls on the same problem returned different {name} "
                f"(largest difference {float(np.max(np.abs(a - b))):.3g}): does it use a random "
                "generator, or keep state between calls?"
            )
    return ""


@dataclass(frozen=True)
class Finding:
    """One thing wrong, at its own minimal counterexample.

    Attributes:
        key: a gradient's key ("U") or the failure's ("rnn_backward raised IndexError").
        problem: what is wrong, in a sentence.
        case: the smallest problem found that shows it (sizes and options in its recipe).
        worst: for a wrong value, its comparison (worst entry, expected, got, allowed).
        shrunk: False when the problem was not shrunk (time-outs).
    """

    key: str
    problem: str
    case: Case
    worst: Agreement | None = None
    shrunk: bool = True


@dataclass(frozen=True)
class InPlace:
    """An argument the code under test changed in place, where first seen.

    Attributes:
        key: "changed NAME"; sentence: what changed; role: "input", "upstream" or
        "cache" (what it costs a caller: styles.base.MATTERS); case: the problem.
    """

    key: str
    sentence: str
    role: str
    case: Case

    @property
    def matters(self) -> str:
        return MATTERS[self.role]


@dataclass(frozen=True)
class Verdict:
    """One gradient's verdict: compared on ``compared`` problems, wrong if ``finding``."""

    gradient: Gradient
    compared: int
    finding: Finding | None

    @property
    def ok(self) -> bool:
        return self.finding is None


@dataclass(frozen=True)
class Report:
    """The outcome of :func:`verify`.

    Attributes:
        target, style: what was checked, and how (style is the style's name).
        examples: problems drawn in the search (phase 1).
        verdicts: one per gradient the style returns, in its order.
        other: failures that are not a wrong gradient, each with its own minimal case.
        calls: evaluations in all, the search and every shrinking (a problem seen
            before in the run is not evaluated again).
        closest: the passing comparison that came nearest its tolerance.
        style_options: the style's options (min-char-rnn: clip_value).
        printed: how many characters the code under test printed (captured, not shown).
        changes: the arguments the code changed in place, each where first seen (a
            warning: the verdict does not depend on them, unless strict_inputs).
        isolated: whether the code ran in a worker process (False: in this one).
        real_sizes, real_seconds: problems run at the sizes people run, and their cost.
        restarts: how often the worker was started again (after a time-out or death).
    """

    target: str
    style: str
    examples: int
    verdicts: tuple[Verdict, ...]
    other: tuple[Finding, ...]
    calls: int = 0
    closest: Agreement | None = None
    style_options: dict[str, Any] = field(default_factory=dict)
    printed: int = 0
    changes: tuple[InPlace, ...] = ()
    isolated: bool = False
    real_sizes: int = 0
    real_seconds: float = 0.0
    restarts: int = 0

    @property
    def passed(self) -> bool:
        """Every gradient agrees, at least one was compared, and nothing else failed."""
        compared = any(v.compared for v in self.verdicts)
        return compared and all(v.ok for v in self.verdicts) and not self.other

    @property
    def problems_run(self) -> int:
        """Drawn examples and the problems at the sizes people run."""
        return self.examples + self.real_sizes

    @property
    def findings(self) -> list[Finding]:
        """Every finding: the wrong gradients' first, in the style's order."""
        return [v.finding for v in self.verdicts if v.finding is not None] + list(self.other)

    @property
    def failure(self) -> Finding | None:
        """The first finding, or None when everything agrees."""
        found = self.findings
        return found[0] if found else None


START_KEY = b"manual_bptt.verify"
# Hypothesis's "secondary" corpus: its problems are tried, and the smallest that fails is
# shrunk (a failing problem of the primary corpus counts as shrunk already).
START_FROM = START_KEY + b".secondary"


def _choices_now() -> bytes | None:
    """The problem being run, as the Hypothesis choices that draw it again (None if this
    Hypothesis does not say: shrinking then searches from the start)."""
    try:
        from hypothesis.control import current_build_context

        return choices_to_bytes(current_build_context().data.choices)
    except Exception:  # noqa: BLE001 (internals of Hypothesis that may change)
        return None


class _Abort(BaseException):
    """Ends a Hypothesis search at once, without shrinking (it is not an Exception)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _search(
    strategy: st.SearchStrategy[Case],
    body: Callable[[Case], None],
    max_examples: int,
    random_seed: int,
    start: ExampleDatabase | None = None,
) -> None:
    """Run ``body`` on up to max_examples drawn problems; shrink an AssertionError.
    With ``start`` (problems as Hypothesis's choices, :func:`_choices_now`), try those
    alone and shrink from the smallest that fails: no problem is drawn."""
    phases = [Phase.reuse, Phase.shrink] if start is not None else list(Phase)

    @settings(  # above @seed, which would otherwise set database=None
        max_examples=max_examples,
        database=start,
        deadline=None,
        report_multiple_bugs=False,
        suppress_health_check=[HealthCheck.too_slow],
        verbosity=Verbosity.quiet,
        # Not Phase.explain: it reruns the shrunk problem with parts varied, to write a
        # comment nobody here reads, and it was most of the time spent shrinking.
        phases=[p for p in phases if p is not Phase.explain],
    )
    @seed(random_seed)
    @given(strategy)
    def holds(case: Case) -> None:
        body(case)

    # where the start problems are kept (a Hypothesis run given a seed reads no other key)
    holds._hypothesis_internal_database_key = START_KEY  # type: ignore[attr-defined]

    try:
        holds()
    except AssertionError:
        pass


def verify(
    target: Any,
    *,
    style: str | Style = "project",
    max_examples: int = 200,
    random_seed: int = 0,
    name: str = "",
    show_progress: bool | None = False,
    strategy: st.SearchStrategy[Case] | None = None,
    space: Space | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    strict_inputs: bool = False,
    real_sizes: bool = True,
    **style_options: Any,
) -> Report:
    """Property-test ``target`` against the twin; shrink every failure to its own minimal case.

    The code under test runs in a worker process of its own (worker.py) when it is
    given as a string (``MODULE[:NAME]``, ``FILE.py[:NAME]``, ``NOTEBOOK.ipynb[:NAME]``)
    or as an object that can be named so (a module's function or class); an object
    that cannot be (a local function) runs in this process, under guard.py's limits.

    Args:
        target: the code under test, or a string naming it.
        style: a style's name (see manual_bptt.checking.styles) or a Style.
        max_examples: how many problems to try before calling it correct.
        random_seed: Hypothesis's seed, so that a run can be repeated exactly.
        name: how to call the target in the report.
        show_progress: a progress bar on standard error (None: when it is a terminal).
        strategy: the problems to draw (default: ``problems(space)``).
        space: the problems a style may draw, e.g. narrowed by ``Style.space_for``
            (default: the style's whole space).
        timeout: seconds allowed per call of the code under test (None: no limit).
        strict_inputs: an argument changed in place is a failure, not a warning.
        real_sizes: after the search, also run the style's few problems at the sizes
            people run (:attr:`Style.real_sizes`); not with a ``strategy`` and no ``space``.
        style_options: the style's own options (min-char-rnn: clip_value).
    Returns:
        Report with a verdict per gradient, every other failure, the counts.
    Raises:
        UsageError: the target cannot be checked in this style (cannot be loaded, not
            callable, a function missing, a wrong signature, or the first call shows a
            wrong interface); nothing was searched.
    """
    checked_timeout(timeout)
    adapter = style if isinstance(style, Style) else make_style(style, **style_options)
    search = functools.partial(
        _verify,
        adapter=adapter,
        max_examples=max_examples,
        random_seed=random_seed,
        show_progress=show_progress,
        strategy=strategy,
        space=space,
        timeout=timeout,
        strict_inputs=strict_inputs,
        real_sizes=real_sizes,
    )
    if isinstance(target, Remote):
        return search(target, label=name or repr(target), worker=target._worker)
    if isinstance(target, _Unnamed):
        target, spec = target.obj, None
    else:
        spec = target if isinstance(target, str) else spec_of(target)
    label = name or (
        target if isinstance(target, str) else getattr(target, "__name__", repr(target))
    )
    if spec is None:
        return search(target, label=label, worker=None)
    with Worker(spec, timeout) as worker:
        remote = worker.start()
        if not isinstance(target, str) and not _same_module(target, worker):
            worker.close()  # the module was changed here: check the object as it is
            return verify(
                _Unnamed(target),
                style=adapter,
                max_examples=max_examples,
                random_seed=random_seed,
                name=label,
                show_progress=show_progress,
                strategy=strategy,
                space=space,
                timeout=timeout,
                strict_inputs=strict_inputs,
                real_sizes=real_sizes,
            )
        return search(remote, label=label, worker=worker)


def _same_module(obj: Any, worker: Worker) -> bool:
    """Whether ``obj``'s module holds here what the worker's fresh import of it holds. A
    program (or pytest's monkeypatch) that set ``mycode.FAST = True`` has changed the
    code under test: the worker's import would check the code without the change."""
    from manual_bptt.checking.serve import module_state

    try:
        return module_state(obj) == worker.module_state()
    except CodeFailed:
        return False


class _Unnamed:
    """An object that :func:`spec_of` does not name: it is checked in this process."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj


def spec_of(obj: Any) -> str | None:
    """How a worker can load ``obj``: "module:qualname", "file.py:qualname", or None."""
    if isinstance(obj, types.ModuleType):
        known = sys.modules.get(obj.__name__) is obj and getattr(obj, "__spec__", None)
        return obj.__name__ if known and obj.__name__ != "__main__" else None
    module = sys.modules.get(getattr(obj, "__module__", None) or "")
    qualname = getattr(obj, "__qualname__", None)
    if module is None or not isinstance(qualname, str) or "<" in qualname:
        return None
    found: Any = module
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if found is not obj:
        return None
    module_spec = getattr(module, "__spec__", None)
    if (
        module.__name__ != "__main__"
        and module_spec is not None
        and module_spec.name == module.__name__
    ):
        return f"{module.__name__}:{qualname}"
    path = getattr(module, "__file__", None)
    return f"{path}:{qualname}" if isinstance(path, str) and path.endswith(".py") else None


UNSHRUNK = ("timed out", "ended the worker process")  # each attempt would cost too much
# the end of a finding's sentence when its smallest problem, run once more, did not fail
NOT_AGAIN = " (nondeterministic: it did not fail again on the same problem)"


def _verify(
    obj: Any,
    adapter: Style,
    label: str,
    worker: Worker | None,
    max_examples: int,
    random_seed: int,
    show_progress: bool | None,
    strategy: st.SearchStrategy[Case] | None,
    space: Space | None,
    timeout: float | None,
    strict_inputs: bool,
    real_sizes: bool,
) -> Report:
    try:
        target = adapter.bind(obj, label)
        adapter.takes(target, space or adapter.space, label)
    except CodeFailed as err:
        raise UsageError(err.message) from None
    drawn = adapter.problems(space or adapter.space) if strategy is None else strategy
    printed_before = guard.captured.total
    calls = examples = 0
    first: dict[str, Outcome] = {}
    changes: dict[str, Outcome] = {}
    compared: Counter[str] = Counter()
    closest: list[Agreement] = []
    bar = Progress(max_examples, "verify", enabled=show_progress)
    seen: dict[bytes, Outcome] = {}
    starts: dict[str, bytes] = {}  # failure key → the choices of its first problem
    minimal: list[bytes] = []  # the choices of each minimal problem found so far

    def evaluated(case: Case, kept: dict[bytes, Outcome]) -> Outcome:
        """``case``'s outcome: read from ``kept`` if it has been evaluated, else
        evaluated and kept there."""
        nonlocal calls
        key = _problem_key(case)
        if key is not None and key in kept:
            return replace(kept[key], case=case)
        calls += 1
        outcome = evaluate(target, adapter, case, timeout=timeout, strict_inputs=strict_inputs)
        if key is not None:
            kept[key] = outcome
        return outcome

    run = functools.partial(evaluated, kept=seen)
    # Each finding's minimal problem evaluated once more, not read from ``seen``: it must
    # fail again where it is shown (code that fails on every 7th call does not), and
    # findings that share their minimal problem share this run.
    again = functools.partial(evaluated, kept={})

    def shrink(key: str, found: Outcome) -> Finding:
        """``key``'s own minimal counterexample (a time-out: where it was first seen)."""
        if key.endswith(UNSHRUNK) or any(found.case is c for c in real):
            return _finding(key, found, shrunk=False, real=any(found.case is c for c in real))
        smallest: list[tuple[Outcome, bytes | None]] = []

        def fails(case: Case) -> None:
            outcome = run(case)
            if key in outcome.failing:
                smallest[:] = [(outcome, _choices_now())]
                raise AssertionError(key)

        try:
            if key in starts:  # from its first failure, or a smaller one shrunk before
                database = InMemoryExampleDatabase()
                for choices in (starts[key], *minimal):
                    database.save(START_FROM, choices)
                try:
                    _search(drawn, fails, max_examples, random_seed, start=database)
                except Flaky:
                    raise
                except Exception:  # noqa: BLE001 (a Hypothesis that read no start ran nothing: SkipTest)
                    smallest.clear()
            if not smallest:  # no start, or it did not fail again: search from the beginning
                _search(drawn, fails, max_examples, random_seed)
        except Flaky:
            return _finding(key, found, shrunk=False, flaky=True)
        if not smallest:  # not found again (a problem the strategy drew differently)
            return _finding(key, found, shrunk=False)
        outcome, where = smallest[-1]
        if key not in again(outcome.case).failing:  # an outcome kept from one run alone
            return _finding(key, found, shrunk=False, flaky=True)
        if where is not None:
            minimal.append(where)
        return _finding(key, outcome)

    def record(outcome: Outcome) -> None:
        for key, a in outcome.agreements.items():
            compared[key] += 1
            if a.passed and (not closest or _share(a) > _share(closest[0])):
                closest[:] = [a]
        # in order: the failures are shrunk in it, each from the smallest problems found
        # before it, so that a set's order, which changes from process to process,
        # changed how many problems a run tried
        for key in outcome.failing_in_order():
            first.setdefault(key, outcome)
        for key in outcome.changes:
            changes.setdefault(key, outcome)

    def search_step(case: Case) -> None:
        nonlocal examples
        examples += 1
        try:
            outcome = run(case)
        except AssertionError as err:  # never a finding here: _search would end quietly
            raise RuntimeError(f"verify failed its own check: {err!r}") from err
        bar.update()
        if calls == 1 and outcome.interface:
            raise _Abort(f"{outcome.interface[0]} (on the first problem tried)")
        for key in outcome.failing - first.keys():
            choices = _choices_now()
            if choices is not None:
                starts[key] = choices
        record(outcome)
        if any(key.endswith(UNSHRUNK) for key in outcome.problems):
            raise _Abort("timed out")

    # a strategy of the caller's own draws what it draws: no sizes of ours beside it
    real_sizes = real_sizes and (strategy is None or space is not None)
    real = list(adapter.real_cases(space or adapter.space)) if real_sizes else []
    real_seconds, real_count = 0.0, 0
    with _twin_on_one_thread():
        try:
            _search(drawn, search_step, max_examples, random_seed)
        except _Abort as stop:
            if stop.reason != "timed out":
                raise UsageError(stop.reason) from None
        finally:
            bar.close()
        if real_sizes and not any(k.endswith(UNSHRUNK) for k in first):
            started = time.perf_counter()
            for case in real:
                real_count += 1
                record(run(case))
            real_seconds = time.perf_counter() - started
        findings = {key: shrink(key, outcome) for key, outcome in first.items()}
    # A gradient no drawn problem has (the GRU's bh for the vanilla cell) gets no verdict.
    verdicts = tuple(
        Verdict(g, compared[g.key], findings.pop(g.key, None))
        for g in adapter.gradients_for(target)
        if compared[g.key] or g.key in findings
    )
    in_place = (
        ()
        if strict_inputs
        else tuple(
            InPlace(key, *outcome.changes[key], outcome.case) for key, outcome in changes.items()
        )
    )
    return Report(
        target=label,
        style=adapter.name,
        examples=examples,
        verdicts=verdicts,
        other=tuple(findings.values()),
        calls=calls,
        closest=closest[0] if closest else None,
        style_options=dict(adapter.options),
        printed=(worker.printed if worker is not None else guard.captured.total - printed_before),
        changes=in_place,
        isolated=worker is not None,
        real_sizes=real_count,
        real_seconds=real_seconds,
        restarts=worker.restarts if worker is not None else 0,
    )


class _Layouts(pickle.Pickler):
    """A pickler that also notes how each array lies in memory: pickle keeps an array's
    values, not its strides, nor that two arrays are views of one buffer, and code run
    in this process is given the problem's arrays as they are."""

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.layouts: list[tuple[Any, ...]] = []
        self.buffers: dict[int, int] = {}  # id of an array's first owner → its number

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, np.ndarray):
            owner = obj
            while isinstance(owner.base, np.ndarray):
                owner = owner.base
            number = self.buffers.setdefault(id(owner), len(self.buffers))
            offset = obj.__array_interface__["data"][0] - owner.__array_interface__["data"][0]
            self.layouts.append((obj.strides, number, offset, obj.base is None))
        return NotImplemented


def _problem_key(case: object) -> bytes | None:
    """A digest of the problem's pickled bytes and its arrays' layouts (equal problems,
    equal keys), or None if it cannot be pickled (then it is evaluated each time it is
    drawn)."""
    data = io.BytesIO()
    pickler = _Layouts(data)
    try:
        pickler.dump(case)
    except Exception:  # noqa: BLE001 (a problem of the caller's own strategy)
        return None
    digest = hashlib.blake2b(data.getvalue(), digest_size=20)
    digest.update(repr(pickler.layouts).encode())
    return digest.digest()


@contextlib.contextmanager
def _twin_on_one_thread() -> Iterator[None]:
    import torch_reference

    with torch_reference.one_thread():
        yield


def _finding(
    key: str, outcome: Outcome, shrunk: bool = True, flaky: bool = False, real: bool = False
) -> Finding:
    worst: Agreement | None
    if key in outcome.agreements:
        a = outcome.agreements[key]
        sentence, worst = f"wrong gradient: {a.name}", a
    else:
        sentence, worst = outcome.problems[key]
    if flaky:
        sentence += NOT_AGAIN
    if real:
        sentence += " (seen only at the sizes people run, after the search)"
    return Finding(key, sentence, outcome.case, worst, shrunk)


def _share(a: Agreement) -> float:
    """How much of its tolerance a comparison used."""
    return a.max_abs / a.allowed if a.allowed > 0 else 0.0


def reproduction(report: Report, finding: Finding) -> str:
    """A shell line that reruns a finding's problem and prints what is wrong."""
    args = ", ".join(f"{k}={v!r}" for k, v in finding.case.recipe.items())
    options = "".join(f", {k}={v!r}" for k, v in report.style_options.items())
    module, maker = maker_of(finding.case)
    return (
        f'python -c "from {module} import {maker}; '
        "from manual_bptt.checking.verify import evaluate; "
        f"print(evaluate('{report.target}', '{report.style}', "
        f'{maker}({args}){options}).describe())"'
    )


def maker_of(case: Any) -> tuple[str, str]:
    """(module, function) that rebuild ``case`` from its recipe: make_case, or the
    problem's own (``MAKER = "module:function"``, e.g. the generic forms' make_problem)."""
    module, _, maker = getattr(case, "MAKER", "manual_bptt.cases:make_case").partition(":")
    return module, maker
