"""The hidden nonlinearity φ and its derivative φ', equations (2) and (7) of docs/derivation.md.

Each activation is written once here and used by the vectorised network, the naive
loops and the analysis tools, so that a reader finds φ and φ' side by side.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]


@dataclass(frozen=True)
class Activation:
    """One choice of φ.

    Attributes:
        name: the name accepted by ``activation=``.
        phi: h = φ(a), elementwise; any shape.
        dphi: φ'(a) computed from a and h = φ(a) (whichever is cheaper), same shape.
        gamma: sup φ' over the real line (1 for tanh, relu and identity, 1/4 for
            sigmoid); the constant in the vanishing-gradient condition.
    """

    name: str
    phi: Callable[[Array], Array]
    dphi: Callable[[Array, Array], Array]
    gamma: float


def sigmoid(a: Array) -> Array:
    """σ(a) = 1 / (1 + e^{−a}), elementwise (also on complex arrays, for the complex step)."""
    # σ(a) = (1 + tanh(a/2)) / 2: the same function as 1 / (1 + e^{−a}), but it never
    # overflows for large |a|.
    sigma: Array = 0.5 * (1.0 + np.tanh(0.5 * a))
    return sigma


ACTIVATIONS: dict[str, Activation] = {
    "tanh": Activation("tanh", np.tanh, lambda a, h: 1.0 - h * h, 1.0),
    "sigmoid": Activation("sigmoid", sigmoid, lambda a, h: h * (1.0 - h), 0.25),
    # relu'(0) = 0, as torch's relu backward uses.
    "relu": Activation(
        "relu", lambda a: np.maximum(a, 0.0), lambda a, h: (a > 0).astype(a.dtype), 1.0
    ),
    "identity": Activation("identity", lambda a: a.copy(), lambda a, h: np.ones_like(a), 1.0),
}


def get_activation(name: object) -> Activation:
    """Return the Activation called ``name``; ValueError naming the choices otherwise."""
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {', '.join(map(repr, ACTIVATIONS))}; got {name!r}"
        )
    return ACTIVATIONS[name]
