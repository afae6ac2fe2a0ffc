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
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np

from manual_bptt.cases import Case
from manual_bptt.checking.guard import CodeFailed
from manual_bptt.checking.strategies import Space, problems
from manual_bptt.compare import Agreement
from manual_bptt.errors import UsageError

Answer = TypeVar("Answer")


class Target(Protocol):
    """The user's code as a style holds it, and what a style may do with it.

    A target is a :class:`~manual_bptt.checking.worker.Remote` (the object stays in the
    worker process; every use of it is a request there) or, for an object that cannot be
    named for the worker, the object itself (a function, class, module or instance). A
    style does three things with it, each through the problem's :class:`Observed`, which
    times, guards and records them:

    - call it: :meth:`Observed.call`, ``fn(*args, **kwargs)``;
    - read an attribute: :meth:`Observed.get`, ``getattr(obj, name, default)``;
    - set an attribute: :meth:`Observed.set`, ``setattr(obj, name, value)``.

    :meth:`Style.bind` reads it before the first problem with :func:`member`,
    :func:`require_callable`, :func:`facts` and ``hasattr``, refusing what cannot work.

    No member is declared, on purpose: every object is a target, and mypy refuses
    ``target.name``, ``target(...)`` and ``target[key]`` written in a style, which would
    skip the time limit and the guard here and fail on a Remote (called by a request,
    not by ``()``). Declaring ``__getattr__`` would exclude functions and classes, and
    ``__getattribute__`` would let every attribute through unchecked.
    """


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


# What a changed argument may cost a caller, by the argument's role.
UPSTREAM = frozenset({"dh", "dnext_h", "dnext_c", "dout"})
CACHES = frozenset({"cache"})
MATTERS = {
    "input": "this matters to a caller: its own data (inputs or weights) is changed by the call",
    "upstream": (
        "harmless to a caller that passes a fresh upstream gradient, as the course's "
        "layer does; a caller that reads it again after the call sees it changed"
    ),
    "cache": (
        "harmless unless the cache is used again (a second backward through the same "
        "forward would see it changed)"
    ),
}


def role_of(name: str) -> str:
    """ "upstream", "cache" or "input": what a change to this argument costs a caller."""
    base = name.split("[", 1)[0].split(".", 1)[0]
    if base in UPSTREAM:
        return "upstream"
    return "cache" if base in CACHES else "input"


@dataclass
class Observed:
    """What the code under test returned on one problem, beside what was expected.

    Attributes:
        gradients: key → (got, expected), both in the style's own layout.
        outputs: key → (what, got, expected) for values that are not gradients
            (a loss, the states h), compared under the same tolerance.
        failures: key → sentence, for what went wrong otherwise (an exception, a
            time-out, a wrong shape).
        interface: sentences saying the code does not have the style's interface
            (e.g. rnn_backward returned 4 values, not 5); on the first problem they
            are a usage error.
        changes: key → (sentence, role) for each argument a call changed in place
            (role "input", "upstream" or "cache": see :data:`MATTERS`).
        judged: key → the gradient's comparison, for a style that compares it itself
            (the generic forms, against a numerical reference with an error bound per
            entry); verify compares the other gradients with ``expected``.
        timeout: seconds allowed per call; seed: seeds the global random generators
            before each call (the n-th call of a problem gets seed + n); layout: how
            float array arguments are laid out ("C", "F" or "strided").
        reference: whether what is expected is wanted. False on a problem's second
            run, which is only compared with its first (nondeterminism): a style whose
            reference is costly may skip it there (the generic forms' numerical one).
        from_reference: the keys of ``failures`` raised while computing the reference
            (the user's forward at a moved θ), which a run without it cannot have.
    """

    gradients: dict[str, tuple[Any, np.ndarray]] = field(default_factory=dict)
    outputs: dict[str, tuple[str, Any, np.ndarray]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    interface: list[str] = field(default_factory=list)
    changes: dict[str, tuple[str, str]] = field(default_factory=dict)
    judged: dict[str, Agreement] = field(default_factory=dict)
    timeout: float | None = None
    seed: int = 0
    layout: str = "C"
    calls: int = 0
    reference: bool = True
    from_reference: set[str] = field(default_factory=set)

    @contextlib.contextmanager
    def attempt(self) -> Iterator[None]:
        """Record a CodeFailed raised inside the block as a failure, and carry on."""
        try:
            yield
        except CodeFailed as err:
            self.failures[err.key] = err.message

    def call(
        self,
        what: str,
        fn: Target,
        *args: Any,
        names: tuple[str, ...] = (),
        module_globals: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """``fn(*args, **kwargs)``, the code under test, in the worker when it lives
        there; ``names`` names the positional arguments for the changes it records.
        Raises CodeFailed (caught by :meth:`attempt`) if it raised, exited or timed out."""
        from manual_bptt.checking.worker import run_call

        self.calls += 1
        value, changed = run_call(
            what,
            fn,
            args,
            kwargs,
            timeout=self.timeout,
            seed=self.seed + self.calls,
            layout=self.layout,
            module_globals=module_globals,
        )
        for place in changed:
            self.changed_in_place(what, _argument(place, names))
        return value

    def get(self, what: str, obj: Target, name: str, default: Any = None) -> Any:
        """``getattr(obj, name, default)`` on the code under test's object (a property
        may run its code): CodeFailed, not a traceback, if that raises."""
        from manual_bptt.checking.worker import Remote

        if isinstance(obj, Remote):
            return getattr(obj, name, default)
        return _guarded(f"reading .{name} of {type_name(obj)}", lambda: getattr(obj, name, default))

    def set(self, what: str, obj: Target, name: str, value: Any) -> None:
        """``setattr(obj, name, value)`` on the code under test's object; CodeFailed if
        that raises (a read-only attribute)."""
        from manual_bptt.checking.worker import Remote

        if isinstance(obj, Remote):
            setattr(obj, name, value)
        else:
            _guarded(f"setting .{name} of {type_name(obj)}", lambda: setattr(obj, name, value))

    def changed_in_place(self, what: str, name: str) -> None:
        """Record that the call ``what`` changed its argument ``name`` in place."""
        base = name.split("[", 1)[0].split(".", 1)[0]
        self.changes.setdefault(
            f"changed {base}", (f"{what} changed {name} in place", role_of(name))
        )

    def unpack(self, what: str, value: Any, names: tuple[str, ...]) -> tuple[Any, ...]:
        """``value`` as a tuple of len(names); else record an interface problem and
        raise CodeFailed (caught by :meth:`attempt`)."""
        from manual_bptt.checking.worker import Remote

        n = len(names)
        if isinstance(value, Remote) and value.info.get("length") is not None:
            # a namedtuple (a tuple or list subclass) stays in the worker: its items come here
            if value.info["length"] == n:
                return tuple(value[i] for i in range(n))
            count = f"{value.info['length']} values"
        elif isinstance(value, (tuple, list)) and len(value) == n:
            return tuple(value)
        else:
            count = f"{len(value)} values" if isinstance(value, (tuple, list)) else type_name(value)
        message = f"{what} returned {count}; expected {n}: ({', '.join(names)})"
        self.interface.append(message)
        raise CodeFailed(f"{what} returned the wrong number of values", message)

    def changed(self, key: str, what: str, before: Any, after: Any) -> None:
        """Record a change in place if ``after`` (a value read after the call) differs
        from ``before`` (what it was given)."""
        if not _same(before, after):
            self.changed_in_place(what, key)


def _argument(place: str, names: tuple[str, ...]) -> str:
    """A changed place as the worker names it ("#2[1]", "h0", "$Wxh") in the style's words."""
    if place.startswith("#"):
        digits = place[1:].split("[", 1)[0].split(".", 1)[0]
        rest = place[1 + len(digits) :]
        i = int(digits)
        return (names[i] if i < len(names) else f"argument {i + 1}") + rest
    if place.startswith("$"):
        return f"the global {place[1:]}"
    return place


def _guarded(what: str, action: Callable[[], Any]) -> Any:
    try:
        return action()
    except Exception as err:  # noqa: BLE001 (the code under test's own attribute code)
        name = type(err).__name__
        raise CodeFailed(f"{what} raised {name}", f"{what} raised {name}: {err}") from None


def type_name(value: object) -> str:
    """The name of a value's type, also for an object that stays in the worker."""
    return str(facts(value)["type"])


def facts(value: object) -> dict[str, Any]:
    """What verify needs to know of an object: its type's name, whether it is a class,
    callable, a Python function (with module globals), a module; also for a Remote."""
    from manual_bptt.checking import serve
    from manual_bptt.checking.worker import Remote

    if isinstance(value, Remote):
        return value.info
    return serve._facts(value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.shape(a) == np.shape(b) and np.array_equal(a, b, equal_nan=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(p, q) for p, q in zip(a, b, strict=True))
    return bool(a == b)


def require_callable(
    obj: Target, what: str, args: tuple[Any, ...], shown: str, **kwargs: Any
) -> Target:
    """``obj`` if it is callable and accepts ``args`` and ``kwargs``; else UsageError.

    ``shown`` is how the call is written in the message ("rnn_forward(x, h0, Wx, Wh, b)").
    """
    from manual_bptt.checking.worker import Remote

    if isinstance(obj, Remote):
        try:
            problem = obj.signature_problem(len(args), tuple(kwargs))
        except CodeFailed as err:
            raise UsageError(err.message) from None
        if problem is None:
            return obj
        kind, detail, error = tuple(problem)
        if kind == "not callable":
            raise UsageError(f"{what} is not callable (it is a {detail}); expected {shown}")
        raise UsageError(f"{what}{detail} cannot be called as {shown}: {error}")
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


def member(obj: Target, name: str, where: str) -> Target:
    """``obj.name``, or UsageError saying that ``where`` defines no ``name``."""
    try:
        found: Target = getattr(obj, name)
        return found
    except AttributeError:
        raise UsageError(f"{where} defines no {name}") from None
    except CodeFailed as err:
        raise UsageError(err.message) from None


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
    _twin_kept: tuple[Case, Any] | None = None  # (problem, the twin's answer): see twin()
    # The sizes people run (T, N, D, H, K), tried once each after the search.
    real_sizes: ClassVar[tuple[dict[str, int], ...]] = (
        {"T": 30, "N": 8, "D": 20, "H": 50, "K": 20},
    )

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

    def real_cases(self, space: Space) -> list[Case]:
        """Two problems per :attr:`real_sizes`: at each option's simplest allowed value,
        then at its last, inside ``space``'s choices (T and H at most the user's
        --max-T and --max-H when given)."""
        from manual_bptt.cases import make_case

        out = []
        for sizes in self.real_sizes:
            for pick, seed in ((0, 1), (-1, 2)):
                batched = space.batched[pick]
                mode = space.modes[pick]
                # --max-T and --max-H are the user's: never exceeded
                T = sizes["T"] if space.max_T == self.space.max_T else min(sizes["T"], space.max_T)
                H = sizes["H"] if space.max_H == self.space.max_H else min(sizes["H"], space.max_H)
                out.append(
                    make_case(
                        T=T,
                        N=sizes["N"] if batched else 1,
                        D=sizes["D"],
                        H=H,
                        K=sizes["D"] if space.same_vocab else sizes["K"],
                        seed=seed,
                        scale=min(max(1.0, space.min_scale), space.max_scale),
                        activation=space.activations[pick],
                        tokens=space.tokens[pick],
                        batched=batched,
                        with_h0=space.h0[pick],
                        with_mask=space.mask[pick],
                        truncate=4 if mode == "truncate" else None,
                        chunk=5 if mode == "chunk" else None,
                        tbptt=(3, 6) if mode == "tbptt" else None,
                        reduction=space.reductions[pick],
                        dtype=space.dtypes[pick],
                        biases=space.biases[pick],
                        cell=space.cells[pick],
                        reset=space.resets[pick] if space.cells[pick] == "gru" else "after",
                    )
                )
        return out

    def problems(self, space: Space) -> Any:
        """The Hypothesis strategy of the problems to draw from ``space`` (a style with
        problems of its own kind, such as the generic forms', overrides it)."""
        return problems(space)

    def refuses(self, case: Case) -> str:
        """Why this style cannot take ``case`` (a problem from another style's space),
        or "" when it can."""
        space, r = self.space, case.recipe
        checks = [
            ("batched", r.get("batched", True), space.batched),
            ("tokens", r.get("tokens", False), space.tokens),
            ("with_mask", r.get("with_mask", False), space.mask),
            ("reduction", r.get("reduction", "sum"), space.reductions),
            ("cell", r.get("cell", "rnn"), self.cells),
            ("activation", r.get("activation", "tanh"), space.activations),
        ]
        mode = (
            "truncate"
            if case.truncate is not None
            else "chunk"
            if case.chunk is not None
            else "tbptt"
            if case.tbptt is not None
            else "full"
        )
        checks.append(("mode", mode, (*space.modes, "tbptt") if space.tbptt else space.modes))
        if space.biases == (False,):
            checks.append(("biases", r.get("biases", True), (False,)))
        if space.h0 == (False,):
            checks.append(("with_h0", r.get("with_h0", False), (False,)))
        if space.same_vocab and r.get("K") != r.get("D"):
            return f"K = {r.get('K')} differs from D = {r.get('D')} (one vocabulary)"
        for name, value, allowed in checks:
            if value not in allowed:
                return f"{name}={value!r} (it takes {', '.join(map(repr, allowed))})"
        return ""

    def gradient(self, key: str) -> Gradient:
        return next(g for g in self.gradients if g.key == key)

    def gradients_for(self, target: Target) -> tuple[Gradient, ...]:
        """The gradients this target returns: all, but the "step:" ones only where the
        target has the style's optional :attr:`step_functions`."""
        if not self.step_functions or self.has_steps(target):
            return self.gradients
        return tuple(g for g in self.gradients if not g.key.startswith("step:"))

    def has_steps(self, target: Target) -> bool:
        """Whether the target defines every one of the style's :attr:`step_functions`."""
        return bool(self.step_functions) and all(
            hasattr(target, _called(shown)[0]) for shown in self.step_functions
        )

    def bind_functions(self, obj: Target, where: str) -> Target:
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

    def bind(self, obj: Target, where: str) -> Target:
        """The checkable target from the user's object; UsageError if it cannot be."""
        raise NotImplementedError

    def takes(self, target: Target, space: Space, where: str) -> None:
        """UsageError unless the bound target takes every option ``space`` may hand it
        (checked once, before the search; most styles' spaces add nothing to bind's)."""

    def observe(self, target: Target, case: Case, seen: Observed) -> Observed:
        """Run the target on one problem and record everything in ``seen`` (which
        holds the time limit and the seed) against the twin; return ``seen``."""
        raise NotImplementedError

    def arrays(self, case: Case) -> dict[str, np.ndarray]:
        """The problem's arrays under the style's own names, for printing."""
        raise NotImplementedError

    def twin(self, target: Target, case: Case, compute: Callable[[], Answer]) -> Answer:
        """``compute()``, the twin's answer on ``case``: once for the two runs of one
        problem when the code runs in the worker, where it is given copies, so that the
        problem cannot change between them (here it may change it in place). Kept
        until :meth:`forget_twin`, which verify's evaluate calls before each problem."""
        from manual_bptt.checking.worker import Remote

        if not isinstance(target, Remote):
            return compute()
        kept = self._twin_kept
        if kept is not None and kept[0] is case:
            return kept[1]  # type: ignore[no-any-return]
        answer = compute()
        self._twin_kept = (case, answer)
        return answer

    def forget_twin(self) -> None:
        """Drop the twin's answer kept by :meth:`twin` (a caller may change a problem in
        place between two evaluations of it)."""
        self._twin_kept = None


def _cell_styles() -> dict[str, tuple[str, ...]]:
    """Each style's cells, from the Style subclasses the styles package has loaded (no
    import of the package, which imports this module)."""
    found: dict[str, tuple[str, ...]] = {}
    todo = list(Style.__subclasses__())
    while todo:
        style = todo.pop(0)
        todo.extend(style.__subclasses__())
        if "name" in vars(style):
            found[style.name] = style.cells
    return found
