"""Stored cases (tests/data/*.npz, written by tests/data/make_fixtures.py) still give
the stored loss and gradients, on every face: a numeric change is caught even if the
manual code and its twin drift together."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from manual_bptt import BPTTResult, GRUParams, LSTMParams, Params
from manual_bptt.compare import FLOAT64
from tests.data.make_fixtures import RECIPES
from tests.helpers import assert_results_agree, every_face

FIXTURES = sorted((Path(__file__).parent / "data").glob("*.npz"))


def test_every_recipe_has_its_fixture_and_no_fixture_is_stray() -> None:
    stored = {path.stem for path in FIXTURES}
    assert stored == set(RECIPES), (
        f"missing {sorted(set(RECIPES) - stored)}, stray {sorted(stored - set(RECIPES))}: "
        "run python tests/data/make_fixtures.py"
    )


def test_both_gated_cells_have_fixtures() -> None:
    cells = {recipe.get("cell", "rnn") for recipe in RECIPES.values()}
    assert cells == {"rnn", "lstm", "gru"}


@every_face
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
    grads = {k[len("grad_") :]: v for k, v in stored.items() if k.startswith("grad_")}
    expected = BPTTResult(loss=float(stored["loss"]), grads=grads)
    assert_results_agree(result, expected, FLOAT64, f"{path.name} on {face.__module__}")
