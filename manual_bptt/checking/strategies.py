"""Hypothesis strategies for whole BPTT problems: the one place they are defined.

The tests, ``bptt sweep`` and ``bptt verify`` all draw from here. Following
hypothesis.extra.numpy's habit, a case draws its sizes and options first and its
arrays second (from a drawn seed), so that a failure shrinks to small sizes and simple
options and is reproduced by a short line of Python (:meth:`manual_bptt.cases.Case.reproduction`).

Imports hypothesis, which ``pip install manual-bptt`` brings; not imported by
``import manual_bptt``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from hypothesis import strategies as st

from manual_bptt.activations import ACTIVATIONS
from manual_bptt.arraychecks import is_integer
from manual_bptt.cases import IDS_DTYPES, LAYOUTS, MASK_DTYPES, Case, make_case
from manual_bptt.cells import CELLS

# Full BPTT, window truncation, chunked truncation: what cases() draws by default.
MODES = ("full", "truncate", "chunk")
# And TBPTT(k1, k2), which only code that takes a tbptt option can be given.
ALL_MODES = (*MODES, "tbptt")

# The bounded domain on which compare.FLOAT32 was measured and is stated.
FLOAT32_MAX_T = 20
FLOAT32_MAX_SCALE = 1.0

# The most that Space.narrowed grants to max_T and max_H, measured on one core on the
# corner where each bites first:
# - T ≤ 50: relu and identity chains at weight scales 2–4 explode (about 3.7 times a
#   step at worst) and lose float64 digits with T. manual_bptt.bptt against the twin
#   on make_case problems there (full BPTT, N ≤ 4, D, K ≤ 8, H ≤ 64, other options at
#   random), the share of compare.FLOAT64's allowance that the worst one used: T 40–50,
#   0.5% over 1,000 problems; T 50–60, 8% over 600; T 60–70, one of 600 beyond it
#   (correct code reported wrong); T 100–130, two of 300, 180 times beyond.
# - H ≤ 256: a call's cost grows as H². The project's own plain loops (naive_bptt, the
#   equations as written, as a student writes them) take 4.3 s for an LSTM with
#   T = 64, N = 4, H = 256, so at H = 512 they would pass the 10 s per-call time-out
#   (guard.DEFAULT_TIMEOUT); the twin's window truncation there takes 3.6 s, and
#   133 s at H = 1024.
MAX_T = 50
MAX_H = 256
CEILING_REASONS = {
    "max_T": "beyond, exploding chains lose more float64 digits than compare.FLOAT64 allows",
    "max_H": "beyond, code written as plain loops nears the per-call time-out",
}


@st.composite
def cases(
    draw: st.DrawFn,
    *,
    dtype: str = "float64",
    max_T: int = 40,
    max_N: int = 6,
    max_dim: int = 16,
    min_scale: float = 1e-3,
    max_scale: float = 4.0,
    activations: tuple[str, ...] = tuple(ACTIVATIONS),
    modes: tuple[str, ...] = MODES,
    min_T: int = 1,
    batched: bool | None = None,
    tokens: bool | None = None,
    with_mask: bool | None = None,
    cell: str = "rnn",
    resets: tuple[str, ...] = ("after", "before"),
) -> Case:
    """A random BPTT problem: sizes and options first, then arrays from a seed.

    ``cell`` is "rnn" (the vanilla cell, every activation in ``activations``), "lstm"
    or "gru" (their own nonlinearities; the GRU's reset variant drawn from ``resets``).

    T in [min_T, max_T]; N in [1, max_N]; D, H, K in [1, max_dim]; weight scale in
    [min_scale, max_scale] (1 is the usual initialisation, 4 saturates tanh and
    explodes relu); float or token inputs, batched or not; h0 and mask given or not;
    reduction; and, among ``modes``, full BPTT ("full"), truncate in [0, T+2]
    ("truncate"), chunk in [1, T+2] ("chunk") or tbptt (k1, k2), each in [1, T+2]
    ("tbptt").
    ``batched``, ``tokens`` and ``with_mask`` fix that choice when not None (cheaper
    than filtering, which Hypothesis's health checks rightly dislike).
    """

    def choose(fixed: bool | None, label: str) -> bool:
        return draw(st.booleans(), label=label) if fixed is None else fixed

    T = draw(st.integers(min_T, max_T), label="T")
    batched = choose(batched, "batched")
    N = draw(st.integers(1, max_N), label="N") if batched else 1
    D, H, K = (draw(st.integers(1, max_dim), label=name) for name in "DHK")
    if not modes or set(modes) - set(ALL_MODES):
        raise ValueError(f"modes must be a non-empty subset of {ALL_MODES}; got {modes!r}")
    mode = draw(_one_of(modes), label="mode")
    truncate = draw(st.integers(0, T + 2), label="truncate") if mode == "truncate" else None
    chunk = draw(st.integers(1, T + 2), label="chunk") if mode == "chunk" else None
    tbptt = (
        (draw(st.integers(1, T + 2), label="k1"), draw(st.integers(1, T + 2), label="k2"))
        if mode == "tbptt"
        else None
    )
    return make_case(
        T=T,
        N=N,
        D=D,
        H=H,
        K=K,
        seed=draw(st.integers(0, 2**32 - 1), label="seed"),
        scale=draw(st.floats(min_scale, max_scale), label="scale"),
        activation=draw(_one_of(activations), label="activation") if cell == "rnn" else "tanh",
        tokens=choose(tokens, "tokens"),
        batched=batched,
        with_h0=draw(st.booleans(), label="with_h0"),
        with_mask=choose(with_mask, "with_mask"),
        truncate=truncate,
        chunk=chunk,
        tbptt=tbptt,
        reduction=draw(_one_of(("sum", "mean")), label="reduction"),
        dtype=dtype,
        cell=cell,
        reset=draw(_one_of(resets), label="reset") if _has_reset(cell) else "after",
    )


def float32_cases(**kwargs: Any) -> st.SearchStrategy[Case]:
    """float32 cases on the bounded domain where float32 gradients are trustworthy:
    weight scale ≤ 1 (bound 1/√n_in), T ≤ 20. compare.FLOAT32 is stated for it."""
    bounded = {"dtype": "float32", "max_T": FLOAT32_MAX_T, "max_scale": FLOAT32_MAX_SCALE}
    return cases(**{**bounded, **kwargs})


@st.composite
def tutorial_cases(draw: st.DrawFn, *, max_T: int = 12, max_dim: int = 8) -> Case:
    """Problems in the classic tutorial's setting: one sequence of token ids (T,) with
    targets (T,) from the same vocabulary (K = D), no biases, zero initial state, tanh,
    sum reduction, and a window truncation k in [0, T+2] (k ≥ T−1 is full BPTT)."""
    T = draw(st.integers(1, max_T), label="T")
    D = draw(st.integers(1, max_dim), label="D")
    return make_case(
        T=T,
        N=1,
        D=D,
        H=draw(st.integers(1, max_dim), label="H"),
        K=D,
        seed=draw(st.integers(0, 2**32 - 1), label="seed"),
        scale=draw(st.floats(0.1, 2.0), label="scale"),
        tokens=True,
        batched=False,
        truncate=draw(st.integers(0, T + 2), label="truncate"),
        biases=False,
    )


@dataclass(frozen=True)
class Space:
    """Which problems may be drawn: the options a style supports, narrowed by the user.

    Each tuple lists the allowed values, the simplest first (Hypothesis shrinks towards
    it). ``modes`` holds "full", "truncate" (a window k in [0, T+2]) and "chunk" (k in
    [1, T+2]); ``biases=False`` means b = c = 0, ``h0=False`` the zero initial state,
    ``mask=False`` every step counted. ``same_vocab`` ties K to D (inputs and targets
    from one vocabulary, as the tutorial and min-char-rnn have it); ``min_N`` ≥ 1.
    ``mask_dtypes`` are the mask's dtypes ("bool", "int64", "float64": the same 0/1
    entries), ``ids_dtypes`` the token ids' and targets' ("int64", "int32"), and
    ``layouts`` the memory layouts in which the code under test is handed the float
    arrays ("C", "F", "strided": see :func:`manual_bptt.cases.in_layout`).
    ``tbptt=True`` says the code under test takes a ``tbptt`` option: "tbptt" (TBPTT(k1,
    k2), k1 and k2 in [1, T+2]) may then be asked for in ``modes``, though it is never
    drawn unless asked (code written before it would be handed an option it lacks).
    """

    activations: tuple[str, ...] = tuple(ACTIVATIONS)
    modes: tuple[str, ...] = ("full", "truncate", "chunk")
    batched: tuple[bool, ...] = (False, True)
    tokens: tuple[bool, ...] = (True, False)
    biases: tuple[bool, ...] = (False, True)
    h0: tuple[bool, ...] = (False, True)
    mask: tuple[bool, ...] = (False, True)
    reductions: tuple[str, ...] = ("sum", "mean")
    dtypes: tuple[str, ...] = ("float64",)
    max_T: int = 20
    max_N: int = 4
    max_dim: int = 8
    max_H: int = 8
    min_scale: float = 1e-3
    max_scale: float = 4.0
    same_vocab: bool = False
    cells: tuple[str, ...] = ("rnn",)
    resets: tuple[str, ...] = ("after", "before")
    mask_dtypes: tuple[str, ...] = MASK_DTYPES
    ids_dtypes: tuple[str, ...] = IDS_DTYPES
    layouts: tuple[str, ...] = LAYOUTS
    tbptt: bool = False

    def narrowed(self, **choices: Any) -> Space:
        """This space with some options fixed; ValueError, in words that read after
        "cannot draw ", for what it cannot draw.

        ``choices`` maps a field to one value (or to a tuple of values for ``modes``),
        or ``max_T``/``max_H`` to the longest sequence or largest hidden size to draw:
        honoured as asked, larger or smaller than the space's own, from 1 up to MAX_T
        and MAX_H, and T up to FLOAT32_MAX_T when float32 may be drawn; refused beyond.
        A space that may draw float32 keeps to compare.FLOAT32's bounded domain (weight
        scale ≤ FLOAT32_MAX_SCALE; T ≤ FLOAT32_MAX_T unless a smaller max_T is asked).
        """
        fixed: dict[str, Any] = {}
        for name, value in choices.items():
            if name in ("max_T", "max_H"):
                fixed[name] = _largest(name, value)
                continue
            allowed = getattr(self, name)
            if name == "modes" and self.tbptt:
                allowed = (*allowed, "tbptt")  # drawn only when asked for
            wanted = tuple(value) if isinstance(value, tuple) else (value,)
            kept = tuple(v for v in allowed if v in wanted)
            if not kept:
                raise ValueError(f"{name} {'/'.join(map(str, wanted))} (it draws {allowed})")
            fixed[name] = kept
        space = replace(self, **fixed)
        if "float32" in space.dtypes:  # compare.FLOAT32 holds only on its bounded domain
            if "max_T" in fixed and space.max_T > FLOAT32_MAX_T:
                raise ValueError(
                    f"T up to {space.max_T} in float32 (float32 draws T ≤ {FLOAT32_MAX_T}, "
                    "the domain compare.FLOAT32 is stated for)"
                )
            space = replace(
                space,
                max_T=min(space.max_T, FLOAT32_MAX_T),
                max_scale=min(space.max_scale, FLOAT32_MAX_SCALE),
            )
        return space


def _largest(name: str, value: Any) -> int:
    """``value`` as the largest T or H to draw (name "max_T" or "max_H"); ValueError,
    reading after "cannot draw ", unless it is an integer from 1 to the ceiling."""
    letter = name.removeprefix("max_")
    if not is_integer(value):
        raise ValueError(f"{letter} up to {value!r} ({name} must be an integer)")
    if value < 1:
        raise ValueError(f"{letter} up to {value} ({letter} is at least 1)")
    ceiling = {"max_T": MAX_T, "max_H": MAX_H}[name]
    if value > ceiling:
        raise ValueError(
            f"{letter} up to {value} (it draws {letter} ≤ {ceiling}: {CEILING_REASONS[name]})"
        )
    return int(value)


@st.composite
def problems(draw: st.DrawFn, space: Space = Space()) -> Case:
    """A random problem from ``space``: sizes and options first, then arrays from a seed.

    T in [1, max_T]; N in [1, max_N] when batched; D, K in [1, max_dim] (K = D with
    same_vocab); H in [1, max_H]; weight scale in [min_scale, max_scale]; each option
    from its tuple in ``space``: the mask's dtype drawn even without a mask, and the
    layout stored on the Case (cases.in_layout applies it).
    """
    # Every draw is made whatever the options, so that every problem is the same length
    # of choices: Hypothesis then shrinks sizes, never trading them for a shorter draw.
    T = draw(st.integers(1, space.max_T), label="T")
    batched = draw(_one_of(space.batched), label="batched")
    N = draw(st.integers(1, space.max_N), label="N")
    N = N if batched else 1
    D = draw(st.integers(1, space.max_dim), label="D")
    H = draw(st.integers(1, space.max_H), label="H")
    K = draw(st.integers(1, space.max_dim), label="K")
    mode = draw(_one_of(space.modes), label="mode")
    k = draw(st.integers(0, T + 2), label="k")
    drawn: dict[str, Any] = {
        "seed": draw(st.integers(0, 2**32 - 1), label="seed"),
        "scale": draw(st.floats(space.min_scale, space.max_scale), label="scale"),
        "activation": draw(_one_of(space.activations), label="activation"),
        "tokens": draw(_one_of(space.tokens), label="tokens"),
        "with_h0": draw(_one_of(space.h0), label="with_h0"),
        "with_mask": draw(_one_of(space.mask), label="with_mask"),
        "reduction": draw(_one_of(space.reductions), label="reduction"),
        "dtype": draw(_one_of(space.dtypes), label="dtype"),
        "biases": draw(_one_of(space.biases), label="biases"),
    }
    # Drawn last: a space of one cell draws nothing here, so the vanilla cell's
    # problems (and what they shrink to) are what they were before the gated cells.
    cell = draw(_one_of(space.cells), label="cell")
    reset = draw(_one_of(space.resets), label="reset") if _has_reset(cell) else "after"
    # Drawn last, for the same reason as the cell: the problems drawn before these
    # options (and what they shrink to, with these at their simplest) are unchanged.
    drawn["mask_dtype"] = draw(_one_of(space.mask_dtypes), label="mask_dtype")
    drawn["ids_dtype"] = draw(_one_of(space.ids_dtypes), label="ids_dtype")
    drawn["layout"] = draw(_one_of(space.layouts), label="layout")
    # TBPTT's second length (k is its k1), drawn last and only for it: what every other
    # mode draws, and the search over it, stay exactly as they were.
    k2 = draw(st.integers(1, T + 2), label="k2") if mode == "tbptt" else 0
    if cell != "rnn":
        drawn["activation"] = "tanh"  # a gated cell's nonlinearities are its own
    return make_case(
        T=T,
        N=N,
        D=D,
        H=H,
        K=D if space.same_vocab else K,
        batched=batched,
        truncate=k if mode == "truncate" else None,
        chunk=max(k, 1) if mode == "chunk" else None,
        tbptt=(max(k, 1), k2) if mode == "tbptt" else None,
        cell=cell,
        reset=reset,
        **drawn,
    )


def _one_of(values: Any) -> st.SearchStrategy[Any]:
    """``st.sampled_from(values)``, made once for each tuple of values. Hypothesis makes
    st.integers and st.floats once for each bounds, but a new sampled_from each time, and
    validating a new strategy at every draw was a quarter of the time spent drawing a
    problem. The choices drawn, and what they shrink to, are the same.

    Only a tuple of hashable values is kept, under its values' types too (0 == False
    and 0.0 == -0.0, but they are not the same draws); anything else (a user's list, or
    a set, which sampled_from refuses for having no stable order) goes to sampled_from
    as it is, as it always did.
    """
    if type(values) is not tuple:
        return st.sampled_from(values)
    types = tuple(map(type, values))
    # floats by their bits (-0.0 == 0.0); the rest as they are, with their types
    same = tuple(v.hex() if type(v) is float else v for v in values) if float in types else values
    key = (types, same)
    try:
        strategy = _SAMPLED.get(key)
    except TypeError:  # an unhashable value
        return st.sampled_from(values)
    if strategy is None:
        strategy = _SAMPLED[key] = st.sampled_from(values)
    return strategy


# _one_of's strategies, by their values' types and their values
_SAMPLED: dict[tuple[tuple[type, ...], tuple[Any, ...]], st.SearchStrategy[Any]] = {}


def _has_reset(cell: str) -> bool:
    """Whether the registered cell takes the reset option (the GRU's variants)."""
    return "reset" in CELLS[cell].options
