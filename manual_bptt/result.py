"""What ``bptt`` returns, in both packages: the loss and one gradient per argument."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from manual_bptt.inputs import Batch
from manual_bptt.network import OverflowWarning, warn_at_caller

GRAD_NAMES = ("U", "W", "V", "b", "c", "h0", "x")  # the vanilla cell's
LSTM_GRAD_NAMES = ("U", "W", "b", "V", "c", "h0", "c0", "x")
GRU_GRAD_NAMES = ("U", "W", "b", "bh", "V", "c", "h0", "x")


@dataclass(frozen=True)
class BPTTResult:
    """The loss L and its gradients.

    Attributes:
        loss: L as a Python float (equation (5)).
        grads: one per parameter (GRAD_NAMES for the vanilla cell: "U" (H, D), "W"
            (H, H), "V" (K, H), "b" (H,), "c" (K,); LSTM_GRAD_NAMES, GRU_GRAD_NAMES for
            the gated cells), "h0" ((N, H), or (H,) unbatched), the LSTM's "c0" (as h0)
            and, when x is float, "x" ((T, N, D), or (T, D) unbatched). Each has the
            shape and dtype of its argument; "h0" (and "c0") is there even when it
            was not given (it is then the gradient at the default zero state).
    """

    loss: float
    grads: Mapping[str, NDArray[np.floating]]

    @classmethod
    def from_batched(
        cls, batch: Batch, loss: float, grads: Mapping[str, NDArray[np.floating]]
    ) -> BPTTResult:
        """Build the result from batched gradients, in their order, dropping the batch
        axis of "h0", "c0" and "x" when the caller's inputs had none, and "x" when x held
        token ids."""
        out: dict[str, NDArray[np.floating]] = {}
        for name in grads:
            if name == "x" and batch.tokens:
                continue
            g = grads[name]
            if not batch.batched and name in ("h0", "c0"):
                g = g[0]
            elif not batch.batched and name == "x":
                g = g[:, 0]
            out[name] = g
        _report_gradient_overflow(float(loss), out)
        return cls(loss=float(loss), grads=out)


def _report_gradient_overflow(loss: float, grads: Mapping[str, NDArray[np.floating]]) -> None:
    """OverflowWarning when the loss is finite but a gradient is not (the backward pass
    overflowed: exploding gradients). A non-finite loss has been reported already, with
    the step where the forward pass overflowed."""
    if not math.isfinite(loss):
        return
    with np.errstate(over="ignore", invalid="ignore"):
        for name, g in grads.items():
            if not np.isfinite(g.sum()) and not np.isfinite(g).all():
                message = (
                    f"the gradients overflow: the loss is finite but grads[{name!r}] holds "
                    "inf or NaN (exploding gradients)"
                )
                warn_at_caller(OverflowWarning(message))
                return
