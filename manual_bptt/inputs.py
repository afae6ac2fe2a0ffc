"""The public boundary: every argument is checked once, here, and brought to batched form.

Both faces of the computation (manual_bptt and torch_reference) call :func:`prepare`
so that they accept exactly the same inputs and fail with exactly the same messages.
Past this point the code trusts shapes and dtypes.

Letters: T steps, N sequences in the batch, D input size, H hidden size, K classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
from numpy.typing import ArrayLike, NDArray

from manual_bptt.activations import Activation, get_activation
from manual_bptt.arraychecks import first_index, first_non_finite, is_integer
from manual_bptt.params import COMPLEX_DTYPE, CellParams, Params, plain_array
from manual_bptt.truncation import RandomTruncation

REDUCTIONS = ("sum", "mean")


class Options(TypedDict, total=False):
    """The problem's options, the keyword arguments of ``bptt`` after (params, x, y).

    Every public function that runs the network takes them as ``**options`` and hands
    them to :func:`prepare`, the one place that reads and checks them.

    Keys (all optional):
        h0: initial state h_{−1}, (N, H) or (H,) to match x; zeros by default.
        c0: the LSTM's initial cell state s_{−1}, shaped as h0; zeros by default
            (LSTM only: refused for cells without a cell state).
        mask: m, (T, N) or (T,) of 0/1 (bool or numbers); all ones by default.
        activation: φ: "tanh" (default), "sigmoid", "relu" or "identity" (the
            vanilla cell's; the gated cells accept only the default).
        truncate: window length k ≥ 0: the loss at step t reaches steps t … max(0, t−k).
        chunk: chunk length k ≥ 1: losses reach back to the start of their chunk of k.
        tbptt: (k1, k2), both ≥ 1: TBPTT(k1, k2), every k1 steps backpropagate k2 steps
            (truncation.py says exactly which losses reach which steps).
        randomized: randomized truncation, unbiased: a truncation.RandomTruncation (its
            links ξ drawn from its seed), or the links ξ (T,) themselves, finite and ≥ 0:
            the gradient carried from step t into step t−1 is multiplied by ξ_t (ξ_0,
            the link into h0, is not used).
        reduction: "sum" (default, equation (5)) or "mean" (divided by Σm; 0 if Σm = 0).

    At most one of truncate, chunk, tbptt and randomized may be given.
    """

    h0: ArrayLike | None
    c0: ArrayLike | None
    mask: ArrayLike | None
    activation: str
    truncate: int | None
    chunk: int | None
    tbptt: tuple[int, int] | None
    randomized: RandomTruncation | ArrayLike | None
    reduction: str


OPTION_NAMES = tuple(Options.__annotations__)


@dataclass(frozen=True)
class Batch:
    """Checked inputs in batched, time-major form.

    Attributes:
        x: float (T, N, D) in the parameters' dtype, or integer token ids (T, N) in [0, D).
        y: integer targets (T, N) in [0, K).
        h0: initial state h_{−1}, (N, H); zeros when the caller gave none.
        c0: the LSTM's initial cell state s_{−1}, (N, H) (zeros when not given); None
            for the other cells.
        mask: m, (T, N) of 0.0/1.0 in the parameters' dtype.
        tokens: whether x holds token ids (then U x_t is the column U[:, x_t]).
        batched: whether the caller's arrays had a batch axis (results follow suit).
        activation: φ.
        truncate: window length k of the per-loss truncation, or None.
        chunk: chunk length k of the framework-style truncation, or None.
        tbptt: (k1, k2) of TBPTT(k1, k2), or None.
        links: randomized truncation's ξ (T,) float64, or None.
        reduction: "sum" or "mean".
    """

    x: NDArray[np.number]  # token ids (integer) or features (floating)
    y: NDArray[np.integer]
    h0: NDArray[np.floating]
    c0: NDArray[np.floating] | None
    mask: NDArray[np.floating]
    tokens: bool
    batched: bool
    activation: Activation
    truncate: int | None
    chunk: int | None
    reduction: str
    tbptt: tuple[int, int] | None = None
    links: NDArray[np.float64] | None = None

    @property
    def truncated(self) -> bool:
        """Whether any truncation (or randomized truncation) was asked for."""
        return any(v is not None for v in (self.truncate, self.chunk, self.tbptt, self.links))

    @property
    def T(self) -> int:
        return int(self.y.shape[0])

    @property
    def N(self) -> int:
        return int(self.y.shape[1])

    @property
    def loss_scale(self) -> float:
        """1 for reduction="sum"; 1/Σm for "mean" (0 when the mask is all zero)."""
        if self.reduction == "sum":
            return 1.0
        total = float(self.mask.sum())
        return 1.0 / total if total > 0 else 0.0


def _check_finite(name: str, arr: np.ndarray) -> None:
    bad = first_non_finite(arr)
    if bad is not None:
        raise ValueError(f"{name} must be finite; entry {bad} is {arr[bad]}")


def _is_int(arr: np.ndarray) -> bool:
    return np.issubdtype(arr.dtype, np.integer)


def _check_range(name: str, arr: np.ndarray, upper: int, letter: str) -> None:
    if arr.size and (arr.min() < 0 or arr.max() >= upper):
        bad_mask = (arr < 0) | (arr >= upper)
        bad = first_index(bad_mask)
        raise ValueError(
            f"{name} must hold integers in [0, {letter}) = [0, {upper}); entry {bad} is {arr[bad]}"
        )


def _match_dtype(name: str, arr: np.ndarray, params: CellParams) -> np.ndarray:
    """arr in the parameters' dtype; TypeError on a mismatch, never a silent cast.

    The one exception is the complex step: with complex128 parameters, float64 (or
    complex128) x and h0 are taken as complex128.
    """
    if arr.dtype == params.dtype:
        return arr
    if params.dtype == COMPLEX_DTYPE and arr.dtype == np.float64:
        return arr.astype(COMPLEX_DTYPE)
    raise TypeError(
        f"{name} has dtype {arr.dtype} but the parameters are {params.dtype}; "
        f"convert with {name}.astype(np.{params.dtype})"
    )


def _check_not_empty(arr: np.ndarray, batched: bool) -> None:
    if arr.shape[0] == 0:
        raise ValueError("x must hold at least one step (T ≥ 1); got T = 0")
    if batched and arr.shape[1] == 0:
        raise ValueError("x must hold at least one sequence (N ≥ 1); got N = 0")


def _prepare_x(params: CellParams, x: object) -> tuple[np.ndarray, bool, bool]:
    """Return x batched, whether it holds tokens, and whether it was batched."""
    arr = plain_array("x", x)
    if arr.dtype == np.bool_:
        raise TypeError("x must be float inputs or integer token ids; got a bool array")
    if _is_int(arr):
        if arr.ndim not in (1, 2):
            raise ValueError(f"token ids x must have shape (T, N) or (T,); got shape {arr.shape}")
        batched = arr.ndim == 2
        _check_not_empty(arr, batched)
        _check_range("x (token ids)", arr, params.D, "D")
        arr = arr.astype(np.int64, copy=False)  # exact: every id is in [0, D)
        return (arr if batched else arr[:, None]), True, batched
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.complexfloating)):
        raise TypeError(f"x must be float inputs or integer token ids; got dtype {arr.dtype}")
    if arr.ndim not in (2, 3):
        hint = " (token ids must have an integer dtype)" if arr.ndim == 1 else ""
        raise ValueError(
            f"float inputs x must have shape (T, N, D) or (T, D){hint}; got shape {arr.shape}"
        )
    if arr.shape[-1] != params.D:
        raise ValueError(
            f"x's last axis must be D = {params.D} to match U (H, D) = {params.U.shape}; "
            f"got x of shape {arr.shape}"
        )
    arr = _match_dtype("x", arr, params)
    batched = arr.ndim == 3
    _check_not_empty(arr, batched)
    _check_finite("x", arr)
    return (arr if batched else arr[:, None, :]), False, batched


def _prepare_y(params: CellParams, y: object, T: int, N: int, batched: bool) -> np.ndarray:
    arr = plain_array("y", y)
    if not _is_int(arr):
        raise TypeError(f"y must hold integer class ids; got dtype {arr.dtype}")
    want = (T, N) if batched else (T,)
    if arr.shape != want:
        letters = "(T, N)" if batched else "(T,)"
        raise ValueError(f"y must have shape {letters} = {want} to match x; got {arr.shape}")
    _check_range("y", arr, params.K, "K")
    arr = arr.astype(np.int64, copy=False)  # exact: every id is in [0, K)
    return arr if batched else arr[:, None]


def _prepare_h0(
    params: CellParams, h0: object, N: int, batched: bool, name: str = "h0"
) -> np.ndarray:
    """h0 (or c0, by ``name``) in batched form (N, H); zeros when not given."""
    if h0 is None:
        return np.zeros((N, params.H), dtype=params.dtype)
    arr = plain_array(name, h0)
    want = (N, params.H) if batched else (params.H,)
    if arr.shape != want:
        letters = "(N, H)" if batched else "(H,)"
        raise ValueError(
            f"{name} must have shape {letters} = {want} to match x and U; got {arr.shape}"
        )
    arr = _match_dtype(name, arr, params)
    _check_finite(name, arr)
    return arr if batched else arr[None, :]


def _prepare_mask(params: CellParams, mask: object, T: int, N: int, batched: bool) -> np.ndarray:
    if mask is None:
        return np.ones((T, N), dtype=params.dtype)
    arr = plain_array("mask", mask)
    want = (T, N) if batched else (T,)
    if arr.shape != want:
        letters = "(T, N)" if batched else "(T,)"
        raise ValueError(f"mask must have shape {letters} = {want} to match y; got {arr.shape}")
    if not (arr.dtype == np.bool_ or _is_int(arr) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"mask must be bool or 0/1 numbers; got dtype {arr.dtype}")
    if not np.all((arr == 0) | (arr == 1)):
        bad = first_index((arr != 0) & (arr != 1))
        raise ValueError(f"mask must hold only 0 and 1; entry {bad} is {arr[bad]}")
    out = arr.astype(params.dtype)
    return out if batched else out[:, None]


def _check_count(name: str, value: object, least: int) -> int | None:
    if value is None:
        return None
    if not is_integer(value):
        raise TypeError(f"{name} must be an integer or None; got {type(value).__name__} {value!r}")
    k = int(value)
    if k < least:
        raise ValueError(f"{name} must be ≥ {least} (or None); got {k}")
    return k


def check_params(params: object) -> CellParams:
    """Return params if it is a cell's parameters (Params, LSTMParams, GRUParams);
    TypeError otherwise."""
    if not isinstance(params, CellParams):
        raise TypeError(
            f"params must be a manual_bptt.Params (or LSTMParams, GRUParams); got "
            f"{type(params).__name__}. Build one with Params(U=..., W=..., V=..., b=..., c=...) "
            'or init_params(D, H, K, cell="rnn" | "lstm" | "gru").'
        )
    return params


def require_vanilla(params: object, what: str, hint: str = "") -> Params:
    """params if it is the vanilla cell's Params; otherwise a TypeError saying that
    ``what`` (a tool written for the vanilla cell) does not take a gated cell, then
    ``hint`` (where to go instead), if any."""
    if isinstance(params, Params):
        return params
    check_params(params)
    raise TypeError(
        f"{what} is written for the vanilla RNN (Params); got {type(params).__name__}{hint}"
    )


def check_cell_options(params: CellParams, activation: object, c0: object) -> None:
    """ValueError for the options a cell does not have: ``activation`` other than the
    default for the gated cells, and ``c0`` for cells without a cell state."""
    if params.CELL != "rnn" and activation != "tanh":
        raise ValueError(
            f"activation is the vanilla cell's choice of φ; the {params.CELL.upper()} has "
            f"its own nonlinearities (σ and tanh): leave activation out; got {activation!r}"
        )
    if len(params.STATE) < 2 and c0 is not None:
        cell = "vanilla RNN" if params.CELL == "rnn" else params.CELL.upper()
        raise ValueError(
            f"c0 is the LSTM's initial cell state; a {cell} has no cell state: give h0 only"
        )


def prepare_c0(params: CellParams, c0: object, N: int, batched: bool) -> np.ndarray | None:
    """The LSTM's initial cell state (N, H) (zeros when not given); None for other cells."""
    check_cell_options(params, "tanh", c0)
    return _prepare_h0(params, c0, N, batched, "c0") if len(params.STATE) > 1 else None


def prepare_inputs(
    params: CellParams, x: ArrayLike, *, h0: ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray, bool, bool]:
    """Check x and h0 alone (what forward needs): (x batched, h0 (N, H), tokens, batched)."""
    check_params(params)
    xb, tokens, batched = _prepare_x(params, x)
    h0b = _prepare_h0(params, h0, xb.shape[1], batched)
    return xb, h0b, tokens, batched


def prepare(
    params: CellParams, x: ArrayLike, y: ArrayLike, *, for_gradients: bool = True, **options: Any
) -> Batch:
    """Check params, x, y and the :class:`Options`, and return them as a :class:`Batch`.

    Raises TypeError or ValueError naming the argument, what was expected and what was
    given (an unknown option is a TypeError that lists the known ones). The caller's
    arrays are never written to; they may be returned as views.
    ``for_gradients=False`` (loss values only) also admits complex128 parameters.
    """
    unknown = [name for name in options if name not in OPTION_NAMES]
    if unknown:
        raise TypeError(
            f"unexpected keyword argument {unknown[0]!r}; the options after (params, x, y) "
            f"are {', '.join(OPTION_NAMES)}"
        )
    activation = options.get("activation", "tanh")
    reduction = options.get("reduction", "sum")
    if check_params(params).dtype == COMPLEX_DTYPE:
        if for_gradients:
            raise TypeError(
                "bptt needs float32 or float64 parameters; complex128 ones are for the "
                "complex-step check (manual_bptt.loss), not for gradients"
            )
        if activation == "relu":
            raise ValueError(
                "the complex step needs an analytic φ (tanh, sigmoid or identity); "
                "relu is not differentiable as a complex function"
            )
    act = get_activation(activation)
    check_cell_options(params, activation, options.get("c0"))
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}; got {reduction!r}")
    k_window = _check_count("truncate", options.get("truncate"), 0)
    k_chunk = _check_count("chunk", options.get("chunk"), 1)
    tbptt = _check_tbptt(options.get("tbptt"))
    given = [
        f"{name}={options.get(name)!r}"
        for name in ("truncate", "chunk", "tbptt")
        if options.get(name) is not None
    ]
    if options.get("randomized") is not None:
        given.append("randomized")
    if len(given) > 1:
        raise ValueError(
            "give at most one of truncate (per-loss window), chunk (framework-style chunks), "
            f"tbptt (TBPTT(k1, k2)) and randomized; got {' and '.join(given)}"
        )
    xb, h0b, tokens, batched = prepare_inputs(params, x, h0=options.get("h0"))
    T, N = xb.shape[0], xb.shape[1]
    c0 = prepare_c0(params, options.get("c0"), N, batched)
    links = _prepare_links(options.get("randomized"), T)
    return Batch(
        x=xb,
        y=_prepare_y(params, y, T, N, batched),
        h0=h0b,
        c0=c0,
        mask=_prepare_mask(params, options.get("mask"), T, N, batched),
        tokens=tokens,
        batched=batched,
        activation=act,
        truncate=k_window,
        chunk=k_chunk,
        reduction=reduction,
        tbptt=tbptt,
        links=links,
    )


def _check_tbptt(value: object) -> tuple[int, int] | None:
    """(k1, k2) as ints, both ≥ 1; TypeError or ValueError naming tbptt otherwise."""
    if value is None:
        return None
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"tbptt must be a pair (k1, k2) of integers or None; got {value!r}")
    k1, k2 = value
    if not (is_integer(k1) and is_integer(k2)):
        raise TypeError(f"tbptt must be a pair (k1, k2) of integers or None; got {value!r}")
    if int(k1) < 1 or int(k2) < 1:
        raise ValueError(f"tbptt's k1 and k2 must both be ≥ 1; got ({int(k1)}, {int(k2)})")
    return int(k1), int(k2)


def _prepare_links(value: Any, T: int) -> NDArray[np.float64] | None:
    """Randomized truncation's ξ (T,): drawn from a RandomTruncation, or given."""
    if value is None:
        return None
    if isinstance(value, RandomTruncation):
        return value.draw(T)
    if isinstance(value, (str, bytes)) or np.ndim(value) != 1:
        raise TypeError(
            "randomized must be a RandomTruncation or the links ξ, a 1-D array of T "
            f"numbers; got {type(value).__name__}"
        )
    xi = np.asarray(value)
    if xi.dtype.kind not in "iuf" or xi.shape != (T,):
        raise ValueError(
            f"randomized's links ξ must be {T} real numbers (one per step); got "
            f"{xi.dtype} {xi.shape}"
        )
    xi = xi.astype(np.float64)
    if not (np.all(np.isfinite(xi)) and np.all(xi >= 0)):
        raise ValueError("randomized's links ξ must be finite and ≥ 0")
    return xi


def prepare_param(
    params: object, x: ArrayLike, y: ArrayLike, param: str, options: Options
) -> tuple[CellParams, Batch]:
    """The checked cell parameters and the prepared problem for a decomposition of ∂L/∂θ,
    θ = ``param``: ValueError unless θ is one of the cell's gradients (its grad_names),
    or if θ is x and x is token ids (no gradient). x (T, N, D) or token ids (T, N), y (T, N), or unbatched
    without N, and ``options`` as for :func:`manual_bptt.inputs.prepare`."""
    cell = check_params(params)
    names = cell.grad_names()
    if param not in names:
        raise ValueError(f"param must be one of {names} for the {cell.CELL} cell; got {param!r}")
    batch = prepare(cell, x, y, **options)
    if param == "x" and batch.tokens:
        raise ValueError('param="x" needs float inputs; token ids have no gradient')
    if batch.links is not None:
        raise ValueError(
            "contributions split a deterministic gradient by loss and step; randomized "
            "truncation's weights would be left out, so it is refused (use bptt)"
        )
    return cell, batch
