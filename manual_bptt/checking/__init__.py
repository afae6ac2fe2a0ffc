"""Checking gradients: the tolerance policy, reproducible problems, numerical
derivatives, and ``bptt verify`` for other people's BPTT.

- compare: the tolerance policy per dtype and the per-tensor comparison.
- cases, strategies: reproducible problems, and the Hypothesis strategies that draw them.
- gradcheck: central differences and the complex step, which lean on no autograd.
- verify, gallery: property-testing a user's BPTT against autograd, and ten classic
  slips that it must catch.
"""
