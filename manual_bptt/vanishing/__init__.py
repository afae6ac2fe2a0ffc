"""Vanishing and exploding gradients, measured.

- decomposition: ∂E_t/∂θ split by the step k where θ is used (``contributions``),
  for every cell.
- jacobians: ∂h_t/∂h_k, its spectral norm and the product bound; every cell's
  ∂state_t/∂state_k and the LSTM's carousel Π f.
- clipping: gradient clipping by global norm and by value.
- study: the pictures' data and the report of ``bptt vanishing``.
- experiment: the long-range task, trained with and without truncation, every cell.
- cells: the three cells side by side for ``bptt vanishing --cell``.
"""
