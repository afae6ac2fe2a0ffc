"""A small progress bar on standard error, for long work in the command line.

Draws ``label [#####.....] 12/40 0:03 left`` in place when standard error is a
terminal, and nothing otherwise (CI logs, pipes), so it never clutters captured output;
unless asked (``every``) for plain lines there, for work long enough to need them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

Item = TypeVar("Item")


class Progress:
    """Count ``total`` units of work; ``update(n)`` after each, ``close()`` at the end.

    ``enabled=None`` means: only when ``stream`` is a terminal. There, with ``every``
    seconds given, it writes plain lines instead (``label: 1,200/40,000 (3%), 0:30
    elapsed, 16:10 left``): the first once ``every`` seconds have passed, so short work
    says nothing, then whenever another ``every`` seconds have passed or another 10% of
    the work is done, and a last one at ``close()`` if any was written.
    """

    def __init__(
        self,
        total: int,
        label: str = "",
        *,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        width: int = 30,
        every: float | None = None,
    ) -> None:
        self.total = max(int(total), 0)
        self.label = label
        self.stream = sys.stderr if stream is None else stream
        terminal = self.stream.isatty()
        self.enabled = terminal if enabled is None else enabled
        # plain lines: only where the bar is off for want of a terminal, and asked for
        self.every = every if enabled is None and not terminal and self.total else None
        self.width = width
        self.done = 0
        self.start = time.monotonic()
        self._last_draw = 0.0
        self._last_line: tuple[float, int] | None = None  # (time, done) of the last line

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and (now - self._last_draw > 0.1 or self.done >= self.total):
            self._last_draw = now
            self._draw(now)
        elif self.every is not None and self._line_due(now, self.every):
            self._line(now)

    def _line_due(self, now: float, every: float) -> bool:
        when, done = self._last_line or (self.start, 0)
        return now - when >= every or (
            self._last_line is not None and (self.done - done) * 10 >= self.total
        )

    def _line(self, now: float) -> None:
        self._last_line = (now, self.done)
        elapsed = now - self.start
        frac = min(self.done / self.total, 1.0)
        left = elapsed * (1 - frac) / frac if frac > 0 else 0.0
        self.stream.write(
            f"{self.label}: {self.done:,}/{self.total:,} ({frac:.0%}), {_clock(elapsed)} "
            f"elapsed, {_clock(left)} left\n"
        )
        self.stream.flush()

    def _draw(self, now: float) -> None:
        frac = min(self.done / self.total, 1.0) if self.total else 1.0
        filled = round(frac * self.width)
        elapsed = now - self.start
        left = elapsed * (1 - frac) / frac if frac > 0 else 0.0
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(
            f"\r{self.label} [{bar}] {self.done}/{self.total} "
            f"{int(elapsed) // 60}:{int(elapsed) % 60:02d} elapsed, "
            f"{int(left) // 60}:{int(left) % 60:02d} left "
        )
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
        elif self._last_line is not None and self._last_line[1] != self.done:
            self._line(time.monotonic())


def _clock(seconds: float) -> str:
    """m:ss, or h:mm:ss from an hour on."""
    s = int(seconds)
    if s < 3600:
        return f"{s // 60}:{s % 60:02d}"
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def progress(
    items: Iterable[Item], total: int, label: str = "", *, enabled: bool | None = None
) -> Iterator[Item]:
    """Yield ``items`` while drawing a bar of ``total`` steps."""
    bar = Progress(total, label, enabled=enabled)
    try:
        for item in items:
            yield item
            bar.update()
    finally:
        bar.close()
