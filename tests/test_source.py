"""Code where it lives: FILE.py:NAME and NOTEBOOK.ipynb:NAME are read tolerantly and only
their definitions taken, never run as a whole. Python 2 statements and cells are skipped
and listed; magics are treated as IPython treats them; assignments computed by a call are
evaluated, each within a time limit; a name the code needs from a skipped statement is
explained; what cannot be read at all (undecodable, uncompilable, malformed notebooks)
is one line and exit 2."""

from __future__ import annotations

import json
import re
import shutil
import signal
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import manual_bptt
from manual_bptt.checking import source
from manual_bptt.checking.source import explain_missing_name, load_with_note
from manual_bptt.checking.styles import UsageError
from manual_bptt.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SOURCES = Path(__file__).resolve().parent / "data" / "verify_sources"


def stored(folder: Path, name: str) -> Path:
    """A copy of tests/data/verify_sources' NAME in ``folder``, under its real name (it is
    stored as NAME.txt or NAME.json, names that ruff does not read; see the README there)."""
    (original,) = SOURCES.glob(f"{name}.*")
    return Path(shutil.copy(original, folder / name))


@pytest.fixture
def python2_notebook(tmp_path: Path) -> Path:
    """The tutorial-shaped notebook, Python 2 in part, with its Python 2 rnn_utils.py."""
    stored(tmp_path, "rnn_utils.py")
    return stored(tmp_path, "rnn_python2.ipynb")


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


def python_file(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def one_line_error(capsys: pytest.CaptureFixture[str], message: str) -> None:
    """verify's stderr is exactly one line: "bptt verify: " and the message."""
    err = capsys.readouterr().err
    assert re.fullmatch("bptt verify: " + re.escape(message) + "\n", err), err


def test_min_char_rnn_py_is_not_run_only_its_definitions_taken(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no input.txt here: running the file would fail at once
    lossFun, note = load_with_note(f"{EXAMPLES / 'min-char-rnn.py'}:lossFun")
    assert callable(lossFun)
    assert note.startswith("took from min-char-rnn.py: 1 import, 4 constants, 2 computed values")
    assert "failed and skipped: data = open('input.txt', 'r').read() (line 15: FileNotFound" in note
    assert lossFun.__globals__["hidden_size"] == 100  # a simple constant is taken
    assert "data" not in lossFun.__globals__  # open('input.txt') was tried, and failed
    assert "Wxh" not in lossFun.__globals__  # it needs vocab_size, which needs data
    assert explain_missing_name(lossFun, "Wxh") == (
        "lossFun needs the name Wxh, defined at line 28, which was skipped "
        "(it raised NameError: name 'vocab_size' is not defined)"
    )


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


# Python 2, and other code that is not Python 3: skipped statement by statement.


def test_a_file_that_is_not_python_3_is_read_statement_by_statement(tmp_path) -> None:
    path = python_file(
        tmp_path / "py2.py",
        """
        import numpy as np
        print 'loading'
        def f(x):
            return np.tanh(x)
        print f(0.5)
        """,
    )
    f, note = load_with_note(f"{path}:f")
    assert f(0.5) == np.tanh(0.5)
    assert note == (
        "took from py2.py: 1 import, 1 function; "
        "skipped 2 statements that are not Python 3 (line 2, line 5)"
    )


def test_chunks_left_open_decorated_or_continued_are_joined_when_cut(tmp_path) -> None:
    # The print makes the whole file fail; the rest must survive the cut into chunks,
    # though each of these has lines at column 0 that do not start a statement.
    path = python_file(
        tmp_path / "chunks.py",
        '''
        import functools
        print 'python 2 here'
        DOC = """
        column zero, inside a string
        """
        @functools.lru_cache(maxsize=None)
        def cached(n):
            return n
        try:
            import numpy
        except ImportError:
            numpy = None
        TOTAL = sum([
        1, 2,
        ])
        if TOTAL > 5:
            SIGN = 1
        else:
            SIGN = -1
        ''',
    )
    module, note = load_with_note(str(path))
    assert module.DOC == "\ncolumn zero, inside a string\n"
    assert module.cached(3) == 3
    assert module.cached.cache_info().hits == 0  # the decorator was applied
    assert module.TOTAL == 3
    assert note == (
        "took from chunks.py: 1 import, 1 constant, 1 function, 1 computed value; "
        "skipped 2 other statements (lines 9-12, lines 16-19); "
        "skipped 1 statement that is not Python 3 (line 2)"
    )


def test_a_method_attached_to_a_class_that_was_skipped_is_said_to_need_it(tmp_path) -> None:
    path = python_file(
        tmp_path / "old.py",
        """
        class Old:
            def run(self):
                print 'old'
        def run(self):
            return 1
        Old.run = run
        """,
    )
    run, note = load_with_note(f"{path}:run")
    assert run(None) == 1
    assert note == (
        "took from old.py: 1 function; skipped 1 statement that is not Python 3 (lines 1-3); "
        "skipped 1 statement that needs a name skipped before it (line 6)"
    )


def test_a_notebook_cell_that_is_not_python_3_is_skipped_and_listed(tmp_path) -> None:
    path = notebook(tmp_path / "nb.ipynb", "x = 1", "!pip install numpy\n%time y = 2", "print 'x'")
    module, note = load_with_note(str(path))
    assert module.x == 1
    assert note == (
        "took from nb.ipynb: 1 constant; skipped 1 statement that is not Python 3 (cell 3 line 1)"
    )


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "py2.py",
            "import numpy\ndef f(x):\n    print x\n",
            (
                "cannot parse py2.py, line 3: Missing parentheses in call to 'print'. "
                "Did you mean print(...)? (is it Python 3?), where f is defined"
            ),
        ),
        (
            "broken.py",
            "def f(:\n",
            "cannot parse broken.py, line 1: invalid syntax (is it Python 3?), where f is defined",
        ),
    ],
)
def test_a_target_whose_definition_is_not_python_3_is_one_line_naming_the_line(
    tmp_path, capsys, name, text, message
) -> None:
    path = tmp_path / name
    path.write_text(text)
    assert main(["verify", f"{path}:f"]) == 2
    one_line_error(capsys, message)


def test_a_python2_notebook_gives_its_class_with_its_python3_methods(python2_notebook) -> None:
    RNNNumpy, note = load_with_note(f"{python2_notebook}:RNNNumpy")
    assert {"forward_propagation", "bptt"} <= set(vars(RNNNumpy))
    assert "gradient_check" not in vars(RNNNumpy)  # its def is Python 2
    assert note == (
        "took from rnn_python2.ipynb: 6 imports, 2 constants, 1 class, 2 functions, "
        "2 attached methods, 2 computed values; skipped 4 other statements "
        "(cell 2 lines 5-6, cell 5 line 1, cell 7 line 9, cell 7 line 11); "
        "skipped 5 statements that are not Python 3 "
        "(cell 2 line 4, cell 2 line 7, cell 5 line 4, cell 7 lines 1-5, cell 9 lines 1-6); "
        "skipped 5 statements that need a name skipped before them "
        "(cell 2 lines 8-9, cell 5 line 3, cell 7 line 7, cell 9 line 8); "
        "took from rnn_utils.py, which Python 3 cannot import: 1 import, 1 function"
    )


def test_the_python2_tutorial_notebook_verifies_in_tutorial_style(python2_notebook, capsys):
    target = f"{python2_notebook}:RNNNumpy"
    assert main(["verify", target, "--style", "tutorial", "--examples", "10"]) == 0
    assert "every gradient agrees with autograd" in capsys.readouterr().out


PYTHON2_HELPERS = """
import numpy as np
def softmax(z):
    return np.exp(z) / np.sum(np.exp(z))
def report(x):
    print "value", x
"""


@pytest.mark.parametrize(
    ("statement", "use"),
    [
        ("from helpers import *", "softmax"),
        ("from helpers import softmax as sm", "sm"),
        ("import helpers", "helpers.softmax"),
        ("import helpers as h", "h.softmax"),
    ],
)
def test_a_module_beside_it_that_python_3_cannot_import_is_read_for_its_definitions(
    tmp_path, statement, use
) -> None:
    python_file(tmp_path / "helpers.py", PYTHON2_HELPERS)
    path = notebook(tmp_path / "nb.ipynb", statement, f"def f(z):\n    return {use}(z)")
    f, note = load_with_note(f"{path}:f")
    assert f(np.zeros(2)).tolist() == [0.5, 0.5]
    assert note == (
        "took from nb.ipynb: 1 import, 1 function; "
        "took from helpers.py, which Python 3 cannot import: 1 import, 1 function"
    )


def test_a_name_such_a_module_lacks_is_a_failed_import(tmp_path) -> None:
    python_file(tmp_path / "helpers.py", PYTHON2_HELPERS)
    _module, note = load_with_note(str(notebook(tmp_path / "nb.ipynb", "from helpers import tanh")))
    assert note == (
        "took from nb.ipynb: nothing; failed and skipped: from helpers import tanh "
        "(cell 1 line 1: ImportError: helpers.py (read for its definitions) has no tanh); "
        "took from helpers.py, which Python 3 cannot import: 1 import, 1 function"
    )


def test_two_python2_files_importing_each_other_are_each_read_once(tmp_path) -> None:
    python_file(tmp_path / "second.py", "import first\nprint 'second'\ndef g():\n    return 2\n")
    path = python_file(
        tmp_path / "first.py", "import second\nprint 'first'\ndef f():\n    return second.g()\n"
    )
    f, note = load_with_note(f"{path}:f")
    assert f() == 2
    assert note == (
        "took from first.py: 1 import, 1 function; "
        "skipped 1 statement that is not Python 3 (line 2); "
        # second.py's "import first" finds first.py being read, as Python's own circular
        # imports find the module being run
        "took from second.py, which Python 3 cannot import: 1 import, 1 function"
    )


# A name the code needs from a skipped statement: explained in a sentence.


@pytest.mark.parametrize(
    ("name", "explanation"),
    [
        ("train_with_sgd", "defined at cell 9 line 1, which was skipped (not Python 3)"),
        (
            "sentences",
            (
                "defined at cell 2 line 5, which was skipped "
                "(only definitions are taken, not a with block)"
            ),
        ),
        (
            "X_train",
            (
                "defined at cell 2 line 8, which was skipped "
                "(it raised NameError: name 'sentences' is not defined)"
            ),
        ),
    ],
)
def test_a_name_from_a_skipped_cell_is_explained(python2_notebook, name, explanation) -> None:
    RNNNumpy, _ = load_with_note(f"{python2_notebook}:RNNNumpy")
    assert explain_missing_name(RNNNumpy, name) == f"RNNNumpy needs the name {name}, {explanation}"


SKIPPING = """
import numpy as np
from no_such_package import helper
EPS = np.finfo(float).eps
SCALE = 1 / 0
LIMIT = 0777
for i in range(3):
    LAST = i
class Model:
    def loss(self, x):
        return x + EPS + SCALE + LIMIT + LAST + helper
def f(x):
    return Model().loss(x)
"""


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("SCALE", "line 4, which was skipped (it raised ZeroDivisionError: division by zero)"),
        ("LIMIT", "line 5, which was skipped (not Python 3)"),
        ("LAST", "line 6, which was skipped (only definitions are taken, not a for loop)"),
        ("i", "line 6, which was skipped (only definitions are taken, not a for loop)"),
        (
            "helper",
            (
                "line 2, which was skipped (it raised ModuleNotFoundError: "
                "No module named 'no_such_package')"
            ),
        ),
    ],
)
def test_a_name_a_skipped_statement_would_define_is_explained_for_any_loaded_object(
    tmp_path, name, reason
) -> None:
    module, _ = load_with_note(str(python_file(tmp_path / "skipping.py", SKIPPING)))
    for obj, who in [
        (module.f, "f"),
        (module.Model, "Model"),
        (module.Model().loss, "Model.loss"),
        (module, "skipping"),
    ]:
        assert (
            explain_missing_name(obj, name) == f"{who} needs the name {name}, defined at {reason}"
        )


@pytest.mark.parametrize("name", ["EPS", "np", "no_such_name_anywhere"])
def test_a_name_that_was_taken_or_never_defined_is_not_explained(tmp_path, name) -> None:
    module, _ = load_with_note(str(python_file(tmp_path / "skipping.py", SKIPPING)))
    assert explain_missing_name(module.f, name) is None


def test_a_name_defined_again_after_a_skipped_statement_is_not_explained(tmp_path) -> None:
    path = python_file(
        tmp_path / "again.py",
        """
        text = open("no_such_file.txt").read()
        text = "a fallback"
        def f():
            return text
        """,
    )
    f, _ = load_with_note(f"{path}:f")
    assert f() == "a fallback"
    assert explain_missing_name(f, "text") is None


def test_objects_not_loaded_from_a_file_have_nothing_to_explain() -> None:
    assert explain_missing_name(manual_bptt.bptt, "helper") is None
    assert explain_missing_name(manual_bptt, "helper") is None
    assert explain_missing_name(3, "helper") is None


def test_a_name_perhaps_from_a_failed_star_import_is_explained(tmp_path) -> None:
    path = python_file(
        tmp_path / "star.py",
        """
        from no_such_package import *
        def f(x):
            return softmax(x)
        """,
    )
    f, _ = load_with_note(f"{path}:f")
    assert explain_missing_name(f, "softmax") == (
        "f needs the name softmax, perhaps from line 1 (from no_such_package import *), "
        "which was skipped (it raised ModuleNotFoundError: No module named 'no_such_package')"
    )
    assert explain_missing_name(f, "len") is None  # a builtin is never missing


def test_a_target_that_was_skipped_says_why(tmp_path, capsys) -> None:
    path = python_file(tmp_path / "skipped.py", "import numpy as np\nf = int('x')\n")
    assert main(["verify", f"{path}:f"]) == 2
    one_line_error(
        capsys,
        f"{path} defines no f: f at line 2 was skipped "
        "(it raised ValueError: invalid literal for int() with base 10: 'x')",
    )


# Notebook magics, as IPython treats them.


@pytest.mark.parametrize(
    "magic", ["%%writefile helpers.py", "%%bash", "%%html", "%%script python2", "%%file x.py"]
)
def test_cell_magic_bodies_that_are_not_python_in_the_notebook_are_not_definitions(
    tmp_path, magic
) -> None:
    body = "def f(x):\n    return x\nK = 2"
    module, note = load_with_note(str(notebook(tmp_path / "nb.ipynb", "K = 1", f"{magic}\n{body}")))
    assert not hasattr(module, "f")
    assert module.K == 1
    assert note == "took from nb.ipynb: 1 constant; skipped 1 other statement (cell 2 lines 1-4)"


@pytest.mark.parametrize("magic", ["%%time", "%%capture output", "%%prun -s cumulative"])
def test_time_and_capture_cell_bodies_are_definitions(tmp_path, magic) -> None:
    body = "def f(x):\n    return x\nK = 2"
    module, note = load_with_note(str(notebook(tmp_path / "nb.ipynb", "K = 1", f"{magic}\n{body}")))
    assert module.f(3) == 3
    assert module.K == 2
    assert note == "took from nb.ipynb: 2 constants, 1 function"


def test_line_magics_shell_and_help_lines_are_blanked_only_where_a_statement_starts(
    tmp_path,
) -> None:
    cell = '''
    %matplotlib inline
    files = !ls
    t = %timeit -o sum(range(3))
    np.sum?
    !pip install numpy
    TOTAL = (10
    % 4)
    DOC = """
    !not a shell line
    %not a magic
    """
    '''
    module, note = load_with_note(str(notebook(tmp_path / "nb.ipynb", cell)))
    assert module.TOTAL == 2
    assert module.DOC == "\n!not a shell line\n%not a magic\n"
    assert not hasattr(module, "files")
    assert not hasattr(module, "t")
    assert note == "took from nb.ipynb: 2 constants"


def test_a_notebook_may_await_at_the_top_level(tmp_path) -> None:
    cell = """
    import asyncio
    await asyncio.sleep(0)
    result = await asyncio.sleep(0, 5)
    def f():
        return 1
    """
    module, note = load_with_note(str(notebook(tmp_path / "nb.ipynb", cell)))
    assert module.f() == 1
    assert (
        note
        == "took from nb.ipynb: 1 import, 1 function; skipped 2 other statements (cell 1 lines 2-3)"
    )


def test_magics_are_blanked_and_a_missing_name_is_a_usage_error(tmp_path) -> None:
    path = notebook(tmp_path / "nb.ipynb", "%matplotlib inline\nimport numpy as np", "K = 3")
    with pytest.raises(UsageError, match="defines no RNN"):
        load_with_note(f"{path}:RNN")
    module, note = load_with_note(str(path))
    assert module.K == 3
    assert note == "took from nb.ipynb: 1 import, 1 constant"


def test_an_nbformat3_notebook_is_read_from_its_worksheets(tmp_path) -> None:
    path = tmp_path / "old.ipynb"
    code = {"cell_type": "code", "language": "python", "input": ["def f():\n", "    return 3"]}
    heading = {"cell_type": "heading", "level": 1, "source": ["Title"]}
    path.write_text(json.dumps({"nbformat": 3, "worksheets": [{"cells": [heading, code]}]}))
    f, note = load_with_note(f"{path}:f")
    assert f() == 3
    assert note == "took from old.ipynb: 1 function"


# What is taken: definitions, evaluated assignments, methods attached to the file's classes.


def test_an_attribute_assignment_is_taken_only_onto_a_class_of_the_file(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(np, "abs", np.abs)  # put back after the test, whatever happens
    monkeypatch.setattr(manual_bptt, "bptt", manual_bptt.bptt)
    path = python_file(
        tmp_path / "attach.py",
        """
        import numpy as np
        import manual_bptt
        np.abs = lambda x: "hijacked"
        manual_bptt.bptt = None
        class RNN:
            pass
        def bptt(self, x, y):
            return "mine"
        RNN.bptt = bptt
        RNN.bptt.__doc__ = "not an attribute of a class"
        """,
    )
    RNN, note = load_with_note(f"{path}:RNN")
    assert np.abs(-2) == 2  # numpy's own, untouched
    assert callable(manual_bptt.bptt)
    assert RNN().bptt(0, 0) == "mine"
    assert RNN.bptt.__doc__ is None
    assert note == (
        "took from attach.py: 2 imports, 1 class, 1 function, 1 attached method; "
        "skipped 3 other statements (lines 3-4, line 10)"
    )


def test_a_top_level_assignment_computed_by_a_call_or_a_display_is_evaluated(tmp_path) -> None:
    path = python_file(
        tmp_path / "computed.py",
        """
        import numpy as np
        EPS = np.finfo(float).eps
        cache = {}
        SQUARES = [i * i for i in range(4)]
        quotient, remainder = divmod(7, 2)
        scale = lambda x: 2 * x
        def stable_log(p):
            return np.log(p + EPS)
        """,
    )
    stable_log, note = load_with_note(f"{path}:stable_log")
    assert stable_log(0.0) == np.log(np.finfo(float).eps)
    namespace = stable_log.__globals__
    assert (namespace["cache"], namespace["SQUARES"]) == ({}, [0, 1, 4, 9])
    assert (namespace["quotient"], namespace["remainder"], namespace["scale"](3)) == (3, 1, 6)
    assert note == "took from computed.py: 1 import, 4 computed values, 2 functions"


def test_code_using_a_computed_constant_verifies(tmp_path, capsys) -> None:
    path = python_file(
        tmp_path / "uses_eps.py",
        """
        import numpy as np
        import manual_bptt
        EPS = np.finfo(float).eps
        def bptt(params, x, y, **options):
            assert 0 < EPS < 1e-10
            return manual_bptt.bptt(params, x, y, **options)
        """,
    )
    assert main(["verify", f"{path}:bptt", "--examples", "5"]) == 0, capsys.readouterr().out


def test_an_assignment_that_raises_is_skipped_and_reported_never_fatal(tmp_path) -> None:
    path = python_file(
        tmp_path / "raises.py",
        """
        TEXT = open("no_such_file.txt").read()
        WORDS = TEXT.split()
        A_RATHER_LONG_NAME_FOR_A_NUMBER = int("this string is no number, and it goes on")
        def f():
            return 1
        """,
    )
    f, note = load_with_note(f"{path}:f")
    assert f() == 1
    assert note == (
        "took from raises.py: 1 function; failed and skipped: "
        "TEXT = open('no_such_file.txt').read() (line 1: FileNotFoundError: [Errno 2] "
        "No such file or directory: 'no_such_file.txt'); "
        "A_RATHER_LONG_NAME_FOR_A_NUMBER = int('this string is no nu… (line 3: ValueError: "
        "invalid literal for int() with base 10: 'this string is no number, and it goes on'); "
        "skipped 1 statement that needs a name skipped before it (line 2)"
    )


def test_a_statement_that_runs_too_long_is_stopped_and_skipped(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(source, "STATEMENT_TIMEOUT", 0.2)
    path = python_file(
        tmp_path / "slow.py",
        """
        import time
        model = time.sleep(30)
        class Busy:
            while True:
                pass
        def f():
            return model
        """,
    )
    handler = signal.getsignal(signal.SIGALRM)
    signal.setitimer(signal.ITIMER_REAL, 100)  # someone else's timer, to be kept
    try:
        start = time.monotonic()
        module, note = load_with_note(str(path))
        elapsed = time.monotonic() - start
        left, _ = signal.getitimer(signal.ITIMER_REAL)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    assert elapsed < 5  # two statements stopped at 0.2 s each, not 30 s and forever
    assert 90 < left <= 100
    assert signal.getsignal(signal.SIGALRM) is handler
    assert note == (
        "took from slow.py: 1 import, 1 function; failed and skipped: "
        "model = time.sleep(30) (line 2: took longer than 0.2 s); "
        "class Busy: (line 3: took longer than 0.2 s)"
    )
    assert explain_missing_name(module.f, "model") == (
        "f needs the name model, defined at line 2, which was skipped (it took longer than 0.2 s)"
    )


# What cannot be read at all: one line, exit 2.


def test_a_latin1_file_with_a_coding_line_is_decoded(tmp_path) -> None:
    greeting, note = load_with_note(f"{stored(tmp_path, 'latin1.py')}:greeting")
    assert greeting() == "café, naïve, señor"
    assert note == "took from latin1.py: 1 constant, 1 function"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b"x = 1\n# caf\xe9\n",
            (
                "cannot decode bad.py, line 2: byte 0xe9 is not UTF-8, and no line such as "
                "# -*- coding: latin-1 -*- names its encoding"
            ),
        ),
        (
            b"x = 1\n\ny = 2\n# caf\xe9\n",
            (
                "cannot decode bad.py, line 4: byte 0xe9 is not UTF-8, and no line such as "
                "# -*- coding: latin-1 -*- names its encoding"
            ),
        ),
        (b"# -*- coding: klingon -*-\nx = 1\n", "cannot decode bad.py: unknown encoding: klingon"),
        (
            b"# -*- coding: ascii -*-\nx = '\xe9'\n",
            "cannot decode bad.py, line 2: byte 0xe9 is not ascii, as its coding line says",
        ),
    ],
)
def test_a_file_that_cannot_be_decoded_is_one_line_exit_2(tmp_path, capsys, data, message):
    path = tmp_path / "bad.py"
    path.write_bytes(data)
    assert main(["verify", f"{path}:f"]) == 2
    one_line_error(capsys, message)


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        (
            ["def f():\n    return 1\nreturn f\n"],
            "cannot compile code.py, line 3: 'return' outside function",
        ),
        (["def f():\n    break\n"], "cannot compile code.py, line 2: 'break' outside loop"),
        (
            ["def f():\n    return 1", "for i in range(2):\n    pass\ncontinue"],
            "cannot compile code.ipynb cell 2, line 3: 'continue' not properly in loop",
        ),
    ],
)
def test_code_that_parses_but_does_not_compile_is_one_line_exit_2(tmp_path, capsys, cells, message):
    if message.startswith("cannot compile code.py"):
        path = tmp_path / "code.py"
        path.write_text(cells[0])
    else:
        path = notebook(tmp_path / "code.ipynb", *cells)
    assert main(["verify", f"{path}:f"]) == 2
    one_line_error(capsys, message)


def test_a_notebook_that_does_not_compile_runs_none_of_its_cells(tmp_path) -> None:
    marker = tmp_path / "ran.txt"
    first = f"WRITTEN = open({str(marker)!r}, 'w').write('the first cell ran')"
    path = notebook(tmp_path / "nb.ipynb", first, "def f():\n    return 1\nreturn f")
    with pytest.raises(UsageError):
        load_with_note(f"{path}:f")
    assert not marker.exists()


CODE_CELL = {"cell_type": "code", "metadata": {}, "source": "x = 1"}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("not json {", "it is not JSON (Expecting value: line 1 column 1 (char 0))"),
        (
            b"\xff\xfe{}",
            (
                "it is not UTF-8 text ('utf-8' codec can't decode byte 0xff in position 0: "
                "invalid start byte)"
            ),
        ),
        ([], "its top level is an array, not an object"),
        ({"nbformat": 4}, 'it has no "cells"'),
        ({"cells": {}}, 'its "cells" is an object, not an array'),
        ({"cells": [CODE_CELL, "x = 1"]}, "cells[1] is a string, not an object"),
        ({"cells": [{"source": "x = 1"}]}, "cells[0].cell_type is null, not a string"),
        (
            {"cells": [{**CODE_CELL, "source": 3}]},
            "cells[0].source is a number, not a string or an array of strings",
        ),
        (
            {"cells": [{**CODE_CELL, "source": ["x = 1\n", None]}]},
            "cells[0].source[1] is null, not a string",
        ),
        ({"worksheets": [{"cells": 5}]}, 'its "worksheets[0].cells" is a number, not an array'),
        ({"worksheets": ["x"]}, "worksheets[0] is a string, not an object"),
    ],
)
def test_a_malformed_notebook_is_one_line_exit_2(tmp_path, capsys, content, problem) -> None:
    path = tmp_path / "nb.ipynb"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    assert main(["verify", f"{path}:f"]) == 2
    one_line_error(capsys, f"nb.ipynb is not a Jupyter notebook: {problem}")


def test_a_missing_file_is_a_usage_error(tmp_path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        load_with_note(f"{tmp_path / 'nope.py'}:f")


def test_the_loading_note_counts_two_classes_in_english(tmp_path) -> None:
    path = python_file(
        tmp_path / "two.py",
        """
        class Cell:
            pass

        class RNN:
            pass
        """,
    )
    _, note = load_with_note(f"{path}:RNN")
    assert note == "took from two.py: 2 classes"
