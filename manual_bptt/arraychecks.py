"""Small checks that the public boundary repeats for many arguments, written once.

Each raises nothing itself: it answers a question, and the caller phrases the error
with the argument's name, as every error message here does.
"""

from __future__ import annotations

from typing import TypeGuard

import numpy as np


def is_integer(value: object) -> TypeGuard[int | np.integer]:
    """Whether value is a Python or NumPy integer; a bool is not (True is not a size)."""
    return not isinstance(value, bool | np.bool_) and isinstance(value, int | np.integer)


def first_index(where: np.ndarray) -> tuple[int, ...]:
    """The first index (row-major) at which the boolean array ``where`` is True.

    For messages such as "entry (2, 0) is nan"; ``where`` must hold at least one True.
    """
    return tuple(int(i) for i in np.argwhere(where)[0])


def first_non_finite(arr: np.ndarray) -> tuple[int, ...] | None:
    """The first index of arr that holds inf or NaN, or None when every entry is finite."""
    bad = ~np.isfinite(arr)
    return first_index(bad) if bad.any() else None
