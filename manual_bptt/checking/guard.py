"""Running code under test without letting it fool or stall the checker.

Every call of the user's code goes through :func:`call`, which

- turns any exception it raises, ``SystemExit`` included, into :class:`CodeFailed`
  (a finding, never a success; ``KeyboardInterrupt`` still stops everything);
- stops a call that runs longer than a time limit, also as :class:`CodeFailed`;
- captures what the code prints (sys.stdout and sys.stderr), so that it cannot garble
  the report; :data:`captured` keeps the last few kilobytes for whoever wants them.

The time limit is a POSIX interval timer (``signal.setitimer``) whose handler raises
:class:`TimedOut` inside the running code. It was chosen over a worker process because
the code under test then runs in this process, on the arrays as given (no pickling, and
the module globals that min-char-rnn style sets are the ones the code reads), and costs
nothing per call. Its limits, stated: it works on the main thread of a POSIX system only
(elsewhere calls run without a limit); a call stuck inside one C function that never
returns to the interpreter, or code that catches BaseException and carries on, cannot be
stopped this way. TimedOut derives from BaseException so that the usual
``except Exception:`` in the code under test does not swallow it.
"""

from __future__ import annotations

import contextlib
import io
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

DEFAULT_TIMEOUT = 10.0  # seconds per call; a correct call on the drawn sizes takes < 0.1 s
LONGEST_TIMER = 1e6  # seconds: setitimer overflows far above this; longer limits are this


class CodeFailed(Exception):
    """The code under test failed: ``key`` groups the same failure across problems
    (e.g. "rnn_backward raised IndexError"), ``message`` says it in a sentence."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


class TimedOut(BaseException):
    """Raised inside the code under test when its time is up."""


class _Captured(io.StringIO):
    """What the code under test printed, keeping only the last ``limit`` characters."""

    limit = 4000
    total = 0  # characters written in all

    def write(self, text: str) -> int:
        n = super().write(text)
        self.total += n
        if self.tell() > 2 * self.limit:
            tail = self.getvalue()[-self.limit :]
            self.seek(0)
            self.truncate()
            super().write(tail)
        return n


captured = _Captured()


def time_limit_works() -> bool:
    """Whether :func:`call` can enforce a time limit here (POSIX, main thread)."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    if not seconds or not time_limit_works():
        yield
        return

    def alarm(signum: int, frame: Any) -> None:
        raise TimedOut

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, min(seconds, LONGEST_TIMER))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def call(
    what: str, fn: Callable[..., Any], *args: Any, timeout: float | None, **kwargs: Any
) -> Any:
    """``fn(*args, **kwargs)`` with its output captured and at most ``timeout`` seconds.

    ``what`` names the call in a finding, e.g. "rnn_backward" or "lossFun".
    Raises CodeFailed for an exception (SystemExit included) or a time-out.
    """
    try:
        with (
            contextlib.redirect_stdout(captured),
            contextlib.redirect_stderr(captured),
            _time_limit(timeout),
        ):
            return fn(*args, **kwargs)
    except TimedOut:
        raise CodeFailed(
            f"{what} timed out", f"{what} did not return within {timeout:g} s (--timeout)"
        ) from None
    except SystemExit as err:
        raise CodeFailed(
            f"{what} called sys.exit",
            f"{what} called sys.exit({err.code!r}): code under test must return, not exit",
        ) from None
    except Exception as err:  # noqa: BLE001 (the code under test may fail in any way: report it)
        name = type(err).__name__
        raise CodeFailed(f"{what} raised {name}", f"{what} raised {name}: {err}") from None
