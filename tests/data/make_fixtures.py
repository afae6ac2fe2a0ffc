"""Regenerate the regression fixtures in tests/data/: python tests/data/make_fixtures.py

Each fixture is one .npz holding a seeded problem's arrays themselves (so that a change
in how cases are drawn cannot move them), its options and its cell (with the GRU's
reset variant) as JSON, and the expected loss
and gradients in float64, computed by torch_reference (autograd) and checked against
manual_bptt before writing. tests/test_regression_fixtures.py compares both faces with them, so
that a numeric change is caught even if the two implementations drift together.
Regenerate only when a change of numbers is intended, and say why in the commit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

import manual_bptt
import torch_reference
from manual_bptt.cases import make_case
from manual_bptt.compare import FLOAT64, assert_grads_close

HERE = Path(__file__).parent

RECIPES: dict[str, dict[str, Any]] = {  # make_case keyword arguments
    "tanh_float_full": {"T": 7, "N": 3, "D": 4, "H": 5, "K": 3, "seed": 11, "with_h0": True},
    "tanh_tokens_window2": {
        "T": 9,
        "N": 2,
        "D": 6,
        "H": 4,
        "K": 6,
        "seed": 12,
        "tokens": True,
        "truncate": 2,
    },
    "sigmoid_chunk3_mask_mean": {
        "T": 8,
        "N": 3,
        "D": 3,
        "H": 4,
        "K": 4,
        "seed": 13,
        "activation": "sigmoid",
        "chunk": 3,
        "with_mask": True,
        "reduction": "mean",
    },
    "relu_exploding_float_full": {
        "T": 10,
        "N": 2,
        "D": 3,
        "H": 6,
        "K": 3,
        "seed": 14,
        "activation": "relu",
        "scale": 3.0,
        "with_h0": True,
    },
    "identity_unbatched_tokens_window0": {
        "T": 6,
        "N": 1,
        "D": 5,
        "H": 3,
        "K": 5,
        "seed": 15,
        "activation": "identity",
        "tokens": True,
        "batched": False,
        "truncate": 0,
    },
    "lstm_float_full_c0": {
        "T": 7,
        "N": 3,
        "D": 4,
        "H": 5,
        "K": 3,
        "seed": 21,
        "cell": "lstm",
        "with_h0": True,
    },
    "lstm_tokens_window2_mask_mean": {
        "T": 9,
        "N": 2,
        "D": 6,
        "H": 4,
        "K": 6,
        "seed": 22,
        "cell": "lstm",
        "tokens": True,
        "truncate": 2,
        "with_mask": True,
        "reduction": "mean",
        "scale": 2.5,
    },
    "gru_after_float_chunk3": {
        "T": 8,
        "N": 3,
        "D": 3,
        "H": 4,
        "K": 4,
        "seed": 23,
        "cell": "gru",
        "chunk": 3,
        "with_h0": True,
    },
    "gru_before_unbatched_tokens_window1": {
        "T": 6,
        "N": 1,
        "D": 5,
        "H": 3,
        "K": 5,
        "seed": 24,
        "cell": "gru",
        "reset": "before",
        "tokens": True,
        "batched": False,
        "truncate": 1,
        "with_h0": True,
    },
}

OPTION_NAMES = ("activation", "truncate", "chunk", "reduction")


def write(name: str, recipe: dict[str, Any]) -> None:
    case = make_case(**recipe)
    kwargs = case.kwargs()
    expected = torch_reference.bptt(case.params, case.x, case.y, **kwargs)
    manual = manual_bptt.bptt(case.params, case.x, case.y, **kwargs)
    assert_grads_close(manual.grads, expected.grads, FLOAT64, name)
    arrays: dict[str, Any] = {f"param_{k}": v for k, v in case.params.as_dict().items()}  # savez
    arrays.update({"x": case.x, "y": case.y})
    if case.h0 is not None:
        arrays["h0"] = case.h0
    if case.c0 is not None:
        arrays["c0"] = case.c0
    if case.mask is not None:
        arrays["mask"] = case.mask
    arrays.update({f"grad_{k}": v for k, v in expected.grads.items()})
    options = {k: kwargs[k] for k in OPTION_NAMES}
    cell = {"cell": case.params.CELL, "reset": getattr(case.params, "reset", None)}
    np.savez(
        HERE / f"{name}.npz",
        **arrays,
        loss=np.float64(expected.loss),
        options=np.array(json.dumps(options)),
        cell=np.array(json.dumps(cell)),
    )
    print(f"wrote {name}.npz: loss {expected.loss:.17g}, options {options}")


if __name__ == "__main__":
    import sys

    # python tests/data/make_fixtures.py [NAME ...]: only the named fixtures (default all)
    chosen = sys.argv[1:] or list(RECIPES)
    for fixture_name in chosen:
        write(fixture_name, RECIPES[fixture_name])
