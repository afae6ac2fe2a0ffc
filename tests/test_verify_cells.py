"""`bptt verify --cell`: the project style draws the gated cells' problems and names their
gradients (the LSTM's c0, the GRU's bh), --reset chooses the GRU's variant, the
narrowing flags still hold, styles written for the vanilla cell refuse --cell at once,
and manual_bptt.testing takes the cell too."""

from __future__ import annotations

import json

import pytest

import manual_bptt
from manual_bptt.checking import gallery
from manual_bptt.checking.styles import UsageError, make_style
from manual_bptt.cli import main
from manual_bptt.testing import assert_bptt_correct, space_for

GATED_KEYS = {
    "lstm": {"U", "W", "b", "V", "c", "h0", "c0", "x"},
    "gru": {"U", "W", "b", "bh", "V", "c", "h0", "x"},
}


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_verify_cell_passes_the_project_and_names_every_gradient_of_the_cell(cell, capsys) -> None:
    code = main(["verify", "manual_bptt:bptt", "--cell", cell, "--examples", "30", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    assert set(report["gradients"]) == GATED_KEYS[cell]


def test_the_cells_problems_are_drawn_and_narrowed(tmp_path, capsys) -> None:
    # fails on anything but an unbatched, dense, full-BPTT GRU with the reset before
    path = tmp_path / "spy.py"
    path.write_text(
        "import manual_bptt\n"
        "from manual_bptt import GRUParams\n"
        "def f(params, x, y, *, h0, mask, activation, truncate, chunk, reduction):\n"
        "    assert isinstance(params, GRUParams) and params.reset == 'before'\n"
        "    assert x.ndim == 2 and truncate is None and chunk is None\n"
        "    assert activation == 'tanh'\n"
        "    return manual_bptt.bptt(params, x, y, h0=h0, mask=mask, reduction=reduction)\n"
    )
    flags = ["--cell", "gru", "--reset", "before", "--unbatched", "--dense", "--full"]
    assert main(["verify", f"{path}:f", "--examples", "30", *flags]) == 0, capsys.readouterr()
    # leave one flag out and only that check fails (both resets: before, the command had
    # no other flag, so that it failed on batched inputs whatever the reset); each fails
    # from a budget of 1, its problem among the real-size ones: 10 problems, not 30
    assert main(["verify", f"{path}:f", "--examples", "10", *flags[:-1]]) == 1  # truncation
    both_resets = [flag for flag in flags if flag not in ("--reset", "before")]
    assert main(["verify", f"{path}:f", "--examples", "10", *both_resets]) == 1


def test_without_cell_the_vanilla_cell_is_drawn() -> None:
    assert make_style("project").space_for().cells == ("rnn",)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--style", "tutorial", "--cell", "lstm"], "--style tutorial takes --cell rnn only"),
        (["--style", "cs231n", "--cell", "gru"], "--style cs231n takes --cell rnn only"),
        (["--style", "min-char-rnn", "--cell", "lstm"], "takes --cell rnn only"),
        (["--reset", "before"], "--reset chooses the GRU's variant"),
        (["--cell", "lstm", "--reset", "after"], "--reset chooses the GRU's variant"),
        (["--cell", "lstm", "--activation", "relu"], "--activation is for --cell rnn"),
    ],
)
def test_a_cell_the_style_cannot_take_is_a_one_line_usage_error(args, said, capsys) -> None:
    assert main(["verify", "manual_bptt:bptt", *args]) == 2
    err = capsys.readouterr().err
    assert said in err
    assert err.count("\n") == 1


def test_testing_api_takes_the_cell() -> None:
    assert_bptt_correct(manual_bptt.bptt, cell="gru", examples=20)
    with pytest.raises(AssertionError, match="WRONG"):
        # 10 problems (30 before): verify names all six wrong gradients from a budget of 1
        assert_bptt_correct(gallery.lstm_drops_the_cell_state_carry, cell="lstm", examples=10)
    assert space_for("project", cells="lstm").cells == ("lstm",)
    with pytest.raises(UsageError):
        space_for("tutorial", cells="lstm")
