"""The one error that means "not as asked": :class:`UsageError`.

Raised where a request cannot be carried out as given, before any work: a command-line
argument that parsed but cannot be used, or code that ``bptt verify`` cannot check in
the style asked (cannot be loaded, lacks a function, has another signature). The
command line prints it in one line and exits with 2.
"""

from __future__ import annotations


class UsageError(ValueError):
    """A request that cannot be carried out as asked: one line, exit 2, nothing done."""
