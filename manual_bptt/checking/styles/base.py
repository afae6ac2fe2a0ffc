"""What every style of ``bptt verify`` is: an adapter from the user's interface to the twin.

A style says which gradients the user's code returns (:class:`Gradient`: the project's
name, the style's own name, which function returns it), which problems it can be given
(a :class:`~manual_bptt.checking.strategies.Space`), how to find the functions it
needs in the user's object (:meth:`Style.bind`, which refuses at once what cannot work),
and how to run them on one problem (:meth:`Style.observe`): every call goes through
:func:`manual_bptt.checking.guard.call`, and every result is recorded in an
:class:`Observed` beside the value autograd expects, in the user's own layout.
verify.py does the comparing, searching and shrinking, once for every style.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from manual_bptt.checking.cases import Case
from manual_bptt.checking.guard import CodeFailed
from manual_bptt.checking.strategies import Space


class UsageError(ValueError):
    """The code cannot be checked as asked (exit 2): nothing was searched."""


@dataclass(frozen=True)
class Gradient:
    """One gradient a style's code returns.

    Attributes:
        key: the project's name ("U", "W", "V", "b", "c", "h0", "x"), prefixed with
            the function's role when a style returns the same gradient twice
            ("step:U" for CS231n's rnn_step_backward).
        name: the style's own name for it ("dWx").
        function: the function that returns it ("rnn_backward").
        relation: how it maps to the project's gradient ("dWx = dUᵀ").
    """

    key: str
    name: str
    function: str
    relation: str = ""

    @property
    def label(self) -> str:
        """e.g. "dWx (rnn_backward; dWx = dUᵀ)"."""
        extra = f"; {self.relation}" if self.relation else ""
        return f"{self.name} ({self.function}{extra})"


@dataclass
class Observed:
    """What the code under test returned on one problem, beside what was expected.

    Attributes:
        gradients: key → (got, expected), both in the style's own layout.
        outputs: key → (what, got, expected) for values that are not gradients
            (a loss, the states h), compared under the same tolerance.
        failures: key → sentence, for what went wrong otherwise (an exception, a
            time-out, a changed input, a wrong shape).
        interface: sentences saying the code does not have the style's interface
            (e.g. rnn_backward returned 4 values, not 5); on the first problem they
            are a usage error.
    """

    gradients: dict[str, tuple[Any, np.ndarray]] = field(default_factory=dict)
    outputs: dict[str, tuple[str, Any, np.ndarray]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    interface: list[str] = field(default_factory=list)

    @contextlib.contextmanager
    def attempt(self) -> Iterator[None]:
        """Record a CodeFailed raised inside the block as a failure, and carry on."""
        try:
            yield
        except CodeFailed as err:
            self.failures[err.key] = err.message

    def unpack(self, what: str, value: Any, names: tuple[str, ...]) -> tuple[Any, ...]:
        """``value`` as a tuple of len(names); else record an interface problem and
        raise CodeFailed (caught by :meth:`attempt`)."""
        n = len(names)
        if isinstance(value, (tuple, list)) and len(value) == n:
            return tuple(value)
        count = f"{len(value)} values" if isinstance(value, (tuple, list)) else type(value).__name__
        message = f"{what} returned {count}; expected {n}: ({', '.join(names)})"
        self.interface.append(message)
        raise CodeFailed(f"{what} returned the wrong number of values", message)

    def changed(self, key: str, what: str, before: Any, after: Any) -> None:
        """Record a failure if ``after`` (the argument after the call) differs from
        ``before`` (a copy taken before it)."""
        if not _same(before, after):
            self.failures[f"changed {key}"] = (
                f"{what} changed {key} (a call must not change its inputs)"
            )


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.shape(a) == np.shape(b) and np.array_equal(a, b, equal_nan=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(p, q) for p, q in zip(a, b, strict=True))
    return bool(a == b)


def snapshot(value: Any) -> Any:
    """A deep copy to compare an argument with after a call."""
    return copy.deepcopy(value)


def require_callable(
    obj: Any, what: str, args: tuple[Any, ...], shown: str, **kwargs: Any
) -> Callable[..., Any]:
    """``obj`` if it is callable and accepts ``args`` and ``kwargs``; else UsageError.

    ``shown`` is how the call is written in the message ("rnn_forward(x, h0, Wx, Wh, b)").
    """
    if not callable(obj):
        raise UsageError(f"{what} is not callable (it is a {type(obj).__name__}); expected {shown}")
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):  # a builtin without a signature: the first call tells
        return obj
    try:
        signature.bind(*args, **kwargs)
    except TypeError as err:
        raise UsageError(f"{what}{signature} cannot be called as {shown}: {err}") from None
    return obj


def _called(shown: str) -> tuple[str, tuple[None, ...]]:
    """("f", (None, None)) from "f(a, b)": a function's name and a placeholder per argument."""
    name, _, args = shown.partition("(")
    return name, (None,) * len(args.rstrip(")").split(", "))


def member(obj: Any, name: str, where: str) -> Any:
    """``obj.name``, or UsageError saying that ``where`` defines no ``name``."""
    try:
        return getattr(obj, name)
    except AttributeError:
        raise UsageError(f"{where} defines no {name}") from None


class Style:
    """An adapter from one interface to the twin; subclass it in a module of this package.

    Class attributes:
        name: what --style takes ("cs231n").
        summary: one line for --help.
        gradients: every gradient the style's code returns, in report order.
        space: every problem the style can be given (its simplest options first).
        dtypes: the dtypes --dtype may choose (the default draws float64 only).
        option_names: the style's own options (min-char-rnn: clip_value).
        sizes: the sizes a counterexample shows (the rest are fixed by the style).
        cells: the cells --cell may choose ("rnn", "lstm", "gru"); the first is drawn
            when --cell is not given (its space's ``cells``).
        functions: the functions a target must define, written as called
            ("rnn_forward(x, h0, Wx, Wh, b)"), for :meth:`bind_functions`.
        step_functions: an optional pair (forward, backward) of one-step functions,
            written as called; a target that defines both is checked on the "step:"
            gradients too.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    gradients: ClassVar[tuple[Gradient, ...]]
    space: ClassVar[Space]
    dtypes: ClassVar[tuple[str, ...]] = ("float64", "float32")
    option_names: ClassVar[tuple[str, ...]] = ()
    sizes: ClassVar[tuple[str, ...]] = ("T", "N", "D", "H", "K")  # the sizes that mean something
    cells: ClassVar[tuple[str, ...]] = ("rnn",)
    functions: ClassVar[tuple[str, ...]] = ()
    step_functions: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - set(self.option_names))
        if unknown:
            given = ", ".join(f"--{k.replace('_', '-')}" for k in unknown)
            raise UsageError(f"--style {self.name} takes no option {given}")
        self.options = options

    def space_for(self, **choices: Any) -> Space:
        """The style's space narrowed by the user's choices (UsageError if unsupported).

        ``cells`` ("rnn", "lstm" or "gru") chooses the cell, one of the style's
        :attr:`cells`; ``resets`` ("after" or "before") the GRU's variant.
        """
        space = replace(self.space, dtypes=self.dtypes) if "dtypes" in choices else self.space
        space = self._cell_space(space, choices)
        try:
            return space.narrowed(**choices)
        except ValueError as err:
            raise UsageError(f"--style {self.name} cannot draw {err}") from None

    def _cell_space(self, space: Space, choices: dict[str, Any]) -> Space:
        """``space`` with the chosen cell and GRU variant; pops them from ``choices``."""
        cell, reset = choices.pop("cells", None), choices.pop("resets", None)
        if cell is not None:
            if cell not in self.cells:
                takes = "/".join(self.cells)
                others = ", ".join(
                    f"--style {name}" for name, cells in _cell_styles().items() if cell in cells
                )
                raise UsageError(
                    f"--style {self.name} takes --cell {takes} only, not --cell {cell}"
                    + (f" (for {cell}: {others})" if others else "")
                )
            space = replace(space, cells=(cell,))
        if reset is not None:
            if space.cells != ("gru",):
                raise UsageError("--reset chooses the GRU's variant: give it with --cell gru")
            space = replace(space, resets=(reset,))
        if "rnn" not in space.cells:
            asked = choices.get("activations")
            if asked is not None and asked != "tanh":
                raise UsageError(
                    f"--cell {space.cells[0]} has its own nonlinearities; "
                    "--activation is for --cell rnn"
                )
            choices.pop("activations", None)
            space = replace(space, activations=("tanh",))
        return space

    def gradient(self, key: str) -> Gradient:
        return next(g for g in self.gradients if g.key == key)

    def gradients_for(self, target: Any) -> tuple[Gradient, ...]:
        """The gradients this target returns: all, but the "step:" ones only where the
        target has the style's optional :attr:`step_functions`."""
        if not self.step_functions or self.has_steps(target):
            return self.gradients
        return tuple(g for g in self.gradients if not g.key.startswith("step:"))

    def has_steps(self, target: Any) -> bool:
        """Whether the target defines every one of the style's :attr:`step_functions`."""
        return bool(self.step_functions) and all(
            hasattr(target, _called(shown)[0]) for shown in self.step_functions
        )

    def bind_functions(self, obj: Any, where: str) -> Any:
        """``obj`` if it has every one of :attr:`functions` and, where it has the step
        pair, :attr:`step_functions`, each callable as written; UsageError if not."""
        for shown in self.functions:
            name, args = _called(shown)
            require_callable(member(obj, name, where), name, args, shown)
        if self.has_steps(obj):
            for shown in self.step_functions:
                name, args = _called(shown)
                require_callable(getattr(obj, name), name, args, shown)
        return obj

    def bind(self, obj: Any, where: str) -> Any:
        """The checkable target from the user's object; UsageError if it cannot be."""
        raise NotImplementedError

    def observe(self, target: Any, case: Case, timeout: float | None) -> Observed:
        """Run the target on one problem and record everything against the twin."""
        raise NotImplementedError

    def arrays(self, case: Case) -> dict[str, np.ndarray]:
        """The problem's arrays under the style's own names, for printing."""
        raise NotImplementedError


def _cell_styles() -> dict[str, tuple[str, ...]]:
    from manual_bptt.checking.styles import STYLES

    return {name: style.cells for name, style in STYLES.items()}
