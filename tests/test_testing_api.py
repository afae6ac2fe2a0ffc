"""manual_bptt.testing as docs/verify.md shows it: its example test file, run as is by
pytest from the repository's top folder, and the API's own promises."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from manual_bptt.checking import gallery
from manual_bptt.testing import assert_bptt_correct, assert_case_correct, assert_close, make_case
from tests.helpers import run_pytest

ROOT = Path(__file__).resolve().parent.parent


API_PAGE = ROOT / "docs" / "verify.md"


def api_example() -> str:
    text = API_PAGE.read_text(encoding="utf-8")
    match = re.search(r"<!-- api-example -->\n```python\n(.*?)```", text, re.DOTALL)
    assert match, "docs/verify.md has no <!-- api-example --> python block"
    return match.group(1)


def test_the_docs_example_test_file_passes_as_written(tmp_path) -> None:
    path = tmp_path / "test_docs_example.py"
    path.write_text(api_example())
    run = run_pytest(path, cwd=ROOT, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 passed" in run.stdout


def test_assert_bptt_correct_raises_with_the_full_report() -> None:
    with pytest.raises(AssertionError) as info:
        assert_bptt_correct(gallery.WindowOffByOne, style="tutorial", examples=50)
    report = str(info.value)
    assert "WRONG dU (bptt); minimal counterexample" in report
    assert "WRONG dW (bptt); minimal counterexample" in report
    assert "dV (bptt)  agrees on all 52 problems" in report  # 50 drawn, 2 at real sizes


def test_assert_case_correct_checks_one_problem() -> None:
    case = make_case(
        T=2, N=1, D=2, H=1, K=2, seed=0, tokens=True, batched=False, truncate=0, biases=False
    )
    assert_case_correct(gallery.TutorialRNN, case, style="tutorial")
    with pytest.raises(AssertionError, match="wrong gradient: dW"):
        assert_case_correct(gallery.WindowOffByOne, case, style="tutorial")


def test_assert_close_follows_the_policy_per_dtype() -> None:
    expected = np.array([[1.0, -2.0], [0.5, 0.0]])
    assert_close(expected + 1e-11, expected, name="dW")  # within 1e-12 + 1e-10·2
    with pytest.raises(AssertionError, match=r"dW\[0, 1\]: expected -2, got -2.000001"):
        assert_close(expected + np.array([[0, -1e-6], [0, 0]]), expected, name="dW")
    single = expected.astype(np.float32)
    assert_close(single * (1 + 1e-5), single, name="dW")  # float32: rtol 1e-4
    with pytest.raises(AssertionError, match="has shape"):
        assert_close(expected[0], expected)
    with pytest.raises(AssertionError, match="MISMATCH"):
        assert_close(expected * np.nan, expected)
