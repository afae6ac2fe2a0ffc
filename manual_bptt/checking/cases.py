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

from manual_bptt.params import CellParams, init_params

R = TypeVar("R")


@dataclass(frozen=True)
class Case:
    """One BPTT problem: parameters, inputs and options, all shapes consistent.

    Attributes:
        params: Params U (H, D), W (H, H), V (K, H), b (H,), c (K,); or a gated
            cell's LSTMParams or GRUParams (see init_params).
        x: float (T, N, D) / (T, D), or token ids (T, N) / (T,).
        y: targets (T, N) / (T,).
        h0: (N, H) / (H,) or None.
        mask: (T, N) / (T,) of 0/1, or None.
        activation, truncate, chunk, reduction: as ``bptt`` takes them.
        recipe: the drawn sizes, seed and options that rebuild this case with
            :func:`make_case`.
        c0: the LSTM's initial cell state, shaped as h0, or None.
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

    def call(self, face: Callable[..., R], **changes: Any) -> R:
        """``face(params, x, y, **options)`` on this case, with ``changes`` to the options:
        how every test and tool runs a bptt-shaped function on a case."""
        return face(self.params, self.x, self.y, **{**self.kwargs(), **changes})

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``bptt`` after (params, x, y) (c0 for the LSTM only,
        so that code written for the vanilla cell's signature still takes them)."""
        out = {
            "h0": self.h0,
            "mask": self.mask,
            "activation": self.activation,
            "truncate": self.truncate,
            "chunk": self.chunk,
            "reduction": self.reduction,
        }
        if self.params.CELL == "lstm":
            out["c0"] = self.c0
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
        return f"from manual_bptt.checking.cases import make_case; case = make_case({args})"


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
    reduction: str = "sum",
    dtype: str = "float64",
    biases: bool = True,
    cell: str = "rnn",
    reset: str = "after",
) -> Case:
    """Build a Case deterministically from its recipe (what the strategies draw).

    Weights by init_params(scale=scale, cell=cell) ("uniform", bound scale/√n_in),
    biases and h0 at the same scale, float inputs standard normal, mask entries 1 with
    probability 3/4. ``batched=False`` drops the N axis (N must then be 1).
    ``biases=False`` sets every bias to 0 (the tutorial's network has none). ``cell``
    is "rnn", "lstm" or "gru" (whose ``reset`` is "after" or "before"); the LSTM's
    ``with_h0`` gives c0 too. The recipe leaves out cell and reset at their defaults,
    so that the vanilla cell's cases read as they always have.
    """
    recipe = {k: v for k, v in locals().items()}
    if cell == "rnn":
        del recipe["cell"]
    if cell != "gru" or reset == "after":
        del recipe["reset"]
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    base = init_params(D, H, K, seed=rng, dtype=np.float64, scale=scale, cell=cell, reset=reset)
    rows = int(base.b.shape[0])  # G·H
    arrays = {k: v.astype(dt) for k, v in base.as_dict().items()}
    arrays["b"] = rng.uniform(-scale, scale, rows).astype(dt) if biases else np.zeros(rows, dt)
    arrays["c"] = rng.uniform(-scale, scale, K).astype(dt) if biases else np.zeros(K, dt)
    if cell == "gru":  # drawn after the vanilla cell's arrays, which stay as they were
        arrays["bh"] = rng.uniform(-scale, scale, rows).astype(dt) if biases else np.zeros(rows, dt)
    params: CellParams = type(base)(**arrays, **({"reset": reset} if cell == "gru" else {}))
    x = rng.integers(0, D, size=(T, N)) if tokens else rng.normal(size=(T, N, D)).astype(dt)
    y = rng.integers(0, K, size=(T, N))
    h0 = rng.uniform(-1, 1, size=(N, H)).astype(dt) if with_h0 else None
    mask = (rng.random((T, N)) < 0.75) if with_mask else None
    c0 = rng.uniform(-1, 1, size=(N, H)).astype(dt) if with_h0 and cell == "lstm" else None
    if not batched:
        x, y = x[:, 0], y[:, 0]
        h0 = None if h0 is None else h0[0]
        c0 = None if c0 is None else c0[0]
        mask = None if mask is None else mask[:, 0]
    return Case(params, x, y, h0, mask, activation, truncate, chunk, reduction, recipe, c0)
