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
"""

from __future__ import annotations

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
    bounds_for,
    drawn_problems,
    letters_of,
    parse_shapes,
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
    """What the layer and loss forms share: entries, sizes, drawing, the reference's cost."""

    space = Space()
    sizes = ()
    required: tuple[str, ...] = ()
    keep_inputs = False  # the loss form keeps its --args under "new weights"

    def __init__(self, **options: Any) -> None:
        super().__init__(**{k: v for k, v in options.items() if v is not None})
        self.entries: tuple[Entry, ...] = ()
        self.stats: Counter[str] = Counter()
        if all(self.options.get(k) for k in self.required):
            try:
                self.entries = self.parse(self.options)
            except ShapesError as err:
                raise UsageError(str(err)) from None

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
        found, cost = reference_agreements(
            phi, readable, arrays, seed=int(case.recipe["seed"]) + seen.seed
        )
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
    option_names = ("forward", "backward", "shapes")
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
        return str(self.options.get("backward", "backward")).rpartition(":")[2]

    def bind(self, obj: Target, where: str) -> Target:
        self.require_options()
        forward, backward = self.options["forward"], self.function()
        n = len(self.entries)
        names = ", ".join(e.name for e in self.entries)
        require_callable(member(obj, forward, where), forward, (None,) * n, f"{forward}({names})")
        found = self._other_backward(obj) or member(obj, backward, where)
        if not facts(found)["callable"]:
            raise UsageError(
                f"{backward} is not callable (it is a {type_name(found)}); expected "
                f"{backward}(dout, *rest)"
            )
        return obj

    _backward: Target | None = None
    _worker: Any = None

    def _other_backward(self, obj: Target) -> Target | None:
        """--backward OTHER.py:NAME: the function, loaded in a worker of its own when the
        target runs in one (else here); None when the backward is the target's."""
        from manual_bptt.checking.source import load
        from manual_bptt.checking.worker import Remote, Worker

        spec = str(self.options["backward"])
        where, sep, _ = spec.rpartition(":")
        if not sep or not where.endswith((".py", ".ipynb")):
            return None
        if isinstance(obj, Remote):
            self._worker = Worker(spec, obj._worker.timeout)
            self._backward = self._worker.start()
            weakref.finalize(self, self._worker.close)
        else:
            self._backward = load(spec)
        return self._backward

    def observe(self, target: Target, case: Any, seen: Observed) -> Observed:
        forward, backward = self.options["forward"], self.function()
        names = tuple(e.name for e in self.entries)
        with seen.attempt():
            fwd = seen.get(forward, target, forward)
            returned = seen.call(forward, fwd, *self._inputs(case, {}), names=names)
            out, rest = _split(returned)
            out_array = result_array(f"{forward}'s out", out)
            if out_array.dtype.kind == "c":
                out_array = out_array.real
            dout = case.upstream(out_array.shape)
            bwd = self._backward or seen.get(backward, target, backward)
            _same_process(backward, bwd, rest)
            grads = seen.call(backward, bwd, dout, *rest, names=("dout", *("cache",) * len(rest)))
            got = self._gradients(seen, grads)

            def phi(values: dict[str, np.ndarray]) -> float | complex:
                moved = any(np.iscomplexobj(v) for v in values.values())
                r = seen.call(forward, fwd, *self._inputs(case, values), names=names)
                array = result_array(f"{forward}'s out", _split(r)[0], out_array.shape)
                return phi_value(array, dout, moved)

            self.judge(seen, got, case, phi)
        return seen

    def _inputs(self, case: Drawn, values: dict[str, np.ndarray]) -> list[Any]:
        return [
            values[e.name]
            if e.name in values
            else (list(v) if isinstance(v := case.values[e.name], list) else np.array(v))
            for e in self.entries
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


def _split(returned: Any) -> tuple[Any, tuple[Any, ...]]:
    """(out, rest) from what a forward returned: a tuple is (out, *rest)."""
    if isinstance(returned, tuple) and returned:
        return returned[0], tuple(returned[1:])
    return returned, ()


def letters(style: GenericStyle) -> tuple[str, ...]:
    return letters_of(style.entries)


STYLE = LayerStyle
