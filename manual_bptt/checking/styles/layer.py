"""--style layer: any recurrent layer, with the user's own forward as the definition.

CS231n's convention, generalised. Given ``--forward F --backward B --shapes S``:

    F(*inputs) -> out, or (out, *rest)        inputs in the order of --shapes
    B(dout, *rest) -> one gradient per float input, in order (a tuple or list),
                      or a dict keyed by the inputs' names

The expected gradients are the vector–Jacobian product of F with a random upstream
dout (standard normal, never all ones: all ones hides transpositions), that is the
gradient of φ(θ) = Σ dout ⊙ F(θ), computed numerically from calls of F alone
(numeric_reference.py: the complex step where F carries complex numbers, else central
differences with an error bound per entry). There is no twin: F is the reference, so
the check is that B is F's derivative, whatever cell, stack or normalisation F computes.

The problems are drawn by the shapes language (shapes.py): every size first, each
shrunk towards 1 and bounded by --max-LETTER, then a seed for the arrays. Gradients
are reported under the names in --shapes ("dWx", key "Wx").

What both generic forms share (:class:`GenericStyle`): ``--globals "vocab_size=V"``
sets module globals of the user's file to sizes of the problem for every call (in the
worker, set before the call and taken away after it, so that each problem has its
own); and a function named ``OTHER.py:NAME`` (--forward, --backward, --loss) is read
from that file, the same tolerant way, in a worker of its own.
"""

from __future__ import annotations

import builtins
import re
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from manual_bptt.cases import Case
from manual_bptt.checking.guard import CodeFailed
from manual_bptt.checking.shapes import (
    Drawn,
    Entry,
    ShapesError,
    Size,
    bounds_for,
    drawn_problems,
    letters_of,
    parse_globals,
    parse_shapes,
    require_array_letters,
)
from manual_bptt.checking.strategies import Space
from manual_bptt.checking.styles.base import (
    Gradient,
    Observed,
    Style,
    Target,
    UsageError,
    facts,
    member,
    require_callable,
    type_name,
)


@dataclass(frozen=True)
class LetterSpace(Space):
    """A generic form's problems: each letter's largest size (``bounds``)."""

    bounds: tuple[tuple[str, int], ...] = ()


class GenericStyle(Style):
    """What the layer and loss forms share: entries, sizes, drawing, the reference's
    cost, ``--globals``, and functions from other files (``OTHER.py:NAME``)."""

    space = Space()
    sizes = ()
    required: tuple[str, ...] = ()
    keep_inputs = False  # the loss form keeps its --args under "new weights"
    sizes_option = "--shapes"  # where a plain int (NAME:=SIZE) may be given
    arrays_from = "--shapes"  # the options whose arrays define the letters

    def __init__(self, **options: Any) -> None:
        super().__init__(**{k: v for k, v in options.items() if v is not None})
        self.entries: tuple[Entry, ...] = ()
        self.globals: tuple[tuple[str, Size], ...] = ()
        self.stats: Counter[str] = Counter()
        self._others: dict[str, Any] = {}  # option → a function loaded from another file
        if all(self.options.get(k) for k in self.required):
            try:
                self.entries = self.parse(self.options)
                self._parse_sizes()
            except ShapesError as err:
                raise UsageError(str(err)) from None

    def _parse_sizes(self) -> None:
        """--globals, and every size (NAME:=SIZE, --globals) is an array's size."""
        ints = tuple(
            (f"{self.sizes_option} entry '{e.name}:={e.dims[0].text}'", e.dims[0])
            for e in self.entries
            if e.kind == "size"
        )
        require_array_letters(ints, self.entries, self.arrays_from)
        if self.options.get("globals") is None:
            return
        self.globals = parse_globals(str(self.options["globals"]))
        shown = tuple(
            (f"--globals entry '{name}={size.text}'", size) for name, size in self.globals
        )
        require_array_letters(shown, self.entries, self.arrays_from)

    def parse(self, options: dict[str, Any]) -> tuple[Entry, ...]:
        raise NotImplementedError

    @property
    def shapes(self) -> str:
        """The description every problem is drawn from (the entries, in order)."""
        raise NotImplementedError

    @property
    def keep(self) -> int:
        return 0

    def require_options(self) -> None:
        if not self.entries:
            flags = ", ".join(f"--{k.replace('_', '-')}" for k in self.required)
            raise UsageError(f"--style {self.name} needs {flags}")

    # -- what to draw ---------------------------------------------------------------
    def space_for(self, **choices: Any) -> Space:
        """Only ``max_LETTER`` choices (the largest size of each letter), e.g. max_H=6."""
        if not self.entries:
            return super().space_for(**choices)
        given = {}
        for key, value in choices.items():
            if not key.startswith("max_"):
                flag = "--" + key.rstrip("s").replace("_", "-")
                raise UsageError(
                    f"--style {self.name} draws sizes only (--max-LETTER); it takes no {flag}"
                )
            given[key.removeprefix("max_")] = value
        try:
            bounds = bounds_for(self.entries, given)
        except ValueError as err:
            raise UsageError(str(err)) from None
        return LetterSpace(
            max_T=bounds.get("T", 1), max_H=bounds.get("H", 1), bounds=tuple(bounds.items())
        )

    def problems(self, space: Space) -> Any:
        self.require_options()
        bounds = (
            dict(space.bounds)
            if isinstance(space, LetterSpace) and space.bounds
            else bounds_for(self.entries)
        )
        return drawn_problems(self.shapes, bounds, self.keep)

    def real_cases(self, space: Space) -> list[Case]:
        return []  # the sizes people run cost too many calls entry by entry

    def refuses(self, case: Any) -> str:
        if not isinstance(case, Drawn):
            return "it takes problems drawn from its own shapes (shapes.make_problem)"
        if case.recipe["shapes"] != self.shapes:
            return f"the problem's shapes {case.recipe['shapes']!r} are not {self.shapes!r}"
        return ""

    # -- the user's functions, and their module globals ------------------------------
    def short(self, option: str) -> str:
        """The function's name as the report shows it (NAME of OTHER.py:NAME)."""
        return str(self.options.get(option, option)).rpartition(":")[2]

    def function_of(self, option: str, obj: Any, where: str) -> tuple[Any, str]:
        """(the function the option names, the file it comes from): from another file
        when the option is ``OTHER.py:NAME`` (loaded in a worker of its own when the
        target runs in one, else here), else ``obj``'s member; UsageError if missing."""
        from manual_bptt.checking.source import load
        from manual_bptt.checking.worker import Remote, Worker

        spec = str(self.options[option])
        if not other_file(spec):
            return member(obj, spec, where), where
        file = spec.rpartition(":")[0]
        old = self._others.pop(option, None)
        if isinstance(old, Remote):
            old._worker.close()
        if isinstance(obj, Remote):
            worker = Worker(spec, obj._worker.timeout)
            self._others[option] = worker.start()
            weakref.finalize(self, worker.close)
        else:
            self._others[option] = load(spec)
        return self._others[option], file

    def fetch(self, option: str, seen: Observed, target: Any) -> Any:
        """The option's function for one run (from the target, read again each time, so
        that a worker started again after a time-out still has it)."""
        name = self.short(option)
        return self._others.get(option) or seen.get(name, target, name)

    def new_problem(self) -> None:
        """Forget what the last problem left in the other files' workers."""
        from manual_bptt.checking.worker import Remote

        for fn in self._others.values():
            if isinstance(fn, Remote):
                fn._worker.new_problem()

    def global_values(self, case: Drawn, **more: Any) -> dict[str, Any] | None:
        """The module globals of a call on ``case``: --globals at its sizes, and ``more``
        (the loss form's parameters); None when there are none."""
        values = {name: size.value(case.sizes) for name, size in self.globals}
        values.update(more)
        return values or None

    def check_globals(self, functions: list[tuple[Any, str]]) -> None:
        """UsageError unless each --globals name is a module global of the file of one of
        ``functions`` ((function or class, its file) pairs) that is unset or an int."""
        from manual_bptt.checking.serve import global_names
        from manual_bptt.checking.worker import Remote

        if not self.globals:
            return
        found: list[dict[str, str]] = []
        for fn, where in functions:
            try:
                names = fn.global_names() if isinstance(fn, Remote) else global_names(fn)
            except CodeFailed as err:
                raise UsageError(err.message) from None
            if names is None:
                raise UsageError(
                    f"--globals: {self.short_of(fn)} in {where} is not a Python function or a "
                    "class with methods, so it has no module globals to set"
                )
            found.append(names)
        files = " or ".join(dict.fromkeys(where for _, where in functions))
        for name, size in self.globals:
            kinds = [names[name] for names in found if name in names]
            held = [kind for kind in kinds if kind]  # what a file's global holds now
            if "int" in held:
                continue
            entry = f"--globals entry '{name}={size.text}'"
            if held:
                raise UsageError(
                    f"{entry}: {name} in {files} is of type {held[0]}, not a size (--globals "
                    "sets module globals that hold ints or are unset)"
                )
            if name in vars(builtins):
                raise UsageError(
                    f"{entry}: {name} is one of Python's builtins, not a global of {files}"
                )
            if not kinds:
                raise UsageError(
                    f"{entry}: {name} is no module global of {files} (no statement sets it "
                    "and no function reads it)"
                )

    def hint_globals(self, seen: Observed) -> Observed:
        """``seen`` with a hint added to each failure that is a NameError for a name not in
        --globals: a size the file sets from its data is missing (issue 23)."""
        given = {name for name, _ in self.globals}
        for key, message in seen.failures.items():
            found = _NAME_ERROR.search(message)
            if found and found.group(1) not in given:
                name = found.group(1)
                seen.failures[key] = (
                    f'{message}; if {name} is a size, set it with --globals "{name}=SIZE"'
                )
        return seen

    @staticmethod
    def short_of(fn: Any) -> str:
        return str(getattr(fn, "__name__", None) or type_name(fn))

    # -- gradients --------------------------------------------------------------------
    def floats(self) -> list[Entry]:
        raise NotImplementedError

    def function(self) -> str:
        raise NotImplementedError

    def gradients_for(self, target: Target) -> tuple[Gradient, ...]:
        return tuple(Gradient(e.name, f"d{e.name}", self.function()) for e in self.floats())

    def gradient(self, key: str) -> Gradient:
        return next(g for g in self.gradients_for(None) if g.key == key)

    def arrays(self, case: Any) -> dict[str, Any]:
        return dict(case.values)

    # -- the reference --------------------------------------------------------------
    def judge(
        self,
        seen: Observed,
        got: dict[str, Any],
        case: Drawn,
        phi: Callable[[Any], float | complex],
    ) -> None:
        """Read every gradient strictly; check the readable ones against φ's derivative
        and record them (a shape problem is left to verify's comparison)."""
        from manual_bptt.checking.numeric_reference import reference_agreements, renamed
        from manual_bptt.checking.verify import strict_array

        arrays = {e.name: np.asarray(case.values[e.name], np.float64) for e in self.floats()}
        readable = {}
        for name, value in arrays.items():
            array, _ = strict_array(got[name], value)
            if array is None:
                seen.gradients[name] = (got[name], value)
            else:
                readable[name] = array
        if not readable:
            return
        if not seen.reference:  # a second run, only compared with the first
            for name in readable:
                seen.gradients[name] = (got[name], arrays[name])
            return
        try:
            found, cost = reference_agreements(
                phi, readable, arrays, seed=int(case.recipe["seed"]) + seen.seed
            )
        except CodeFailed as err:
            seen.from_reference.add(err.key)
            raise
        self.stats["problems"] += 1
        self.stats[cost.method] += 1
        self.stats["calls"] += cost.calls
        self.stats["entry by entry"] += len(cost.entry_by_entry)
        for name, a in found.items():
            seen.gradients[name] = (got[name], arrays[name])
            seen.judged[name] = renamed(a, f"d{name}")

    def cost_line(self) -> str:
        from manual_bptt.checking.numeric_reference import describe_cost

        return describe_cost(self.stats)


def result_array(what: str, value: Any, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """``value`` as a numeric array (of ``shape`` when given); CodeFailed if it is not."""
    from manual_bptt.checking.worker import Remote

    if isinstance(value, Remote) or not isinstance(
        value, (np.ndarray, np.generic, list, tuple, int, float, complex)
    ):
        raise CodeFailed(f"{what} is not an array", f"{what} is a {type_name(value)}, not an array")
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as err:
        raise CodeFailed(f"{what} is not an array", f"{what} is not an array ({err})") from None
    if array.dtype.kind not in "iufc":
        raise CodeFailed(f"{what} is not an array", f"{what} is an array of {array.dtype}")
    if shape is not None and array.shape != shape:
        raise CodeFailed(
            f"{what} changed shape", f"{what} has shape {array.shape}, not {shape} as at θ"
        )
    return array


def phi_value(array: np.ndarray, weights: np.ndarray | float, moved: bool) -> float | complex:
    """Σ weights ⊙ array: complex when ``moved`` (a complex step was taken: a real
    result then means the complex step cannot be used), else real."""
    from manual_bptt.checking.numeric_reference import NotComplex

    if moved:
        if array.dtype.kind != "c":
            raise NotComplex
        return complex(np.sum(weights * array))
    return float(np.sum(weights * np.real(array)))


class LayerStyle(GenericStyle):
    name = "layer"
    summary = "--forward F --backward B --shapes S: B(dout, *rest) against F's own derivative"
    reference = "the derivative of its own forward"
    option_names = ("forward", "backward", "shapes", "globals")
    required = ("forward", "backward", "shapes")

    def parse(self, options: dict[str, Any]) -> tuple[Entry, ...]:
        return parse_shapes(str(options["shapes"]), "--shapes")

    @property
    def shapes(self) -> str:
        return " ".join(str(self.options["shapes"]).split())

    @property
    def keep(self) -> int:
        return 1  # "new weights": every float input but the first (the data) drawn again

    def floats(self) -> list[Entry]:
        return [e for e in self.entries if e.kind == "float"]

    def function(self) -> str:
        return self.short("backward")

    def bind(self, obj: Target, where: str) -> Target:
        self.require_options()
        forward, backward = self.short("forward"), self.function()
        n = len(self.entries)
        names = ", ".join(e.name for e in self.entries)
        fwd, fwd_file = self.function_of("forward", obj, where)
        require_callable(fwd, forward, (None,) * n, f"{forward}({names})")
        bwd, bwd_file = self.function_of("backward", obj, where)
        if not facts(bwd)["callable"]:
            raise UsageError(
                f"{backward} is not callable (it is a {type_name(bwd)}); expected "
                f"{backward}(dout, *rest)"
            )
        self.check_globals([(fwd, fwd_file), (bwd, bwd_file)])
        return obj

    def observe(self, target: Target, case: Any, seen: Observed) -> Observed:
        forward, backward = self.short("forward"), self.function()
        names = tuple(e.name for e in self.entries)
        known = self.global_values(case)
        self.new_problem()
        with seen.attempt():
            fwd = self.fetch("forward", seen, target)
            returned = seen.call(
                forward, fwd, *self._inputs(case, {}), names=names, module_globals=known
            )
            out, rest = _split(returned)
            out_array = result_array(f"{forward}'s out", out)
            if out_array.dtype.kind == "c":
                out_array = out_array.real
            dout = case.upstream(out_array.shape)
            bwd = self.fetch("backward", seen, target)
            _same_process(backward, bwd, rest)
            grads = seen.call(
                backward,
                bwd,
                dout,
                *rest,
                names=("dout", *("cache",) * len(rest)),
                module_globals=known,
            )
            got = self._gradients(seen, grads)

            def phi(values: dict[str, np.ndarray]) -> float | complex:
                moved = any(np.iscomplexobj(v) for v in values.values())
                r = seen.call(
                    forward, fwd, *self._inputs(case, values), names=names, module_globals=known
                )
                array = result_array(f"{forward}'s out", _split(r)[0], out_array.shape)
                return phi_value(array, dout, moved)

            self.judge(seen, got, case, phi)
        return self.hint_globals(seen)

    def _inputs(self, case: Drawn, values: dict[str, np.ndarray]) -> list[Any]:
        """The forward's inputs: ``values`` where given, else fresh copies of the drawn
        ones (a size's int as it is)."""
        return [
            values[e.name] if e.name in values else fresh(case.values[e.name]) for e in self.entries
        ]

    def _gradients(self, seen: Observed, value: Any) -> dict[str, Any]:
        backward = self.function()
        floats = [e.name for e in self.floats()]
        if isinstance(value, dict):
            got = {n: value.get(n, value.get(f"d{n}", _MISSING)) for n in floats}
            missing = [n for n, v in got.items() if v is _MISSING]
            if missing:
                message = (
                    f"{backward} returned a dict without {', '.join(missing)}; expected one "
                    f"gradient per float input, keyed by its name ({', '.join(floats)})"
                )
                seen.interface.append(message)
                raise CodeFailed(f"{backward} returned the wrong gradients", message)
            return got
        return dict(
            zip(floats, seen.unpack(backward, value, tuple(f"d{n}" for n in floats)), strict=True)
        )


_MISSING = object()
_NAME_ERROR = re.compile(r"raised NameError: name '(\w+)' is not defined")


def fresh(value: Any) -> Any:
    """A copy of a drawn value for one call: a list, an array, or a size's int as it is."""
    if isinstance(value, list):
        return list(value)
    return value if type(value) is int else np.array(value)


def _same_process(backward: str, fn: Target, rest: tuple[Any, ...]) -> None:
    """CodeFailed if the forward's cache holds an object that stays in another worker
    process than ``fn`` (a backward in another file needs a cache of plain values)."""
    from manual_bptt.checking.worker import Remote

    def remotes(value: Any, depth: int = 0) -> list[Any]:
        if isinstance(value, Remote):
            return [value]
        if depth < 20 and isinstance(value, (tuple, list)):
            return [r for v in value for r in remotes(v, depth + 1)]
        if depth < 20 and isinstance(value, dict):
            return [r for v in value.values() for r in remotes(v, depth + 1)]
        return []

    home = getattr(fn, "_worker", None)
    for r in remotes(rest):
        if r._worker is not home:
            message = (
                f"the forward's cache holds a {r.info.get('type', 'object')}, which cannot reach "
                f"{backward} in another file; a cache of arrays, numbers, tuples, lists and "
                "dicts can"
            )
            raise CodeFailed(f"{backward} cannot receive the cache", message)


def other_file(spec: str) -> bool:
    """Whether a function's option names one of another file (``OTHER.py:NAME``)."""
    file, sep, _ = spec.rpartition(":")
    return bool(sep) and file.endswith((".py", ".ipynb"))


def _split(returned: Any) -> tuple[Any, tuple[Any, ...]]:
    """(out, rest) from what a forward returned: a tuple is (out, *rest)."""
    if isinstance(returned, tuple) and returned:
        return returned[0], tuple(returned[1:])
    return returned, ()


def letters(style: GenericStyle) -> tuple[str, ...]:
    return letters_of(style.entries)


STYLE = LayerStyle
