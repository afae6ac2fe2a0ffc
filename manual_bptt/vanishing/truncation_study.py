"""The numbers behind ``bptt truncation``: how far each truncated or randomized gradient
is from the full-BPTT gradient (bias), how much it scatters (variance), what it costs,
and how well a network learns with it.

The task is the long-range experiment's delayed recall (experiment.py): the target at
step t is the token shown L steps earlier; by default the fixed budget of its cell
table (:func:`experiment.cell_table_task`): recall the first token at the last step,
T = L + 1. Every gradient g below is the concatenation of all the parameters'
gradients (U, W, V, b, c, and the GRU's bh) of the mean loss over one batch, and
g_full is full BPTT's at the same parameters on the same batch:

    bias      ‖E[g] − g_full‖ / ‖g_full‖, and cos(E[g], g_full);
    variance  E‖g − E[g]‖² / ‖g_full‖².

For the deterministic estimators (window, chunk, TBPTT) E[g] = g and the variance is 0.
The randomized ones draw one pattern of links ξ for the whole batch (as a framework
that cuts a batch's state at once), and their g = Σ_t w_t C_t, where C_t is the part of
the gradient that comes through step t and w_t = ξ_{t+1} ⋯ ξ_{T−1} the weight with which
the last step's loss reaches it. So E[g] and the variance are computed exactly, from
the T parts C_t and the exact moments E[w_t w_u] (:func:`exact_moments`; this needs
the last step alone scored, as the task does). They are also estimated as a user of
the estimator would, from M draws: the mean ḡ's distance to g_full with its standard
error √(variance/M), and Σ‖g_i − ḡ‖² / (M − 1). Where a rare draw carries a large
weight (a gradient surviving ℓ links is multiplied by π^−ℓ), M draws can miss it: the
sample variance then falls short of the exact one, and ḡ stays away from g_full.

Cost is counted in steps backpropagated per sequence, the mask aside (a masked loss is
weighted by 0, not skipped): the window's loss at step t reaches min(t, k) + 1 steps,
Σ_t (min(t, k) + 1) in all; chunks, full BPTT and the randomized ones make one pass
over the T steps; TBPTT(k1, k2) makes one pass per block j over its window
first_j … e_j, Σ_j (e_j − first_j + 1) (truncation.py's block rule).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from manual_bptt.backward import bptt
from manual_bptt.params import CellParams
from manual_bptt.progress import Progress
from manual_bptt.result import BPTTResult
from manual_bptt.truncation import RandomTruncation, tbptt_blocks
from manual_bptt.vanishing.experiment import (
    Setting,
    Task,
    accuracy,
    descend,  # the experiment's training loop, so that both train alike
    initial_params,
    make_batch,
)

Array = NDArray[np.float64]
Batch = tuple[NDArray[np.integer], NDArray[np.integer], NDArray[np.bool_]]

KINDS = ("full", "window", "chunk", "tbptt", "d2l", "artbp")
RANDOMIZED = ("d2l", "artbp")
# One measured or trained result as the tables and the JSON read it.
Row = dict[str, Any]


def d2l_keep(k: int) -> float:
    """d2l's π for a mean segment length k: a link is cut with probability 1 − π, so
    the segments between cuts are geometric with mean 1/(1 − π) = k: π = 1 − 1/k (k ≥ 2)."""
    if k < 2:
        raise ValueError(f"k must be ≥ 2 for d2l's π = 1 − 1/k to be > 0; got {k}")
    return 1.0 - 1.0 / k


def artbp_a(k: int) -> float:
    """ARTBP's a, chosen comparably to d2l's π = 1 − 1/k: a gradient survives k links
    uncut with the same probability under both. With c_t = 1/(a + d_t) a run survives
    ℓ links with probability a/(a + ℓ); d2l's with π^ℓ. So a/(a + k) = π^k, that is
    a = k π^k / (1 − π^k), about 0.55 k (π^k is near 1/e for every k ≥ 2). ARTBP's
    mean segment length is infinite (Σ_ℓ a/(a + ℓ) diverges), so it cannot be matched."""
    survive = d2l_keep(k) ** k
    return k * survive / (1.0 - survive)


@dataclass(frozen=True)
class Estimator:
    """One way to compute the gradient: ``kind`` in KINDS, its length ``k`` (None for
    full BPTT), ``k1`` for TBPTT(k1, k2 = k), ``param`` π (d2l) or a (artbp)."""

    kind: str
    k: int | None = None
    k1: int | None = None
    param: float | None = None

    @property
    def randomized(self) -> bool:
        return self.kind in RANDOMIZED

    @property
    def label(self) -> str:
        if self.kind == "full":
            return "full BPTT"
        if self.kind == "window":
            return f"window k={self.k}"
        if self.kind == "chunk":
            return f"chunk k={self.k}"
        if self.kind == "tbptt":
            return f"TBPTT({self.k1}, {self.k})"
        if self.kind == "d2l":
            return f"d2l π={self.param:.3g}"
        return f"artbp a={self.param:.3g}"

    def options(self, seed: int = 0) -> dict[str, Any]:
        """bptt's keyword options for this estimator; ``seed`` draws a randomized one's links."""
        if self.kind == "window":
            return {"truncate": self.k}
        if self.kind == "chunk":
            return {"chunk": self.k}
        if self.kind == "tbptt":
            return {"tbptt": (self.k1, self.k)}
        if self.randomized:
            assert self.param is not None
            return {"randomized": RandomTruncation(self.kind, self.param, seed)}
        return {}

    def cost(self, T: int) -> int:
        """Steps backpropagated per sequence of T steps (the module docstring's count)."""
        if self.kind == "window":
            assert self.k is not None
            return sum(min(t, self.k) + 1 for t in range(T))
        if self.kind == "tbptt":
            assert self.k1 is not None
            assert self.k is not None
            return sum(end - first + 1 for _, end, first in tbptt_blocks(T, self.k1, self.k))
        return T


def estimators(k: int) -> list[Estimator]:
    """The five estimators at length k ≥ 2: window k, chunk k, TBPTT(⌊k/2⌋, k) (losses
    every k/2 steps, each pass k steps back), d2l with mean segment length k, and
    artbp with the same chance as d2l to reach k steps back (:func:`artbp_a`)."""
    return [
        Estimator("window", k),
        Estimator("chunk", k),
        Estimator("tbptt", k, k1=max(1, k // 2)),
        Estimator("d2l", k, param=d2l_keep(k)),
        Estimator("artbp", k, param=artbp_a(k)),
    ]


def flat_grad(
    params: CellParams,
    x: NDArray[np.integer],
    y: NDArray[np.integer],
    mask: NDArray[np.bool_],
    **options: Any,
) -> Array:
    """g: every parameter's gradient (params.NAMES, in order) of the mean loss, as one
    vector of length Σ sizes."""
    grads = bptt(params, x, y, mask=mask, reduction="mean", **options).grads
    return np.concatenate(
        [np.asarray(grads[name], dtype=np.float64).ravel() for name in params.NAMES]
    )


def draw_seeds(seed: int, draws: int) -> list[int]:
    """The seeds of ``draws`` patterns of links, from ``seed``: the same for every
    estimator, cell and parameter state."""
    return [int(s) for s in np.random.default_rng([seed, 20]).integers(0, 2**62, size=draws)]


def weight_moments(random: RandomTruncation, T: int) -> Array:
    """(T, T) E[w_t w_u], where w_t = ξ_{t+1} ⋯ ξ_{T−1} is the weight with which the last
    step's loss reaches step t (w_{T−1} = 1), so that E[w_t] is column T − 1.

    Exact. For t ≤ u, ξ_j enters w_t w_u with the power 0 for j ≤ t, 1 for t < j ≤ u and
    2 after. The draw is a chain in d, the number of links since the last cut (1 before
    link 1); link j is cut with probability c(d), ξ_j = 0 and d restarts at 1, or kept,
    ξ_j = 1/(1 − c(d)) and d + 1. So, over the values of d:

        F_t(d)  = P(d after links 1 … t), carried forward link by link;
        B_j(d)  = E[ξ_j² ⋯ ξ_{T−1}² | d before link j] = B_{j+1}(d + 1) / (1 − c(d)),
                  B_T = 1 (a cut gives 0), carried backward;
        a power-1 link keeps the expectation and moves d to d + 1 (its cut gives 0,
        its kept branch (1 − c)·1/(1 − c) = 1), so
        E[w_t w_u] = Σ_d F_t(d) B_{u+1}(d + u − t).

    T² dot products of length T.
    """
    size = T + 2  # d = 0 … T+1; d = 0 is never reached
    cut = np.array([random.cut_probability(d) if d else 0.0 for d in range(size)])
    forward = np.zeros((T, size))
    forward[0, 1] = 1.0
    for t in range(1, T):  # link t, power 0: kept moves d on, cut restarts it at 1
        forward[t, 2:] = forward[t - 1, 1:-1] * (1 - cut[1:-1])
        forward[t, 1] = forward[t - 1] @ cut
    backward = np.zeros((T + 1, size))
    backward[T, :] = 1.0
    for j in range(T - 1, 0, -1):  # link j, power 2
        backward[j, 1:-1] = backward[j + 1, 2:] / (1 - cut[1:-1])
    moments = np.empty((T, T))
    for t in range(T):
        for u in range(t, T):
            shift = u - t
            moments[t, u] = moments[u, t] = forward[t, : size - shift] @ backward[u + 1, shift:]
    return moments


def step_contributions(params: CellParams, batch: Batch) -> Array:
    """(T, P) C_t: the part of the last step's loss's gradient (every parameter, as
    :func:`flat_grad`) that comes through step t, so that g_full = Σ_t C_t and a
    randomized estimator's gradient is Σ_t w_t C_t.

    From T gradients: with every link kept but the one into step t (ξ_t = 0), the loss
    reaches steps t … T−1 and the gradient is S_t = Σ_{u ≥ t} C_u; C_t = S_t − S_{t+1}.
    Only the last step may be scored (mask (T, N) zero elsewhere): for a loss at an
    earlier step the same cut weighs other steps.
    """
    x, y, mask = batch
    T = x.shape[0]
    if np.any(mask[:-1]):
        raise ValueError("exact moments need the last step alone scored: mask[:-1] must be 0")
    partial = []
    for t in range(T):
        links = np.ones(T)
        links[t] = 0.0 if t else 1.0  # ξ_0, into the initial state, is never cut
        partial.append(flat_grad(params, x, y, mask, randomized=links))
    sums = np.stack([*partial, np.zeros_like(partial[0])])
    return sums[:-1] - sums[1:]


def exact_moments(
    params: CellParams, batch: Batch, random: RandomTruncation, contributions: Array | None = None
) -> tuple[Array, float]:
    """E[g] (P,) and E‖g − E[g]‖² of a randomized estimator, exactly: Σ_t E[w_t] C_t
    and Σ_{t,u} Cov(w_t, w_u) ⟨C_t, C_u⟩ (:func:`weight_moments`,
    :func:`step_contributions`, which ``contributions`` may give already)."""
    parts = step_contributions(params, batch) if contributions is None else contributions
    moments = weight_moments(random, parts.shape[0])
    mean_weight = moments[:, -1]
    covariance = moments - np.outer(mean_weight, mean_weight)
    variance = float(np.sum(covariance * (parts @ parts.T)))
    return mean_weight @ parts, max(variance, 0.0)


def measure(
    params: CellParams,
    batch: Batch,
    estimator: Estimator,
    g_full: Array,
    seeds: Sequence[int],
    contributions: Array | None = None,
) -> Row:
    """Bias, cosine and variance of one estimator (module docstring), at ``params`` on
    ``batch`` = (x (T, N), y (T, N), mask (T, N)), against ``g_full``.

    Deterministic: g itself. Randomized: exactly (:func:`exact_moments`; the last step
    alone scored), and from one draw per seed in ``seeds`` (M ≥ 2): "sample_bias"
    ‖ḡ − g_full‖ / ‖g_full‖ of their mean ḡ, "sample_variance" Σ‖g_i − ḡ‖² / (M − 1)
    / ‖g_full‖², "standard_error" √(sample_variance / M), "exact_standard_error"
    √(variance / M), and "cosine_one_draw", the mean of cos(g_i, g_full).
    """
    x, y, mask = batch
    scale = float(np.linalg.norm(g_full))
    if scale == 0:
        raise ValueError("the full gradient is 0: bias relative to it is undefined")
    if estimator.randomized:
        if len(seeds) < 2:
            raise ValueError(f"a randomized estimator needs at least 2 draws; got {len(seeds)}")
        random = estimator.options()["randomized"]
        mean, spread = exact_moments(params, batch, random, contributions)
        variance = spread / scale**2
        samples = np.stack([flat_grad(params, x, y, mask, **estimator.options(s)) for s in seeds])
        sample_mean = samples.mean(axis=0)
        sample_variance = float(((samples - sample_mean) ** 2).sum() / (len(seeds) - 1)) / scale**2
        sample_bias = float(np.linalg.norm(sample_mean - g_full)) / scale
        one_draw = float(np.mean([_cosine(g, g_full) for g in samples]))
    else:
        mean = flat_grad(params, x, y, mask, **estimator.options())
        variance = sample_variance = 0.0
        sample_bias = float(np.linalg.norm(mean - g_full)) / scale
        one_draw = _cosine(mean, g_full)
    draws = len(seeds) if estimator.randomized else 1
    return {
        "estimator": estimator.label,
        "kind": estimator.kind,
        "k": estimator.k,
        "k1": estimator.k1,
        "param": estimator.param,
        "cost": estimator.cost(x.shape[0]),
        "bias": float(np.linalg.norm(mean - g_full)) / scale,
        "cosine": _cosine(mean, g_full),
        "variance": variance,
        "sample_bias": sample_bias,
        "sample_variance": sample_variance,
        "standard_error": float(np.sqrt(sample_variance / draws)),
        "exact_standard_error": float(np.sqrt(variance / draws)),
        "cosine_one_draw": one_draw,
        "draws": draws,
    }


def _cosine(a: Array, b: Array) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@dataclass(frozen=True)
class Study:
    """What ``bptt truncation`` measures: the task (its L, T, H, batch, optimizer,
    ``steps`` of training, and the seed of the measured networks and batch), the cells
    measured, the lengths k, the draws M per randomized estimator, the cells trained,
    the lengths trained with and the seeds of the training runs."""

    task: Task
    cells: tuple[str, ...] = ("rnn", "lstm")
    ks: tuple[int, ...] = (2, 5, 10, 20, 40)
    draws: int = 100
    train_cells: tuple[str, ...] = ("rnn",)
    train_ks: tuple[int, ...] = (10,)
    seeds: tuple[int, ...] = (0,)

    def units(self) -> int:
        """Work for the progress bar: one unit per training step or gradient computed."""
        per_k = 3 + 2 * self.draws
        measured = len(self.cells) * 2 * (1 + self.task.T + len(self.ks) * per_k)
        full_runs = sum(len(self.full_seeds(c)) for c in {*self.cells, *self.train_cells})
        runs = full_runs + len(self.train_cells) * len(self.seeds) * 5 * len(self.train_ks)
        return measured + runs * self.task.steps

    def full_seeds(self, cell: str) -> tuple[int, ...]:
        """The seeds ``cell`` is trained with full BPTT for: task.seed's network is the
        one measured (if the cell is), the seeds are the training table's (if trained)."""
        measured = (self.task.seed,) if cell in self.cells else ()
        trained = self.seeds if cell in self.train_cells else ()
        return tuple(dict.fromkeys((*measured, *trained)))


def train(
    task: Task, cell: str, estimator: Estimator, progress: Progress | None = None
) -> tuple[CellParams, Row]:
    """Train ``cell`` on ``task`` with ``estimator``'s gradient, as experiment.train
    does with a window (the same batches, Adam or SGD, clipping, held-out accuracy on
    512 fresh sequences); a randomized estimator draws fresh links every step. Returns
    the trained parameters and the row: cell, estimator, k, accuracy, loss, seconds."""
    start = time.perf_counter()
    links = np.random.default_rng([task.seed, 21])  # the links' seeds, one per step

    def gradient(params: CellParams, x: Any, y: Any, mask: Any) -> BPTTResult:
        options = estimator.options(int(links.integers(0, 2**62)))
        return bptt(params, x, y, mask=mask, reduction="mean", **options)

    # the batches come from task.seed's generator: the same for every estimator
    params, loss = descend(task, initial_params(task, Setting("", cell=cell)), gradient, progress)
    acc = accuracy(params, task, Setting(""), np.random.default_rng(task.seed + 1))
    row = {
        "cell": cell,
        "estimator": estimator.label,
        "kind": estimator.kind,
        "k": estimator.k,
        "accuracy": acc,
        "loss": loss,
        "seconds": time.perf_counter() - start,
        "steps": task.steps,
    }
    return params, row


def measurement_batch(task: Task) -> Batch:
    """The batch every gradient is measured on: task.batch sequences drawn from its own
    stream (seed [task.seed, 22]), none of the training batches."""
    return make_batch(task, np.random.default_rng([task.seed, 22]))


def measure_all(params: CellParams, study: Study, progress: Progress | None = None) -> list[Row]:
    """Every estimator at every k in study.ks, and full BPTT itself, at ``params``."""
    batch = measurement_batch(study.task)
    g_full = flat_grad(params, *batch)
    seeds = draw_seeds(study.task.seed, study.draws)
    parts = step_contributions(params, batch)
    if progress is not None:
        progress.update(len(parts))
    rows = [measure(params, batch, Estimator("full"), g_full, seeds)]
    for k in study.ks:
        for estimator in estimators(k):
            rows.append(measure(params, batch, estimator, g_full, seeds, parts))
            if progress is not None:
                progress.update(study.draws if estimator.randomized else 1)
    if progress is not None:
        progress.update(1)
    return rows


def run_study(study: Study, progress: Progress | None = None) -> tuple[list[Row], list[Row]]:
    """Measure every cell at initialisation and after task.steps of full BPTT (seed
    task.seed), then train study.train_cells with every estimator at study.train_ks,
    once per seed in study.seeds. Returns (the measured rows, each with "cell", "state"
    and "network_accuracy", the measured network's held-out accuracy; the training rows,
    each with "seed")."""
    measured: list[Row] = []
    trained: list[Row] = []
    for cell in dict.fromkeys((*study.cells, *study.train_cells)):
        for seed in study.full_seeds(cell):
            task = replace(study.task, seed=seed)
            if cell in study.cells and seed == study.task.seed:
                start = initial_params(task, Setting("", cell=cell))
            final, row = train(task, cell, Estimator("full"), progress)
            if cell in study.cells and seed == study.task.seed:
                held_out = accuracy(start, task, Setting(""), np.random.default_rng(seed + 1))
                for state, at, acc in (
                    ("initialisation", start, held_out),
                    ("trained", final, row["accuracy"]),
                ):
                    measured += [
                        {"cell": cell, "state": state, "network_accuracy": acc, **r}
                        for r in measure_all(at, study, progress)
                    ]
            if cell not in study.train_cells or seed not in study.seeds:
                continue
            trained.append({**row, "seed": seed})
            for k in study.train_ks:
                for estimator in estimators(k):
                    trained.append({**train(task, cell, estimator, progress)[1], "seed": seed})
    return measured, trained


def quick(task: Task) -> Task:
    """A task small enough for tests and CI: L = 5, T = 6, H = 8, batch 16, 40 steps."""
    return replace(task, L=5, T=6, hidden=8, batch=16, steps=40)
