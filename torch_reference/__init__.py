"""torch_reference: the same RNN in PyTorch, with gradients by autograd.

The twin that every result of manual_bptt is checked against. It shares the
signature and the result type of :func:`manual_bptt.bptt`; the computation is its own.
"""

import contextlib
from collections.abc import Iterator

import torch

from torch_reference.backward import bptt

# The function, not its module, is torch_reference.contributions (as manual_bptt's).
from torch_reference.decomposition import contributions
from torch_reference.network import Leaves

__all__ = ["Leaves", "bptt", "contributions", "one_thread"]


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread inside the block (and restore the count after).

    For many small problems in a row, as ``bptt verify`` runs: torch's thread pool
    costs more than it gives there, and on a busy machine it thrashes (measured on the
    project's 2-core machine under load: 200 problems in 26 s with 2 threads, 1.5 s
    with one).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
