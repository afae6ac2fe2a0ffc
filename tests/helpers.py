"""What the tests share: the faces of one computation, and one way to compare results.

A *face* is a function with bptt's signature, (params, x, y, **options) → BPTTResult:
the vectorised manual code, the naive loops, and the autograd twin. Every comparison of
two results goes through :func:`assert_results_agree`, so that every failure reads the
same way: what was compared, then the loss or each gradient that disagrees with its
worst entry, expected, got and allowed (compare.py's format).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import manual_bptt
import torch_reference
from manual_bptt import BPTTResult
from manual_bptt.checking.compare import Tolerance, agreement, assert_grads_close

Face = Callable[..., BPTTResult]

FACES: dict[str, Face] = {
    "manual": manual_bptt.bptt,
    "naive": manual_bptt.naive_bptt,
    "autograd": torch_reference.bptt,
}

# @every_face: run a test once per face, named by the face.
every_face = pytest.mark.parametrize("face", list(FACES.values()), ids=list(FACES))


def assert_results_agree(
    got: BPTTResult, expected: BPTTResult, tol: Tolerance, context: str
) -> None:
    """got's loss and gradients agree with expected's under ``tol``.

    Checks, in order, each failing with ``context`` first: the same gradient names;
    each gradient's shape and dtype; the loss (a scalar under the same policy); every
    gradient (assert_grads_close).
    """
    assert list(got.grads) == list(expected.grads), (
        f"{context}: gradient names {list(got.grads)}, expected {list(expected.grads)}"
    )
    for name, g in got.grads.items():
        e = np.asarray(expected.grads[name])
        assert g.shape == e.shape, (
            f"{context}: grads[{name!r}] has shape {g.shape}, expected {e.shape}"
        )
        assert g.dtype == e.dtype, f"{context}: grads[{name!r}] is {g.dtype}, expected {e.dtype}"
    loss = agreement("loss", np.array(got.loss), np.array(expected.loss), tol)
    assert loss.passed, f"{context}: {loss.describe()}"
    assert_grads_close(got.grads, expected.grads, tol, context)
