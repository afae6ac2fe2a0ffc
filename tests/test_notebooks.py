"""The teaching notebooks (docs/teaching/) as a class meets them: committed without
outputs and as their generator writes them, and run from top to bottom in a fresh
kernel, failing on any cell's error. The walk-through's exercises start unanswered;
the solutions answer every one of them right.

Run time (docs/teaching/bptt.ipynb's closing note), on this project's 2-core machine
while other jobs ran (load average 4 to 6): 16 to 27 s per notebook with nbclient as
below, about 26 s of CPU for the two; this file with -n 2, both side by side, 45 to 71 s
of wall time.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

TEACHING = Path(__file__).resolve().parent.parent / "docs" / "teaching"
EXERCISES = ("1", "2", "3A", "3B", "3C", "4", "5", "6", "7", "8")
# Seconds a cell may take before nbclient calls it hung (the slowest, verify on three
# slips, takes about 5 s alone): a hang fails the test instead of stalling CI.
CELL_TIMEOUT = 300
NOT_ANSWERED = "not answered yet"
RIGHT = "✓ right"


def generator() -> ModuleType:
    """docs/teaching/make_notebooks.py, imported from its file (docs/ is no package)."""
    spec = importlib.util.spec_from_file_location("make_notebooks", TEACHING / "make_notebooks.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_notebooks_are_committed_as_their_generator_writes_them() -> None:
    make = generator()
    assert set(make.NOTEBOOKS) == {"bptt.ipynb", "bptt-solutions.ipynb"}
    for name, solutions in make.NOTEBOOKS.items():
        committed = (TEACHING / name).read_text(encoding="utf-8")
        assert committed == make.render(solutions), (
            f"{name} differs from what docs/teaching/make_notebooks.py writes: run it"
        )


@pytest.mark.parametrize("name", ["bptt.ipynb", "bptt-solutions.ipynb"])
def test_no_outputs_are_committed(name: str) -> None:
    nb = nbformat.read(TEACHING / name, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: a cell with outputs: {cell.source[:60]!r}"
            assert cell.execution_count is None


def executed(name: str, folder: Path) -> list[str]:
    """Run the notebook in a fresh kernel with ``folder`` as its working folder (the
    files it writes land there); every line it printed. A cell's error raises."""
    nb = nbformat.read(TEACHING / name, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
    )
    client.execute()
    printed = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                printed.extend(output.text.splitlines())
    return printed


def verdicts(printed: list[str]) -> dict[str, str]:
    """exercise → what its check printed."""
    found = [re.fullmatch(r"exercise (\w+): (.*)", line) for line in printed]
    return {m.group(1): m.group(2) for m in found if m}


@pytest.mark.slow
def test_the_walk_through_runs_and_leaves_every_exercise_to_the_student(tmp_path: Path) -> None:
    said = verdicts(executed("bptt.ipynb", tmp_path))
    assert list(said) == list(EXERCISES)
    # exercise 4 starts from a file whose backward returns zeros: verify runs on it
    expected = {e: NOT_ANSWERED for e in EXERCISES}
    expected["4"] = "✗ not yet right: verify found something wrong (above); exit code 1"
    assert said == expected
    assert (tmp_path / "my_rnn_layers.py").exists()  # written where the notebook runs


@pytest.mark.slow
def test_the_solutions_run_and_answer_every_exercise_right(tmp_path: Path) -> None:
    printed = executed("bptt-solutions.ipynb", tmp_path)
    assert verdicts(printed) == dict.fromkeys(EXERCISES, RIGHT)


def test_the_readme_lists_the_walk_throughs_headings_and_links_both_notebooks() -> None:
    readme = (TEACHING.parent.parent / "README.md").read_text(encoding="utf-8")
    nb = nbformat.read(TEACHING / "bptt.ipynb", as_version=4)
    headings = [
        line[3:]
        for cell in nb.cells
        if cell.cell_type == "markdown"
        for line in cell.source.splitlines()
        if line.startswith("## ")
    ]
    assert len(headings) == 9, headings  # setup, the seven steps, the closing note
    listed = re.findall(
        r"^- (.*)$", readme.split("](docs/teaching/bptt-solutions.ipynb)")[1], re.MULTILINE
    )
    assert listed[: len(headings)] == headings
    for name in ("bptt.ipynb", "bptt-solutions.ipynb"):
        assert f"](docs/teaching/{name})" in readme
