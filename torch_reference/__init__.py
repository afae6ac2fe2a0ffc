"""torch_reference: the same RNN in PyTorch, with gradients by autograd.

The twin that every result of manual_bptt is checked against. It shares the
signature and the result type of :func:`manual_bptt.bptt`; the computation is its own.
"""

from torch_reference.backward import bptt

# The function, not its module, is torch_reference.contributions (as manual_bptt's).
from torch_reference.decomposition import contributions
from torch_reference.network import Leaves

__all__ = ["Leaves", "bptt", "contributions"]
