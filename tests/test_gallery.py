"""`verify` catches every slip in the gallery, names the wrong gradient, and shrinks
the problem to a small one; it passes the correct tutorial-style implementation.

Bounds reached (seed 0): tutorial slips shrink to T ≤ 2, D ≤ 2, H ≤ 2; project slips
to T = 1, N ≤ 2, D, H ≤ 1, K = 2. The test allows T ≤ 3 and every size ≤ 2 (T ≤ 3),
so that a change in Hypothesis's shrinker cannot fail it while a real regression in
shrinking (a counterexample of T = 10, say) still does.
"""

from __future__ import annotations

import pytest

from manual_bptt.checking import gallery
from manual_bptt.checking.strategies import cases
from manual_bptt.checking.verify import check_one, verify

# Which gradients each slip corrupts (any one of them may be named first).
TUTORIAL_EXPECTED = {
    gallery.ForgetsTanhDerivative: {"U", "W"},
    gallery.CurrentStateInDW: {"W"},
    gallery.WindowOffByOne: {"U", "W"},
    gallery.DropsRecurrentTerm: {"U", "W"},
    gallery.OnlyLastLoss: {"U", "V", "W"},
    gallery.SoftmaxWithoutMinusOne: {"U", "V", "W"},
    gallery.WInsteadOfWTranspose: {"U", "W"},
}
PROJECT_EXPECTED = {
    gallery.bias_averaged_over_batch: {"c"},
    gallery.h0_gradient_without_W: {"h0"},
}


def assert_small(recipe: dict, keys: tuple[str, ...]) -> None:
    assert recipe["T"] <= 3, recipe
    for key in keys:
        assert recipe[key] <= 2, (key, recipe)


@pytest.mark.parametrize("cls", list(TUTORIAL_EXPECTED), ids=lambda c: c.__name__)
def test_verify_catches_tutorial_slip_names_gradient_and_shrinks(cls) -> None:
    report = verify(cls, style="tutorial", max_examples=200)
    assert report.failure is not None, f"{cls.__name__} passed verify"
    assert report.failure.gradient in TUTORIAL_EXPECTED[cls], report.failure.problem
    assert_small(report.failure.case.recipe, ("D", "H"))


@pytest.mark.parametrize("fn", list(PROJECT_EXPECTED), ids=lambda f: f.__name__)
def test_verify_catches_project_slip_names_gradient_and_shrinks(fn) -> None:
    report = verify(fn, style="project", max_examples=200)
    assert report.failure is not None, f"{fn.__name__} passed verify"
    assert report.failure.gradient in PROJECT_EXPECTED[fn], report.failure.problem
    assert_small(report.failure.case.recipe, ("N", "D", "H", "K"))


def test_verify_catches_the_aliasing_slip_as_a_changed_argument() -> None:
    report = verify(gallery.AliasesTheOutput, style="tutorial", max_examples=200)
    assert report.failure is not None
    assert "changed its own V" in report.failure.problem
    assert_small(report.failure.case.recipe, ("D", "H"))


def test_verify_passes_the_correct_tutorial_implementation() -> None:
    report = verify(gallery.TutorialRNN, style="tutorial", max_examples=150)
    assert report.passed, report.failure and report.failure.problem
    assert report.examples == 150


def test_verify_passes_manual_bptt_itself_in_project_style() -> None:
    import manual_bptt

    assert verify(manual_bptt.bptt, style="project", max_examples=100).passed


def test_the_gallery_has_at_least_eight_slips() -> None:
    assert len(gallery.TUTORIAL_SLIPS) + len(gallery.PROJECT_SLIPS) >= 8


def test_a_minimal_failure_reproduces_from_its_recipe() -> None:
    from manual_bptt.checking.cases import make_case

    report = verify(gallery.OnlyLastLoss, style="tutorial", max_examples=100)
    assert report.failure is not None
    again = check_one(gallery.OnlyLastLoss, "tutorial", make_case(**report.failure.case.recipe))
    assert again is not None
    assert again.problem == report.failure.problem


# The gated slips corrupt what lies upstream of the slipped line, never V or c (the
# output layer is the vanilla cell's): every gradient named must be in these sets.
RECURRENT = {"U", "W", "b", "h0", "x"}
GATED_EXPECTED = {
    gallery.lstm_drops_the_cell_state_carry: RECURRENT | {"c0"},
    gallery.lstm_forgets_tanh_derivative: RECURRENT | {"c0"},
    gallery.lstm_forget_gate_with_s_t: RECURRENT | {"c0"},
    gallery.lstm_gate_blocks_in_wrong_order: RECURRENT | {"c0"},
    gallery.gru_z_and_one_minus_z_swapped: RECURRENT | {"bh"},
    gallery.gru_reset_differentiated_before_the_product: RECURRENT | {"bh"},
}


@pytest.mark.parametrize(
    ("fn", "cell", "resets"), gallery.GATED_SLIPS, ids=lambda v: getattr(v, "__name__", "")
)
def test_verify_catches_gated_slip_names_gradients_and_shrinks(fn, cell, resets) -> None:
    strategy = cases(cell=cell, max_T=20, max_N=4, max_dim=8, resets=resets or ("after",))
    report = verify(fn, style="project", max_examples=200, strategy=strategy)
    assert report.failure is not None, f"{fn.__name__} passed verify"
    named = {a.name for a in report.failure.wrong}
    assert named, report.failure.problem
    assert named <= GATED_EXPECTED[fn], report.failure.problem
    assert_small(report.failure.case.recipe, ("N", "D", "H", "K"))


def test_the_gated_slips_are_slips_of_the_correct_cells() -> None:
    """The slips' harness (the project's forward, truncation and sums) is right: with the
    cells' own backward steps, the same strategies find nothing to report."""

    def harness_with_the_cells_own_step(params, x, y, **kwargs):
        return gallery._gated_with(None, params, x, y, kwargs)

    assert len(gallery.GATED_SLIPS) >= 6
    for cell in ("lstm", "gru"):
        strategy = cases(cell=cell, max_T=20, max_N=4, max_dim=8)
        report = verify(harness_with_the_cells_own_step, style="project", max_examples=30,
                        strategy=strategy)  # fmt: skip
        assert report.passed, report.failure and report.failure.problem
