"""The old name of :mod:`manual_bptt.cases`, kept so that reproduction lines and
``--save-repro`` files written before the move still run (they import make_case from
here). New code imports manual_bptt.cases."""

from manual_bptt.cases import Case, in_layout, make_case

__all__ = ["Case", "in_layout", "make_case"]
