"""∂h_t/∂h_k by torch.autograd.functional.jacobian: the twin of manual_bptt/vanishing/jacobians.py.

The network's steps (1)–(2) are run in PyTorch from h_k onwards, and autograd
differentiates h_t with respect to h_k; nothing here uses the product formula
diag(φ'(a_t)) W … that the manual side builds. :func:`state_jacobians` does the same
for every cell, the LSTM's state being [h; s], with the cells' torch steps.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import ArrayLike

from manual_bptt.arraychecks import is_integer
from manual_bptt.inputs import prepare, prepare_inputs
from manual_bptt.params import CellParams, Params
from torch_reference.activations import ACTIVATIONS
from torch_reference.cells import TwinStep, twin_step
from torch_reference.network import make_cell_leaves, make_leaves, step


def hidden_jacobians(
    params: Params,
    x: ArrayLike,
    *,
    h0: ArrayLike | None = None,
    activation: str = "tanh",
    n: int = 0,
) -> np.ndarray:
    """J (T, T, H, H) with J[t, k] = ∂h_t/∂h_k for sequence n; zero for k > t.

    Same arguments, shapes and meaning as :func:`manual_bptt.hidden_jacobians`: x float
    (T, N, D) / (T, D) or token ids (T, N) / (T,), h0 (N, H) / (H,) or None. One
    autograd Jacobian per k, of (h_k, …, h_{T−1}) with respect to h_k.
    """
    xb, h0b, _, _ = prepare_inputs(params, x, h0=h0)
    T, N = xb.shape[0], xb.shape[1]
    if not is_integer(n) or not 0 <= n < N:
        raise ValueError(f"n must index a sequence in [0, N) = [0, {N}); got {n!r}")
    # prepare checks the activation and gives the batch make_leaves reads; the
    # Jacobians do not depend on the targets, so any valid ones do.
    batch = prepare(params, xb, np.zeros((T, N), np.intp), h0=h0b, activation=activation)
    leaves = make_leaves(params, batch)
    phi = ACTIVATIONS[batch.activation.name]
    with torch.no_grad():
        states = [leaves.h0]  # h_{−1}, h_0, …, h_{T−1}, all sequences
        for t in range(T):
            states.append(step(leaves, phi, states[-1], t))
    J = np.zeros((T, T, params.H, params.H), dtype=params.dtype)
    for k in range(T):
        h_k = states[k + 1]

        def later_states(h_kn: torch.Tensor, k: int = k, h_k: torch.Tensor = h_k) -> torch.Tensor:
            """(h_k, …, h_{T−1}) of sequence n, (T − k, H), from h_k of sequence n."""
            h = torch.cat([h_k[:n], h_kn[None], h_k[n + 1 :]])
            out = [h_kn]
            for s in range(k + 1, T):
                h = step(leaves, phi, h, s)
                out.append(h[n])
            return torch.stack(out)

        J[k:, k] = torch.autograd.functional.jacobian(later_states, h_k[n]).numpy()
    return J


def state_jacobians(
    params: CellParams,
    x: ArrayLike,
    *,
    h0: ArrayLike | None = None,
    c0: ArrayLike | None = None,
    activation: str = "tanh",
    n: int = 0,
) -> np.ndarray:
    """J (T, T, S, S) with J[t, k] = ∂state_t/∂state_k for sequence n; zero for k > t.

    Same arguments, shapes and meaning as manual_bptt's ``state_jacobians``: the state
    is h (S = H) for the vanilla cell and the GRU, [h; s] (S = 2H) for the LSTM. One
    autograd Jacobian per k, of (state_k, …, state_{T−1}) with respect to state_k.
    """
    xb, _, _, batched = prepare_inputs(params, x, h0=h0)
    T, N = xb.shape[0], xb.shape[1]
    if not is_integer(n) or not 0 <= n < N:
        raise ValueError(f"n must index a sequence in [0, N) = [0, {N}); got {n!r}")
    y = np.zeros((T, N) if batched else (T,), dtype=np.intp)
    batch = prepare(params, x, y, h0=h0, c0=c0, activation=activation)
    if isinstance(params, Params):
        leaves = make_leaves(params, batch)
        phi = ACTIVATIONS[batch.activation.name]

        def vanilla_step(state: tuple[torch.Tensor, ...], t: int) -> tuple[torch.Tensor, ...]:
            return (step(leaves, phi, state[0], t),)

        cell_step: TwinStep = vanilla_step

        state0: tuple[torch.Tensor, ...] = (leaves.h0,)
    else:
        cell_leaves = make_cell_leaves(params, batch)
        cell_step = twin_step(params, cell_leaves)
        state0 = cell_leaves.initial_state()
    with torch.no_grad():
        states = [tuple(p.detach() for p in state0)]  # the state entering each step, …
        for t in range(T):
            states.append(cell_step(states[-1], t))
    parts, H = len(state0), params.H
    J = np.zeros((T, T, parts * H, parts * H), dtype=params.dtype)
    for k in range(T):
        state_k = states[k + 1]

        def later_states(
            flat: torch.Tensor, k: int = k, state_k: tuple[torch.Tensor, ...] = state_k
        ) -> torch.Tensor:
            """(state_k, …, state_{T−1}) of sequence n, (T − k, S), from state_k of n."""
            state = tuple(
                torch.cat([p[:n], flat[j * H : (j + 1) * H][None], p[n + 1 :]])
                for j, p in enumerate(state_k)
            )
            out = [flat]
            for s in range(k + 1, T):
                state = cell_step(state, s)
                out.append(torch.cat([p[n] for p in state]))
            return torch.stack(out)

        flat_k = torch.cat([p[n] for p in state_k])
        J[k:, k] = torch.autograd.functional.jacobian(later_states, flat_k).numpy()
    return J
