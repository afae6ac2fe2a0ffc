"""Reproducible BPTT problems: a :class:`Case` built from a small recipe of sizes, options and a seed.

The strategies (strategies.py), the ``bptt`` command and the regression fixtures all
build their problems here, so that any case can be rebuilt from one line of Python.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from manual_bptt.cells import CELLS, init_params
from manual_bptt.params import CellParams

R = TypeVar("R")

# What the interface accepts beyond the simplest, each tuple simplest first: a mask of
# 0/1 as bool or numbers, token ids and targets in either integer width, float arrays
# in C order, Fortran order or as a strided view (see in_layout).
MASK_DTYPES = ("bool", "int64", "float64")
IDS_DTYPES = ("int64", "int32")
LAYOUTS = ("C", "F", "strided")


@dataclass(frozen=True)
class Case:
    """One BPTT problem: parameters, inputs and options, all shapes consistent.

    Attributes:
        params: Params U (H, D), W (H, H), V (K, H), b (H,), c (K,); or a gated
            cell's LSTMParams or GRUParams (see init_params).
        x: float (T, N, D) / (T, D), or token ids (T, N) / (T,) in the recipe's
            ids_dtype.
        y: targets (T, N) / (T,), in the recipe's ids_dtype.
        h0: (N, H) / (H,) or None.
        mask: (T, N) / (T,) of 0/1 in the recipe's mask_dtype, or None.
        activation, truncate, chunk, reduction: as ``bptt`` takes them.
        recipe: the drawn sizes, seed and options that rebuild this case with
            :func:`make_case`.
        c0: the LSTM's initial cell state, shaped as h0, or None.
        layout: the memory layout ("C", "F" or "strided") in which the code under
            test is to be handed the float arrays; the arrays above are always
            C-ordered, and :func:`in_layout` gives each one in this layout.
        tbptt: (k1, k2) of TBPTT(k1, k2), or None (then not among the options, so that
            code written before it still takes them).
    """

    params: CellParams
    x: NDArray[Any]
    y: NDArray[np.integer]
    h0: NDArray[np.floating] | None
    mask: NDArray[Any] | None
    activation: str
    truncate: int | None
    chunk: int | None
    reduction: str
    recipe: dict[str, Any] = field(repr=False)
    c0: NDArray[np.floating] | None = None
    layout: str = "C"
    tbptt: tuple[int, int] | None = None

    def call(self, face: Callable[..., R], **changes: Any) -> R:
        """``face(params, x, y, **options)`` on this case, with ``changes`` to the options:
        how every test and tool runs a bptt-shaped function on a case."""
        return face(self.params, self.x, self.y, **{**self.kwargs(), **changes})

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``bptt`` after (params, x, y) (c0 for the LSTM only,
        so that code written for the vanilla cell's signature still takes them)."""
        out: dict[str, Any] = {
            "h0": self.h0,
            "mask": self.mask,
            "activation": self.activation,
            "truncate": self.truncate,
            "chunk": self.chunk,
            "reduction": self.reduction,
        }
        if len(self.params.STATE) > 1:  # a second part of the state (the LSTM's s)
            out["c0"] = self.c0
        if self.tbptt is not None:
            out["tbptt"] = self.tbptt
        return out

    @property
    def T(self) -> int:
        return int(self.y.shape[0])

    def describe(self) -> str:
        """Sizes and options in one line, e.g. for a counterexample."""
        r = self.recipe
        return ", ".join(f"{k}={r[k]!r}" for k in r)

    def reproduction(self) -> str:
        """A line of Python that rebuilds this case."""
        args = ", ".join(f"{k}={v!r}" for k, v in self.recipe.items())
        return f"from manual_bptt.cases import make_case; case = make_case({args})"


def make_case(
    *,
    T: int,
    N: int,
    D: int,
    H: int,
    K: int,
    seed: int,
    scale: float = 1.0,
    activation: str = "tanh",
    tokens: bool = False,
    batched: bool = True,
    with_h0: bool = False,
    with_mask: bool = False,
    truncate: int | None = None,
    chunk: int | None = None,
    tbptt: tuple[int, int] | None = None,
    reduction: str = "sum",
    dtype: str = "float64",
    biases: bool = True,
    cell: str = "rnn",
    reset: str = "after",
    mask_dtype: str = "bool",
    ids_dtype: str = "int64",
    layout: str = "C",
) -> Case:
    """Build a Case deterministically from its recipe (what the strategies draw).

    Weights by init_params(scale=scale, cell=cell) ("uniform", bound scale/√n_in),
    biases and h0 at the same scale, float inputs standard normal, mask entries 1 with
    probability 3/4. ``batched=False`` drops the N axis (N must then be 1).
    ``biases=False`` sets every bias to 0 (the tutorial's network has none). ``cell``
    is "rnn", "lstm" or "gru" (whose ``reset`` is "after" or "before"); the LSTM's
    ``with_h0`` gives c0 too. ``mask_dtype`` ("bool", "int64" or "float64") is the
    mask's dtype, the same 0/1 entries in each; ``ids_dtype`` ("int64" or "int32") that
    of the token ids and the targets, the same ids in each. ``layout`` ("C", "F" or
    "strided") is only stored on the Case (see :func:`in_layout`). The recipe leaves
    out cell, reset, mask_dtype, ids_dtype and layout at their defaults (and
    mask_dtype without a mask), so that the cases drawn before them read as they
    always have.
    """
    recipe = {k: v for k, v in locals().items()}
    for name, value, allowed in (
        ("mask_dtype", mask_dtype, MASK_DTYPES),
        ("ids_dtype", ids_dtype, IDS_DTYPES),
        ("layout", layout, LAYOUTS),
    ):
        if value not in allowed:
            raise ValueError(f"{name} must be one of {allowed}; got {value!r}")
        if value == allowed[0]:
            del recipe[name]
    if cell == "rnn":
        del recipe["cell"]
    if tbptt is None:
        del recipe["tbptt"]
    if "reset" not in CELLS[cell].options or reset == "after":
        del recipe["reset"]
    if not with_mask:
        recipe.pop("mask_dtype", None)
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    base = init_params(D, H, K, seed=rng, dtype=np.float64, scale=scale, cell=cell, reset=reset)
    rows = int(base.b.shape[0])  # G·H
    arrays = {k: v.astype(dt) for k, v in base.as_dict().items()}
    arrays["b"] = rng.uniform(-scale, scale, rows).astype(dt) if biases else np.zeros(rows, dt)
    arrays["c"] = rng.uniform(-scale, scale, K).astype(dt) if biases else np.zeros(K, dt)
    # a cell's other biases (the GRU's bh), drawn after the vanilla cell's arrays, which
    # stay as they were
    for name in (n for n in base.NAMES if n not in ("U", "W", "V", "b", "c")):
        arrays[name] = rng.uniform(-scale, scale, rows).astype(dt) if biases else np.zeros(rows, dt)
    params: CellParams = base.with_arrays(**arrays)  # its options (the GRU's reset) kept
    # The ids and the mask drawn as they always were, then cast: every dtype holds the
    # same values.
    ids = np.dtype(ids_dtype)
    x = (
        rng.integers(0, D, size=(T, N)).astype(ids)
        if tokens
        else rng.normal(size=(T, N, D)).astype(dt)
    )
    y = rng.integers(0, K, size=(T, N)).astype(ids)
    h0 = rng.uniform(-1, 1, size=(N, H)).astype(dt) if with_h0 else None
    mask = (rng.random((T, N)) < 0.75).astype(mask_dtype) if with_mask else None
    second_part = len(base.STATE) > 1  # the LSTM's cell state: c0 beside h0
    c0 = rng.uniform(-1, 1, size=(N, H)).astype(dt) if with_h0 and second_part else None
    if not batched:
        x, y = x[:, 0], y[:, 0]
        h0 = None if h0 is None else h0[0]
        c0 = None if c0 is None else c0[0]
        mask = None if mask is None else mask[:, 0]
    return Case(
        params, x, y, h0, mask, activation, truncate, chunk, reduction, recipe, c0, layout, tbptt
    )


def in_layout(array: NDArray[Any], layout: str) -> NDArray[Any]:
    """A new array equal to ``array`` (same shape, dtype and values) in memory ``layout``.

    Code under test may assume more about its inputs' memory than their values (that
    ``ravel`` or ``reshape`` give a view, that ``.data`` holds the entries in C order);
    handing it each float array in each layout tests that it does not. Any shape:

        "C": a C-ordered (row-major) copy.
        "F": a Fortran-ordered (column-major) copy. An array with at most one axis
            longer than 1 (every 0- and 1-axis array) has one order only, so its copy
            is both C- and F-contiguous: "strided" is the layout that tests it.
        "strided": a view of every second entry along the last axis of a fresh buffer
            twice as wide, (…, 2·n) → (…, n), so not contiguous in either order; the
            entries in between are NaN for a float array (0 otherwise), so that code
            reading the buffer past the view gets NaN. NumPy counts an array of at
            most one entry as contiguous whatever its strides; a 0-axis array is
            copied as it is.

    The result never shares memory with ``array``, which is never written to; it is
    writeable, so the code under test may change it without changing the Case.
    ValueError for a layout not in LAYOUTS.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}; got {layout!r}")
    if layout == "C":
        return np.array(array, order="C", copy=True)
    if layout == "F":
        return np.array(array, order="F", copy=True)
    source = np.asarray(array)
    if source.ndim == 0:
        scalar: NDArray[Any] = source.copy()
        return scalar
    gap = np.nan if np.issubdtype(source.dtype, np.inexact) else 0
    buffer = np.full((*source.shape[:-1], 2 * source.shape[-1]), gap, dtype=source.dtype)
    view = buffer[..., ::2]
    view[...] = source
    return view
