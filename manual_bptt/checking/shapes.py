"""The shapes language of the generic verify forms, and the problems drawn from it.

A description is entries separated by spaces, each one of

    NAME:DIMS            a float64 array, e.g. ``x:N,T,D`` or ``b:4*H``
    NAME:DIMS:ints<S     an int64 array with entries in [0, S), e.g. ``y:N,T:ints<V``
    NAME:DIM:list<S      a Python list of DIM ints in [0, S), e.g. ``inputs:T:list<V``
    NAME:=SIZE           a Python int, the value of a size, e.g. ``vocab_size:=V``

where DIMS are comma-separated size expressions: sums and products of single capital
letters and integers (``H``, ``4*H``, ``H+D``, ``1``; ``*`` binds tighter than ``+``).
Each letter is a size; the problems (:class:`Drawn`) draw every letter first, in the
order it first appears, from [1, its bound] (Hypothesis shrinks it towards 1), then
a seed from which every array is made (:func:`make_problem`), so that a failure
shrinks to small sizes and a recipe of sizes and a seed rebuilds it. Nothing else is
accepted: the language is kept this small, and a refusal is one line with an example.
The letters are the arrays' sizes: a plain int (``NAME:=SIZE``) or a module global
(:func:`parse_globals`, ``--globals "vocab_size=V"``) takes the value of a size that an
array has, never a size of its own (:func:`require_array_letters`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st

# What a refusal shows, by option: a correct description of that option's kind.
EXAMPLES = {
    "--shapes": '"x:N,T,D h0:N,H Wx:D,4*H Wh:H,4*H b:4*H"',
    "--args": '"inputs:T:list<V targets:T:list<V hprev:H,1"',
    "--params": '"Wxh:H,V Whh:H,H Why:V,H bh:H,1 by:V,1"',
    "--globals": '"vocab_size=V hidden_size=H"',
}
DEFAULT_BOUND = 4  # a letter's largest size unless --max-LETTER says otherwise
MAX_BOUND = 64  # a larger size makes per-entry differences and most forwards too slow
KINDS = ("float", "ints", "list", "size")

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TERM = re.compile(r"(?:[A-Z]|[0-9]+)(?:\*(?:[A-Z]|[0-9]+))*\Z")


class ShapesError(ValueError):
    """A shapes description outside the language (a one-line message with an example)."""


@dataclass(frozen=True)
class Size:
    """A size expression: a sum of products of letters and integers, e.g. 4*H+D.

    Attributes:
        text: as written ("4*H+D"); terms: each product's factors, ((4, "H"), ("D",)).
    """

    text: str
    terms: tuple[tuple[int | str, ...], ...]

    @property
    def letters(self) -> tuple[str, ...]:
        """The letters it uses, in order of first appearance."""
        seen: dict[str, None] = {}
        for term in self.terms:
            for factor in term:
                if isinstance(factor, str):
                    seen.setdefault(factor)
        return tuple(seen)

    def value(self, sizes: dict[str, int]) -> int:
        """Σ_terms Π_factors, with each letter replaced by ``sizes[letter]``."""
        total = 0
        for term in self.terms:
            product = 1
            for factor in term:
                product *= sizes[factor] if isinstance(factor, str) else factor
            total += product
        return total


@dataclass(frozen=True)
class Entry:
    """One ``NAME:DIMS[:KIND<S]`` of a description.

    Attributes:
        name: the user's name for it; dims: its size expressions (one per axis);
        kind: "float" (float64 array), "ints" (int64 array), "list" (list of ints) or
            "size" (a Python int, the value of its one dim: ``vocab_size:=V``);
        bound: S, the ints' and lists' exclusive upper bound (None for the others).
    """

    name: str
    dims: tuple[Size, ...]
    kind: str = "float"
    bound: Size | None = None

    def shape(self, sizes: dict[str, int]) -> tuple[int, ...]:
        return tuple(d.value(sizes) for d in self.dims)

    @property
    def letters(self) -> tuple[str, ...]:
        found: dict[str, None] = {}
        for d in (*self.dims, *((self.bound,) if self.bound else ())):
            for letter in d.letters:
                found.setdefault(letter)
        return tuple(found)


def _refuse(option: str, entry: str, why: str) -> ShapesError:
    return ShapesError(f"{option} entry {entry!r}: {why}; write e.g. {option} {_example(option)}")


def _example(option: str) -> str:
    return EXAMPLES.get(option, EXAMPLES["--shapes"])


def parse_size(text: str, option: str = "--shapes", entry: str = "") -> Size:
    """A size expression (``4*H+D``); ShapesError for anything else."""
    compact = text.replace(" ", "")
    terms: list[tuple[int | str, ...]] = []
    for term in compact.split("+"):
        if not _TERM.match(term):
            raise _refuse(
                option,
                entry or text,
                f"{text!r} is not a size (sums and products of single capital letters "
                "and integers, such as 4*H or H+D)",
            )
        terms.append(tuple(int(f) if f.isdigit() else f for f in term.split("*")))
    size = Size(compact, tuple(terms))
    if not size.letters and size.value({}) < 1:
        raise _refuse(option, entry or text, f"the size {text!r} is not at least 1")
    return size


def parse_entry(text: str, option: str = "--shapes") -> Entry:
    """One ``NAME:DIMS[:ints<S|:list<S]`` or ``NAME:=SIZE``; ShapesError for anything else."""
    if ":=" in text:
        name, _, size = text.partition(":=")
        if not _NAME.match(name):
            raise _refuse(option, text, f"{name!r} is not a Python name")
        if not size:
            raise _refuse(option, text, "a plain int is NAME:=SIZE, e.g. vocab_size:=V")
        return Entry(name, (parse_size(size, option, text),), "size")
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[1]:
        raise _refuse(
            option,
            text,
            "an entry is NAME:DIMS, NAME:DIMS:ints<S, NAME:DIM:list<S or NAME:=SIZE",
        )
    name, dims_text = parts[0], parts[1]
    if not _NAME.match(name):
        raise _refuse(option, text, f"{name!r} is not a Python name")
    dims = tuple(parse_size(d, option, text) for d in dims_text.split(","))
    if len(parts) == 2:
        return Entry(name, dims)
    kind, less, bound = parts[2].partition("<")
    if kind not in ("ints", "list") or not less or not bound:
        raise _refuse(option, text, f"{parts[2]!r} is not ints<S or list<S")
    if kind == "list" and len(dims) != 1:
        raise _refuse(option, text, "a list has one size (NAME:T:list<V)")
    return Entry(name, dims, kind, parse_size(bound, option, text))


def parse_shapes(text: str, option: str = "--shapes") -> tuple[Entry, ...]:
    """Every entry of a description, in order; ShapesError (one line, with an example)
    for an empty description, a repeated name, or anything outside the language."""
    entries = tuple(parse_entry(part, option) for part in text.split())
    if not entries:
        raise ShapesError(f"{option} is empty; write e.g. {option} {_example(option)}")
    names = [e.name for e in entries]
    for name in names:
        if names.count(name) > 1:
            raise _refuse(option, name, f"the name {name} is given twice")
    return entries


def parse_globals(text: str) -> tuple[tuple[str, Size], ...]:
    """``--globals "vocab_size=V hidden_size=H"``: (name, size) pairs, in order;
    ShapesError (one line, with an example) for an empty text, an entry that is not
    NAME=SIZE, a name that is not a Python name or is given twice, a size outside the
    language."""
    option = "--globals"
    pairs: list[tuple[str, Size]] = []
    for part in text.split():
        name, equals, size = part.partition("=")
        if name.endswith(":"):
            raise _refuse(option, part, "a global is NAME=SIZE (NAME:=SIZE is an argument's)")
        if not equals or not size:
            raise _refuse(option, part, "an entry is NAME=SIZE, e.g. vocab_size=V")
        if not _NAME.match(name):
            raise _refuse(option, part, f"{name!r} is not a Python name")
        if name in dict(pairs):
            raise _refuse(option, name, f"the name {name} is given twice")
        pairs.append((name, parse_size(size, option, part)))
    if not pairs:
        raise ShapesError(f"{option} is empty; write e.g. {option} {_example(option)}")
    return tuple(pairs)


def require_array_letters(
    sizes: tuple[tuple[str, Size], ...], entries: tuple[Entry, ...], where: str
) -> None:
    """ShapesError if a size in ``sizes`` ((how it is shown, the size) pairs, e.g.
    ("--args entry 'vocab_size:=K'", K)) uses a letter that no array among ``entries``
    has: a plain int or a global takes the value of an array's size, and a letter of its
    own would be drawn unrelated to any array (``vocab_size:=K`` where the arrays say V
    is a slip). ``where`` names the options the arrays come from ("--args or --params")."""
    arrays = letters_of(tuple(e for e in entries if e.kind != "size"))
    for shown, size in sizes:
        unknown = [x for x in size.letters if x not in arrays]
        if unknown:
            raise ShapesError(
                f"{shown} uses the size {unknown[0]}, which no array of {where} has"
                + (f" (their sizes are {', '.join(arrays)})" if arrays else "")
            )


def letters_of(entries: tuple[Entry, ...]) -> tuple[str, ...]:
    """Every letter the entries use, in order of first appearance."""
    found: dict[str, None] = {}
    for e in entries:
        for letter in e.letters:
            found.setdefault(letter)
    return tuple(found)


def _draw_array(rng: np.random.Generator, entry: Entry, sizes: dict[str, int]) -> Any:
    """One entry's value: floats uniform in [−1, 1), ints and lists in [0, S), a size's
    int (drawing nothing, so that the arrays are those of the same seed without it)."""
    if entry.kind == "size":
        return entry.dims[0].value(sizes)
    shape = entry.shape(sizes)
    if entry.kind == "float":
        return rng.uniform(-1.0, 1.0, size=shape)
    assert entry.bound is not None
    values = rng.integers(0, entry.bound.value(sizes), size=shape, dtype=np.int64)
    return [int(v) for v in values] if entry.kind == "list" else values


@dataclass(frozen=True)
class Drawn:
    """One problem of a generic form: a value per entry, all from a recipe.

    Attributes:
        entries: the parsed description; sizes: letter → its size;
        values: name → float64 array, int64 array, list of ints or int, in entry order;
        keep: how many leading entries stay the same "with new weights" (the inputs);
        recipe: what rebuilds it with :func:`make_problem` (the description, the
            sizes, the seed and keep).
    """

    entries: tuple[Entry, ...]
    sizes: dict[str, int]
    values: dict[str, Any]
    keep: int
    recipe: dict[str, Any] = field(repr=False)
    layout: str = "C"

    MAKER = "manual_bptt.checking.shapes:make_problem"

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float64)

    @property
    def size_names(self) -> tuple[str, ...]:
        return tuple(self.sizes)

    def describe(self) -> str:
        return (
            ", ".join(f"{k}={v}" for k, v in self.sizes.items()) + f", seed={self.recipe['seed']}"
        )

    def with_new_weights(self) -> Drawn:
        """The same sizes and leading ``keep`` entries; every other float array new."""
        other = make_problem(**{**self.recipe, "seed": (int(self.recipe["seed"]) + 1) % 2**32})
        values = {
            e.name: other.values[e.name]
            if i >= self.keep and e.kind == "float"
            else self.values[e.name]
            for i, e in enumerate(self.entries)
        }
        return Drawn(self.entries, self.sizes, values, self.keep, self.recipe)

    def upstream(self, shape: tuple[int, ...]) -> np.ndarray:
        """A random upstream gradient (standard normal, never all ones) of ``shape``,
        fixed by the seed."""
        rng = np.random.default_rng([int(self.recipe["seed"]), 231])
        return rng.normal(size=shape)


def make_problem(*, shapes: str, seed: int, keep: int = 0, **sizes: int) -> Drawn:
    """The problem of description ``shapes`` at ``sizes`` (every letter it uses, each
    ≥ 1) with every array drawn from ``seed``: floats uniform in [−1, 1), ints and
    lists uniform in [0, S). ValueError for a letter missing, extra or below 1."""
    entries = parse_shapes(shapes)
    letters = letters_of(entries)
    missing = [k for k in letters if k not in sizes]
    extra = [k for k in sizes if k not in letters]
    if missing or extra:
        raise ValueError(
            f"sizes must give exactly the letters {', '.join(letters)}; "
            f"missing {missing}, extra {extra}"
        )
    for k, v in sizes.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"size {k} must be an integer ≥ 1; got {v!r}")
    ordered = {k: int(sizes[k]) for k in letters}
    for e in entries:
        if e.bound is not None and e.bound.value(ordered) < 1:
            raise ValueError(f"{e.name}'s bound {e.bound.text} is {e.bound.value(ordered)}")
    rng = np.random.default_rng(seed)
    values = {e.name: _draw_array(rng, e, ordered) for e in entries}
    recipe: dict[str, Any] = {"shapes": shapes, **ordered, "seed": seed}
    if keep:
        recipe["keep"] = keep
    return Drawn(entries, ordered, values, keep, recipe)


def bounds_for(entries: tuple[Entry, ...], given: dict[str, int] | None = None) -> dict[str, int]:
    """Each letter's largest size: ``given[letter]`` (ValueError if it is not an integer
    from 1 to MAX_BOUND, or names no letter of the description), else DEFAULT_BOUND."""
    letters = letters_of(entries)
    given = dict(given or {})
    for k, v in given.items():
        if k not in letters:
            raise ValueError(
                f"--max-{k} names no size of the description (its sizes are {', '.join(letters)})"
            )
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= MAX_BOUND:
            raise ValueError(f"--max-{k} must be an integer from 1 to {MAX_BOUND}; got {v!r}")
    return {k: given.get(k, DEFAULT_BOUND) for k in letters}


@st.composite
def drawn_problems(draw: st.DrawFn, shapes: str, bounds: dict[str, int], keep: int = 0) -> Drawn:
    """A random problem: every letter in [1, its bound] first, then the seed."""
    entries = parse_shapes(shapes)
    sizes = {k: draw(st.integers(1, bounds[k]), label=k) for k in letters_of(entries)}
    seed = draw(st.integers(0, 2**32 - 1), label="seed")
    return make_problem(shapes=shapes, seed=seed, keep=keep, **sizes)
