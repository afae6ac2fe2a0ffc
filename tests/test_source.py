"""Code where it lives: FILE.py:NAME and NOTEBOOK.ipynb:NAME are read for their
definitions and never run; what was skipped or failed is said in one line; code that
cannot be parsed is a one-line usage error naming the file (and cell) and the line."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from manual_bptt.checking.source import load_with_note
from manual_bptt.checking.styles import UsageError
from manual_bptt.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def notebook(path: Path, *cells: str) -> Path:
    path.write_text(
        json.dumps(
            {
                "cells": [
                    {
                        "cell_type": "code",
                        "metadata": {},
                        "outputs": [],
                        "execution_count": None,
                        "source": textwrap.dedent(c).strip(),
                    }
                    for c in cells
                ],
                "metadata": {},
                "nbformat": 4,
                "nbformat_minor": 5,
            }
        )
    )
    return path


def test_min_char_rnn_py_is_not_run_only_its_definitions_taken(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no input.txt here: running the file would fail at once
    lossFun, note = load_with_note(f"{EXAMPLES / 'min-char-rnn.py'}:lossFun")
    assert callable(lossFun)
    assert note.startswith("took from min-char-rnn.py: 1 import, 3 constants, 2 functions;")
    assert "skipped 16 other statements" in note
    assert lossFun.__globals__["hidden_size"] == 100  # a simple constant is taken
    assert "data" not in lossFun.__globals__  # open('input.txt').read() was not run
    assert "Wxh" not in lossFun.__globals__  # nor the random weights


def test_a_notebook_gives_its_class_with_the_methods_attached_in_later_cells(tmp_path) -> None:
    RNNNumpy, note = load_with_note(f"{EXAMPLES / 'rnn_tutorial.ipynb'}:RNNNumpy")
    assert {"forward_propagation", "bptt", "sgd_step"} <= set(vars(RNNNumpy))
    assert "3 attached methods" in note
    assert "cell 2 lines" in note  # the download cell was skipped, and said where


def test_what_prints_or_trains_at_top_level_is_skipped_and_said(tmp_path, capsys) -> None:
    path = tmp_path / "script.py"
    path.write_text(
        textwrap.dedent("""
        import manual_bptt
        from no_such_package import helper
        print("TRAINING STARTS")
        def bptt(params, x, y, **options):
            return manual_bptt.bptt(params, x, y, **options)
        while True:
            pass
    """)
    )
    assert main(["verify", f"{path}:bptt", "--examples", "10"]) == 0
    captured = capsys.readouterr()
    assert "TRAINING STARTS" not in captured.out + captured.err
    (note,) = captured.err.strip().splitlines()
    assert note.startswith("took from script.py: 1 import, 1 function; skipped 2 other")
    assert "failed and skipped: from no_such_package import helper (line 3: ModuleNotFound" in note


def test_a_failed_import_matters_only_when_the_code_needs_it(tmp_path, capsys) -> None:
    path = tmp_path / "needs_it.py"
    path.write_text(
        "from no_such_package import helper\n"
        "def bptt(params, x, y, **options):\n    return helper(params)\n"
    )
    assert main(["verify", f"{path}:bptt", "--examples", "5"]) == 1
    assert "f raised NameError: name 'helper' is not defined" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "py2.py",
            "import numpy\nprint 'hello'\n",
            "cannot parse py2.py, line 2: Missing parentheses",
        ),
        ("broken.py", "def f(:\n", "cannot parse broken.py, line 1:"),
    ],
)
def test_code_that_cannot_be_parsed_is_one_line_exit_2(tmp_path, capsys, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    assert main(["verify", f"{path}:f"]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_a_notebook_parse_error_names_the_cell(tmp_path, capsys) -> None:
    path = notebook(tmp_path / "nb.ipynb", "x = 1", "!pip install numpy\n%time y = 2", "print 'x'")
    assert main(["verify", f"{path}:f"]) == 2
    assert "cannot parse nb.ipynb cell 3, line 1" in capsys.readouterr().err


def test_magics_are_blanked_and_a_missing_name_is_a_usage_error(tmp_path) -> None:
    path = notebook(tmp_path / "nb.ipynb", "%matplotlib inline\nimport numpy as np", "K = 3")
    with pytest.raises(UsageError, match="defines no RNN"):
        load_with_note(f"{path}:RNN")
    module, note = load_with_note(str(path))
    assert module.K == 3
    assert note == "took from nb.ipynb: 1 import, 1 constant"


def test_a_missing_file_is_a_usage_error(tmp_path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        load_with_note(f"{tmp_path / 'nope.py'}:f")
