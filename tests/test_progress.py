"""The progress report of long work: a bar in a terminal, plain lines in a log."""

from __future__ import annotations

import io

import pytest

from manual_bptt import progress as progress_module
from manual_bptt.progress import Progress


class Clock:
    """time.monotonic as the test sets it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(progress_module.time, "monotonic", fake)
    return fake


def test_a_log_gets_plain_lines_every_so_often_and_at_each_tenth(clock: Clock) -> None:
    """Not a terminal (a pipe, a CI log): nothing for the first ``every`` seconds, then a
    line, then one whenever ``every`` seconds more have passed or 10% more is done, and a
    last one at close."""
    log = io.StringIO()
    bar = Progress(1000, "work", stream=log, every=10.0)
    for _ in range(5):
        clock.now += 1.0
        bar.update()
    assert log.getvalue() == ""  # short work says nothing
    clock.now += 5.0
    bar.update()  # 10 s in: 6 done
    clock.now += 1.0
    bar.update(99)  # 105: under 10% more
    bar.update()  # 106 = 6 + 100: a tenth more
    clock.now += 10.0
    bar.update()  # 10 s since the last line
    bar.update(880)  # 987: a tenth more
    bar.update(13)  # 1000: neither
    bar.close()  # says how it ended
    assert log.getvalue().splitlines() == [
        "work: 6/1,000 (1%), 0:10 elapsed, 27:36 left",
        "work: 106/1,000 (11%), 0:11 elapsed, 1:32 left",
        "work: 107/1,000 (11%), 0:21 elapsed, 2:55 left",
        "work: 987/1,000 (99%), 0:21 elapsed, 0:00 left",
        "work: 1,000/1,000 (100%), 0:21 elapsed, 0:00 left",
    ]


def test_hours_are_written_as_hours(clock: Clock) -> None:
    log = io.StringIO()
    bar = Progress(100, "long", stream=log, every=60.0)
    clock.now += 3723.0
    bar.update()
    assert log.getvalue() == "long: 1/100 (1%), 1:02:03 elapsed, 102:22:57 left\n"


def test_without_every_a_log_gets_nothing_at_all(clock: Clock) -> None:
    log = io.StringIO()
    bar = Progress(10, "quiet", stream=log)
    clock.now += 100.0
    bar.update(10)
    bar.close()
    assert log.getvalue() == ""


def test_a_bar_switched_off_by_hand_writes_no_lines_either(clock: Clock) -> None:
    log = io.StringIO()
    bar = Progress(10, "off", stream=log, enabled=False, every=1.0)
    clock.now += 100.0
    bar.update(10)
    bar.close()
    assert log.getvalue() == ""
