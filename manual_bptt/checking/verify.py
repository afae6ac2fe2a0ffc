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

Time-outs are not shrunk (every attempt would cost the whole limit), and the first one
ends the search. Output printed by the code under test is captured (guard.py).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
from hypothesis import strategies as st

from manual_bptt.checking import guard
from manual_bptt.checking.cases import Case
from manual_bptt.checking.compare import Agreement, agreement, tolerance_for
from manual_bptt.checking.guard import DEFAULT_TIMEOUT
from manual_bptt.checking.source import load
from manual_bptt.checking.strategies import Space, problems
from manual_bptt.checking.styles import STYLES, Gradient, Style, UsageError, make_style
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
    """

    case: Case
    agreements: dict[str, Agreement]
    problems: dict[str, tuple[str, Agreement | None]]
    interface: list[str] = field(default_factory=list)

    @property
    def failing(self) -> set[str]:
        """The keys of every wrong gradient and every other failure."""
        return {k for k, a in self.agreements.items() if not a.passed} | set(self.problems)

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
        if self.passed:
            lines.append("no failure: every gradient agrees with autograd")
        return "\n".join(lines)


def _as_array(value: Any) -> np.ndarray | None:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return array


def evaluate(
    target: Any,
    style: str | Style,
    case: Case,
    *,
    timeout: float | None = DEFAULT_TIMEOUT,
    **style_options: Any,
) -> Outcome:
    """Run ``target`` on one problem in ``style`` and compare everything with autograd.

    Args:
        target: the code under test, as :func:`load` returns it.
        style: a style's name ("project", "tutorial", "cs231n", "min-char-rnn", …) or
            a Style.
        case: the problem (e.g. ``make_case(...)`` from a reproduction line).
        timeout: seconds allowed per call of the code under test (None: no limit).
        style_options: the style's own options (min-char-rnn: clip_value).
    Returns:
        Outcome with one Agreement per gradient and every other failure.
    """
    adapter = style if isinstance(style, Style) else make_style(style, **style_options)
    seen = adapter.observe(target, case, timeout)
    tol = tolerance_for(case.params.dtype)
    agreements: dict[str, Agreement] = {}
    problems_: dict[str, tuple[str, Agreement | None]] = {
        key: (sentence, None) for key, sentence in seen.failures.items()
    }
    for key, (got, expected) in seen.gradients.items():
        g = adapter.gradient(key)
        array = _as_array(got)
        if array is None or array.shape != expected.shape:
            shape = "not an array" if array is None else f"of shape {array.shape}"
            problems_[f"shape of {key}"] = (
                f"{g.function} returned {g.name} {shape}; expected shape {expected.shape}",
                None,
            )
            continue
        agreements[key] = agreement(g.name, array, expected, tol)
    for key, (what, got, expected) in seen.outputs.items():
        array = _as_array(got)
        if array is None or array.size != expected.size:
            shape = "not an array" if array is None else f"of shape {array.shape}"
            problems_[f"shape of {key}"] = (f"{what} is {shape}; expected {expected.shape}", None)
            continue
        a = agreement(key, array.reshape(expected.shape), expected, tol)
        if not a.passed:
            problems_[f"wrong {key}"] = (f"{what} is wrong", a)
    return Outcome(case, agreements, problems_, list(seen.interface))


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
        calls: evaluations in all, the search and every shrinking.
        closest: the passing comparison that came nearest its tolerance.
        style_options: the style's options (min-char-rnn: clip_value).
        printed: how many characters the code under test printed (captured, not shown).
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

    @property
    def passed(self) -> bool:
        return all(v.ok for v in self.verdicts) and not self.other

    @property
    def findings(self) -> list[Finding]:
        """Every finding: the wrong gradients' first, in the style's order."""
        return [v.finding for v in self.verdicts if v.finding is not None] + list(self.other)

    @property
    def failure(self) -> Finding | None:
        """The first finding, or None when everything agrees."""
        found = self.findings
        return found[0] if found else None


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
) -> None:
    """Run ``body`` on up to max_examples drawn problems; shrink an AssertionError."""

    @seed(random_seed)
    @settings(
        max_examples=max_examples,
        database=None,
        deadline=None,
        report_multiple_bugs=False,
        suppress_health_check=[HealthCheck.too_slow],
        verbosity=Verbosity.quiet,
        # Not Phase.explain: it reruns the shrunk problem with parts varied, to write a
        # comment nobody here reads, and it was most of the time spent shrinking.
        phases=[p for p in Phase if p is not Phase.explain],
    )
    @given(strategy)
    def holds(case: Case) -> None:
        body(case)

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
    **style_options: Any,
) -> Report:
    """Property-test ``target`` against the twin; shrink every failure to its own minimal case.

    Args:
        target: the code under test (a function, a class, a module: as its style needs).
        style: a style's name (see manual_bptt.checking.styles) or a Style.
        max_examples: how many problems to try before calling it correct.
        random_seed: Hypothesis's seed, so that a run can be repeated exactly.
        name: how to call the target in the report.
        show_progress: a progress bar on standard error (None: when it is a terminal).
        strategy: the problems to draw (default: ``problems(space)``).
        space: the problems a style may draw, e.g. narrowed by ``Style.space_for``
            (default: the style's whole space).
        timeout: seconds allowed per call of the code under test (None: no limit).
        style_options: the style's own options (min-char-rnn: clip_value).
    Returns:
        Report with a verdict per gradient, every other failure, the counts.
    Raises:
        UsageError: the target cannot be checked in this style (not callable, a
            function missing, a wrong signature, or the first call shows a wrong
            interface); nothing was searched.
    """
    adapter = style if isinstance(style, Style) else make_style(style, **style_options)
    label = name or getattr(target, "__name__", repr(target))
    target = adapter.bind(target, label)
    drawn = problems(space or adapter.space) if strategy is None else strategy
    printed_before = guard.captured.total
    calls = examples = 0
    first: dict[str, Outcome] = {}
    compared: Counter[str] = Counter()
    closest: list[Agreement] = []
    bar = Progress(max_examples, "verify", enabled=show_progress)

    def run(case: Case) -> Outcome:
        nonlocal calls
        calls += 1
        return evaluate(target, adapter, case, timeout=timeout)

    def shrink(key: str, found: Outcome) -> Finding:
        """``key``'s own minimal counterexample (a time-out: where it was first seen)."""
        if key.endswith("timed out"):
            return _finding(key, found, shrunk=False)
        smallest: list[Outcome] = []

        def fails(case: Case) -> None:
            outcome = run(case)
            if key in outcome.failing:
                smallest[:] = [outcome]
                raise AssertionError(key)

        _search(drawn, fails, max_examples, random_seed)
        return _finding(key, smallest[-1] if smallest else found)

    def search_step(case: Case) -> None:
        nonlocal examples
        examples += 1
        outcome = run(case)
        bar.update()
        if calls == 1 and outcome.interface:
            raise _Abort(f"{outcome.interface[0]} (on the first problem tried)")
        for key, a in outcome.agreements.items():
            compared[key] += 1
            if a.passed and (not closest or _share(a) > _share(closest[0])):
                closest[:] = [a]
        for key in outcome.failing:
            first.setdefault(key, outcome)
        if any(key.endswith("timed out") for key in outcome.problems):
            raise _Abort("timed out")

    with _twin_on_one_thread():
        try:
            _search(drawn, search_step, max_examples, random_seed)
        except _Abort as stop:
            if stop.reason != "timed out":
                raise UsageError(stop.reason) from None
        finally:
            bar.close()
        findings = {key: shrink(key, outcome) for key, outcome in first.items()}
    # A gradient no drawn problem has (the GRU's bh for the vanilla cell) gets no verdict.
    verdicts = tuple(
        Verdict(g, compared[g.key], findings.pop(g.key, None))
        for g in adapter.gradients_for(target)
        if compared[g.key] or g.key in findings
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
        printed=guard.captured.total - printed_before,
    )


@contextlib.contextmanager
def _twin_on_one_thread() -> Iterator[None]:
    import torch_reference

    with torch_reference.one_thread():
        yield


def _finding(key: str, outcome: Outcome, shrunk: bool = True) -> Finding:
    if key in outcome.agreements:
        a = outcome.agreements[key]
        return Finding(key, f"wrong gradient: {a.name}", outcome.case, a, shrunk)
    sentence, worst = outcome.problems[key]
    return Finding(key, sentence, outcome.case, worst, shrunk)


def _share(a: Agreement) -> float:
    """How much of its tolerance a comparison used."""
    return a.max_abs / a.allowed if a.allowed > 0 else 0.0


def reproduction(report: Report, finding: Finding) -> str:
    """A shell line that reruns a finding's problem and prints what is wrong."""
    args = ", ".join(f"{k}={v!r}" for k, v in finding.case.recipe.items())
    options = "".join(f", {k}={v!r}" for k, v in report.style_options.items())
    return (
        'python -c "from manual_bptt.checking.cases import make_case; '
        "from manual_bptt.checking.verify import evaluate, load; "
        f"print(evaluate(load('{report.target}'), '{report.style}', "
        f'make_case({args}){options}).describe())"'
    )
