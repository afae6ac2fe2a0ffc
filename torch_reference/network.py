"""The network in PyTorch, equations (1)–(4): the twin of manual_bptt/network.py.

Written step by step with torch operations only, so that autograd, not anyone here,
derives the backward pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import torch

from manual_bptt.inputs import Batch, prepare
from manual_bptt.network import overflow_warning, warn_at_caller
from manual_bptt.params import CellParams, Params
from torch_reference.activations import ACTIVATIONS

Made = TypeVar("Made")


class _Products:
    """What the leaves of every cell share: the products of the weights alone that a
    forward pass makes, kept when ``keep`` (see :func:`once`)."""

    keep: bool
    made: dict[str, Any]
    x: torch.Tensor | None
    tokens: torch.Tensor | None

    def once(self, key: str, make: Callable[[], Made]) -> Made:
        """``make()``, kept for ``key`` when ``keep``: see :func:`once`."""
        return once(self.made, key, make) if self.keep else make()

    def input_term_of(self, U: torch.Tensor, t: int) -> torch.Tensor:
        """U x_t, (N, G·H): the columns U[:, x_t] for token ids."""
        if self.keep:
            return self.once("U x", lambda: _input_terms(U, self.x, self.tokens))[t]
        return _input_term(U, self.x, self.tokens, t)


@dataclass(frozen=True)
class Leaves(_Products):
    """The tensors autograd differentiates with respect to (all requires_grad).

    U (H, D), W (H, H), V (K, H), b (H,), c (K,), h0 (N, H), and x (T, N, D) for
    float inputs or None for token ids (then ``tokens`` (T, N) holds them).
    """

    U: torch.Tensor
    W: torch.Tensor
    V: torch.Tensor
    b: torch.Tensor
    c: torch.Tensor
    h0: torch.Tensor
    x: torch.Tensor | None
    tokens: torch.Tensor | None
    keep: bool = False  # make each product of the weights alone once (see once)
    # the products made so far: a new instance, or dataclasses.replace, starts with none
    made: dict[str, Any] = field(default_factory=dict, init=False, compare=False, repr=False)

    def input_term(self, t: int) -> torch.Tensor:
        """U x_t, (N, H): the columns U[:, x_t] for token ids."""
        return self.input_term_of(self.U, t)


def once(made: dict[str, Any], key: str, make: Callable[[], Made]) -> Made:
    """``made[key]``, made by ``make()`` if missing.

    With ``keep=True`` (the twin's bptt: one forward pass, one backward) a product that
    does not depend on the state (U x_t for every t, W's transpose, the GRU's blocks of
    W) is made once, not at every step: the window truncation reruns each step up to k
    times, and each run of a step added its own nodes to the graph autograd walks back.
    The values, and so the gradients, are the same. Leaves that several backward passes
    share, or that are first used under ``torch.no_grad`` (the Jacobians, the
    contributions), keep nothing: a kept product would hold a graph freed by the first
    pass, or no graph at all.
    """
    if key not in made:
        made[key] = make()
    kept: Made = made[key]
    return kept


def _input_terms(
    U: torch.Tensor, x: torch.Tensor | None, tokens: torch.Tensor | None
) -> tuple[torch.Tensor, ...]:
    """(U x_0, …, U x_{T−1}), each (N, G·H), by one product (or one gather for ids)."""
    if tokens is not None:
        return torch.unbind(U.t()[tokens])
    assert x is not None
    return torch.unbind(x @ U.t())


def _input_term(
    U: torch.Tensor, x: torch.Tensor | None, tokens: torch.Tensor | None, t: int
) -> torch.Tensor:
    """U x_t alone, (N, G·H)."""
    if tokens is not None:
        return U.t()[tokens[t]]  # the columns U[:, x_t]
    assert x is not None
    return x[t] @ U.t()


def as_tensor(arr: np.ndarray, **kwargs: Any) -> torch.Tensor:
    """A new tensor holding a copy of ``arr`` (checked by manual_bptt's boundary).

    torch refuses negative strides (x[::-1]), so the array goes through
    np.ascontiguousarray first; the boundary has already made its byte order native.
    torch.tensor copies, so autograd never shares memory with the caller's array.
    """
    return torch.tensor(np.ascontiguousarray(arr), **kwargs)


def _leaf(arr: np.ndarray) -> torch.Tensor:
    return as_tensor(arr, requires_grad=True)


def make_leaves(params: Params, batch: Batch, keep: bool = False) -> Leaves:
    """Copy the parameters, h0 and float x into fresh tensors that require grad
    (``keep``: see :func:`once`)."""
    return Leaves(
        U=_leaf(params.U),
        W=_leaf(params.W),
        V=_leaf(params.V),
        b=_leaf(params.b),
        c=_leaf(params.c),
        h0=_leaf(batch.h0),
        x=None if batch.tokens else _leaf(batch.x),
        tokens=as_tensor(batch.x, dtype=torch.long) if batch.tokens else None,
        keep=keep,
    )


def step(
    leaves: Leaves, phi: Callable[[torch.Tensor], torch.Tensor], h_prev: torch.Tensor, t: int
) -> torch.Tensor:
    """One step, (N, H) → (N, H): (1) a_t = b + W h_{t−1} + U x_t, (2) h_t = φ(a_t)."""
    W_t = leaves.once("W.t()", leaves.W.t)
    return phi(leaves.b + h_prev @ W_t + leaves.input_term(t))


def logits(leaves: Leaves, h: torch.Tensor) -> torch.Tensor:
    """(3) o_t = c + V h_t for h (…, H) → (…, K)."""
    return leaves.c + h @ leaves.once("V.t()", leaves.V.t)


@dataclass(frozen=True)
class CellLeaves(_Products):
    """The leaves of a gated cell (all requires_grad): its parameters by name
    (``params.NAMES``), h0 (N, H), the LSTM's c0 (N, H) or None, and x (T, N, D) for
    float inputs or None for token ids (then ``tokens`` (T, N) holds them)."""

    weights: dict[str, torch.Tensor]
    h0: torch.Tensor
    c0: torch.Tensor | None
    x: torch.Tensor | None
    tokens: torch.Tensor | None
    keep: bool = False  # make each product of the weights alone once (see once)
    # the products made so far: a new instance, or dataclasses.replace, starts with none
    made: dict[str, Any] = field(default_factory=dict, init=False, compare=False, repr=False)

    def transposed(self, name: str) -> torch.Tensor:
        """The weight ``name`` transposed (made once per forward pass)."""
        return self.once(f"{name}.t()", self.weights[name].t)

    def input_term(self, t: int) -> torch.Tensor:
        """U x_t, (N, G·H): the columns U[:, x_t] for token ids."""
        return self.input_term_of(self.weights["U"], t)

    def initial_state(self) -> tuple[torch.Tensor, ...]:
        """(h0,), or (h0, c0) for the LSTM."""
        return (self.h0,) if self.c0 is None else (self.h0, self.c0)

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """(3) o_t = c + V h_t for h (…, H) → (…, K)."""
        return self.weights["c"] + h @ self.transposed("V")


def make_cell_leaves(params: CellParams, batch: Batch, keep: bool = False) -> CellLeaves:
    """Copy a gated cell's parameters, h0, c0 and float x into fresh leaf tensors
    (``keep``: see :func:`once`)."""
    return CellLeaves(
        weights={name: _leaf(value) for name, value in params.as_dict().items()},
        h0=_leaf(batch.h0),
        c0=None if batch.c0 is None else _leaf(batch.c0),
        x=None if batch.tokens else _leaf(batch.x),
        tokens=as_tensor(batch.x, dtype=torch.long) if batch.tokens else None,
        keep=keep,
    )


def hidden_states_vjp(
    params: Params, x: np.ndarray, h0: np.ndarray, dh: np.ndarray, activation: str = "tanh"
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The layer's states and autograd's vector–Jacobian product with an upstream dh.

    x (T, N, D) float, h0 (N, H), dh (T, N, H) → h (T, N, H) by (1)–(2), and the
    gradients of Σ dh ⊙ h: {"U" (H, D), "W" (H, H), "b" (H,), "h0" (N, H), "x" (T, N, D)}.
    This is how a recurrent layer alone is checked (CS231n's rnn_backward): the loss
    above it is replaced by a random upstream gradient, which hides no transposition.
    """
    y = np.zeros(x.shape[:2], dtype=np.int64)
    batch = prepare(params, x, y, h0=h0, activation=activation)
    if batch.tokens:
        raise TypeError(
            "hidden_states_vjp takes float inputs x (T, N, D), as a layer does; got token ids "
            f"of shape {np.shape(x)} (one-hot them first)"
        )
    leaves = make_leaves(params, batch)
    phi = ACTIVATIONS[batch.activation.name]  # the name prepare has checked
    states = []
    h = leaves.h0
    for t in range(batch.T):
        h = step(leaves, phi, h, t)
        states.append(h)
    stacked = torch.stack(states)
    (stacked * torch.tensor(dh)).sum().backward()
    grads = {}
    for name in ("U", "W", "b", "h0", "x"):
        g = getattr(leaves, name).grad
        assert g is not None  # x is float (token ids are refused above); every leaf reaches h
        grads[name] = g.numpy()
    return stacked.detach().numpy(), grads


class Overflow:
    """Watches the states and logits of a forward pass for the first step that is not
    finite, and reports it as manual_bptt does (OverflowWarning, the same words)."""

    def __init__(self) -> None:
        self.first: tuple[int, str] | None = None

    def see(self, t: int, h: torch.Tensor, o: torch.Tensor) -> None:
        """Note step t's state h_t and logits o_t = c + V h_t."""
        if (self.first is None or t < self.first[0]) and not bool(torch.isfinite(o).all()):
            bad_h = not bool(torch.isfinite(h).all())
            self.first = (t, "h_t (the state)" if bad_h else "o_t (the logits)")

    def report(self) -> None:
        if self.first is not None:
            warn_at_caller(overflow_warning(*self.first))
