"""`verify` names every gradient each slip in the gallery breaks, and only those, each at
its own small counterexample, and passes the correct implementations.

The expectations below are the gallery's list, one for one: a slip added to the gallery
without its expected gradients fails test_every_slip_has_an_expectation.

Bounds reached (seed 0): tutorial slips shrink to T ≤ 3, D ≤ 2, H ≤ 2 (a wrong dW needs
T = 3 when the slip is in the recurrence: at T = 2 with a zero initial state, dW's only
term multiplies h₋₁ = 0); project slips to T = 1, N ≤ 2, D, H ≤ 1, K = 2. The test
allows T ≤ 3 and every other size ≤ 2, so that a change in Hypothesis's shrinker cannot
fail it while a real regression in shrinking (T = 10, say) still does.

Budgets. A slip is searched with a few problems, not verify's default 200. The smallest
budget with which verify's search (its own seed, random_seed=0, the same under every
Hypothesis profile) sees everything a slip breaks fail is 1 to 4 for the vanilla slips
and 3 to 8 for the gated ones (8: the GRU's z and 1 − z swapped, for its dx), measured
slip by slip with Hypothesis 6.170; every budget from there up to the one used sees it
too. SLIP_EXAMPLES = 20 and GATED_SLIP_EXAMPLES = 40 leave five times that, so a slip the
search stops finding soon fails here, as a regression in the search should. Shrinking
starts from the first failure, whatever the budget. What the smaller budget gives up,
fewer problems on which a slip's *correct* gradients must agree, is kept by the correct
implementations, each searched with CORRECT_EXAMPLES = 150 problems (the project's own
bptt, and the gated slips' harness with its cells' own steps, included).
"""

from __future__ import annotations

import pytest

from manual_bptt.cases import make_case
from manual_bptt.checking import (
    gallery,
    gallery_cs231n,
    gallery_cs231n_lstm,
    gallery_min_char_rnn,
)
from manual_bptt.checking.strategies import cases
from manual_bptt.checking.verify import evaluate, verify
from tests.helpers import SLIP_EXAMPLES, verified_slip

# Problems drawn per slip (SLIP_EXAMPLES = 20, in tests/helpers.py, beside the run it
# shares with test_styles.py) and per correct implementation (the docstring says why).
GATED_SLIP_EXAMPLES = 40
CORRECT_EXAMPLES = 150

LSTM_LAYER = {"x", "h0", "U", "W", "b"}
LSTM_STEP = {f"step:{k}" for k in ("x", "h0", "c0", "U", "W", "b")}
# Exactly the gradients each slip corrupts (all of them must be named, no other), and
# the other failures it causes.
EXPECTED = {
    gallery.ForgetsTanhDerivative: ({"U", "W"}, set()),
    gallery.CurrentStateInDW: ({"W"}, set()),
    gallery.WindowOffByOne: ({"U", "W"}, set()),
    gallery.DropsRecurrentTerm: ({"U", "W"}, set()),
    gallery.OnlyLastLoss: ({"U", "V", "W"}, set()),
    gallery.SoftmaxWithoutMinusOne: ({"U", "V", "W"}, set()),
    gallery.WInsteadOfWTranspose: ({"U", "W"}, set()),
    gallery.AliasesTheOutput: (set(), {"changed its own V"}),
    gallery.bias_averaged_over_batch: ({"c"}, set()),
    gallery.h0_gradient_without_W: ({"h0"}, set()),
    # cs231n: "step:" marks rnn_step_backward's gradients, the others are rnn_backward's
    gallery_cs231n.TransposedWhInBackward: ({"x", "h0", "U", "W", "b", "step:h0"}, set()),
    gallery_cs231n.Dh0FromWrongStep: ({"h0"}, set()),
    gallery_cs231n.UpstreamOnlyAtLastStep: ({"x", "h0", "U", "W", "b"}, set()),
    gallery_cs231n.DbNotSummedOverBatch: ({"b", "step:b"}, set()),
    gallery_cs231n.ChangesUpstreamInPlace: (set(), {"changed dh"}),
    # cs231n-lstm: "step:" marks lstm_step_backward's (c0 is its dprev_c)
    gallery_cs231n_lstm.CellStateCarryDropped: (LSTM_LAYER, set()),
    gallery_cs231n_lstm.ForgetsTanhDerivativeOfC: (LSTM_LAYER | LSTM_STEP, set()),
    gallery_cs231n_lstm.GatesInTorchOrder: (LSTM_LAYER | LSTM_STEP - {"step:c0"}, set()),
    gallery_cs231n_lstm.DnextCNotAdded: (LSTM_LAYER | LSTM_STEP, set()),
    gallery_cs231n_lstm.ForgetGateWithNextC: (LSTM_LAYER | LSTM_STEP - {"step:c0"}, set()),
    gallery_min_char_rnn.tanh_derivative_at_wrong_step: ({"U", "W", "b"}, set()),
    gallery_min_char_rnn.dhnext_not_carried: ({"U", "W", "b"}, set()),
    gallery_min_char_rnn.bias_gradient_before_tanh: ({"b"}, set()),
    gallery_min_char_rnn.loss_not_summed: (set(), {"wrong loss"}),
}
SLIPS = {
    "tutorial": gallery.TUTORIAL_SLIPS,
    "project": gallery.PROJECT_SLIPS,
    "cs231n": gallery_cs231n.CS231N_SLIPS,
    "cs231n-lstm": gallery_cs231n_lstm.CS231N_LSTM_SLIPS,
    "min-char-rnn": gallery_min_char_rnn.MIN_CHAR_RNN_SLIPS,
}
CORRECT = {
    "tutorial": gallery.TutorialRNN,
    "cs231n": gallery_cs231n.RNNLayers,
    "cs231n-lstm": gallery_cs231n_lstm.LSTMLayers,
    "min-char-rnn": gallery_min_char_rnn.lossFun,
}


def style_of(slip) -> str:
    return next(style for style, slips in SLIPS.items() if slip in slips)


def test_every_slip_has_an_expectation() -> None:
    listed = [slip for slips in SLIPS.values() for slip in slips]
    assert len(listed) == len(set(listed)) == len(EXPECTED)
    assert set(listed) == set(EXPECTED)


@pytest.mark.parametrize("slip", list(EXPECTED), ids=lambda s: s.__name__)
def test_verify_names_exactly_the_gradients_a_slip_breaks_each_shrunk(slip) -> None:
    wrong, other = EXPECTED[slip]
    # a slip that only changes an argument in place is a warning, a failure when strict
    strict = any(key.startswith("changed ") for key in other)
    report = verified_slip(slip, style_of(slip), strict_inputs=strict)
    assert not report.passed, f"{slip.__name__} passed verify"
    named = {v.gradient.key for v in report.verdicts if not v.ok}
    assert named == wrong
    assert {f.key for f in report.other} == other
    for v in report.verdicts:
        if v.ok:
            # agreed on every example that has it (token inputs have no dx)
            assert v.compared == report.problems_run or (v.gradient.key == "x" and v.compared > 0)
            continue
        assert v.finding is not None
        assert v.finding.worst is not None
        assert not v.finding.worst.passed
        recipe = v.finding.case.recipe
        assert recipe["T"] <= 3, recipe
        for size in ("N", "D", "H", "K"):
            assert recipe[size] <= 2, (size, recipe)
        # its own counterexample reproduces from its recipe: that gradient really is
        # wrong there, by the same worst entry
        again = evaluate(slip, style_of(slip), make_case(**recipe), strict_inputs=strict)
        assert v.gradient.key in again.failing
        assert again.agreements[v.gradient.key].describe() == v.finding.worst.describe()


@pytest.mark.parametrize("style", list(CORRECT))
def test_verify_passes_the_correct_implementation_of_each_style(style) -> None:
    report = verify(CORRECT[style], style=style, max_examples=CORRECT_EXAMPLES)
    assert report.passed, report.findings
    assert report.examples == CORRECT_EXAMPLES
    assert all(v.compared == report.problems_run == 152 for v in report.verdicts)


def test_verify_passes_manual_bptt_itself_in_project_style() -> None:
    import manual_bptt

    assert verify(manual_bptt.bptt, style="project", max_examples=CORRECT_EXAMPLES).passed


# The gated slips (project style over the cell's own cases): exactly the gradients each
# corrupts, all upstream of the slipped line, never V or c (the output layer is the
# vanilla cell's). Each slip sits in the step's backward pass, upstream of every
# recurrent gradient, so it corrupts all of them.
LSTM_RECURRENT = {"U", "W", "b", "h0", "c0", "x"}
GRU_RECURRENT = {"U", "W", "b", "bh", "h0", "x"}
GATED_EXPECTED = {
    gallery.lstm_drops_the_cell_state_carry: LSTM_RECURRENT,
    gallery.lstm_forgets_tanh_derivative: LSTM_RECURRENT,
    gallery.lstm_forget_gate_with_s_t: LSTM_RECURRENT,
    gallery.lstm_gate_blocks_in_wrong_order: LSTM_RECURRENT,
    gallery.gru_z_and_one_minus_z_swapped: GRU_RECURRENT,
    gallery.gru_reset_differentiated_before_the_product: GRU_RECURRENT,
}


def test_every_gated_slip_has_an_expectation() -> None:
    assert [fn for fn, _, _ in gallery.GATED_SLIPS] == list(GATED_EXPECTED)


@pytest.mark.parametrize(
    ("fn", "cell", "resets"), gallery.GATED_SLIPS, ids=lambda v: getattr(v, "__name__", "")
)
def test_verify_names_exactly_the_gradients_a_gated_slip_breaks(fn, cell, resets) -> None:
    strategy = cases(cell=cell, max_T=20, max_N=4, max_dim=8, resets=resets or ("after",))
    report = verify(fn, style="project", max_examples=GATED_SLIP_EXAMPLES, strategy=strategy)
    assert not report.passed, f"{fn.__name__} passed verify"
    named = {v.gradient.key for v in report.verdicts if not v.ok}
    assert named == GATED_EXPECTED[fn]
    assert not report.other
    for v in report.verdicts:
        if not v.ok:
            assert v.finding is not None
            recipe = v.finding.case.recipe
            assert recipe["T"] <= 3, recipe
            for size in ("N", "D", "H", "K"):
                assert recipe[size] <= 2, (size, recipe)


def test_the_gated_slips_are_slips_of_the_correct_cells() -> None:
    """The slips' harness (the project's forward, truncation and sums) is right: with the
    cells' own backward steps, the same strategies find nothing to report."""

    def harness_with_the_cells_own_step(params, x, y, **kwargs):
        return gallery._gated_with(None, params, x, y, kwargs)

    for cell in ("lstm", "gru"):
        strategy = cases(cell=cell, max_T=20, max_N=4, max_dim=8)
        report = verify(
            harness_with_the_cells_own_step,
            style="project",
            max_examples=CORRECT_EXAMPLES,
            strategy=strategy,
        )
        assert report.passed, report.findings


@pytest.mark.parametrize(
    ("slip", "sentence"),
    [
        (gallery.AliasesTheOutput, "bptt changed its own V in place"),
        (gallery_cs231n.ChangesUpstreamInPlace, "rnn_backward changed dh in place"),
    ],
    ids=lambda s: getattr(s, "__name__", "")[:20],
)
def test_a_slip_that_only_changes_an_argument_passes_with_a_warning(slip, sentence) -> None:
    report = verify(slip, style=style_of(slip), max_examples=SLIP_EXAMPLES)
    assert report.passed
    assert [c.sentence for c in report.changes] == [sentence]
