"""Finding the code to verify: ``MODULE[:NAME]``, ``FILE.py[:NAME]`` or ``NOTEBOOK.ipynb[:NAME]``.

A module is imported as ``python -m`` would (the current directory on sys.path). A file
or a notebook is NOT run: students' code rarely sits in a clean module (min-char-rnn.py
reads input.txt and trains forever when run; the tutorial's notebook downloads data and
trains between the cells that define the class). So only its definitions are taken,
statement by statement, from the syntax tree (``ast``):

- imports (one that fails is skipped and reported; it matters only if the code needs it),
- function and class definitions,
- attribute assignments that attach a function to a class (``RNNNumpy.bptt = bptt``),
- simple constant assignments (``hidden_size = 100``, ``H = 2 * hidden_size``), and
  aliases of what was taken (``rnn_forward = layers.rnn_forward``),

and everything else (loops, calls, reading files, training) is skipped and listed in one
line. Code that cannot be parsed (Python 2's ``print x``) is a one-line error naming the
file (and cell) and line.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import json
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from manual_bptt.checking.guard import captured
from manual_bptt.checking.styles.base import UsageError


@dataclass
class Taken:
    """What was taken from a file, for the one-line summary."""

    kinds: dict[str, int] = field(default_factory=dict)
    skipped: list[tuple[str, int, int]] = field(default_factory=list)  # (cell, first, last line)
    failed: list[str] = field(default_factory=list)  # imports or definitions that raised

    def note(self, source: str) -> str:
        """One line: what was taken, what was skipped (where), what failed."""
        took = ", ".join(f"{n} {k}{'s' if n != 1 else ''}" for k, n in self.kinds.items())
        line = f"took from {source}: {took or 'nothing'}"
        if self.skipped:
            line += f"; skipped {len(self.skipped)} other statements ({_spans(self.skipped)})"
        if self.failed:
            line += f"; failed and skipped: {'; '.join(self.failed)}"
        return line


def _spans(places: list[tuple[str, int, int]]) -> str:
    """Where skipped statements are, e.g. "lines 14-19, 27-31", adjacent ones merged."""
    merged: list[list[Any]] = []
    for cell, first, last in places:
        if merged and merged[-1][0] == cell and merged[-1][2] + 1 >= first:
            merged[-1][2] = max(merged[-1][2], last)
        else:
            merged.append([cell, first, last])
    words = []
    for cell, first, last in merged[:8]:
        lines = f"line {first}" if first == last else f"lines {first}-{last}"
        words.append(f"{cell} {lines}".strip())
    return ", ".join(words) + (f", … {len(merged) - 8} more" if len(merged) > 8 else "")


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
            raise UsageError(f"{where} defines no {attr}" + _hint(where, note))
        obj = getattr(obj, part)
    return obj, note


def _hint(where: str, note: str) -> str:
    return f" ({note})" if note else ""


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


def _cells(path: Path) -> list[tuple[str, str]]:
    """(where, source) for each chunk of code: the file, or each code cell of a notebook
    (IPython's %magics and !shell lines blanked, keeping line numbers)."""
    if path.suffix == ".py":
        return [(path.name, path.read_text(encoding="utf-8"))]
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        cells = [c for c in notebook["cells"] if c.get("cell_type") == "code"]
    except (ValueError, KeyError, TypeError) as err:
        raise UsageError(f"{path.name} is not a Jupyter notebook: {err}") from None
    chunks = []
    for number, cell in enumerate(cells, start=1):
        text = cell.get("source", "")
        text = "".join(text) if isinstance(text, list) else text
        lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in text.split("\n")]
        chunks.append((f"{path.name} cell {number}", "\n".join(lines)))
    return chunks


def _definitions(path: Path) -> tuple[types.ModuleType, Taken]:
    """A module holding only the definitions of the file or notebook at ``path``."""
    module = types.ModuleType(path.stem)
    module.__file__ = str(path)
    taken = Taken()
    folder = str(path.resolve().parent)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        for where, text in _cells(path):
            try:
                tree = ast.parse(text, filename=where)
            except SyntaxError as err:
                raise UsageError(
                    f"cannot parse {where}, line {err.lineno}: {err.msg} (is it Python 3?)"
                ) from None
            for statement in tree.body:
                _take(statement, module, taken, where)
    finally:
        if added:
            sys.path.remove(folder)
    return module, taken


def _take(statement: ast.stmt, module: types.ModuleType, taken: Taken, where: str) -> None:
    kind = _kind(statement, module)
    cell = "" if where.endswith((".py", ".ipynb")) else where.split(" ", 1)[1]
    first, last = statement.lineno, statement.end_lineno or statement.lineno
    if kind is None:
        taken.skipped.append((cell, first, last))
        return
    place = f"{cell} line {first}".strip()
    code = compile(ast.Module(body=[statement], type_ignores=[]), module.__file__ or where, "exec")
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            exec(code, module.__dict__)  # noqa: S102 (only definitions; see _kind)
    except (Exception, SystemExit) as err:  # noqa: BLE001 (skipped and reported, not fatal)
        taken.failed.append(
            f"{ast.unparse(statement).splitlines()[0]} ({place}: {type(err).__name__}: {err})"
        )
        return
    if kind:
        taken.kinds[kind] = taken.kinds.get(kind, 0) + 1


def _kind(statement: ast.stmt, module: types.ModuleType) -> str | None:
    """What kind of definition the statement is ("" for a docstring), or None to skip it."""
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return "import"
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return "function"
    if isinstance(statement, ast.ClassDef):
        return "class"
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
        return ""  # a docstring or a bare constant
    if isinstance(statement, (ast.Assign, ast.AnnAssign)) and statement.value is not None:
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        attaches = isinstance(statement.value, (ast.Name, ast.Attribute, ast.Lambda))
        if attaches and all(
            isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) for t in targets
        ):
            return "attached method"
        if all(isinstance(t, ast.Name) for t in targets):
            if _constant(statement.value, module):
                return "constant"
            if _taken_name(statement.value, module):
                return "alias"
    return None


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
