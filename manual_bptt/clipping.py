"""Gradient clipping as a separate, named step: the reference gradients stay true.

Both functions return new arrays and the norm before clipping, and never change the
mapping or the arrays they are given. They follow torch.nn.utils.clip_grad_norm_ and
clip_grad_value_ (torch 2.13), which tests/test_clipping.py checks.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

Grads = Mapping[str, NDArray[np.floating]]

# torch adds this to the norm before dividing, so that a zero gradient divides safely.
NORM_EPS = 1e-6


def global_norm(grads: Grads) -> float:
    """‖g‖₂ over all gradients as one vector: the L2 norm of the per-array L2 norms."""
    norms = [float(np.linalg.norm(g.ravel())) for g in grads.values()]
    return float(np.linalg.norm(norms)) if norms else 0.0


def clip_grad_norm(grads: Grads, max_norm: float) -> tuple[dict[str, NDArray], float]:
    """Rescale every gradient by min(1, max_norm / (‖g‖₂ + 1e-6)), one global norm
    over all of them (Pascanu, Mikolov & Bengio 2013, algorithm 1).

    Args:
        grads: name → gradient array (any shapes), e.g. BPTTResult.grads.
        max_norm: the largest global norm let through, > 0.
    Returns:
        (new name → array of the same shape and dtype, the global norm before clipping).
    """
    if not max_norm > 0:
        raise ValueError(f"max_norm must be > 0; got {max_norm!r}")
    total = global_norm(grads)
    coef = min(max_norm / (total + NORM_EPS), 1.0)
    clipped = {k: (g * np.asarray(coef, dtype=g.dtype)) for k, g in grads.items()}
    return clipped, total


def clip_grad_value(grads: Grads, clip_value: float) -> tuple[dict[str, NDArray], float]:
    """Clamp every entry to [−clip_value, clip_value].

    Returns (new name → array of the same shape and dtype, the global norm before
    clipping, as clip_grad_norm reports it).
    """
    if not clip_value >= 0:
        raise ValueError(f"clip_value must be ≥ 0; got {clip_value!r}")
    clipped = {k: np.clip(g, -clip_value, clip_value) for k, g in grads.items()}
    return clipped, global_norm(grads)
