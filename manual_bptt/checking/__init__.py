"""Checking gradients: the tolerance policy, reproducible problems, numerical
derivatives, and ``bptt verify`` for other people's BPTT.

- compare: the tolerance policy per dtype and the per-tensor comparison.
- cases, strategies: reproducible problems, and the Hypothesis strategies that draw them.
- gradcheck: central differences and the complex step, which lean on no autograd.
- verify, styles/, source, guard, explain: property-testing a user's BPTT against
  autograd (``bptt verify``): the interfaces it understands, finding the code in a
  module, file or notebook, running it safely, and the report.
- gallery, gallery_cs231n, gallery_min_char_rnn: classic slips in each style that
  verify must catch, beside correct implementations.
"""
