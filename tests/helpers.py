"""What the tests share: the faces of one computation, the cells, and one way to
compare results.

A *face* is a function with bptt's signature, (params, x, y, **options) → BPTTResult:
the vectorised manual code, the naive loops, and the autograd twin. Every comparison of
two results goes through :func:`assert_results_agree`, so that every failure reads the
same way: what was compared, then the loss or each gradient that disagrees with its
worst entry, expected, got and allowed (compare.py's format).

A property that every cell has is one test run once per registered cell (@every_cell),
its problems drawn by :func:`draw_case`: the vanilla cell with every activation, the
gated cells with their own nonlinearities, the GRU with either reset variant.
"""

from __future__ import annotations

import dataclasses
import functools
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import manual_bptt
import torch_reference
from manual_bptt import BPTTResult
from manual_bptt.cases import Case
from manual_bptt.cells import CELLS
from manual_bptt.checking.strategies import cases
from manual_bptt.checking.verify import Report, verify
from manual_bptt.compare import FLOAT64, Tolerance, agreement, assert_grads_close
from manual_bptt.vanishing.decomposition import contribution_norms, contributions

Face = Callable[..., BPTTResult]

FACES: dict[str, Face] = {
    "manual": manual_bptt.bptt,
    "naive": manual_bptt.naive_bptt,
    "autograd": torch_reference.bptt,
}

# @every_face: run a test once per face, named by the face.
every_face = pytest.mark.parametrize("face", list(FACES.values()), ids=list(FACES))

# The cells registered when this module is first imported: the package's own (rnn,
# lstm, gru). A cell registered later by a test file (test_cell_protocol's) is not among
# them, so that which tests a file holds does not depend on which files ran before it.
CELL_NAMES = tuple(CELLS)

# @every_cell: run a test once per registered cell, named by the cell.
every_cell = pytest.mark.parametrize("cell", CELL_NAMES)


def draw_case(data: st.DataObject, cell: str, **bounds: Any) -> Case:
    """A problem for ``cell`` drawn from strategies.cases(cell=cell, **bounds): every
    activation for the vanilla cell (or those in ``activations``), the gated cells' own
    nonlinearities, and either reset variant for a cell that has them."""
    return data.draw(cases(cell=cell, **bounds), label="case")


def for_examples(
    scale: float, strategy: st.SearchStrategy[Any], check: Callable[[Any], None]
) -> None:
    """``check`` on ``scale`` times the loaded profile's number of examples (at least
    one) drawn from ``strategy``: for a property whose cost differs so much between cells
    that each cell is given its own count (Hypothesis's count is one per test function)."""
    loaded = settings.default
    assert loaded is not None, "conftest.py loads a profile before any test runs"
    count = max(1, int(scale * loaded.max_examples))
    settings(max_examples=count)(given(strategy)(check))()


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


def params_for(case: Case, names: tuple[str, ...]) -> list[str]:
    """The names in ``names`` that have a gradient for ``case``: not x when x is token ids."""
    return [p for p in names if not (p == "x" and np.issubdtype(case.x.dtype, np.integer))]


def assert_contributions_sum_to_bptt(case: Case, names: tuple[str, ...]) -> None:
    """Σ_t Σ_k of contributions(param) is bptt's (truncated) gradient, for every param in
    ``names``; no contribution has k > t; no parameter array is changed."""
    before = {k: v.copy() for k, v in case.params.as_dict().items()}
    total = case.call(manual_bptt.bptt).grads
    summed = {}
    for param in params_for(case, names):
        parts = case.call(contributions, param=param)
        # For x, [t, k] is ∂E_t/∂x_k: summed over the losses t it is ∂L/∂x_k.
        summed[param] = parts.sum(axis=0) if param == "x" else parts.sum(axis=(0, 1))
        assert not np.any(np.triu(parts.reshape(case.T, case.T, -1).any(-1), 1)), "k > t"
    assert_grads_close(summed, {k: total[k] for k in summed}, FLOAT64, case.describe())
    for name, value in case.params.as_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=f"{name} was changed")


def assert_norms_are_norms_of_contributions(case: Case, param: str, tol: Tolerance) -> None:
    """contribution_norms(param)[t, k] is the Frobenius norm of contributions(param)[t, k]."""
    full = case.call(contributions, param=param)
    expected = np.linalg.norm(full.reshape(case.T, case.T, -1), axis=-1)
    got = case.call(contribution_norms, param=param)
    assert_grads_close({param: got}, {param: expected}, tol, case.describe())


def assert_unbatched_equals_batch_of_one(case: Case) -> None:
    """bptt on a batch of one sequence (N = 1) and on that sequence unbatched agree:
    the unbatched gradients of h0, c0 are (H,), of x (T, D), and equal the batch's with
    its N axis dropped. ``case`` must be batched with N = 1."""
    batched = case.call(manual_bptt.bptt)
    flat = dataclasses.replace(
        case,
        x=case.x[:, 0],
        y=case.y[:, 0],
        h0=None if case.h0 is None else case.h0[0],
        c0=None if case.c0 is None else case.c0[0],
        mask=None if case.mask is None else case.mask[:, 0],
    ).call(manual_bptt.bptt)
    states = ("h0", "c0")  # the initial state's parts: rows per sequence, like x
    for k in states:
        if k in flat.grads:
            assert flat.grads[k].shape == (case.params.H,), k
    if "x" in flat.grads:
        assert flat.grads["x"].shape == (case.T, case.params.D)
    squeezed = {
        k: (g[0] if k in states else g[:, 0] if k == "x" else g) for k, g in batched.grads.items()
    }
    assert_grads_close(flat.grads, squeezed, FLOAT64, "unbatched vs N = 1")


def run_pytest(path: Path, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """pytest, quiet and without its cache, on one file in a fresh interpreter (this one's
    executable), from ``cwd``; its output captured, its exit status not checked."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
        timeout=timeout,
    )


# Problems verify draws for a gallery slip in tests/test_gallery.py (its docstring says
# why 20 still finds every gradient each slip breaks, with 5x to 20x to spare).
SLIP_EXAMPLES = 20


def verified_slip(slip: Any, style: str, strict_inputs: bool = False) -> Report:
    """verify's report on a gallery slip with SLIP_EXAMPLES problems (seed 0), run once
    per pytest process and shared by every test that reads it: test_gallery.py checks
    what it names and where, test_styles.py which of the style's functions it blames.
    A Report is a frozen dataclass, and no test changes one."""
    return _verified_slip(slip, style, strict_inputs)  # one cache key however it is called


@functools.cache
def _verified_slip(slip: Any, style: str, strict_inputs: bool) -> Report:
    return verify(slip, style=style, max_examples=SLIP_EXAMPLES, strict_inputs=strict_inputs)
