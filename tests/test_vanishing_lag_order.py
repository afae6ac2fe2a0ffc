"""What ``bptt vanishing --cell`` prints and plots is ordered by the lag ℓ.

The per-cell study (manual_bptt/vanishing/cells.py, :func:`measure`) gives, for sequence
0 of the batch it measures, the state Jacobian's norm ‖∂state_{T−1}/∂state_{T−1−ℓ}‖₂
and the LSTM's carousel, the mean over units of Π_{j=T−ℓ}^{T−1} f_j. At lag 0 both are
exactly 1 (the identity, the empty product), and lag by lag they equal the same
quantities computed without the tools under test: the Jacobians by
torch.autograd.functional.jacobian (torch_reference's twin), the forget gates by
autograd through the twin's LSTM step, and their products taken directly, step by step.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray

import manual_bptt
from manual_bptt.compare import FLOAT64, Tolerance, assert_grads_close
from manual_bptt.inputs import prepare
from manual_bptt.lstm import LSTMParams
from manual_bptt.params import CellParams
from manual_bptt.vanishing import cells
from manual_bptt.vanishing.cells import CellStudy
from manual_bptt.vanishing.experiment import Task
from torch_reference import lstm as torch_lstm
from torch_reference.jacobians import state_jacobians as torch_state_jacobians
from torch_reference.network import make_cell_leaves

TASK = Task(symbols=4, L=1)  # measure reads the vocabulary and the delay; H is the params'
# The carousel by a sum of logs against the product of the same gates taken directly,
# over T ≤ 8 steps, both float64: over 500 random studies the worst gap was 3.3e-15 of
# the lag's own value; 1e-12 leaves two orders of margin and still fails a product with
# one gate wrong or missing. (The Jacobian norms' worst gap there: 5.4e-15, so FLOAT64.)
CAROUSEL = Tolerance(rtol=1e-12, atol=0.0)


@st.composite
def studied_params(draw: st.DrawFn, cell: str) -> CellParams:
    """A network of ``cell`` on TASK's vocabulary: H in [1, 4], weight scale in [0.1, 2],
    and for the LSTM a forget-gate bias b_f in [−3, 3] (gates mostly shut to mostly open)."""
    params = manual_bptt.init_params(
        TASK.symbols,
        draw(st.integers(1, 4), label="H"),
        TASK.symbols,
        seed=draw(st.integers(0, 2**32 - 1), label="seed"),
        scale=draw(st.floats(0.1, 2.0), label="scale"),
        cell=cell,
    )
    if isinstance(params, LSTMParams):
        H = params.H
        b = params.b.copy()
        b[H : 2 * H] += draw(st.floats(-3.0, 3.0), label="forget_bias")  # [i; f; g; q]
        params = params.with_arrays(b=b)
    return params


@contextmanager
def recorded_batches(seen: list[np.ndarray]) -> Iterator[None]:
    """Inside, every token batch x (T, N) that cells.make_batch draws is appended to
    ``seen``: the sequences measure studied, taken on their way in."""
    real = cells.make_batch

    def spy(task: Task, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        batch = real(task, rng)
        seen.append(batch[0])
        return batch

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cells, "make_batch", spy)
        yield


def measure_with_batch(params: CellParams, T: int, seed: int) -> tuple[CellStudy, np.ndarray]:
    """measure's study of ``params`` over T steps, and the token batch x (T, N) it studied."""
    seen: list[np.ndarray] = []
    with recorded_batches(seen):
        study = cells.measure(params, TASK, T, seed, "studied")
    (x,) = seen
    assert x.shape[0] == T
    return study, x


def forget_gates_by_autograd(params: LSTMParams, x: np.ndarray) -> NDArray[np.float64]:
    """f (T, N, H) for token ids x (T, N), zero h0 and c0, from the twin's step alone.

    With h_{t−1} held, (15) s_t = f_t ⊙ s_{t−1} + i_t ⊙ g_t, so autograd's
    ∂(Σ s_t)/∂s_{t−1} is f_t; no gate is read from the manual forward.
    """
    T, N = x.shape
    leaves = make_cell_leaves(params, prepare(params, x, np.zeros((T, N), np.intp)))
    h, s = (p.detach() for p in leaves.initial_state())
    gates = []
    for t in range(T):
        s_in = s.clone().requires_grad_(True)
        h_next, s_next = torch_lstm.step(leaves, (h, s_in), t)
        (f,) = torch.autograd.grad(s_next.sum(), s_in)
        gates.append(f.numpy())
        h, s = h_next.detach(), s_next.detach()
    return np.stack(gates)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@given(data=st.data())
def test_the_studys_jacobian_norms_start_at_one_and_follow_the_lag(
    cell: str, data: st.DataObject
) -> None:
    """jacobian[ℓ] = ‖∂state_{T−1}/∂state_{T−1−ℓ}‖₂ of sequence 0 by autograd; 1 at ℓ = 0."""
    params = data.draw(studied_params(cell), label="params")
    T = data.draw(st.integers(1, 8), label="T")
    study, x = measure_with_batch(params, T, data.draw(st.integers(0, 2**16), label="seed"))
    assert study.jacobian[0] == 1.0, f"lag 0 is ‖I‖₂ = 1; got {study.jacobian[0]!r}"
    J = torch_state_jacobians(params, x, n=0)  # (T, T, S, S)
    assert study.jacobian.shape == (T,)
    for lag in range(T):
        name = f"jacobian at lag {lag}"
        expected = np.linalg.norm(J[T - 1, T - 1 - lag], ord=2)
        assert_grads_close(
            {name: study.jacobian[lag : lag + 1]}, {name: np.array([expected])}, FLOAT64
        )


@given(data=st.data())
def test_the_studys_carousel_starts_at_one_and_is_the_forget_gate_product_by_lag(
    data: st.DataObject,
) -> None:
    """carousel[ℓ] = mean over units of Π_{j=T−ℓ}^{T−1} f_j, sequence 0; 1 at ℓ = 0."""
    params = data.draw(studied_params("lstm"), label="params")
    assert isinstance(params, LSTMParams)
    T = data.draw(st.integers(1, 8), label="T")
    study, x = measure_with_batch(params, T, data.draw(st.integers(0, 2**16), label="seed"))
    assert study.carousel is not None
    assert study.carousel[0] == 1.0, f"lag 0 is the empty product 1; got {study.carousel[0]!r}"
    f = forget_gates_by_autograd(params, x)[:, 0]  # (T, H), sequence 0
    assert study.carousel.shape == (T,)
    product = np.ones(params.H)
    for lag in range(T):
        name = f"carousel at lag {lag}"
        expected = product.mean()
        assert_grads_close(
            {name: study.carousel[lag : lag + 1]}, {name: np.array([expected])}, CAROUSEL
        )
        product = product * f[T - 1 - lag]  # one more step back: Π_{j=T−1−lag}^{T−1} f_j
