"""The two products every cell's forward pass shares: U x_t for all steps, and row products."""

from __future__ import annotations

from typing import cast

import numpy as np
from numpy.typing import NDArray

from manual_bptt.params import CellParams


def input_term(params: CellParams, x: NDArray[np.number], tokens: bool) -> NDArray[np.floating]:
    """U x_t for every step at once: (T, N, G·H), G·H the rows of U.

    x is float (T, N, D), giving x @ Uᵀ, or token ids (T, N), giving the columns
    U[:, x_t] (the product of U with a one-hot x_t, without building it).
    """
    if tokens:
        columns: NDArray[np.floating] = params.U.T[x]
        return columns
    # Not tokens: x holds float features; the flag, not x's static type, says which.
    return rows_matmul(cast("NDArray[np.floating]", x), params.U.T)


def rows_matmul(
    stacked: NDArray[np.floating], matrix: NDArray[np.floating]
) -> NDArray[np.floating]:
    """(T, N, A) @ (A, B) → (T, N, B) as one (T·N, A) @ (A, B) product.

    numpy's matmul on a 3-D array runs one small product per step; folding the steps
    into rows gives the BLAS one large product instead.
    """
    T, N, A = stacked.shape
    product: NDArray[np.floating] = (stacked.reshape(T * N, A) @ matrix).reshape(
        T, N, matrix.shape[1]
    )
    return product
