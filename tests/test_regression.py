"""Stored cases (tests/data/*.npz, written by tests/data/make_fixtures.py) still give
the stored loss and gradients, on every face: a numeric change is caught even if the
manual code and its twin drift together."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import manual_bptt
import torch_reference
from manual_bptt import GRUParams, LSTMParams, Params
from manual_bptt.checking.compare import FLOAT64, assert_grads_close

FIXTURES = sorted((Path(__file__).parent / "data").glob("*.npz"))
FACES = [manual_bptt.bptt, manual_bptt.naive_bptt, torch_reference.bptt]


def test_fixtures_are_present() -> None:
    assert len(FIXTURES) >= 9, "run python tests/data/make_fixtures.py"
    cells = {json.loads(str(np.load(path)["cell"]))["cell"] for path in FIXTURES
             if "cell" in np.load(path).files}  # fmt: skip
    assert cells >= {"lstm", "gru"}


@pytest.mark.parametrize("face", FACES, ids=lambda f: f.__module__)
@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_stored_case_gives_stored_loss_and_gradients(face, path: Path) -> None:
    with np.load(path) as data:
        stored = {k: data[k] for k in data.files}
    arrays = {k[len("param_") :]: v for k, v in stored.items() if k.startswith("param_")}
    cell = json.loads(str(stored["cell"])) if "cell" in stored else {"cell": "rnn"}
    params = {"rnn": Params, "lstm": LSTMParams, "gru": GRUParams}[cell["cell"]](
        **arrays, **({"reset": cell["reset"]} if cell["cell"] == "gru" else {})
    )
    options = json.loads(str(stored["options"]))
    if "c0" in stored:
        options["c0"] = stored["c0"]
    result = face(
        params, stored["x"], stored["y"], h0=stored.get("h0"), mask=stored.get("mask"), **options
    )
    expected = {k[len("grad_") :]: v for k, v in stored.items() if k.startswith("grad_")}
    assert result.loss == pytest.approx(float(stored["loss"]), rel=FLOAT64.rtol, abs=FLOAT64.atol)
    assert_grads_close(result.grads, expected, FLOAT64, f"{path.name} on {face.__module__}")
