"""Gradient clipping as a separate, named step: the reference gradients stay true.

Both functions return new arrays and the global norm before clipping, and never change
the mapping or the arrays they are given. They follow torch.nn.utils (read in torch
2.13.0's torch/nn/utils/clip_grad.py):

- clip_grad_norm_: total = ‖(‖g_1‖₂, …, ‖g_n‖₂)‖₂ (the norm of the per-tensor norms,
  which is the L2 norm of all gradients as one vector); coef = max_norm / (total +
  1e-6), clamped to at most 1; every gradient multiplied by coef, even when coef is 1.
  So a gradient whose norm is exactly max_norm is still scaled, by max_norm /
  (max_norm + 1e-6), and a zero gradient divides safely.
- clip_grad_value_: every entry clamped to [−clip_value, clip_value].

tests/test_clipping_vs_torch.py checks both against torch; the only difference is the order in
which the squares are summed, a few units in the last place (the test says how many).
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Real

import numpy as np
from numpy.typing import NDArray

Grads = Mapping[str, NDArray[np.floating]]

# torch adds this to the norm before dividing (see the module docstring).
NORM_EPS = 1e-6


def _check(grads: object, name: str, value: object) -> None:
    if not isinstance(grads, Mapping):
        raise TypeError(
            f"grads must be a mapping of name → array, such as BPTTResult.grads; "
            f"got {type(grads).__name__}"
        )
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number; got {type(value).__name__} {value!r}")
    for key, g in grads.items():
        if not isinstance(g, np.ndarray) or not np.issubdtype(g.dtype, np.floating):
            got = g.dtype if isinstance(g, np.ndarray) else type(g).__name__
            raise TypeError(f"grads[{key!r}] must be a floating-point numpy array; got {got}")


def global_norm(grads: Grads) -> float:
    """‖g‖₂ over all gradients as one vector: the L2 norm of the per-array L2 norms.

    grads: name → array of any shape; returns a float (0.0 for an empty mapping).
    """
    norms = [float(np.linalg.norm(np.ravel(g))) for g in grads.values()]
    return float(np.linalg.norm(norms)) if norms else 0.0


def clip_grad_norm(grads: Grads, max_norm: float) -> tuple[dict[str, NDArray[np.floating]], float]:
    """Rescale every gradient by min(1, max_norm / (‖g‖₂ + 1e-6)), one global norm
    over all of them (Pascanu, Mikolov & Bengio 2013, algorithm 1; torch's formula).

    Args:
        grads: name → gradient array (any shapes), e.g. BPTTResult.grads.
        max_norm: the largest global norm let through, > 0.
    Returns:
        (new name → array of the same shape and dtype, the global norm before clipping).
    """
    _check(grads, "max_norm", max_norm)
    if not max_norm > 0:
        raise ValueError(f"max_norm must be > 0; got {max_norm!r}")
    total = global_norm(grads)
    coef = min(max_norm / (total + NORM_EPS), 1.0)
    clipped = {k: (g * np.asarray(coef, dtype=g.dtype)) for k, g in grads.items()}
    return clipped, total


def clip_grad_value(
    grads: Grads, clip_value: float
) -> tuple[dict[str, NDArray[np.floating]], float]:
    """Clamp every entry to [−clip_value, clip_value].

    Args:
        grads: name → gradient array (any shapes).
        clip_value: the largest |entry| let through, ≥ 0.
    Returns:
        (new name → array of the same shape and dtype, the global norm before clipping,
        as clip_grad_norm reports it).
    """
    _check(grads, "clip_value", clip_value)
    if not clip_value >= 0:
        raise ValueError(f"clip_value must be ≥ 0; got {clip_value!r}")
    limit = float(clip_value)
    clipped = {k: np.clip(g, -limit, limit).astype(g.dtype, copy=False) for k, g in grads.items()}
    return clipped, global_norm(grads)
