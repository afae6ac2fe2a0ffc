"""Check your own BPTT from your own test suite: the Python face of ``bptt verify``.

    from manual_bptt.testing import assert_bptt_correct

    def test_my_rnn_layer():
        assert_bptt_correct("rnn_layers.py", style="cs231n")

- :func:`assert_bptt_correct`: the whole check (search, then shrink every failure),
  raising AssertionError with the full report when anything is wrong.
- :func:`assert_case_correct`: the check on one given problem (what a --save-repro file
  calls).
- :func:`assert_close`: the tolerance policy, |got − expected| ≤ atol + rtol·‖expected‖∞
  per dtype, raising AssertionError that says which entry, expected, got, allowed.
- :func:`problems`, :class:`Space`, :func:`space_for`, :func:`make_case`: the Hypothesis
  strategy that draws whole problems (sizes and options first, then arrays from a
  seed), the options it may draw, a style's space, and the recipe that rebuilds a
  problem, for ``@given(...)`` tests of your own.

Like the rest of ``manual_bptt``'s checking tools this needs torch (the twin) at call
time; importing it does not.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from manual_bptt.cases import Case, make_case
from manual_bptt.checking.guard import DEFAULT_TIMEOUT
from manual_bptt.checking.strategies import Space, problems
from manual_bptt.checking.styles import make_style
from manual_bptt.compare import agreement, tolerance_for

__all__ = [
    "Case",
    "Space",
    "assert_bptt_correct",
    "assert_case_correct",
    "assert_close",
    "assert_layer_correct",
    "assert_loss_correct",
    "make_case",
    "problems",
    "space_for",
]


def space_for(style: str = "project", **choices: Any) -> Space:
    """The problems ``style`` can be given, narrowed by ``choices``: any field of
    :class:`Space` fixed to one value (``activations="tanh"``, ``modes=("full",)``,
    ``batched=True``, ``tokens=False``, ``biases=False``, ``h0=False``, ``mask=False``,
    ``reductions="sum"``, ``dtypes="float32"``, ``cells="lstm"``, ``resets="before"``)
    or ``max_T``/``max_H`` lowered. ValueError when the style cannot draw what is asked."""
    return make_style(style).space_for(**choices)


def assert_bptt_correct(
    target: Any,
    *,
    style: str = "project",
    examples: int = 200,
    seed: int = 0,
    timeout: float | None = DEFAULT_TIMEOUT,
    space: Space | None = None,
    cell: str | None = None,
    **style_options: Any,
) -> None:
    """Property-test ``target`` against autograd; AssertionError with the full report.

    Args:
        target: the code, or a string naming it as ``bptt verify`` takes it
            ("rnn_layers.py", "mycode:MyRNN", "notebook.ipynb:RNNNumpy").
        style: the interface, a name in ``manual_bptt.checking.styles.STYLES`` ("project",
            "tutorial", "cs231n", …; docs/verify.md, "Styles: the shapes people write").
        examples: problems to try; seed: Hypothesis's seed (the same run every time).
        timeout: seconds allowed per call of your code (None: no limit).
        space: what to draw (default the style's whole space; see :func:`space_for`).
        cell: "rnn", "lstm" or "gru" (style "project"): draw that cell's problems, as
            ``bptt verify --cell``; ignored when ``space`` is given (choose it there).
        style_options: the style's own options (min-char-rnn: clip_value=5.0 or None).
    Raises:
        AssertionError: a gradient is wrong, or a call raised, timed out, changed its
            inputs or returned the wrong thing; the message is the full report, every
            failure at its own minimal counterexample.
        manual_bptt.checking.styles.UsageError (a ValueError): the target cannot be
            checked in this style.
    """
    from manual_bptt.checking.explain import describe_report
    from manual_bptt.checking.verify import verify

    # a string goes to verify as it is: the code is loaded and run in a worker process
    name = target if isinstance(target, str) else getattr(target, "__name__", repr(target))
    if space is None and cell is not None:
        space = make_style(style, **style_options).space_for(cells=cell)
    report = verify(
        target,
        style=style,
        max_examples=examples,
        random_seed=seed,
        name=name,
        timeout=timeout,
        space=space,
        **style_options,
    )
    if not report.passed:
        raise AssertionError(describe_report(report))


def assert_layer_correct(
    target: Any,
    *,
    forward: str,
    backward: str,
    shapes: str,
    examples: int = 100,
    seed: int = 0,
    timeout: float | None = DEFAULT_TIMEOUT,
    max_sizes: dict[str, int] | None = None,
) -> None:
    """The layer form of ``bptt verify``: ``backward(dout, *rest)`` against the derivative
    of ``forward(*inputs)`` itself (docs/verify-generic.md); AssertionError with the
    full report.

    Args:
        target: a file or module ("layers.py", "mypkg.layers") or an object with both
            functions; forward, backward: their names (backward may be "OTHER.py:NAME").
        shapes: the inputs in the shapes language, e.g. "x:N,T,D h0:N,H Wx:D,H Wh:H,H b:H".
        max_sizes: each letter's largest size (default 4), e.g. {"H": 6}.
    """
    _assert_generic(
        target,
        "layer",
        {"forward": forward, "backward": backward, "shapes": shapes},
        examples,
        seed,
        timeout,
        max_sizes,
    )


def assert_loss_correct(
    target: Any,
    *,
    loss: str,
    args: str,
    params: str,
    object: str | None = None,
    examples: int = 100,
    seed: int = 0,
    timeout: float | None = DEFAULT_TIMEOUT,
    max_sizes: dict[str, int] | None = None,
) -> None:
    """The loss form of ``bptt verify``: ``loss(*args) -> (loss, g_1, …, g_k, …)`` against
    the derivative of its own loss with respect to ``params`` (module globals, or the
    attributes of ``object``, e.g. "RNN(V, H)"); AssertionError with the full report.
    ``args`` and ``params`` are in the shapes language (docs/verify-generic.md)."""
    options = {"loss": loss, "args": args, "params": params, "object": object}
    _assert_generic(target, "loss", options, examples, seed, timeout, max_sizes)


def _assert_generic(
    target: Any,
    style_name: str,
    options: dict[str, Any],
    examples: int,
    seed: int,
    timeout: float | None,
    max_sizes: dict[str, int] | None,
) -> None:
    from manual_bptt.checking.explain import describe_report
    from manual_bptt.checking.verify import verify

    style = make_style(style_name, **options)
    space = style.space_for(**{f"max_{k}": v for k, v in (max_sizes or {}).items()})
    name = target if isinstance(target, str) else getattr(target, "__name__", repr(target))
    report = verify(
        target,
        style=style,
        max_examples=examples,
        random_seed=seed,
        name=name,
        timeout=timeout,
        space=space,
    )
    if not report.passed:
        raise AssertionError(describe_report(report))


def assert_case_correct(
    target: Any,
    case: Case,
    *,
    style: str = "project",
    timeout: float | None = DEFAULT_TIMEOUT,
    **style_options: Any,
) -> None:
    """Check ``target`` on one problem (e.g. ``make_case(...)`` from a counterexample);
    AssertionError saying every gradient that disagrees and everything else wrong."""
    from manual_bptt.checking.verify import evaluate

    outcome = evaluate(target, style, case, timeout=timeout, **style_options)
    if not outcome.passed:
        raise AssertionError(outcome.describe())


def assert_close(
    got: ArrayLike,
    expected: ArrayLike,
    *,
    name: str = "gradient",
    dtype: np.dtype | type | None = None,
) -> None:
    """Assert |got − expected| ≤ atol + rtol·‖expected‖∞ entry by entry, with the
    project's tolerance for ``dtype`` (default: expected's dtype; float64: rtol 1e-10,
    atol 1e-12; float32: rtol 1e-4, atol 1e-6, honest only on a bounded domain, see
    compare.py). Shapes must match; NaN or inf never agree.

    Raises:
        AssertionError: e.g. ``dW[1, 0]: expected 0.25, got 0.26, |Δ| = 0.01 (allowed
            1.3e-12, relative 0.04) MISMATCH``, or a shape mismatch.
    """
    g, e = np.asarray(got), np.asarray(expected)
    if g.shape != e.shape:
        raise AssertionError(f"{name} has shape {g.shape}; expected {e.shape}")
    kind = e.dtype if dtype is None and np.issubdtype(e.dtype, np.floating) else dtype
    result = agreement(name, g, e, tolerance_for(kind or np.float64))
    if not result.passed:
        raise AssertionError(result.describe())
