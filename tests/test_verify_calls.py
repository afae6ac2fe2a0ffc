"""How verify spends its calls: each distinct problem is evaluated once in a run; each
wrong gradient is shrunk from where the search first saw it (or from a smaller problem
another gradient was shrunk to), not by searching again from the start, and the minimal
problems are those the plain search from the start finds; the twin answers once for the
two runs of one problem when the code runs in a worker, and the generic forms' numerical
reference is not computed for the second run, which is only compared with the first."""

from __future__ import annotations

import pickle
import unittest
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import manual_bptt
import torch_reference
from manual_bptt.cases import make_case
from manual_bptt.checking import gallery_min_char_rnn
from manual_bptt.checking import verify as verify_module
from manual_bptt.checking.explain import describe_finding
from manual_bptt.checking.strategies import cases
from manual_bptt.checking.styles import make_style
from manual_bptt.checking.styles.base import Observed
from manual_bptt.checking.styles.layer import LayerStyle
from manual_bptt.checking.verify import Report, evaluate, verify
from manual_bptt.compare import tolerance_for

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "generic"


def two_slips(params: Any, x: Any, y: Any, **options: Any) -> Any:
    """The project's bptt with ∂L/∂W wrong once H ≥ 2 and ∂L/∂b wrong once T ≥ 2: two
    gradients with minimal problems of their own (a local function: run in this process)."""
    result = manual_bptt.bptt(params, x, y, **options)
    if result.grads["W"].shape[0] >= 2:
        result.grads["W"][0, 1] += 1.0
    if x.shape[0] >= 2:
        result.grads["b"][0] *= 1.5
    return result


STRATEGY = cases(cell="rnn", max_T=8, max_N=3, max_dim=5)


def _run(monkeypatch: pytest.MonkeyPatch) -> tuple[Report, list[bytes]]:
    """verify's report on two_slips, and the pickled problems it evaluated, in order."""
    evaluated: list[bytes] = []
    evaluate = verify_module.evaluate

    def counting(target: Any, style: Any, case: Any, **kwargs: Any) -> Any:
        evaluated.append(pickle.dumps(case))
        return evaluate(target, style, case, **kwargs)

    monkeypatch.setattr(verify_module, "evaluate", counting)
    report = verify(two_slips, max_examples=12, strategy=STRATEGY)
    return report, evaluated


def _minimal(report: Report) -> dict[str, tuple[int, int]]:
    return {f.key: (f.case.recipe["T"], f.case.recipe["H"]) for f in report.findings if f.shrunk}


def _once_each(report: Report, evaluated: list[bytes]) -> None:
    """Every problem evaluated once, but each finding's minimal problem: once more, at the
    end, not read from the outcomes kept (it must fail again where it is shown)."""
    twice = {e for e in evaluated if evaluated.count(e) == 2}
    assert all(evaluated.count(e) <= 2 for e in evaluated)
    assert twice == {pickle.dumps(f.case) for f in report.findings}
    assert report.calls == len(evaluated)


def _noting_starts(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each Hypothesis run of verify's, whether it was given problems to start from."""
    started: list[bool] = []
    search = verify_module._search

    def noting(*args: Any, **kwargs: Any) -> None:
        started.append(kwargs.get("start") is not None)
        search(*args, **kwargs)

    monkeypatch.setattr(verify_module, "_search", noting)
    return started


def test_each_shrinking_starts_where_the_search_saw_it_and_no_problem_runs_twice(
    monkeypatch,
) -> None:
    started = _noting_starts(monkeypatch)
    report, evaluated = _run(monkeypatch)
    assert {f.key for f in report.findings} == {"W", "b"}
    assert started == [False, True, True]  # the search, then one shrinking per gradient
    assert all(f.shrunk for f in report.findings)
    _once_each(report, evaluated)


def test_the_minimal_problems_are_those_a_search_from_the_start_finds(monkeypatch) -> None:
    report, _ = _run(monkeypatch)
    # Where Hypothesis does not give the problem's choices, shrinking searches from the
    # start again, as it did before it could start anywhere else.
    monkeypatch.setattr(verify_module, "_choices_now", lambda: None)
    from_the_start, evaluated = _run(monkeypatch)
    assert _minimal(report) == _minimal(from_the_start) == {"W": (1, 2), "b": (2, 1)}
    _once_each(from_the_start, evaluated)


def test_a_start_that_hypothesis_does_not_read_falls_back_to_a_search(monkeypatch) -> None:
    # A Hypothesis that no longer reads the start problems runs nothing and raises
    # SkipTest, which under pytest would skip the caller's test: verify searches instead.
    monkeypatch.setattr(verify_module, "START_FROM", b"a key Hypothesis does not read")
    started = _noting_starts(monkeypatch)
    try:
        report, evaluated = _run(monkeypatch)
    except unittest.SkipTest as skipped:  # what pytest would report as a skip, not red
        pytest.fail(f"verify raised SkipTest: {skipped}")
    assert started == [False, True, False, True, False]
    assert _minimal(report) == {"W": (1, 2), "b": (2, 1)}
    _once_each(report, evaluated)


def test_a_wrong_gradient_that_does_not_fail_again_is_shown_where_first_seen() -> None:
    # Wrong the first time it sees a problem only: each shrunk problem, evaluated once
    # more, agrees, so the finding says so and stays where the search first saw it.
    seen: set[bytes] = set()

    def first_sight_only(params: Any, x: Any, y: Any, **options: Any) -> Any:
        result = manual_bptt.bptt(params, x, y, **options)
        sight = np.asarray(x).tobytes() + params.W.tobytes()
        if sight not in seen:
            seen.add(sight)
            result.grads["W"][0, 0] += 1.0
        return result

    report = verify(first_sight_only, max_examples=5, strategy=STRATEGY)
    finding = next(v.finding for v in report.verdicts if v.gradient.key == "W")
    assert finding is not None
    assert not finding.shrunk
    assert finding.problem.endswith("(nondeterministic: it did not fail again on the same problem)")
    assert describe_finding(report, finding)[0] == (
        "WRONG dW (f; grads['W']); minimal counterexample (not shrunk: it did not fail "
        "again on a smaller problem; where it was first seen):"
    )


@pytest.mark.parametrize(("target", "twins"), [("manual_bptt:bptt", 2), (manual_bptt.bptt, 3)])
def test_the_twin_answers_once_for_both_runs_of_a_problem_in_the_worker(
    target: Any, twins: int, monkeypatch
) -> None:
    # In the worker the code gets copies, so the problem is the same for its second run;
    # in this process the code may change the problem in place: the twin runs each time.
    calls: list[int] = []
    bptt = torch_reference.bptt

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return bptt(*args, **kwargs)

    monkeypatch.setattr(torch_reference, "bptt", counting)
    case = make_case(T=3, N=2, D=2, H=2, K=3, seed=4)
    outcome = evaluate(target, "project", case)
    assert outcome.passed
    assert len(calls) == twins  # the problem (once or twice), then with new weights


def test_the_numerical_reference_is_computed_for_two_of_the_three_runs() -> None:
    # the problem as drawn and with new weights are judged; the second run of the same
    # problem is only compared with the first (nondeterminism), so it needs none
    style = LayerStyle(
        forward="rnn_forward",
        backward=f"{EXAMPLES / 'fbt_backward.py'}:rnn_backward",
        shapes="x:D,N,T h0:H,N Wx:H,D Wh:H,H b:H,1",
    )
    target = str(EXAMPLES / "fbt_forward.py")
    report = verify(target, style=style, max_examples=4, real_sizes=False)
    assert report.passed, report
    assert report.calls == 4
    assert style.stats["problems"] == 2 * report.calls


def test_a_failure_of_the_reference_alone_is_no_nondeterminism() -> None:
    # The user's forward raised at a moved θ in the first run's reference; the second
    # run, which computes none, cannot have that failure: it is not "only one call had".
    first = Observed(failures={"rnn_forward raised ValueError": "…"})
    again = Observed(reference=False)
    sentence = verify_module._nondeterminism(make_style("project"), first, again, TOL)
    assert sentence.startswith("nondeterministic: on the same problem twice, only one call")
    first.from_reference.add("rnn_forward raised ValueError")
    assert verify_module._nondeterminism(make_style("project"), first, again, TOL) == ""
    # a failure the second run can have (of the code itself) still counts
    first.failures["rnn_backward raised IndexError"] = "…"
    assert "rnn_backward raised IndexError" in verify_module._nondeterminism(
        make_style("project"), first, again, TOL
    )


TOL = tolerance_for(np.dtype(np.float64))


def test_the_problem_key_sees_strides_and_shared_buffers_which_pickle_drops() -> None:
    # Code run in this process is given the problem's arrays as they are: one that
    # fails only on a strided view, or when two arguments share a buffer, must not be
    # answered from a problem with the same values laid out otherwise.
    key = verify_module._problem_key
    values = np.arange(12.0)
    wide = np.zeros(24)
    wide[::2] = values
    assert pickle.dumps(values) == pickle.dumps(wide[::2])  # pickle alone cannot tell
    assert key(values) != key(wide[::2])
    assert key(values) == key(values.copy())
    buffer = np.arange(8.0)
    assert key((buffer[:4], buffer[4:])) != key((buffer[:4].copy(), buffer[4:].copy()))
    assert key((buffer[:4], buffer[4:])) == key((buffer[:4], buffer[4:]))


def test_a_forward_that_raises_only_at_a_moved_input_is_not_called_nondeterministic(
    tmp_path: Path,
) -> None:
    # The first run's reference moves x and the forward raises there; the second run
    # computes no reference, so it cannot raise: that is no nondeterminism.
    (tmp_path / "fixed_x.py").write_text(
        "import numpy as np\n"
        "FIRST = {}\n"
        "def fwd(x, W):\n"
        "    if np.iscomplexobj(x) or np.iscomplexobj(W):\n"
        "        raise TypeError('real numbers only')\n"
        "    if not np.array_equal(FIRST.setdefault(x.shape, x.copy()), x):\n"
        "        raise ValueError('x moved')\n"
        "    return x @ W, x, W\n"
        "def bwd(dout, x, W):\n"
        "    return dout @ W.T, x.T @ dout\n"
    )
    style = LayerStyle(forward="fwd", backward="bwd", shapes="x:N,D W:D,H")
    report = verify(str(tmp_path / "fixed_x.py"), style=style, max_examples=3)
    assert "fwd raised ValueError" in {f.key for f in report.other}
    assert not [f for f in report.other if f.key == "nondeterministic"], report.other


class _Rotated(set[str]):
    """A set that iterates in sorted order, rotated by ``turn``: the orders a set of
    strings may iterate in, from one process to the next (their hashes are randomised)."""

    turn = 0

    def __iter__(self) -> Any:
        keys = sorted(set.__iter__(self))
        turn = self.turn % len(keys) if keys else 0
        return iter(keys[turn:] + keys[:turn])


def test_the_failures_are_shrunk_in_the_same_order_in_every_process(monkeypatch) -> None:
    # Each failure is shrunk from the smallest problems found before it, so the order
    # decides which problems are tried. It once followed a set's order: this slip's dU,
    # dW, db took 220 runs in some processes and 221 in others (44 or 45 here).
    failing = verify_module.Outcome.__dict__["failing"].fget
    reports = []
    for turn in range(3):
        rotated = type("Rotated", (_Rotated,), {"turn": turn})

        def in_turn(outcome: Any, rotated: type[_Rotated] = rotated) -> set[str]:
            return rotated(failing(outcome))

        monkeypatch.setattr(verify_module.Outcome, "failing", property(in_turn))
        report = verify(
            gallery_min_char_rnn.tanh_derivative_at_wrong_step,
            style="min-char-rnn",
            max_examples=20,
        )
        reports.append((report.calls, [(f.key, f.case.recipe) for f in report.findings]))
    assert reports[0] == reports[1] == reports[2]


@given(
    st.dictionaries(st.sampled_from(["U", "W", "V", "b", "c", "h0"]), st.booleans()),
    st.lists(st.sampled_from(["W", "b", "fwd raised ValueError", "nondeterministic"])),
)
def test_the_failures_in_order_are_the_failing_keys_once_each_gradients_first(
    passed: dict[str, bool], problem_keys: list[str]
) -> None:
    agreements: Any = {k: SimpleNamespace(passed=p) for k, p in passed.items()}
    problems: Any = {k: ("a sentence", None) for k in problem_keys}
    outcome = verify_module.Outcome(None, agreements, problems)  # type: ignore[arg-type]
    in_order = outcome.failing_in_order()
    assert sorted(in_order) == sorted(outcome.failing)  # each key, once
    wrong = [k for k, p in passed.items() if not p]
    assert in_order == wrong + [k for k in problems if k not in wrong]
