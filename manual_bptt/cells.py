"""One registry of cells: what each cell is, for everything that must tell cells apart.

A :class:`Cell` describes a cell by what it is: the name ``init_params(cell=...)`` and
``--cell`` give it, its parameters' class, the parts of its state (h; the LSTM's h and
s), its gate count G (U is (G·H, D)), the options it takes (the GRU's reset), and its
two steps:

- ``forward(params, x, initial, tokens, act) -> cache``: the whole forward pass on
  checked, batched inputs, x float (T, N, D) or token ids (T, N), ``initial`` the
  state entering step 0, one (N, H) array per part; the cache is a dataclass whose
  arrays are all time-major, (T, …) (TBPTT runs the backward step on a view of them at
  a strided slice of steps: backward.steps_of), with at least h and h_prev (T, N, H)
  and the logits o (T, N, K);
- ``backward_step(params, cache, lo, hi, d_state) -> (δ, δ̃, ε')``: back through steps
  lo … hi−1 at once (truncation.CellStep), and ``grad_W(params, cache, δ̃)``.

The network, bptt, truncation, the naive loops, contributions and the twin ask
:data:`CELLS` and :func:`cell_of`; a new cell is one module that calls :func:`register`
(and, for the twin, torch_reference.cells.register_twin). :func:`init_params` makes
any cell's parameters. This module sits above the cells (params.py, rnn.py, lstm.py,
gru.py), which import nothing of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import DTypeLike, NDArray

from manual_bptt import gru, lstm, rnn
from manual_bptt.activations import Activation
from manual_bptt.arraychecks import is_integer
from manual_bptt.gru import RESETS, GRUParams
from manual_bptt.lstm import LSTMParams
from manual_bptt.params import FLOAT_DTYPES, INIT_SCHEMES, CellParams, Params

Array = NDArray[np.floating]
Step = tuple[Array, Array, tuple[Array, ...]]


@dataclass(frozen=True)
class Cell:
    """One recurrent cell.

    Attributes:
        name: what init_params(cell=...) and --cell call it ("rnn", "lstm", "gru").
        params: its parameters' class (Params, LSTMParams, GRUParams), whose NAMES,
            STATE and GATE_COUNT say its arrays, its state's parts and its gates.
        forward, backward_step, grad_W: its steps (the module docstring).
        options: option → its allowed values, the default first (GRU: reset).
        w_inputs: ``(params, cache) -> [(rows, z)]``: which rows of W meet which
            (T, N, H) state in ∂L/∂W = Σ_t δ̃_t z_tᵀ, for the contributions; by default
            every row meets h_{t−1}.
    """

    name: str
    params: type[CellParams]
    forward: Callable[[Any, NDArray[Any], tuple[Array, ...], bool, Activation], Any]
    backward_step: Callable[[Any, Any, int, int, tuple[Array, ...]], Step]
    grad_W: Callable[[Any, Any, Array], Array]
    options: dict[str, tuple[str, ...]] = field(default_factory=dict)
    w_inputs: Callable[[Any, Any], list[tuple[slice, Array]]] = lambda params, cache: [
        (slice(None), cache.h_prev)
    ]

    @property
    def state(self) -> tuple[str, ...]:
        """The parts of the state, h first: ("h",) or ("h", "s")."""
        return self.params.STATE

    @property
    def gates(self) -> int:
        """G: U is (G·H, D), W (G·H, H), b (G·H,)."""
        return self.params.GATE_COUNT

    @property
    def grad_names(self) -> tuple[str, ...]:
        """The gradients bptt returns for this cell (x only for float inputs)."""
        return self.params.grad_names()


CELLS: dict[str, Cell] = {}


def register(cell: Cell) -> Cell:
    """Add ``cell`` to :data:`CELLS` (ValueError if its name or class is taken)."""
    if cell.name in CELLS or any(c.params is cell.params for c in CELLS.values()):
        raise ValueError(f"a cell named {cell.name!r} or with {cell.params.__name__} is registered")
    CELLS[cell.name] = cell
    return cell


register(
    Cell(
        "rnn",
        Params,
        lambda p, x, initial, tokens, act: rnn.forward_pass(p, x, initial[0], tokens, act),
        rnn.backward_step,
        rnn.grad_W,
    )
)
register(
    Cell(
        "lstm",
        LSTMParams,
        lambda p, x, initial, tokens, act: lstm.run_forward(p, x, initial[0], initial[1], tokens),
        lstm.backward_step,
        lstm.grad_W,
    )
)
register(
    Cell(
        "gru",
        GRUParams,
        lambda p, x, initial, tokens, act: gru.run_forward(p, x, initial[0], tokens),
        gru.backward_step,
        gru.grad_W,
        {"reset": RESETS},
        gru.w_inputs,
    )
)


def cell_of(params: object) -> Cell:
    """The registered cell whose parameters ``params`` are (TypeError if none)."""
    for cell in CELLS.values():
        if isinstance(params, cell.params):
            return cell
    names = ", ".join(c.params.__name__ for c in CELLS.values())
    raise TypeError(f"params must be one of {names}; got {type(params).__name__}")


@overload
def init_params(
    D: int,
    H: int,
    K: int,
    *,
    cell: Literal["rnn"] = ...,
    seed: int | np.random.Generator = ...,
    dtype: DTypeLike = ...,
    scheme: str = ...,
    scale: float = ...,
    reset: str = ...,
) -> Params: ...
@overload
def init_params(
    D: int,
    H: int,
    K: int,
    *,
    cell: str,
    seed: int | np.random.Generator = ...,
    dtype: DTypeLike = ...,
    scheme: str = ...,
    scale: float = ...,
    reset: str = ...,
) -> CellParams: ...
def init_params(
    D: int,
    H: int,
    K: int,
    *,
    cell: str = "rnn",
    seed: int | np.random.Generator = 0,
    dtype: DTypeLike = np.float64,
    scheme: str = "uniform",
    scale: float = 1.0,
    reset: str = "after",
) -> CellParams:
    """Random parameters for input size D, hidden size H and K classes.

    ``cell`` chooses the network: "rnn" (the vanilla cell, :class:`Params`), "lstm"
    (:class:`manual_bptt.lstm.LSTMParams`) or "gru" (:class:`manual_bptt.gru.GRUParams`,
    with ``reset`` "after" (torch's) or "before" (Cho et al.'s), see gru.py; the other
    cells take only the default "after", which they ignore).

    Schemes (each weight matrix M with n_in inputs; biases b, c (and bh) are zero):
      - "uniform" (default): M ~ U(−s/√n_in, s/√n_in), the tutorial's and
        torch.nn.RNN's initialisation, s = ``scale``.
      - "normal": M ~ N(0, (s/√n_in)²).
      - "identity": as "uniform" for U and V, but W = s·I, the IRNN initialisation
        for relu networks (Le, Jaitly & Hinton 2015); vanilla cell only.
    n_in is D for U and H for W and V. ``scale`` > 1 gives saturating (tanh, sigmoid)
    or exploding (relu, identity) networks.

    Returns, in ``dtype``, for G = 1 (rnn), 4 (lstm) or 3 (gru): U (G·H, D),
    W (G·H, H), V (K, H), b (G·H,), c (K,), and for the GRU bh (3H,).
    """
    for name, value in (("D", D), ("H", H), ("K", K)):
        if not is_integer(value) or value < 1:
            raise ValueError(f"{name} must be an integer ≥ 1; got {value!r}")
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {tuple(CELLS)}; got {cell!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer | np.random.Generator):
        raise TypeError(
            f"seed must be an integer ≥ 0 or a numpy.random.Generator; got "
            f"{type(seed).__name__} {seed!r}"
        )
    if not isinstance(seed, np.random.Generator) and seed < 0:
        raise ValueError(f"seed must be an integer ≥ 0 or a numpy.random.Generator; got {seed}")
    if isinstance(scale, bool) or not isinstance(scale, int | float | np.integer | np.floating):
        raise TypeError(f"scale must be a number > 0; got {type(scale).__name__} {scale!r}")
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a finite number > 0; got {scale!r}")
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"scheme must be one of {INIT_SCHEMES}; got {scheme!r}")
    if scheme == "identity" and cell != "rnn":
        raise ValueError(f'scheme="identity" is for the vanilla cell (relu); got cell={cell!r}')
    if reset not in RESETS:
        raise ValueError(f"reset must be one of {RESETS}; got {reset!r}")
    if reset != "after" and "reset" not in CELLS[cell].options:
        raise ValueError(f"reset={reset!r} is the GRU's variant; got cell={cell!r}")
    dt = np.dtype(dtype)
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64; got {dt}")
    rng = np.random.default_rng(seed)

    def draw(rows: int, cols: int) -> NDArray[np.float64]:
        bound = scale / np.sqrt(cols)
        if scheme == "normal":
            return rng.normal(0.0, bound, size=(rows, cols))
        return rng.uniform(-bound, bound, size=(rows, cols))

    G = CELLS[cell].gates
    too_large = ValueError(
        f"scale must be small enough for {dt} weights; got {scale!r}, whose weights overflow"
    )
    try:
        U = draw(G * H, D)
        W = scale * np.eye(H) if scheme == "identity" else draw(G * H, H)
        V = draw(K, H)
    except OverflowError:  # numpy's uniform refuses a range wider than float64's
        raise too_large from None
    with np.errstate(over="ignore"):
        if not all(np.all(np.isfinite(M.astype(dt))) for M in (U, W, V)):
            raise too_large
    arrays = {
        "U": U.astype(dt),
        "W": W.astype(dt),
        "V": V.astype(dt),
        "b": np.zeros(G * H, dt),
        "c": np.zeros(K, dt),
    }
    cls = CELLS[cell].params
    for name in (n for n in cls.NAMES if n not in arrays):  # other biases (the GRU's bh)
        arrays[name] = np.zeros(G * H, dt)
    return cls(**arrays, **({"reset": reset} if "reset" in CELLS[cell].options else {}))
