"""What the benchmarks run: the sizes, the problems, the contenders and their FLOP counts.

Shared by run.py (the table), memory.py (peak memory) and profile_bptt.py (where the
time goes); run.py's --help describes the rows, the contenders and the FLOP count.
Letters: T steps, N sequences, D input size, H hidden size, K classes, G gate blocks
(1 for the vanilla cell, 4 for the LSTM, 3 for the GRU).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import manual_bptt
import torch_reference
from manual_bptt.params import CellParams
from manual_bptt.result import BPTTResult
from torch_reference.nn import NAMES as MODULE_NAMES
from torch_reference.nn import TorchNN


@dataclass(frozen=True)
class Size:
    """One problem's sizes, the kind of input, and the window k (None: full BPTT).

    With token ids, D is the vocabulary and x holds (T, N) ids in [0, D).
    """

    T: int
    N: int
    D: int
    H: int
    K: int
    tokens: bool = False
    truncate: int | None = None

    def label(self) -> str:
        """The size as the table shows it."""
        if self.tokens:
            return f"T={self.T} N={self.N} vocab={self.D} H={self.H} (token ids)"
        return f"T={self.T} N={self.N} D={self.D} H={self.H} K={self.K}"

    def flops(self, gates: int = 1) -> float:
        """Matrix-product FLOPs of one forward + backward with G = ``gates`` gate blocks
        (run.py's docstring, "FLOPs"): 6·T·N·(G·DH + G·H² + HK), without the DH terms
        for token ids, and with the δ recurrence's 2TN·G·H² replaced by
        2N·G·H²·(1 + Σ_ℓ (T−ℓ)) for window truncation."""
        T, N, D, H, K, G = self.T, self.N, self.D, self.H, self.K, gates
        input_terms = 0 if self.tokens else 6 * T * N * G * D * H
        full = input_terms + 6 * T * N * G * H * H + 6 * T * N * H * K
        if self.truncate is None:
            return float(full)
        lag_rows = sum(T - lag for lag in range(1, min(self.truncate, T - 1) + 1))
        return float(full - 2 * T * N * G * H * H + 2 * N * G * H * H * (1 + lag_rows))


FULL_SIZES = (
    Size(20, 1, 8, 16, 8),
    Size(100, 32, 64, 128, 64),
    Size(256, 32, 128, 256, 128),
    Size(64, 64, 512, 1024, 512),
)
# Window truncation: the middle full size's input and output widths, D = K = 64.
WINDOWS = (
    Size(256, 1, 64, 128, 64, truncate=16),
    Size(256, 32, 64, 128, 64, truncate=16),
)
# The WildML tutorial's size: a vocabulary of 8000 as input and output, bptt_truncate 4.
TUTORIAL = Size(30, 1, 8000, 100, 8000, tokens=True, truncate=4)


@dataclass(frozen=True)
class Problem:
    """One row's inputs: params (Params, LSTMParams or GRUParams: the cell), x (T, N, D)
    floats or (T, N) token ids, y (T, N), and the window k (None for full BPTT). The
    initial states are the default zeros (they still get their gradients)."""

    params: CellParams
    x: np.ndarray
    y: np.ndarray
    truncate: int | None = None

    @property
    def gates(self) -> int:
        """G, the gate blocks stacked in U and W: (G·H, D) and (G·H, H)."""
        return self.params.U.shape[0] // self.params.H


def make_problem(size: Size, dtype: str, cell: str = "rnn") -> Problem:
    """Seeded weights from init_params(cell=cell), biases (b, the GRU's bh, c) in
    (−0.1, 0.1), x ~ N(0, 1) (T, N, D) or token ids (T, N) in [0, D), targets (T, N) in
    [0, K); all in ``dtype``."""
    T, N, D, H, K = size.T, size.N, size.D, size.H, size.K
    rng = np.random.default_rng(0)
    p = manual_bptt.init_params(D, H, K, cell=cell, seed=0, dtype=dtype)
    biases = {
        name: rng.uniform(-0.1, 0.1, array.shape).astype(dtype)
        for name, array in p.as_dict().items()  # in the order of the cell's NAMES
        if name in ("b", "bh", "c")
    }
    params = p.with_arrays(**biases)
    if size.tokens:
        x = rng.integers(0, D, size=(T, N))
    else:
        x = rng.normal(size=(T, N, D)).astype(dtype)
    return Problem(params, x, rng.integers(0, K, size=(T, N)), size.truncate)


@dataclass(frozen=True)
class Contender:
    """One way of computing a problem's loss and gradients.

    Attributes:
        call: one forward + backward, no arguments: what is timed.
        result: the loss and gradients as a BPTTResult, for the check before timing.
    """

    call: Callable[[], object]
    result: Callable[[], BPTTResult]


# The contenders that take (params, x, y, truncate=k) and return a BPTTResult.
FACES: dict[str, Callable[..., BPTTResult]] = {
    "manual": manual_bptt.bptt,
    "naive": manual_bptt.naive_bptt,
    "twin": torch_reference.bptt,
}
CONTENDERS = ("manual", "torch.nn", "twin", "naive")


def contender_label(name: str, cell: str) -> str:
    """A contender as the tables name it: torch.nn as its module ("nn.RNN", "nn.LSTM",
    "nn.GRU"); the others by name, with the cell in brackets for a gated one."""
    if name == "torch.nn":
        return MODULE_NAMES[cell]
    return name if cell == "rnn" else f"{name} ({cell})"


def make_contender(name: str, p: Problem) -> Contender:
    """The named contender (run.py's docstring, "Contenders") on p, set up once.

    torch.nn is torch_reference.nn.TorchNN (nn.RNN, nn.LSTM or nn.GRU by the cell): its
    tensors are made here, and a call zeroes the gradients and runs forward and backward.
    """
    if name == "torch.nn":
        path = TorchNN(p.params, p.x, p.y, truncate=p.truncate)
        return Contender(path, path.result)
    call = functools.partial(FACES[name], p.params, p.x, p.y, truncate=p.truncate)
    return Contender(call, call)
