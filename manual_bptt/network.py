"""The forward pass, equations (1)–(4) of docs/derivation.md, vectorised over the batch.

Only the recurrence (1)–(2) loops over time; the input term U x_t for every step and
the output layer (3)–(4) for every step are each one matrix product. The gated cells'
forward passes are in lstm.py and gru.py; :func:`run_cell`, :func:`forward` and
:func:`loss` ask the registry of cells (cells.py) for the cell the parameters belong to.
"""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from manual_bptt.activations import Activation, get_activation
from manual_bptt.cells import cell_of
from manual_bptt.crossentropy import log_softmax, nll, softmax
from manual_bptt.inputs import (
    Batch,
    Options,
    check_cell_options,
    prepare,
    prepare_c0,
    prepare_inputs,
)
from manual_bptt.params import CellParams, Params
from manual_bptt.rnn import Cache, forward_pass

if TYPE_CHECKING:
    from typing_extensions import Unpack

P = ParamSpec("P")
R = TypeVar("R")


class OverflowWarning(RuntimeWarning):
    """The forward pass left the floating-point range: a state h_t or logits o_t hold
    inf or NaN from some step on, so the loss and the gradients are inf or NaN too.

    Issued by every face (manual_bptt and torch_reference) instead of numpy's own
    "overflow encountered" warnings, which the core keeps quiet (np.errstate), and
    naming the first step where it happened. Turn it into an error with
    ``warnings.simplefilter("error", manual_bptt.OverflowWarning)``.

    Attributes:
        step: the first step t whose state or logits are not finite; None when the
            forward pass was finite and the gradients overflowed.
    """

    def __init__(self, message: str, step: int | None = None) -> None:
        super().__init__(message)
        self.step = step


# Inside the core, inf and NaN are reported once, by OverflowWarning, not by numpy.
def quiet() -> np.errstate:
    """np.errstate that silences numpy's overflow and invalid-value warnings."""
    return np.errstate(over="ignore", invalid="ignore")


def quietly(function: Callable[P, R]) -> Callable[P, R]:
    """``function`` run inside :func:`quiet`."""

    @functools.wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with quiet():
            return function(*args, **kwargs)

    return run


def overflow_warning(t: int, what: str) -> OverflowWarning:
    """The warning both faces issue: at step t, ``what`` ("h_t (the state)" or "o_t (the
    logits)") stopped being finite."""
    return OverflowWarning(
        f"the network overflows at step t = {t}: {what} holds inf or NaN, so the loss "
        "and the gradients are not finite either",
        step=t,
    )


# The packages whose frames stand between the user's call and the warning; mutmut's
# trampolines wrap every function of ours during mutation testing, so they count too.
_OURS = ("manual_bptt", "torch_reference", "mutmut")


def warn_at_caller(warning: Warning) -> None:
    """warnings.warn(warning), attributed to the first frame outside manual_bptt,
    torch_reference and mutmut's trampolines: the user's line that called bptt, loss,
    forward, …, however deep inside the project the overflow was found. (Called from a
    tool that runs the project for you, such as Hypothesis inside verify, or a thread
    whose target is one of our functions, that first frame is the tool's.)"""
    frame = sys._getframe(0)
    level = 1
    while frame.f_back is not None and frame.f_globals.get("__name__", "").split(".")[0] in _OURS:
        frame = frame.f_back
        level += 1
    warnings.warn(warning, stacklevel=level)


def first_nonfinite_step(
    h: NDArray[np.floating], o: NDArray[np.floating]
) -> tuple[int, str] | None:
    """(t, what) for the first step t whose state h_t or logits o_t (T, N, ·) hold inf or
    NaN, or None when all are finite. One sum over o first: o_t = c + V h_t is not finite
    whenever h_t is not, so a finite sum clears both at once."""
    with quiet():
        if np.isfinite(o.sum()):
            return None
        bad_h = ~np.isfinite(h).all(axis=(1, 2))
        bad_o = ~np.isfinite(o).all(axis=(1, 2))
    if not (bad_h.any() or bad_o.any()):
        return None  # the sum itself overflowed; every entry is finite
    t = int(np.argmax(bad_h | bad_o))
    return t, ("h_t (the state)" if bad_h[t] else "o_t (the logits)")


def report_overflow(h: NDArray[np.floating], o: NDArray[np.floating]) -> None:
    """Issue an OverflowWarning naming the first step where h or o stopped being finite."""
    found = first_nonfinite_step(h, o)
    if found is not None:
        warn_at_caller(overflow_warning(*found))


def run_forward(
    params: Params,
    x: NDArray[np.number],
    h0: NDArray[np.floating],
    tokens: bool,
    act: Activation,
    *,
    keep_a: bool = False,
) -> Cache:
    """Equations (1)–(3) on checked, batched inputs; see :func:`forward` for shapes.

    φ'(a_t) is taken during the loop, for the last few steps at a time (about
    DPHI_BLOCK numbers), rather than in one more pass over (T, N, H) arrays afterwards.
    Unless ``keep_a``, φ'(a_t) is written over a_t, which nothing needs after that.
    """
    with quiet():
        cache = forward_pass(params, x, h0, tokens, act, keep_a=keep_a)
    report_overflow(cache.h, cache.o)
    return cache


AnyCache = Any  # a registered cell's cache: Cache, LSTMCache, GRUCache, …


def run_cell(
    params: CellParams,
    x: NDArray[np.number],
    h0: NDArray[np.floating],
    c0: NDArray[np.floating] | None,
    tokens: bool,
    act: Activation,
) -> AnyCache:
    """The forward pass of whichever registered cell ``params`` belong to (cells.py), on
    checked, batched inputs: (1)–(3) (vanilla), (13)–(16) and (3) (LSTM), (25)–(27) and
    (3) (GRU). Every cache has h (T, N, H), h_prev (T, N, H) and the logits o (T, N, K);
    the initial state is (h0,), or (h0, c0) for a cell whose state has a second part."""
    initial = (h0,) if c0 is None else (h0, c0)
    with quiet():
        cache = cell_of(params).forward(params, x, initial, tokens, act)
    report_overflow(cache.h, cache.o)
    return cache


def run_batch(params: CellParams, batch: Batch) -> AnyCache:
    """:func:`run_cell` on a prepared Batch."""
    return run_cell(params, batch.x, batch.h0, batch.c0, batch.tokens, batch.activation)


@dataclass(frozen=True)
class ForwardResult:
    """The forward pass, for reading and for analysis.

    With batched x the arrays are (T, N, ·); with unbatched x the N axis is dropped.

    Attributes:
        a: pre-activations a_t, (T, N, H) (vanilla cell); None for the gated cells.
        h: hidden states h_t, (T, N, H).
        h0: the initial state h_{−1}, (N, H).
        o: logits o_t, (T, N, K).
        y_hat: probabilities ŷ_t = softmax(o_t), (T, N, K).
        gates: the gated cells' gates after their nonlinearities, in torch's block
            order ([i; f; g; q] for the LSTM, [r; z; n] for the GRU), (T, N, G·H);
            None for the vanilla cell.
        s: the LSTM's cell states s_t, (T, N, H); None for the other cells.
    """

    a: NDArray[np.floating] | None
    h: NDArray[np.floating]
    h0: NDArray[np.floating]
    o: NDArray[np.floating]
    y_hat: NDArray[np.floating]
    gates: NDArray[np.floating] | None = None
    s: NDArray[np.floating] | None = None


def forward(
    params: CellParams,
    x: ArrayLike,
    *,
    h0: ArrayLike | None = None,
    c0: ArrayLike | None = None,
    activation: str = "tanh",
) -> ForwardResult:
    """Run the network: equations (1)–(4), or the LSTM's (13)–(16) or the GRU's (25)–(27)
    followed by (3)–(4), by the parameters' type.

    Args:
        params: Params (vanilla), LSTMParams or GRUParams.
        x: float inputs (T, N, D) or (T, D), or integer token ids (T, N) or (T,) in [0, D).
        h0: initial state h_{−1}, (N, H) or (H,) to match x; zeros by default.
        c0: the LSTM's initial cell state s_{−1}, shaped as h0; zeros by default (LSTM only).
        activation: φ, one of "tanh", "sigmoid", "relu", "identity" (vanilla cell only).

    Returns:
        ForwardResult with a, h (T, N, H), h0 (N, H), o, y_hat (T, N, K), and for the
        gated cells gates (T, N, G·H) and the LSTM's s (T, N, H); the N axis is
        dropped when x has none.
    """
    act = get_activation(activation)
    if act.name == "relu" and np.iscomplexobj(params.U):
        raise ValueError(
            "the complex step needs an analytic φ (tanh, sigmoid or identity); "
            "relu is not differentiable as a complex function"
        )
    check_cell_options(params, activation, c0)
    xb, h0b, tokens, batched = prepare_inputs(params, x, h0=h0)
    c0b = prepare_c0(params, c0, xb.shape[1], batched)
    if isinstance(params, Params):  # the vanilla cell's a_t too, for reading
        cache: AnyCache = run_forward(params, xb, h0b, tokens, act, keep_a=True)
    else:
        cache = run_cell(params, xb, h0b, c0b, tokens, act)
    # h0b may be the caller's own array: the result holds a copy, so changing it changes no argument.
    with quiet():
        y_hat = softmax(cache.o)
    out = ForwardResult(
        a=getattr(cache, "a", None),
        h=cache.h if isinstance(cache, Cache) else cache.h.copy(),
        h0=h0b.copy(),
        o=cache.o,
        y_hat=y_hat,
        gates=getattr(cache, "gates", None),
        s=None if getattr(cache, "s", None) is None else cache.s.copy(),
    )
    if batched:
        return out

    def drop(arr: NDArray[np.floating] | None, axis: int = 1) -> NDArray[np.floating] | None:
        return None if arr is None else np.take(arr, 0, axis=axis)

    return ForwardResult(
        a=drop(out.a),
        h=out.h[:, 0],
        h0=out.h0[0],
        o=out.o[:, 0],
        y_hat=out.y_hat[:, 0],
        gates=drop(out.gates),
        s=drop(out.s),
    )


def loss(
    params: CellParams,
    x: ArrayLike,
    y: ArrayLike,
    **options: Unpack[Options],
) -> float | complex:
    """The loss L alone, equation (5), by the forward pass: what numerical checks evaluate.

    Arguments and shapes as :func:`manual_bptt.bptt`, for every cell. Returns a float;
    with complex128 parameters (the complex step: the gated cells, and the vanilla
    cell with tanh, sigmoid or identity) a complex, whose imaginary part carries the
    directional derivative.
    """
    batch = prepare(params, x, y, for_gradients=False, **options)
    cache = run_batch(params, batch)
    with quiet():
        value = nll(log_softmax(cache.o), batch.y, batch.mask, batch.loss_scale)
    return complex(value) if np.iscomplexobj(value) else float(value)
