"""Finding the code to verify: ``MODULE[:NAME]``, ``FILE.py[:NAME]`` or ``NOTEBOOK.ipynb[:NAME]``.

A module is imported as ``python -m`` would (the current directory on sys.path). A file
or a notebook is NOT run as a whole: students' code rarely sits in a clean module
(min-char-rnn.py reads input.txt and trains forever when run; the tutorial's notebook
downloads data and trains between the cells that define the class, and its other cells
are Python 2). It is read where it lives, tolerantly, and only its definitions are taken.

Reading
  - A file is decoded as Python decodes source: a BOM or a PEP 263 line
    (``# -*- coding: latin-1 -*-``) names the encoding, else it is UTF-8. A file that
    cannot be decoded is a one-line UsageError naming the line.
  - A notebook (nbformat 4, or 3's worksheets) is read code cell by code cell, the cells
    numbered from 1 among the code cells. A notebook that is not JSON, or whose cells are
    not a list of objects with a string (or list of strings) source, is a one-line
    UsageError naming the entry.
  - Magics as IPython treats them. A line magic (``%matplotlib inline``,
    ``t = %time f()``), a shell line (``!pip install x``, ``files = !ls``) and a help
    line (``np.sum?``) are not Python: they are blanked, line numbers kept (only where a
    statement starts: a ``%`` inside brackets or a string is Python's). A cell magic's
    body runs in the notebook only for ``%%time``, ``%%capture``, ``%%prun`` and
    ``%%debug``, so only their bodies are read; any other cell magic (``%%bash``,
    ``%%writefile``, ``%%html``, ``%%script`` ...) makes its cell skipped as a whole.
  - Each file or cell is parsed whole. If that fails (Python 2's ``print x``), it is cut
    into top-level chunks and each chunk is parsed on its own: a line with no
    indentation starts a chunk, except comments and ``else``/``elif``/``except``/
    ``finally``; a chunk left open (decorators above their ``def``, a triple-quoted
    string or a bracket running on at column 0) is joined to the next. The
    chunks that still fail are skipped and listed ("not Python 3"); they matter only if
    the code under test needs a name they define (see below).
  - Code that parses but does not compile (``return`` at module level, ``break``
    outside a loop) is a one-line UsageError naming the line. A notebook may ``await``
    at the top level, as IPython allows (such statements are skipped).

Taking, statement by statement, in order
  - imports (one that fails is skipped and reported; it matters only if the code needs it),
  - function and class definitions,
  - assignments to names (``hidden_size = 100``, ``EPS = np.finfo(float).eps``,
    ``cache = {}``, ``f = lambda z: z``, ``rnn_forward = layers.rnn_forward``), evaluated,
  - assignments to an attribute of a class defined in the file, which attach a method
    (``RNNNumpy.bptt = bptt``); never to anything else (``np.abs = ...`` is not run),
  - an import of a module beside the file that Python 3 cannot compile (the tutorial's
    Python 2 utils.py, where its softmax comes from) reads that module the same way and
    binds what the import names (``import M``, ``import M as m``, ``from M import *``,
    ``from M import f``),

and everything else (loops, bare calls, ``with`` blocks, ``if __name__ == "__main__":``)
is skipped. Every statement taken except an import runs within
:data:`STATEMENT_TIMEOUT` seconds (a POSIX interval timer, on the main thread only), so
that ``model = train_for_hours()`` costs that much at most; one that raises or runs
longer is skipped and reported, never fatal. Annotations are not evaluated (as under
``from __future__ import annotations``), so a type hint naming something skipped does
not lose its function. What the statements print is captured.

The summary is one line (wrapped here)::

    took from F: 3 imports, 2 functions, 1 class; skipped 4 other statements (lines 9-12);
    skipped 2 statements that are not Python 3 (cell 2 line 4, cell 6 lines 3-5);
    failed and skipped: data = open('input.txt').read() (line 15: FileNotFoundError: ...);
    skipped 3 statements that need a name skipped before them (lines 16-18);
    took from utils.py, which Python 3 cannot import: 1 import, 3 functions

Explaining a NameError
  Every name that a skipped statement would have defined (``def NAME``, ``class NAME``,
  ``NAME = ...``, ``import NAME``, ``from M import NAME``, and the names a skipped
  ``with`` or ``for`` block binds) is recorded with its place and why it was skipped, in
  the module's ``__bptt_skipped__`` (a :class:`SkippedNames`), until a later statement
  defines it. :func:`explain_missing_name` turns that into a sentence for a NameError
  raised by the code under test, e.g. "lossFun needs the name EPS, defined at cell 3
  line 2, which was skipped (not Python 3)".
"""

from __future__ import annotations
import __future__

import ast
import builtins
import codeop
import contextlib
import importlib
import inspect
import io
import json
import re
import signal
import sys
import threading
import time
import tokenize
import types
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from manual_bptt.checking.guard import captured
from manual_bptt.errors import UsageError

# Seconds each evaluated statement may run. Taking a definition or a constant takes
# microseconds; a statement that runs longer is computing something (reading data,
# training), which verify does not need.
STATEMENT_TIMEOUT = 2.0

# Cell magics whose body IPython runs as Python in the notebook's own namespace.
PYTHON_CELL_MAGICS = frozenset({"time", "capture", "prun", "debug"})

RECORD = "__bptt_skipped__"  # where a loaded module keeps its SkippedNames
NOT_PYTHON_3 = "not Python 3"
_SHOWN = 8  # places (or failures) listed in the summary before "… N more"
_FIRST_LINE = 60  # characters of a failed statement shown in the summary


@dataclass
class SkippedNames:
    """Why names the file would define are missing from its module.

    ``names`` maps a name to (place, reason), e.g. ``"EPS": ("cell 3 line 2", "not
    Python 3")``; ``star`` lists the ``from M import *`` that failed, as (statement,
    place, reason); ``parse_errors`` maps a name whose definition could not be parsed to
    the parser's sentence ("cannot parse f.py, line 3: invalid syntax (is it Python 3?)").
    """

    names: dict[str, tuple[str, str]] = field(default_factory=dict)
    star: list[tuple[str, str, str]] = field(default_factory=list)
    parse_errors: dict[str, str] = field(default_factory=dict)

    def record(self, names: list[str], place: str, reason: str) -> None:
        for name in names:
            self.names[name] = (place, reason)

    def defined(self, names: list[str]) -> None:
        for name in names:
            self.names.pop(name, None)
            self.parse_errors.pop(name, None)

    def explains(self, name: str | None) -> bool:
        """Whether a NameError for ``name`` follows from what was skipped."""
        return name is not None and (
            name in self.names or (bool(self.star) and name not in vars(builtins))
        )


@dataclass(frozen=True)
class Place:
    """Where a statement is: ``cell`` ("" in a file, "cell 3" in a notebook), its lines."""

    cell: str
    first: int
    last: int

    def __str__(self) -> str:
        return f"{self.cell} line {self.first}".strip()


@dataclass
class Taken:
    """What was taken from a file, for the one-line summary."""

    kinds: dict[str, int] = field(default_factory=dict)
    skipped: list[Place] = field(default_factory=list)  # not definitions
    unparsed: list[Place] = field(default_factory=list)  # not Python 3
    failed: list[str] = field(default_factory=list)  # taken, but raised or ran too long
    cascaded: list[Place] = field(default_factory=list)  # needed a name skipped before
    helpers: list[str] = field(default_factory=list)  # modules beside it read the same way
    record: SkippedNames = field(default_factory=SkippedNames)

    def took(self) -> str:
        """What was taken, e.g. "1 import, 2 functions", or "nothing"."""
        return ", ".join(_count(n, k) for k, n in self.kinds.items()) or "nothing"

    def note(self, source: str) -> str:
        """One line: what was taken, what was skipped (where, and why), what failed."""
        line = f"took from {source}: {self.took()}"
        if self.skipped:
            line += f"; skipped {_count(len(self.skipped), 'other statement')}"
            line += f" ({_spans(self.skipped)})"
        if self.unparsed:
            n = len(self.unparsed)
            line += f"; skipped {_count(n, 'statement')} that {'is' if n == 1 else 'are'} "
            line += f"not Python 3 ({_spans(self.unparsed)})"
        if self.failed:
            shown = "; ".join(self.failed[:_SHOWN])
            more = len(self.failed) - _SHOWN
            line += f"; failed and skipped: {shown}" + (f"; … {more} more" if more > 0 else "")
        if self.cascaded:
            n = len(self.cascaded)
            line += f"; skipped {_count(n, 'statement')} that {'needs' if n == 1 else 'need'} "
            line += f"a name skipped before {'it' if n == 1 else 'them'} ({_spans(self.cascaded)})"
        return "; ".join([line, *self.helpers])


def _count(n: int, word: str) -> str:
    """ "1 class", "2 classes", "2 functions"."""
    if n == 1:
        return f"{n} {word}"
    return f"{n} {word}{'es' if word.endswith(('s', 'sh', 'ch', 'x')) else 's'}"


def _spans(places: list[Place]) -> str:
    """Where statements are, e.g. "lines 14-19, 27-31", adjacent ones merged."""
    merged: list[list[Any]] = []
    for place in places:
        if merged and merged[-1][0] == place.cell and merged[-1][2] + 1 >= place.first:
            merged[-1][2] = max(merged[-1][2], place.last)
        else:
            merged.append([place.cell, place.first, place.last])
    words = []
    for cell, first, last in merged[:_SHOWN]:
        lines = f"line {first}" if first == last else f"lines {first}-{last}"
        words.append(f"{cell} {lines}".strip())
    more = len(merged) - _SHOWN
    return ", ".join(words) + (f", … {more} more" if more > 0 else "")


def load(spec: str) -> Any:
    """The object ``spec`` names (see the module docstring); UsageError if there is none."""
    return load_with_note(spec)[0]


def load_with_note(spec: str) -> tuple[Any, str]:
    """(the object ``spec`` names, a line saying what was taken from a file, or "")."""
    where, sep, attr = spec.partition(":")
    if not where or (sep and not attr):
        raise UsageError(f"name the code as MODULE[:NAME] or FILE.py[:NAME]; got {spec!r}")
    note = ""
    if where.endswith((".py", ".ipynb")):
        path = Path(where)
        if not path.is_file():
            raise UsageError(f"no such file: {where}")
        module, taken = _definitions(path)
        note = taken.note(path.name)
    else:
        module = _import(where)
    obj: Any = module
    for part in attr.split(".") if attr else []:
        if not hasattr(obj, part):
            raise UsageError(_not_defined(where, attr, note, _record_of(module)))
        obj = getattr(obj, part)
    return obj, note


def _not_defined(where: str, attr: str, note: str, record: SkippedNames | None) -> str:
    """Why ``where`` has no ``attr``, in one line."""
    name = attr.split(".")[0]
    if record is not None and name in record.parse_errors:
        return f"{record.parse_errors[name]}, where {name} is defined"
    if record is not None and name in record.names:
        place, reason = record.names[name]
        return f"{where} defines no {attr}: {name} at {place} was skipped ({reason})"
    return f"{where} defines no {attr}" + (f" ({note})" if note else "")


def explain_missing_name(obj: Any, name: str) -> str | None:
    """A sentence on why ``name`` is missing for ``obj`` (a module, function, class or
    instance loaded from a file or notebook), or None if nothing skipped defines it.

    E.g. "lossFun needs the name EPS, defined at cell 3 line 2, which was skipped (not
    Python 3)". Meant for a NameError raised by the code under test.
    """
    record = _record_of(obj)
    if record is None:
        return None
    who = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    who = who if isinstance(who, str) else type(obj).__name__
    if name in record.names:
        place, reason = record.names[name]
        return f"{who} needs the name {name}, defined at {place}, which was skipped ({reason})"
    if record.explains(name):
        statement, place, reason = record.star[0]
        return (
            f"{who} needs the name {name}, perhaps from {place} ({statement}), "
            f"which was skipped ({reason})"
        )
    return None


def _record_of(obj: Any) -> SkippedNames | None:
    """The SkippedNames of the module ``obj`` was loaded into: through a module's dict, a
    function's ``__globals__``, a method's function, a class's methods, an instance's class."""
    todo, seen = [obj], 0
    while todo and seen < 64:
        item = todo.pop(0)
        seen += 1
        namespace = vars(item) if isinstance(item, types.ModuleType) else None
        if namespace is None and isinstance(getattr(item, "__globals__", None), dict):
            namespace = item.__globals__
        if namespace is not None:
            record = namespace.get(RECORD)
            if isinstance(record, SkippedNames):
                return record
            continue
        for inner in ("__func__", "fget", "func", "__wrapped__"):
            if hasattr(item, inner):
                todo.append(getattr(item, inner))
        if inspect.isclass(item):
            todo.extend(
                value
                for value in vars(item).values()
                if inspect.isfunction(value)
                or isinstance(value, (staticmethod, classmethod, property))
            )
            module = sys.modules.get(getattr(item, "__module__", "") or "")
            if module is not None:
                todo.append(module)
        elif type(item).__module__ != "builtins":
            todo.append(type(item))
    return None


def _import(name: str) -> types.ModuleType:
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            return importlib.import_module(name)
    except ImportError as err:
        raise UsageError(f"cannot import {name}: {err}") from None
    except SystemExit as err:
        raise UsageError(
            f"importing {name} called sys.exit({err.code!r}); "
            f"FILE.py:NAME takes only the file's definitions without running it"
        ) from None
    except Exception as err:  # noqa: BLE001 (the user's module failed on import: one line)
        raise UsageError(f"importing {name} raised {type(err).__name__}: {err}") from None


# Reading: bytes to text, notebooks to cells, magics blanked.


@dataclass(frozen=True)
class _Cell:
    """The code of a file ("" label) or of a notebook's code cell ("cell 3"); ``python``
    is False for a cell whose cell magic makes it something else (``%%bash``)."""

    label: str
    text: str
    python: bool = True


def _cells(path: Path) -> list[_Cell]:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise UsageError(f"cannot read {path.name}: {err.strerror}") from None
    if path.suffix == ".py":
        return [_Cell("", _decode(path.name, data))]
    return _notebook_cells(path.name, data)


def _decode(name: str, data: bytes) -> str:
    """The text of a Python file, decoded as Python would (a BOM, a PEP 263 line, else
    UTF-8), with universal newlines."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as err:  # a coding line naming no known encoding, or a BOM against it
        if not (err.msg or "").startswith("invalid or missing encoding"):
            raise UsageError(f"cannot decode {name}: {err.msg}") from None
        encoding = "utf-8"  # its first lines are not UTF-8 and name no encoding
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        byte = f"byte 0x{data[err.start]:02x}"
        if encoding.startswith("utf-8"):
            raise UsageError(
                f"cannot decode {name}, line {line}: {byte} is not UTF-8, and no line such "
                f"as # -*- coding: latin-1 -*- names its encoding"
            ) from None
        raise UsageError(
            f"cannot decode {name}, line {line}: {byte} is not {encoding}, as its coding line says"
        ) from None
    return io.IncrementalNewlineDecoder(None, translate=True).decode(text, final=True)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _notebook_cells(name: str, data: bytes) -> list[_Cell]:
    """The code cells of a notebook (nbformat 4, or 3 with its worksheets), magics handled."""

    def refuse(why: str) -> UsageError:
        return UsageError(f"{name} is not a Jupyter notebook: {why}")

    try:
        notebook = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as err:
        raise refuse(f"it is not UTF-8 text ({err})") from None
    except ValueError as err:
        raise refuse(f"it is not JSON ({err})") from None
    except RecursionError:
        raise refuse("its JSON is nested too deeply to read") from None
    if not isinstance(notebook, dict):
        raise refuse(f"its top level is {_json_type(notebook)}, not an object")
    if "cells" in notebook:
        entries = _json_list(notebook["cells"], "cells", refuse)
        source_key = "source"
    elif "worksheets" in notebook:  # nbformat 3
        entries = []
        for key, sheet in _json_list(notebook["worksheets"], "worksheets", refuse):
            if not isinstance(sheet, dict):
                raise refuse(f"{key} is {_json_type(sheet)}, not an object")
            entries += _json_list(sheet.get("cells", []), f"{key}.cells", refuse)
        source_key = "input"
    else:
        raise refuse('it has no "cells"')
    cells: list[_Cell] = []
    for key, cell in entries:
        if not isinstance(cell, dict):
            raise refuse(f"{key} is {_json_type(cell)}, not an object")
        kind = cell.get("cell_type")
        if not isinstance(kind, str):
            raise refuse(f"{key}.cell_type is {_json_type(kind)}, not a string")
        if kind != "code":
            continue
        source = cell.get(source_key, "")
        if isinstance(source, list):
            for i, piece in enumerate(source):
                if not isinstance(piece, str):
                    raise refuse(f"{key}.{source_key}[{i}] is {_json_type(piece)}, not a string")
            source = "".join(source)
        if not isinstance(source, str):
            raise refuse(
                f"{key}.{source_key} is {_json_type(source)}, not a string or an array of strings"
            )
        text = source.replace("\r\n", "\n").replace("\r", "\n")
        cells.append(_magics_handled(f"cell {len(cells) + 1}", text))
    return cells


def _json_list(value: Any, key: str, refuse: Any) -> list[tuple[str, Any]]:
    if not isinstance(value, list):
        raise refuse(f'its "{key}" is {_json_type(value)}, not an array')
    return [(f"{key}[{i}]", item) for i, item in enumerate(value)]


_LINE_MAGIC = re.compile(
    r"\s*(?:[%!]"  # %magic, !shell
    r"|[A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*\s*=\s*[%!]"  # x = %magic, x = !shell
    r"|\?|[\w.]+\?\??\s*$)"  # ?name, name?, name??
)


def _magics_handled(label: str, text: str) -> _Cell:
    """A notebook cell as IPython runs it: a cell magic decides whether its body is Python;
    line magics, shell and help lines are blanked where a statement starts."""
    lines = text.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].lstrip().startswith("%%"):
        magic = (lines[first].lstrip()[2:].split() or [""])[0]
        if magic not in PYTHON_CELL_MAGICS:
            return _Cell(label, text, python=False)
        lines[first] = ""
    for i, line in enumerate(lines):
        if _LINE_MAGIC.match(line) and not _open_at_end("\n".join(lines[:i]) + "\n"):
            lines[i] = ""
    return _Cell(label, "\n".join(lines))


def _open_at_end(code: str) -> bool:
    """Whether ``code`` ends inside a statement (an open bracket or triple-quoted string,
    a backslash), so that its next line does not start one."""
    try:
        for _ in tokenize.generate_tokens(io.StringIO(code).readline):
            pass
    except tokenize.TokenError:  # EOF in a multi-line statement or string
        return True
    except (SyntaxError, ValueError):  # not Python; its next line starts afresh
        return False
    return False


# Parsing: whole, or chunk by chunk when the whole is not Python 3.

_UNPARSABLE = (SyntaxError, ValueError, RecursionError, MemoryError)
_CONTINUATION = re.compile(r"(?:else|elif|except|finally)\b")
_DEFINES = re.compile(
    r"(?:async\s+)?def\s+(?P<def>\w+)|class\s+(?P<cls>\w+)"
    r"|import\s+(?P<imp>[^#;]+)|from\s+\S+\s+import\s+(?P<frm>[^#;]+)"
    r"|(?P<set>[A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s*=(?!=)"
)


@dataclass(frozen=True)
class _Unparsed:
    """A chunk that is not Python 3: where, the names it seems to define, the parser's
    sentence."""

    place: Place
    names: list[str]
    error: str


def _parse(text: str, filename: str) -> ast.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return ast.parse(text, filename=filename)


def _incomplete(code: str) -> bool:
    """Whether ``code`` is the start of a statement that goes on (codeop's test)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return codeop.compile_command(code, "<chunk>", "exec") is None
    except (*_UNPARSABLE, OverflowError):
        return False


def _chunk_starts(lines: list[str]) -> list[int]:
    """The lines (0-based) where a top-level chunk starts: one with no indentation that is
    not blank, a comment or a clause going on (else, elif, except, finally). (Decorators
    need no rule: a chunk of decorators alone is left open, so it is joined to the def.)"""
    starts = [0]
    for i, line in enumerate(lines):
        if i and line.strip() and line[0] not in " \t\f#" and not _CONTINUATION.match(line):
            starts.append(i)
    return starts


def _statements(text: str, cell: str, where: str, filename: str) -> list[ast.stmt | _Unparsed]:
    """The statements of ``text`` in order, each parsed chunk's, and the chunks that are
    not Python 3 in their places."""
    try:
        return list(_parse(text, filename).body)
    except _UNPARSABLE:
        pass
    lines = text.split("\n")
    starts = [*_chunk_starts(lines), len(lines)]
    items: list[ast.stmt | _Unparsed] = []
    i = 0
    while i < len(starts) - 1:
        error: BaseException | None = None
        for j in range(i + 1, len(starts)):
            chunk = "\n".join(lines[starts[i] : starts[j]]) + "\n"
            try:
                tree = _parse(chunk, filename)
            except _UNPARSABLE as err:
                error = error or err  # the chunk's own error, if no join helps
                if _incomplete(chunk):
                    continue
                break
            ast.increment_lineno(tree, starts[i])
            items.extend(tree.body)
            i, error = j, None
            break
        if error is not None:
            items.append(_unparsed(lines[starts[i] : starts[i + 1]], starts[i], cell, where, error))
            i += 1
    return items


def _unparsed(
    lines: list[str], offset: int, cell: str, where: str, err: BaseException
) -> _Unparsed:
    code = [n for n, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")]
    first, last = offset + (code[0] if code else 0) + 1, offset + (code[-1] if code else 0) + 1
    names = []
    for line in lines:
        match = _DEFINES.match(line)
        if match is None or line[:1].isspace():
            continue
        if match["def"] or match["cls"]:
            names.append(match["def"] or match["cls"])
        elif match["imp"]:
            names += [p.split()[-1].split(".")[0] for p in match["imp"].split(",") if p.strip()]
        elif match["frm"]:
            parts = match["frm"].strip("()\\ \n").split(",")
            names += [p.split()[-1] for p in parts if p.strip() and p.strip() != "*"]
        else:
            names += [n.strip() for n in match["set"].split(",")]
    if isinstance(err, SyntaxError):
        at = offset + (err.lineno or 1)
        error = f"cannot parse {where}, line {at}: {err.msg} (is it Python 3?)"
    else:
        error = f"cannot parse {where}, line {first}: {err} (is it Python 3?)"
    return _Unparsed(Place(cell, first, last), names, error)


def _bound_names(statement: ast.stmt) -> list[str]:
    """The names a top-level statement binds in its module (not inside its functions,
    classes, lambdas or comprehensions)."""
    names: dict[str, None] = {}
    todo: list[ast.AST] = [statement]
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names[node.name] = None
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name != "*":
                    names[alias.asname or alias.name.split(".")[0]] = None
            continue
        if isinstance(
            node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
        ):
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names[node.id] = None
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            names[node.name] = None
        todo.extend(reversed(list(ast.iter_child_nodes(node))))
    return list(names)


# Taking: what each statement is, and running the ones that define something.


class _TookTooLong(BaseException):
    """Raised inside a statement whose time is up (BaseException: ``except Exception``
    in the statement does not swallow it)."""


@contextlib.contextmanager
def _statement_limit(seconds: float) -> Iterator[None]:
    """At most ``seconds`` for the block (main thread, POSIX; elsewhere no limit). A timer
    set before is put back with what is left of it (at least 1 ms)."""
    if (
        not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return

    def alarm(signum: int, frame: Any) -> None:
        raise _TookTooLong

    previous = signal.signal(signal.SIGALRM, alarm)
    outer, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    if outer:
        signal.setitimer(signal.ITIMER_REAL, min(seconds, outer))
    start = time.monotonic()
    try:
        yield
    finally:
        try:
            signal.setitimer(signal.ITIMER_REAL, 0)
        finally:
            signal.signal(signal.SIGALRM, previous)
        if outer:
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - start), 1e-3))


_NOT_TAKEN = {
    ast.For: "a for loop",
    ast.AsyncFor: "a for loop",
    ast.While: "a while loop",
    ast.With: "a with block",
    ast.AsyncWith: "a with block",
    ast.If: "an if block",
    ast.Try: "a try block",
    ast.Expr: "an expression",
    ast.AugAssign: "an augmented assignment",
    ast.Delete: "a del statement",
    ast.Match: "a match block",
}


_READING: set[Path] = set()  # the files being read, so that two importing each other end


class _Reader:
    """Takes the definitions of a file's or notebook's cells into one module."""

    def __init__(self, module: types.ModuleType, path: Path) -> None:
        self.module = module
        self.name = path.name
        self.filename = str(path)
        self.folder = path.resolve().parent
        notebook = path.suffix == ".ipynb"
        self.taken = Taken()
        module.__dict__[RECORD] = self.taken.record
        # Annotations are never evaluated; a notebook may await at the top level.
        self.check_flags = __future__.annotations.compiler_flag
        if notebook:
            self.check_flags |= ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        self.flags = __future__.annotations.compiler_flag  # and the file's own futures

    def parse(self, cell: _Cell) -> list[ast.stmt | _Unparsed]:
        """The cell's statements and unparsable chunks; UsageError if one does not compile."""
        if not cell.python:
            return []
        where = f"{self.name} {cell.label}".strip()
        items = _statements(cell.text, cell.label, where, self.filename)
        for item in items:
            if isinstance(item, ast.stmt):
                self._compiles(item, where)
        return items

    def take(self, cell: _Cell, items: list[ast.stmt | _Unparsed]) -> None:
        """Takes the definitions among a parsed cell's statements, in order."""
        if not cell.python:  # a %%bash or %%writefile cell: skipped as a whole
            lines = cell.text.rstrip("\n").count("\n") + 1
            self.taken.skipped.append(Place(cell.label, 1, lines))
        for item in items:
            if isinstance(item, _Unparsed):
                self.taken.unparsed.append(item.place)
                self.taken.record.record(item.names, str(item.place), NOT_PYTHON_3)
                for name in item.names:
                    self.taken.record.parse_errors[name] = item.error
            else:
                self._take(item, cell.label)

    def _compiles(self, statement: ast.stmt, where: str) -> None:
        module = ast.Module(body=[statement], type_ignores=[])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                compile(module, self.filename, "exec", flags=self.check_flags, dont_inherit=True)
        except SyntaxError as err:
            raise UsageError(f"cannot compile {where}, line {err.lineno}: {err.msg}") from None

    def _take(self, statement: ast.stmt, cell: str) -> None:
        place = Place(cell, statement.lineno, statement.end_lineno or statement.lineno)
        names = _bound_names(statement)
        kind, reason = self._kind(statement)
        if kind is None:
            if self._attaches_to_skipped(statement):
                self.taken.cascaded.append(place)
            else:
                self.taken.skipped.append(place)
                self.taken.record.record(names, str(place), reason)
            return
        self._futures(statement)
        err = self._run(statement)
        if isinstance(err, SyntaxError) and isinstance(statement, (ast.Import, ast.ImportFrom)):
            err = self._import_tolerantly(statement, err)
        if err is None:
            self.taken.record.defined(names)
            if kind:
                self.taken.kinds[kind] = self.taken.kinds.get(kind, 0) + 1
        elif isinstance(err, _TookTooLong):
            self._failed(statement, place, names, f"it took longer than {STATEMENT_TIMEOUT:g} s")
        elif isinstance(err, NameError) and self.taken.record.explains(err.name):
            self.taken.cascaded.append(place)
            self.taken.record.record(names, str(place), f"it raised NameError: {err}")
        else:
            self._failed(statement, place, names, f"it raised {type(err).__name__}: {err}")

    def _run(self, statement: ast.stmt) -> BaseException | None:
        """Runs one statement in the module (all but an import within STATEMENT_TIMEOUT);
        what it raised, or None."""
        code = compile(
            ast.Module(body=[statement], type_ignores=[]),
            self.filename,
            "exec",
            flags=self.flags,
            dont_inherit=True,
        )
        limit = (
            contextlib.nullcontext()
            if isinstance(statement, (ast.Import, ast.ImportFrom))
            else _statement_limit(STATEMENT_TIMEOUT)
        )
        try:
            with (
                contextlib.redirect_stdout(captured),
                contextlib.redirect_stderr(captured),
                limit,
            ):
                exec(code, self.module.__dict__)  # noqa: S102 (definitions only; see _kind)
        except (_TookTooLong, Exception, SystemExit) as err:  # noqa: BLE001 (reported, not fatal)
            return err
        return None

    def _import_tolerantly(
        self, statement: ast.Import | ast.ImportFrom, err: SyntaxError
    ) -> BaseException | None:
        """An import of a module beside the file that Python 3 cannot compile (the
        tutorial's utils.py, Python 2, beside its notebook): the module's definitions,
        read as the file's own are, bound as the import would; else ``err`` again."""
        path = Path(err.filename or "")
        if isinstance(statement, ast.ImportFrom):
            wanted = statement.module if statement.level == 0 else None
        else:
            wanted = statement.names[0].name if len(statement.names) == 1 else None
        if (
            wanted != path.stem
            or path.suffix != ".py"
            or not path.is_file()
            or path.resolve().parent != self.folder
            or path.resolve() in _READING
        ):
            return err
        try:
            helper, taken = _definitions(path)
        except UsageError as usage:
            return ImportError(f"{path.name} cannot be read: {usage}")
        self.taken.helpers.append(
            f"took from {path.name}, which Python 3 cannot import: {taken.took()}"
        )
        if isinstance(statement, ast.Import):
            alias = statement.names[0]
            self.module.__dict__[alias.asname or alias.name] = helper
            return None
        for alias in statement.names:
            if alias.name == "*":
                public = getattr(helper, "__all__", None) or [
                    n for n in vars(helper) if not n.startswith("_")
                ]
                self.module.__dict__.update({n: getattr(helper, n) for n in public})
                self.taken.record.defined(list(public))
            elif hasattr(helper, alias.name):
                self.module.__dict__[alias.asname or alias.name] = getattr(helper, alias.name)
            else:
                return ImportError(f"{path.name} (read for its definitions) has no {alias.name}")
        return None

    def _failed(self, statement: ast.stmt, place: Place, names: list[str], reason: str) -> None:
        text = ast.unparse(statement).splitlines()[0]
        if len(text) > _FIRST_LINE:
            text = text[: _FIRST_LINE - 1] + "…"
        detail = reason.removeprefix("it raised ").removeprefix("it ")
        self.taken.failed.append(f"{text} ({place}: {detail})")
        self.taken.record.record(names, str(place), reason)
        if isinstance(statement, ast.ImportFrom) and any(a.name == "*" for a in statement.names):
            self.taken.record.star.append((text, str(place), reason))

    def _futures(self, statement: ast.stmt) -> None:
        if isinstance(statement, ast.ImportFrom) and statement.module == "__future__":
            for alias in statement.names:
                feature = getattr(__future__, alias.name, None)
                self.flags |= getattr(feature, "compiler_flag", 0)

    def _kind(self, statement: ast.stmt) -> tuple[str | None, str]:
        """(what kind of definition the statement is, "" for a docstring, or None to skip
        it; why it is skipped)."""
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            return "import", ""
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return "function", ""
        if isinstance(statement, ast.ClassDef):
            return "class", ""
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            return "", ""  # a docstring or a bare constant
        if any(isinstance(node, ast.Await) for node in ast.walk(statement)):
            return None, "only definitions are taken, not a top-level await"
        if isinstance(statement, (ast.Assign, ast.AnnAssign)) and statement.value is not None:
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            value = statement.value
            if all(_names_only(t) for t in targets):
                if isinstance(value, ast.Lambda):
                    return "function", ""
                if _constant(value, self.module):
                    return "constant", ""
                return ("alias" if _taken_name(value, self.module) else "computed value"), ""
            if all(self._attaches(t) for t in targets):
                attaches = isinstance(value, (ast.Name, ast.Attribute, ast.Lambda))
                return ("attached method" if attaches else "class attribute"), ""
            return None, "only assignments to names or to a class of the file are taken"
        what = _NOT_TAKEN.get(type(statement), "this statement")
        return None, f"only definitions are taken, not {what}"

    def _attaches_to_skipped(self, statement: ast.stmt) -> bool:
        """Whether ``statement`` is ``C.attr = ...`` for a C that was skipped."""
        targets = statement.targets if isinstance(statement, ast.Assign) else []
        return any(
            isinstance(t, ast.Attribute)
            and isinstance(t.value, ast.Name)
            and t.value.id in self.taken.record.names
            for t in targets
        )

    def _attaches(self, target: ast.expr) -> bool:
        """Whether ``target`` is ``C.attr`` for a class C defined in the file."""
        if not (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)):
            return False
        cls = self.module.__dict__.get(target.value.id)
        return inspect.isclass(cls) and cls.__module__ == self.module.__name__


def _names_only(target: ast.expr) -> bool:
    """Whether an assignment target binds names only (``x``, ``a, b``, ``a, *rest``)."""
    if isinstance(target, ast.Name):
        return True
    if isinstance(target, ast.Starred):
        return _names_only(target.value)
    return isinstance(target, (ast.Tuple, ast.List)) and all(_names_only(e) for e in target.elts)


def _definitions(path: Path) -> tuple[types.ModuleType, Taken]:
    """A module holding only the definitions of the file or notebook at ``path``."""
    cells = _cells(path)
    module = types.ModuleType(path.stem)
    module.__file__ = str(path)
    # where @dataclass looks a class's module up while the class is made: there while
    # the file is read, never over a module already there, and gone afterwards
    registered = sys.modules.setdefault(module.__name__, module) is module
    reader = _Reader(module, path)
    folder = str(reader.folder)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    _READING.add(path.resolve())
    try:
        parsed = [reader.parse(cell) for cell in cells]  # all compile, or none is run
        for cell, items in zip(cells, parsed, strict=True):
            reader.take(cell, items)
    finally:
        _READING.discard(path.resolve())
        if added:
            sys.path.remove(folder)
        if registered:
            del sys.modules[module.__name__]
    return module, reader.taken


def _taken_name(node: ast.expr, module: types.ModuleType) -> bool:
    """Whether ``node`` is a name already taken, or an attribute of one (``L.rnn_forward``)."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name) and node.id in module.__dict__


def _constant(node: ast.expr, module: types.ModuleType) -> bool:
    """Whether ``node`` is built from literals and constants already taken, with no call."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Name):
        return node.id in module.__dict__ and isinstance(
            module.__dict__[node.id], (int, float, complex, str, bytes, bool, tuple)
        )
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return all(_constant(e, module) for e in node.elts)
    if isinstance(node, ast.UnaryOp):
        return _constant(node.operand, module)
    if isinstance(node, ast.BinOp):
        return _constant(node.left, module) and _constant(node.right, module)
    return False
