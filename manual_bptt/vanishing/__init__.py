"""Vanishing and exploding gradients, measured.

- decomposition: ∂E_t/∂θ split by the step k where θ is used (``contributions``).
- jacobians: ∂h_t/∂h_k, its spectral norm and the product bound.
- clipping: gradient clipping by global norm and by value.
- study: the pictures' data and the report of ``bptt vanishing``.
- experiment: the long-range task, trained with and without truncation.
"""
