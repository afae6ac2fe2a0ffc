"""Property-test somebody else's BPTT against the autograd twin, and explain a failure.

Two interfaces are understood:

- style "project": a function with manual_bptt.bptt's signature,
  ``f(params, x, y, *, h0, mask, activation, truncate, chunk, reduction)``, returning an
  object with ``.grads`` (a mapping like BPTTResult's). Drawn over every option.
- style "tutorial": the classic tutorial's class, ``Cls(word_dim, hidden_dim,
  bptt_truncate)``, whose instance has U (H, D), V (D, H), W (H, H) and
  ``bptt(x, y) -> [dU, dV, dW]`` for one sequence of token ids (T,), targets (T,) in
  [0, D), no biases, zero initial state, tanh, and ``bptt_truncate`` meaning the core's
  ``truncate`` (the loss at t reaches steps t … max(0, t−k)).

Hypothesis draws problems (sizes, seeds, options; manual_bptt/checking/strategies.py), compares
every gradient with torch_reference.bptt, and on failure shrinks to a minimal problem.
The code under test must also leave its inputs, and its own parameters, unchanged.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from manual_bptt.checking.cases import Case
from manual_bptt.checking.compare import Agreement, compare_grads, tolerance_for
from manual_bptt.checking.strategies import cases, tutorial_cases
from manual_bptt.progress import Progress

STYLES = ("project", "tutorial")


@dataclass(frozen=True)
class Failure:
    """What went wrong on one problem.

    Attributes:
        case: the problem (sizes, seed and options in case.recipe).
        problem: one sentence: which gradient is wrong, or what else happened.
        wrong: the gradients that disagree, each with its worst entry.
        gradient: the name of the first wrong gradient ("U", "W", …), or None.
    """

    case: Case
    problem: str
    wrong: list[Agreement] = field(default_factory=list)
    gradient: str | None = None


@dataclass(frozen=True)
class Report:
    """The outcome of :func:`verify`: examples run and the minimal failure, if any."""

    target: str
    style: str
    examples: int
    failure: Failure | None
    closest: Agreement | None = None  # the passing comparison nearest its tolerance

    @property
    def passed(self) -> bool:
        return self.failure is None


def load(spec: str) -> Any:
    """The object named by "module:object" or "path/to/file.py:object".

    A module is imported with the current directory on sys.path, as ``python -m`` does.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"name the code as MODULE:OBJECT (e.g. mycode:MyRNN); got {spec!r}")
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_file():
            raise ValueError(f"no such file: {module_name}")
        loaded = importlib.util.spec_from_file_location(path.stem, path)
        if loaded is None or loaded.loader is None:
            raise ValueError(f"cannot import {module_name}")
        module = importlib.util.module_from_spec(loaded)
        try:
            loaded.loader.exec_module(module)
        except Exception as err:  # the user's code failed on import: say so in one line
            raise ValueError(f"importing {module_name} raised {type(err).__name__}: {err}") from err
    else:
        if "" not in sys.path:
            sys.path.insert(0, "")
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise  # no such module: the caller says so
        except Exception as err:
            raise ValueError(f"importing {module_name} raised {type(err).__name__}: {err}") from err
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{module_name} has no attribute {part!r}")
        obj = getattr(obj, part)
    return obj


def _expected(case: Case) -> dict[str, np.ndarray]:
    import torch_reference

    return dict(case.call(torch_reference.bptt).grads)


def _call_project(target: Callable[..., Any], case: Case) -> tuple[dict, list[str]]:
    """Run a project-style target; return its grads and what it changed."""
    before = copy.deepcopy(case)
    result = case.call(target)
    changed = [
        name
        for name in ("x", "y", "h0", "mask")
        if not np.array_equal(getattr(case, name), getattr(before, name))
    ]
    changed += [
        f"params.{k}"
        for k, v in case.params.as_dict().items()
        if not np.array_equal(v, before.params.as_dict()[k])
    ]
    return dict(result.grads), changed


def _call_tutorial(target: Callable[..., Any], case: Case) -> tuple[dict, list[str]]:
    """Run a tutorial-style class; return {"U", "V", "W"} grads and what it changed."""
    p = case.params
    model = target(p.D, p.H, case.truncate)
    model.U, model.V, model.W = p.U.copy(), p.V.copy(), p.W.copy()
    x, y = case.x.copy(), case.y.copy()
    dU, dV, dW = model.bptt(x, y)
    changed = [
        name for name, a, b in (("x", x, case.x), ("y", y, case.y)) if not np.array_equal(a, b)
    ]
    changed += [
        f"its own {name}"
        for name in ("U", "V", "W")
        if not np.array_equal(getattr(model, name), getattr(p, name))
    ]
    return {"U": dU, "V": dV, "W": dW}, changed


def check_one(target: Any, style: str, case: Case) -> Failure | None:
    """Run the target on one problem; a Failure saying what is wrong, or None."""
    return compare_one(target, style, case)[0]


def compare_one(target: Any, style: str, case: Case) -> tuple[Failure | None, list[Agreement]]:
    """Run the target on one problem: (a Failure or None, one Agreement per gradient)."""
    call = _call_tutorial if style == "tutorial" else _call_project
    try:
        got, changed = call(target, case)
    except Exception as err:  # noqa: BLE001 (the code under test may fail in any way: report it)
        return Failure(case, f"raised {type(err).__name__}: {err}"), []
    expected = _expected(case)
    if style == "tutorial":
        expected = {k: expected[k] for k in ("U", "V", "W")}
    missing = sorted(set(expected) - set(got))
    if missing:
        return Failure(case, f"returned no gradient for {', '.join(missing)}"), []
    for name, value in expected.items():
        shape = np.shape(got[name])
        if shape != value.shape:
            problem = f"d{name} has shape {shape}; expected {value.shape}"
            return Failure(case, problem, gradient=name), []
    rows = compare_grads({k: got[k] for k in expected}, expected, tolerance_for(case.params.dtype))
    wrong = [a for a in rows if not a.passed]
    if wrong:
        names = ", ".join(f"d{a.name}" for a in wrong)
        return Failure(case, f"wrong gradient: {names}", wrong, wrong[0].name), rows
    if changed:
        problem = f"changed {', '.join(changed)} (a call must not change its inputs)"
        return Failure(case, problem), rows
    return None, rows


def strategy_for(style: str) -> st.SearchStrategy[Case]:
    """tutorial_cases for "tutorial"; for "project", cases() at sizes that shrink fast."""
    if style == "tutorial":
        return tutorial_cases()
    return cases(max_T=20, max_N=4, max_dim=8)


def verify(
    target: Any,
    *,
    style: str = "project",
    max_examples: int = 200,
    random_seed: int = 0,
    name: str = "",
    show_progress: bool | None = False,
    strategy: st.SearchStrategy[Case] | None = None,
) -> Report:
    """Property-test ``target`` against the twin; shrink any failure to a minimal case.

    Args:
        target: a bptt-like function (style "project") or a tutorial-style class.
        style: "project" or "tutorial" (see the module docstring).
        max_examples: how many problems to try before calling it correct.
        random_seed: Hypothesis's seed, so that a run can be repeated exactly.
        name: how to call the target in the report.
        show_progress: a progress bar on standard error (None: when it is a terminal).
        strategy: the problems to draw (default: strategy_for(style)).
    Returns:
        Report with the number of examples run, the minimal Failure if any, and the
        passing comparison that came closest to its tolerance.
    """
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}; got {style!r}")
    runs = 0
    last: list[Failure] = []
    closest: list[Agreement] = []
    bar = Progress(max_examples, "verify", enabled=show_progress)

    @seed(random_seed)
    @settings(
        max_examples=max_examples,
        database=None,
        deadline=None,
        report_multiple_bugs=False,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(strategy_for(style) if strategy is None else strategy)
    def property_holds(case: Case) -> None:
        nonlocal runs
        runs += 1
        bar.update()
        failure, rows = compare_one(target, style, case)
        for row in rows:
            if row.passed and (not closest or _share(row) > _share(closest[0])):
                closest[:] = [row]
        if failure is not None:
            last.append(failure)  # the last one recorded is the shrunk, minimal one
            raise AssertionError(failure.problem)

    try:
        property_holds()
    except AssertionError:
        pass
    finally:
        bar.close()
    failure = last[-1] if last else None
    return Report(name or repr(target), style, runs, failure, closest[0] if closest else None)


def _share(a: Agreement) -> float:
    """How much of its tolerance a comparison used."""
    return a.max_abs / a.allowed if a.allowed > 0 else 0.0


def reproduction(report: Report) -> str:
    """A shell line that reruns the minimal failing problem and prints what is wrong."""
    assert report.failure is not None
    args = ", ".join(f"{k}={v!r}" for k, v in report.failure.case.recipe.items())
    return (
        'python -c "from manual_bptt.checking.cases import make_case; '
        "from manual_bptt.checking.verify import check_one, load, describe; "
        f"print(describe(check_one(load('{report.target}'), '{report.style}', "
        f'make_case({args}))))"'
    )


def describe(failure: Failure | None) -> str:
    """The failure in words: the problem, the sizes, and each wrong gradient's worst entry."""
    if failure is None:
        return "no failure: every gradient agrees with autograd"
    recipe = failure.case.recipe
    sizes = ", ".join(f"{k}={recipe[k]}" for k in ("T", "N", "D", "H", "K") if k in recipe)
    options = ", ".join(
        f"{k}={recipe[k]!r}" for k in recipe if k not in ("T", "N", "D", "H", "K", "dtype")
    )
    lines = [failure.problem, f"  sizes: {sizes}", f"  options: {options}"]
    lines += [f"  {a.describe()}" for a in failure.wrong]
    return "\n".join(lines)
