"""The three cells side by side: how far back each one's gradient reaches, and the gates
that explain it. The data of ``bptt vanishing --cell``; plots in cli/plots.py.

Every cell is measured on the delayed-recall network of experiment.py (4 symbols, H = 32,
the cell_table_task budget), on the same token sequences, at initialisation and after
training with full BPTT, so that the sizes, the inputs and the targets match and only
the cell differs. The decay is the median over losses t of ‖∂E_t/∂U via step t − ℓ‖
(decomposition.py), relative to lag 0: U is the one parameter every cell has, and its
use at step k is where the input x_k enters. The gates that decide the decay are the
LSTM's forget gate f (the carousel (15) multiplies the cell state's gradient by f at
every step) and the GRU's update gate z ((27): z_t ⊙ h_{t−1} is the direct path, so
the gradient keeps a share z per step along it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from manual_bptt.lstm import LSTMParams
from manual_bptt.params import CellParams
from manual_bptt.progress import Progress
from manual_bptt.vanishing.decomposition import contribution_norms
from manual_bptt.vanishing.experiment import (
    CELL_LABELS,
    Setting,
    Task,
    cell_table_task,
    cell_variants,
    initial_params,
    make_batch,
    train_params,
)
from manual_bptt.vanishing.jacobians import carousel, spectral_norms, state_jacobian_row
from manual_bptt.vanishing.study import decay_by_lag

REACH_LAGS = (10, 20, 40)  # the lags the report gives the gradient at
TRAIN_L = 20  # the delay the "after training" networks were trained on
N_MEASURED = 4  # sequences the contributions are summed over


@dataclass(frozen=True)
class CellStudy:
    """One cell, at initialisation or after training, measured against the lag ℓ.

    Attributes:
        label: the cell, its forget-gate bias and its state ("at initialisation", …).
        cell: "rnn", "lstm" or "gru".
        norms: (T, T) ‖∂E_t/∂U via step k‖, summed over N_MEASURED sequences.
        decay: (T,) median over t of norms[t, t − ℓ].
        jacobian: (T,) ‖∂state_{T−1}/∂state_{T−1−ℓ}‖₂ for sequence 0 (the LSTM's
            state [h; s]).
        carousel: (T,) the LSTM's Π_{j} f_j over the last ℓ steps, mean over units,
            sequence 0; None for the other cells.
        gate: "f" (LSTM), "z" (GRU) or None (vanilla).
        gate_mean: the gate's mean over steps, sequences and units (nan for vanilla).
        gate_open: the share of its entries above 0.9.
    """

    label: str
    cell: str
    norms: NDArray[np.float64]
    decay: NDArray[np.float64]
    jacobian: NDArray[np.float64]
    carousel: NDArray[np.float64] | None
    gate: str | None
    gate_mean: float
    gate_open: float

    def reach(self, lag: int) -> float:
        """decay[lag] / decay[0]: the share of the gradient that reaches ``lag`` steps
        back (nan where the sequence is too short)."""
        if lag >= len(self.decay) or self.decay[0] == 0:
            return float("nan")
        return float(self.decay[lag] / self.decay[0])


def _gate(params: CellParams, x: np.ndarray) -> tuple[str | None, NDArray[np.floating] | None]:
    from manual_bptt.network import forward

    result = forward(params, x)
    H = params.H
    if params.CELL == "lstm":
        assert result.gates is not None
        return "f", result.gates[..., H : 2 * H]
    if params.CELL == "gru":
        assert result.gates is not None
        return "z", result.gates[..., H : 2 * H]
    return None, None


def measure(params: CellParams, task: Task, T: int, seed: int, label: str) -> CellStudy:
    """A :class:`CellStudy` of ``params`` on N_MEASURED delayed-recall sequences of T steps."""
    x, y, _ = make_batch(replace(task, T=T, batch=N_MEASURED), np.random.default_rng(seed + 7))
    norms = contribution_norms(params, x, y, param="U")  # every loss, no mask
    jac = spectral_norms(state_jacobian_row(params, x))[::-1].copy()  # by lag ℓ = T − 1 − k
    gate, values = _gate(params, x)
    kept = None
    if isinstance(params, LSTMParams):
        C = carousel(params, x)  # (T, T, H)
        kept = C[T - 1].mean(axis=-1)[::-1].copy()
    return CellStudy(
        label=label,
        cell=params.CELL,
        norms=norms,
        decay=decay_by_lag(norms),
        jacobian=jac,
        carousel=kept,
        gate=gate,
        gate_mean=float(values.mean()) if values is not None else float("nan"),
        gate_open=float((values > 0.9).mean()) if values is not None else float("nan"),
    )


def cell_label(cell: str, forget_bias: float) -> str:
    bias = f", forget bias {forget_bias:+g}" if forget_bias else ""
    return CELL_LABELS[cell] + bias


def compare_cells(
    cells: tuple[str, ...],
    T: int,
    seed: int = 0,
    *,
    forget_bias: float = 0.0,
    trained: bool = True,
    train_steps: int | None = None,
    progress: Progress | None = None,
) -> list[CellStudy]:
    """Every cell at initialisation and (``trained``) after training with full BPTT on
    delayed recall with L = TRAIN_L at the cell_table_task budget (``train_steps``
    overrides its steps). With ``forget_bias`` the LSTM is shown twice: with b_f = 0
    and with b_f = forget_bias."""
    task = cell_table_task(TRAIN_L, seed)
    if train_steps is not None:
        task = replace(task, steps=train_steps)
    out = []
    for cell, bias in cell_variants(cells, forget_bias):
        setting = Setting(cell_label(cell, bias), cell=cell, forget_bias=bias)
        name = cell_label(cell, bias)
        out.append(measure(initial_params(task, setting), task, T, seed, f"{name}, initial"))
        if progress is not None:
            progress.update()
        if trained:
            params, _ = train_params(task, setting, progress)
            out.append(measure(params, task, T, seed, f"{name}, trained"))
    return out


def progress_units(cells: tuple[str, ...], forget_bias: float, trained: bool, steps: int) -> int:
    """How many Progress units :func:`compare_cells` counts (one per measurement and
    one per training step)."""
    variants = len(cells) + (1 if forget_bias and "lstm" in cells else 0)
    return variants * (1 + (steps if trained else 0))
