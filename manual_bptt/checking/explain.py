"""A verify Report in words, as JSON, and as a pytest file a student can keep.

- :func:`describe_report`: a verdict per gradient, the other failures, then each
  finding at its own minimal counterexample (sizes, options, worst entry, the arrays
  when they are small, and a line that reproduces it).
- :func:`report_json`: the same as a dict, ``{"passed", "examples", "gradients":
  {key: {"ok", "counterexample", "worst", ...}}, "other_failures": [...]}``.
- :func:`repro_file`: a standalone pytest file that rebuilds each finding's problem
  and asserts on the user's code (``bptt verify --save-repro FILE.py``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from manual_bptt.checking.styles import STYLES, make_style
from manual_bptt.checking.verify import (
    NOT_AGAIN,
    UNSHRUNK,
    Finding,
    Report,
    maker_of,
    reproduction,
)
from manual_bptt.compare import Agreement

SMALL = 24  # arrays with at most this many entries are printed in a counterexample
SIZES = ("T", "N", "D", "H", "K")


def describe_report(report: Report) -> str:
    """The whole report as text (what ``bptt verify`` prints)."""
    head = f"{report.target} ({report.style} style)"
    lines = []
    compared = any(v.compared for v in report.verdicts)
    if report.passed:
        inputs = "no call changed its inputs" if not report.changes else "see the warnings below"
        lines.append(
            f"{head}: every gradient agrees with {_reference(report)} on all {report.examples} examples"
            f"{_and_real(report)}; " + inputs
        )
    elif not compared:
        first = report.other[0].problem if report.other else "no call returned a gradient"
        lines.append(
            f"{head}: FAILED: no gradient could be compared: {first}; "
            f"{len(report.other)} failure(s) in {report.examples} examples"
        )
    else:
        wrong = sum(not v.ok for v in report.verdicts)
        lines.append(
            f"{head}: FAILED: {wrong} of {len(report.verdicts)} gradients wrong, "
            f"{len(report.other)} other failure(s); {report.examples} examples, "
            f"{report.calls} runs in all (searching, then shrinking each failure)"
        )
    width = max((len(v.gradient.label) for v in report.verdicts), default=0)
    for v in report.verdicts:
        if v.ok and v.compared == report.problems_run:
            verdict = f"agrees on all {v.compared} problems"
        elif v.ok:
            verdict = f"agrees on the {v.compared} of {report.problems_run} problems where it was compared"
        else:
            verdict = "WRONG"
        lines.append(f"  {v.gradient.label:<{width}}  {verdict}")
    for f in report.other:
        lines.append(f"  also: {f.problem}")
    for f in report.findings:
        lines.append("")
        lines.extend(describe_finding(report, f))
    for change in report.changes:
        lines.append("")
        lines.append(f"warning: {change.sentence} (first seen at {change.case.describe()})")
        lines.append(f"  {change.matters}; --strict-inputs makes this a failure")
    lines.append("")
    lines.append(_how_run(report))
    if report.printed:
        lines.append(f"(the code under test printed {report.printed} characters; not shown)")
    return "\n".join(lines)


def _reference(report: Report) -> str:
    """What the gradients were compared with: autograd, or (the generic forms) the
    derivative of the user's own forward or loss."""
    return str(getattr(STYLES.get(report.style), "reference", "autograd"))


def _and_real(report: Report) -> str:
    return f" and {report.real_sizes} at the sizes people run" if report.real_sizes else ""


def _how_run(report: Report) -> str:
    where = (
        "in a worker process of its own"
        + (f" (started again {report.restarts} time(s))" if report.restarts else "")
        if report.isolated
        else "in this process (an object that cannot be named for a worker)"
    )
    real = (
        f"; the {report.real_sizes} at the sizes people run took {report.real_seconds:.1f} s"
        if report.real_sizes
        else ""
    )
    return f"(the code ran {where}; each problem three times: as drawn, again, and with new weights{real})"


def describe_finding(report: Report, f: Finding) -> list[str]:
    """A finding at its minimal counterexample, with a line that reproduces it."""
    recipe = f.case.recipe
    style = make_style(report.style, **report.style_options)
    how = (
        "shrunk by Hypothesis"
        if f.shrunk
        else "not shrunk: each try costs the time limit"
        if f.key.endswith(UNSHRUNK)
        else "not shrunk: it did not fail again on a smaller problem; where it was first seen"
        if f.problem.endswith(NOT_AGAIN)
        else "not shrunk: where it was first seen"
    )
    title = f"WRONG {_label(report, f)}" if f.key in _gradient_keys(report) else f.problem
    lines = [f"{title}; minimal counterexample ({how}):"]
    sizes = getattr(f.case, "size_names", style.sizes)  # a generic form's letters
    lines.append("  sizes: " + ", ".join(f"{k}={recipe[k]}" for k in sizes))
    shown = [
        k for k in recipe if k not in (*sizes, "shapes", "keep") and _varies(style, k, recipe[k])
    ]
    lines.append("  options: " + ", ".join(f"{k}={recipe[k]!r}" for k in shown))
    if f.worst is not None:
        lines.append(f"  worst entry: {f.worst.describe()}")
    for name, value in style.arrays(f.case).items():
        array = np.asarray(value)
        if array.size <= SMALL:
            text = re.sub(r"\s+", " ", np.array2string(array, precision=6, separator=", "))
            lines.append(f"  {name} = {text}")
    lines.append("  reproduce: " + reproduction(report, f))
    return lines


# A recipe's option → the Space field that says which values a style may draw.
SPACE_FIELDS = {
    "activation": "activations",
    "tokens": "tokens",
    "batched": "batched",
    "with_h0": "h0",
    "with_mask": "mask",
    "reduction": "reductions",
    "biases": "biases",
    "dtype": "dtypes",
}


def _varies(style: Any, key: str, value: Any) -> bool:
    """Whether an option is worth showing: the seed and scale, a truncation that is
    there, and any option the style can draw more than one way (the rest are fixed)."""
    if key in SIZES:
        return False
    if key in ("truncate", "chunk"):
        return value is not None
    field = SPACE_FIELDS.get(key)
    if field is None:
        return True
    return len(getattr(style.space, field)) > 1 or (key == "dtype" and value != "float64")


def _gradient_keys(report: Report) -> set[str]:
    return {v.gradient.key for v in report.verdicts}


def _label(report: Report, f: Finding) -> str:
    return next(v.gradient.label for v in report.verdicts if v.gradient.key == f.key)


def _number(value: float) -> float | str:
    """A float for JSON; "nan", "inf" or "-inf" as strings (JSON has no such numbers)."""
    return value if np.isfinite(value) else str(value)


def _worst(a: Agreement | None) -> dict[str, Any] | None:
    if a is None:
        return None
    return {
        "name": a.name,
        "index": list(a.worst_index),
        "expected": _number(a.expected),
        "got": _number(a.got),
        "abs_diff": _number(a.max_abs),
        "allowed": a.allowed,
        "relative": _number(a.max_rel),
    }


def _counterexample(f: Finding | None) -> dict[str, Any] | None:
    return None if f is None else dict(f.case.recipe)


def report_json(report: Report) -> dict[str, Any]:
    """The report as a JSON-ready dict; gradients under the project's names (U, W, V, b,
    c, h0, x; "step:U" for a style's second function), each also with its style's own
    name ("style_name") and the function that returns it."""
    gradients = {
        v.gradient.key: {
            "ok": v.ok,
            "counterexample": _counterexample(v.finding),
            "worst": _worst(v.finding.worst) if v.finding else None,
            "style_name": v.gradient.name,
            "function": v.gradient.function,
            "relation": v.gradient.relation,
            "examples": v.compared,
        }
        for v in report.verdicts
    }
    other = [
        {
            "problem": f.problem,
            "counterexample": _counterexample(f),
            "worst": _worst(f.worst),
            "shrunk": f.shrunk,
        }
        for f in report.other
    ]
    return {
        "passed": report.passed,
        "examples": report.examples,
        "gradients": gradients,
        "other_failures": other,
        "in_place_changes": [
            {
                "problem": c.sentence,
                "matters": c.matters,
                "role": c.role,
                "case": dict(c.case.recipe),
            }
            for c in report.changes
        ],
        "isolated": report.isolated,
    }


def repro_file(report: Report, spec: str, out: Path) -> str:
    """The text of a pytest file that rebuilds each finding's problem and asserts that the
    code under test (``spec``, as given to ``bptt verify``) gets it right.

    A file path in ``spec`` is written relative to ``out``'s folder, so that the test
    and the code can move together.
    """
    where, sep, attr = spec.partition(":")
    if where.endswith((".py", ".ipynb")):
        relative = os.path.relpath(Path(where).resolve(), out.resolve().parent)
        locate = f"str(Path(__file__).parent / {relative!r}) + {(sep + attr)!r}"
    else:
        locate = repr(spec)
    options = "".join(f", {k}={v!r}" for k, v in report.style_options.items())
    module, maker = maker_of(report.findings[0].case) if report.findings else maker_of(None)
    lines = [
        f'"""Regression tests written by `bptt verify {spec} --style {report.style}`.',
        "",
        "Each test rebuilds one minimal counterexample that verify found and asserts that",
        "the code gets it right (every gradient agrees with autograd, nothing else fails).",
        '"""',
        "",
        "from pathlib import Path",
        "",
        f"from {module} import {maker}",
        "from manual_bptt.testing import assert_case_correct",
        "",
        f"TARGET = {locate}",
    ]
    for number, f in enumerate(report.findings, start=1):
        args = ", ".join(f"{k}={v!r}" for k, v in f.case.recipe.items())
        lines += [
            "",
            "",
            f"def test_counterexample_{number}():",
            f"    # {f.problem}",
            f"    case = {maker}({args})",
            f"    assert_case_correct(TARGET, case, style={report.style!r}{options})",
        ]
    return "\n".join(lines) + "\n"
