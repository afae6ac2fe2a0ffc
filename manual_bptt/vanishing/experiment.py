"""The long-range experiment: can truncated BPTT learn a dependency longer than its window?

Task ("delayed recall"): each step shows a random token from a vocabulary of
``symbols``; the target at step t is the token shown L steps earlier, x_{t−L} (the
steps before L are masked out). Every token in between is a distractor. Trained with
manual_bptt.bptt, plain SGD and global-norm clipping, one fresh batch per step, with a
fixed seed; accuracy is measured on a held-out batch (chance is 1/symbols).

The gradient of the loss at t must reach step t−L, where x_{t−L} enters through U, to
teach the network to store that token and keep it. Window truncation with k < L never
lets it: the network can still learn to read out whatever its state entering the
window happens to hold about x_{t−L}, and to carry that through the window, but
nothing teaches it to store the token. k ≥ L and full BPTT can learn to.

Every cell: the vanilla RNN, the LSTM and the GRU (``Setting.cell``), with plain SGD
or Adam (Kingma & Ba 2015; ``Task.optimizer``), and the LSTM optionally with its
forget-gate bias raised at initialisation (``Setting.forget_bias``; +1 as Gers,
Schmidhuber & Cummins 2000 and Jozefowicz, Zaremba & Sutskever 2015 advise).
:func:`cell_table_task` is the fixed budget per L of the three-cell table.

What a run gives depends on the machine: 3000 steps of training magnify the last-bit
differences between BLAS kernels (the order in which a matrix product sums), so one
seed's accuracy on another CPU can differ by tens of points. The table is therefore
read as counts over seeds (:func:`seed_summary`), and each conclusion drawn from it is a
:class:`Claim` that :func:`check` counts (``CLAIMS``: those of docs/experiment.md);
:func:`machine` records what the numbers came from.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from importlib import metadata
from typing import Any

import numpy as np

from manual_bptt.backward import bptt
from manual_bptt.cells import init_params
from manual_bptt.network import forward
from manual_bptt.params import CellParams
from manual_bptt.progress import Progress
from manual_bptt.result import BPTTResult
from manual_bptt.vanishing.clipping import clip_grad_norm

# One result as the tables, the JSON and the checks read it: its keys are the columns
# ("setting", "truncate", "accuracy", "loss", …), their values str, int or None, float.
Row = dict[str, Any]


@dataclass(frozen=True)
class Setting:
    """One row of the experiment: the cell, its activation (vanilla) and initialisation,
    the LSTM's forget-gate bias at initialisation, the truncation."""

    label: str
    activation: str = "tanh"
    scheme: str = "uniform"
    truncate: int | None = None
    cell: str = "rnn"
    forget_bias: float = 0.0


@dataclass(frozen=True)
class Task:
    """Delayed recall: vocabulary ``symbols``, delay ``L``, sequences of ``T`` steps.

    Trained on ``steps`` fresh batches of ``batch`` sequences, hidden size ``hidden``,
    ``optimizer`` "sgd" or "adam" (β = 0.9, 0.999, ε = 1e-8) with learning rate ``lr``
    on the mean loss, global-norm clipping at ``max_norm`` before the update; ``seed``
    fixes the initialisation and every batch. ``scored`` "every" scores every step
    t ≥ L (a delay line: the network must hold the last L tokens at once); "last"
    scores the last step only (with T = L + 1: recall the first token across L
    distractors, one token to hold, so that the lag and not the memory's size is tested).
    """

    symbols: int = 4
    L: int = 10
    T: int = 26
    batch: int = 32
    hidden: int = 48
    steps: int = 3000
    lr: float = 0.2
    max_norm: float = 1.0
    seed: int = 0
    optimizer: str = "sgd"
    scored: str = "every"


def default_settings(task: Task) -> list[Setting]:
    """Full BPTT, a window k = L/2 < L and a window k = L + 2 ≥ L, for tanh (the usual
    initialisation) and for relu with W = I (Le, Jaitly & Hinton 2015)."""
    short, long = task.L // 2, task.L + 2
    return [
        Setting("full BPTT, tanh"),
        Setting(f"window k={short} < L, tanh", truncate=short),
        Setting(f"window k={long} ≥ L, tanh", truncate=long),
        Setting("full BPTT, relu + identity init", "relu", "identity"),
        Setting(f"window k={short} < L, relu + identity init", "relu", "identity", short),
        Setting(f"window k={long} ≥ L, relu + identity init", "relu", "identity", long),
    ]


CELL_LABELS = {"rnn": "tanh RNN", "lstm": "LSTM", "gru": "GRU"}


def cell_settings(task: Task, cell: str, forget_bias: float = 0.0) -> list[Setting]:
    """Full BPTT and a window k = L/2 < L for one cell ("rnn": tanh)."""
    name = CELL_LABELS[cell] + (f", forget bias {forget_bias:+g}" if forget_bias else "")
    short = task.L // 2
    return [
        Setting(f"{name}, full BPTT", cell=cell, forget_bias=forget_bias),
        Setting(
            f"{name}, window k={short} < L", truncate=short, cell=cell, forget_bias=forget_bias
        ),
    ]


def cell_table_task(L: int, seed: int = 0, steps: int = 3000) -> Task:
    """The three-cell table's fixed budget for delay L: recall the first token at the
    last step (T = L + 1, scored="last"), H = 32, batch 64, Adam lr 0.01, clipping at 1,
    ``steps`` steps."""
    return Task(
        L=L,
        T=L + 1,
        hidden=32,
        batch=64,
        steps=steps,
        lr=0.01,
        max_norm=1.0,
        seed=seed,
        optimizer="adam",
        scored="last",
    )


def make_batch(task: Task, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x (T, N) tokens in [0, symbols), y (T, N) with y_t = x_{t−L} (0 for t < L), and
    mask (T, N), False for t < L where there is nothing to recall (and, with
    scored="last", everywhere but the last step); N = task.batch."""
    if task.scored not in ("every", "last"):
        raise ValueError(f'scored must be "every" or "last"; got {task.scored!r}')
    x = rng.integers(0, task.symbols, size=(task.T, task.batch))
    y = np.zeros_like(x)
    y[task.L :] = x[: -task.L]
    mask = np.zeros(x.shape, dtype=bool)
    mask[task.L :] = True
    if task.scored == "last":
        mask[:-1] = False
    return x, y, mask


def accuracy(params: CellParams, task: Task, setting: Setting, rng: np.random.Generator) -> float:
    """Share of masked steps where argmax ŷ_t is the token shown L steps earlier."""
    x, y, mask = make_batch(replace(task, batch=512), rng)
    guess = forward(params, x, activation=setting.activation).y_hat.argmax(axis=-1)
    return float((guess == y)[mask].mean())


def initial_params(task: Task, setting: Setting) -> CellParams:
    """init_params for the setting's cell, with the LSTM's forget-gate bias b_f (rows
    H … 2H−1 of b) set to ``setting.forget_bias``."""
    params = init_params(
        task.symbols,
        task.hidden,
        task.symbols,
        seed=task.seed,
        scheme=setting.scheme,
        cell=setting.cell,
    )
    if setting.forget_bias and setting.cell == "lstm":
        b = params.b.copy()
        b[task.hidden : 2 * task.hidden] += setting.forget_bias  # [i; f; g; q]: the f rows
        params = params.with_arrays(b=b)
    elif setting.forget_bias:
        raise ValueError(f"forget_bias is the LSTM's; got cell={setting.cell!r}")
    return params


class _Adam:
    """Adam's update, θ ← θ − lr m̂ / (√v̂ + ε), per parameter (Kingma & Ba 2015, Alg. 1)."""

    def __init__(self, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}
        self.t = 0

    def steps(self, grads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.t += 1
        out = {}
        for k, g in grads.items():
            self.m[k] = self.beta1 * self.m.get(k, 0.0) + (1 - self.beta1) * g
            self.v[k] = self.beta2 * self.v.get(k, 0.0) + (1 - self.beta2) * g * g
            m_hat = self.m[k] / (1 - self.beta1**self.t)
            v_hat = self.v[k] / (1 - self.beta2**self.t)
            out[k] = self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
        return out


def descend(
    task: Task,
    params: CellParams,
    gradient: Callable[[CellParams, Any, Any, Any], BPTTResult],
    progress: Progress | None = None,
) -> tuple[CellParams, float]:
    """``task.steps`` steps of the task's optimizer (Adam or SGD at task.lr) from
    ``params``, each on a fresh batch (x, y, mask) from task.seed's generator, with
    ``gradient(params, x, y, mask)``'s gradients clipped to global norm task.max_norm.
    Returns (the trained parameters, the last step's loss)."""
    if task.optimizer not in ("sgd", "adam"):
        raise ValueError(f'optimizer must be "sgd" or "adam"; got {task.optimizer!r}')
    rng = np.random.default_rng(task.seed)
    adam = _Adam(task.lr) if task.optimizer == "adam" else None
    loss = float("nan")
    for _ in range(task.steps):
        x, y, mask = make_batch(task, rng)
        result = gradient(params, x, y, mask)
        grads, _ = clip_grad_norm({k: result.grads[k] for k in params.NAMES}, task.max_norm)
        steps = adam.steps(grads) if adam else {k: task.lr * g for k, g in grads.items()}
        params = params.with_arrays(**{k: getattr(params, k) - steps[k] for k in params.NAMES})
        loss = result.loss
        if progress is not None:
            progress.update()
    return params, loss


def train_params(
    task: Task, setting: Setting, progress: Progress | None = None
) -> tuple[CellParams, float]:
    """Train one setting; return (the trained parameters, final training loss per step)."""

    def gradient(params: CellParams, x: Any, y: Any, mask: Any) -> BPTTResult:
        return bptt(
            params,
            x,
            y,
            mask=mask,
            truncate=setting.truncate,
            reduction="mean",
            activation=setting.activation,  # the vanilla cell's φ; "tanh" for the others
        )

    if task.optimizer not in ("sgd", "adam"):  # before the parameters are drawn
        raise ValueError(f'optimizer must be "sgd" or "adam"; got {task.optimizer!r}')
    return descend(task, initial_params(task, setting), gradient, progress)


def train(task: Task, setting: Setting, progress: Progress | None = None) -> tuple[float, float]:
    """Train one setting; return (held-out accuracy, final training loss per step)."""
    params, loss = train_params(task, setting, progress)
    return accuracy(params, task, setting, np.random.default_rng(task.seed + 1)), loss


def run_experiment(
    task: Task | None = None,
    settings: list[Setting] | None = None,
    show_progress: bool | None = None,
) -> list[Row]:
    """Train every setting; one row each: label, truncation, accuracy, final loss."""
    task = task or Task()
    settings = settings or default_settings(task)
    bar = Progress(task.steps * len(settings), "long-range experiment", enabled=show_progress)
    rows = []
    for setting in settings:
        acc, loss = train(task, setting, bar)
        rows.append(
            {"setting": setting.label, "truncate": setting.truncate, "accuracy": acc, "loss": loss}
        )
    bar.close()
    return rows


def table(rows: list[Row], task: Task) -> str:
    """The rows as a markdown table, with the task's numbers above it."""
    head = (
        f"Delayed recall: target x_(t−{task.L}), {task.symbols} symbols (chance "
        f"{1 / task.symbols:.0%}), T={task.T}, H={task.hidden}, batch {task.batch}, "
        f"{task.steps} SGD steps (lr {task.lr}, clip {task.max_norm}), seed {task.seed}.\n\n"
        "| setting | held-out accuracy | final loss |\n|---|---|---|\n"
    )
    return head + "\n".join(
        f"| {r['setting']} | {r['accuracy']:.1%} | {r['loss']:.3f} |" for r in rows
    )


def cell_variants(cells: tuple[str, ...], forget_bias: float) -> list[tuple[str, float]]:
    """(cell, forget bias) pairs: each cell with b_f = 0, and with ``forget_bias`` an
    LSTM with b_f = forget_bias right after the plain one."""
    variants = [(cell, 0.0) for cell in cells]
    if forget_bias and "lstm" in cells:
        variants.insert(cells.index("lstm") + 1, ("lstm", forget_bias))
    return variants


def run_setting(
    tasks: Sequence[Task], setting: Setting, progress: Progress | None = None
) -> list[Row]:
    """Train ``setting`` once per task (one task per seed; they must share L and steps).
    One row each: L, cell, setting, full, truncate, forget_bias, seed, accuracy, loss,
    seconds (wall time of the run), steps."""
    rows = []
    for task in tasks:
        start = time.perf_counter()
        acc, loss = train(task, setting, progress)
        rows.append(
            {
                "L": task.L,
                "cell": setting.cell,
                "setting": setting.label,
                "full": setting.truncate is None,
                "truncate": setting.truncate,
                "forget_bias": setting.forget_bias,
                "seed": task.seed,
                "accuracy": acc,
                "loss": loss,
                "seconds": time.perf_counter() - start,
                "steps": task.steps,
            }
        )
    return rows


def run_cell_table(
    lags: tuple[int, ...],
    cells: tuple[str, ...],
    seeds: tuple[int, ...],
    *,
    forget_bias: float = 0.0,
    show_progress: bool | None = None,
    steps: int | None = None,
    full_only: bool = False,
) -> list[Row]:
    """Every (L, cell, full BPTT or window L/2, seed) at :func:`cell_table_task`'s
    budget (``steps`` overrides its number of steps, for a reduced run; ``full_only``
    leaves the windows out). With ``forget_bias`` the LSTM is run twice, with b_f = 0
    and b_f = forget_bias. One row per run, as :func:`run_setting`'s."""
    tasks = {
        (L, seed): cell_table_task(L, seed) if steps is None else cell_table_task(L, seed, steps)
        for L in lags
        for seed in seeds
    }
    variants = cell_variants(cells, forget_bias)
    per_setting = 1 if full_only else 2
    total = sum(t.steps for t in tasks.values()) * per_setting * len(variants)
    bar = Progress(total, "long-range experiment", enabled=show_progress)
    rows = []
    for L in lags:
        for cell, bias in variants:
            for setting in cell_settings(tasks[(L, seeds[0])], cell, bias)[:per_setting]:
                rows += run_setting([tasks[(L, seed)] for seed in seeds], setting, bar)
    bar.close()
    return rows


def cell_table(rows: list[Row], symbols: int = 4) -> str:
    """The rows of :func:`run_cell_table` as a markdown table, one line per (L, cell,
    setting), every seed's held-out accuracy and their mean, with the budget above."""
    task = cell_table_task(rows[0]["L"])
    head = (
        f"Recall the first token at step L across L distractors, {symbols} symbols (chance "
        f"{1 / symbols:.0%}), T = L + 1, H = {task.hidden}, batch {task.batch}, "
        f"{task.optimizer} lr {task.lr}, global-norm clip {task.max_norm}, "
        f"{rows[0]['steps']} steps per run, one fresh batch per step; held-out "
        "accuracy on 512 sequences.\n\n"
    )
    seeds = sorted({r["seed"] for r in rows})
    lines = [
        "| L | setting | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | s per run |",
        "|---|---|" + "---|" * (len(seeds) + 2),
    ]
    groups: dict[tuple[int, str], list[Row]] = {}
    for r in rows:
        groups.setdefault((r["L"], r["setting"]), []).append(r)
    for (L, setting), group in groups.items():
        by_seed = {r["seed"]: r for r in group}
        accs = [f"{by_seed[s]['accuracy']:.1%}" if s in by_seed else "—" for s in seeds]
        mean = np.mean([r["accuracy"] for r in group])
        secs = np.mean([r["seconds"] for r in group])
        lines.append(f"| {L} | {setting} | " + " | ".join(accs) + f" | {mean:.1%} | {secs:.0f} |")
    return head + "\n".join(lines)


# How a run of the cell table is read. Held-out accuracy is a multiple of 1/512; chance
# is 1/symbols = 25%. Runs that learned the recall end at 99–100%; the others end near
# chance or in between (a tanh RNN's window at 50–75%), counted as neither.
LEARNED = 0.9  # at or above: the run learned the recall
NEAR_CHANCE = 0.10  # at most this far above chance: the run learned nothing
OUTCOMES = ("learned", "near chance", "between", "above chance")


def outcome_holds(outcome: str, accuracy: float, symbols: int = 4) -> bool:
    """Whether a run's held-out accuracy has ``outcome``: "learned" (≥ LEARNED), "near
    chance" (≤ 1/symbols + NEAR_CHANCE), "between" (neither) or "above chance" (more
    than NEAR_CHANCE above 1/symbols)."""
    near = accuracy <= 1 / symbols + NEAR_CHANCE
    if outcome == "learned":
        return accuracy >= LEARNED
    if outcome == "near chance":
        return near
    if outcome == "between":
        return not near and accuracy < LEARNED
    if outcome == "above chance":
        return not near
    raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}; got {outcome!r}")


def _groups(rows: Iterable[Row]) -> dict[tuple[int, str], list[Row]]:
    """The rows by (L, setting), ordered by L, full BPTT before the window, then cell
    (tanh RNN, LSTM by forget bias, GRU)."""
    order = {cell: i for i, cell in enumerate(CELL_LABELS)}
    groups: dict[tuple[int, str], list[Row]] = {}
    for r in sorted(
        rows,
        key=lambda r: (r["L"], not r["full"], order[r["cell"]], r.get("forget_bias", 0.0)),
    ):
        groups.setdefault((r["L"], r["setting"]), []).append(r)
    return groups


def seed_summary(rows: Iterable[Row], symbols: int = 4) -> str:
    """The rows of :func:`run_cell_table` as a markdown table, one line per (L,
    setting) over its seeds: runs, how many learned (accuracy ≥ LEARNED) and how many
    stayed near chance, the median and range of the accuracy, mean seconds per run."""
    chance = 1 / symbols
    lines = [
        (
            f"| L | setting | runs | learned (≥ {LEARNED:.0%}) | near chance "
            f"(≤ {chance + NEAR_CHANCE:.0%}) | median | range | s per run |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for (L, setting), group in _groups(rows).items():
        accs = [r["accuracy"] for r in group]
        learned = sum(outcome_holds("learned", a, symbols) for a in accs)
        near = sum(outcome_holds("near chance", a, symbols) for a in accs)
        secs = np.mean([r["seconds"] for r in group])
        lines.append(
            f"| {L} | {setting} | {len(accs)} | {learned} | {near} | {np.median(accs):.1%} "
            f"| {min(accs):.1%}–{max(accs):.1%} | {secs:.0f} |"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class Claim:
    """One conclusion drawn from the cell table, as a count over seeds.

    At delay ``L``, for the ``cell`` with forget-gate bias ``forget_bias`` (the LSTM's;
    0 otherwise), trained with full BPTT (``full``) or the window L/2: the runs with
    ``outcome`` (see :func:`outcome_holds`) number at least ``least`` or at most
    ``most`` of every ``of`` seeds. ``conclusion`` is the sentence of docs/experiment.md
    that the count supports.
    """

    conclusion: str
    L: int
    cell: str
    outcome: str
    least: int | None = None
    most: int | None = None
    full: bool = True
    forget_bias: float = 0.0
    of: int = 5

    def __post_init__(self) -> None:
        if (self.least is None) == (self.most is None):
            raise ValueError(
                f"a Claim needs exactly one of least and most; got least={self.least}, "
                f"most={self.most}"
            )
        for bound in (self.least, self.most):
            if bound is not None and not 0 <= bound <= self.of:
                raise ValueError(f"a Claim's bound must be from 0 to of = {self.of}; got {bound}")
        if self.outcome not in OUTCOMES:
            raise ValueError(
                f"a Claim's outcome must be one of {', '.join(OUTCOMES)}; got {self.outcome!r}"
            )

    @property
    def setting(self) -> str:
        """The row label the claim is about, as :func:`cell_settings` writes it."""
        settings = cell_settings(Task(L=self.L), self.cell, self.forget_bias)
        return settings[0 if self.full else 1].label

    @property
    def bound(self) -> str:
        """The count asked for, in words: "≥ 4 of 5" or "≤ 1 of 5"."""
        return (
            f"≥ {self.least} of {self.of}"
            if self.least is not None
            else f"≤ {self.most} of {self.of}"
        )


@dataclass(frozen=True)
class CheckResult:
    """A claim counted on the rows: ``count`` of ``runs`` runs had its outcome; ``held``
    True or False once the runs decide it, None while missing seeds could still tip it."""

    claim: Claim
    count: int
    runs: int
    held: bool | None

    def line(self) -> str:
        """One line: verdict, the setting, the count and the bound."""
        verdict = {True: "held", False: "FAILED", None: "open"}[self.held]
        c = self.claim
        missing = "" if self.held is not None else f"; {c.of - self.runs} more seeds needed"
        return (
            f"{verdict:6}  L = {c.L}, {c.setting}: {c.outcome} in {self.count} of "
            f"{self.runs} runs (claim: {c.bound}{missing})"
        )


def check(claim: Claim, rows: Iterable[Row], symbols: int = 4) -> CheckResult:
    """Count ``claim``'s outcome over its rows (one per seed) and decide it.

    With n runs, k of them with the outcome, and n ≥ of: "≥ m of every `of`" holds when
    k·of ≥ m·n, "≤ m of every `of`" when k·of ≤ m·n (with n = of, simply k ≥ m or
    k ≤ m). With n < of it is decided only if no result of the missing of − n seeds could
    change it; otherwise held is None.
    """
    accs = [r["accuracy"] for r in rows if r["L"] == claim.L and r["setting"] == claim.setting]
    k, n = sum(outcome_holds(claim.outcome, a, symbols) for a in accs), len(accs)
    runs = max(n, claim.of)  # the missing seeds, if any, count as runs to come
    fewest, most = k, k + runs - n  # runs with the outcome once they are in
    if claim.least is not None:
        sure, possible = (
            fewest * claim.of >= claim.least * runs,
            most * claim.of >= claim.least * runs,
        )
    else:
        assert claim.most is not None  # Claim refuses neither and both
        sure, possible = (
            most * claim.of <= claim.most * runs,
            fewest * claim.of <= claim.most * runs,
        )
    held = True if sure else None if possible else False
    return CheckResult(claim, k, n, held)


# The conclusions of docs/experiment.md, each as counts over five seeds. Those marked
# "revised" replace earlier ones that five seeds refuted (docs/experiment.md says which):
# they were drawn from the run they are first checked on, so a second machine's run is
# their first independent test.
CLAIMS: tuple[Claim, ...] = (
    Claim("Full BPTT: the tanh RNN learns L = 10 and 20", 10, "rnn", "learned", least=4),
    Claim("Full BPTT: the tanh RNN learns L = 10 and 20", 20, "rnn", "learned", least=4),
    Claim("Full BPTT: the tanh RNN rarely learns L = 40", 40, "rnn", "learned", most=2),
    Claim("Full BPTT: the GRU learns L = 10 and 20", 10, "gru", "learned", least=4),
    Claim("Full BPTT: the GRU learns L = 10 and 20", 20, "gru", "learned", least=4),
    Claim("Full BPTT: the GRU does not learn L = 40", 40, "gru", "near chance", least=4),
    Claim("Full BPTT: the LSTM with b_f = 0 fails L = 20", 20, "lstm", "near chance", least=4),
    Claim(  # revised
        "Full BPTT: b_f = +1 helps the LSTM at L = 20, but not reliably",
        20,
        "lstm",
        "learned",
        least=1,
        forget_bias=1.0,
    ),
    Claim(  # revised
        "Full BPTT: b_f = +1 helps the LSTM at L = 20, but not reliably",
        20,
        "lstm",
        "learned",
        most=3,
        forget_bias=1.0,
    ),
    Claim(
        "Full BPTT: the LSTM learns L = 40 with b_f = +3, not with b_f = 0 or +1",
        40,
        "lstm",
        "learned",
        least=3,
        forget_bias=3.0,
    ),
    *(
        Claim(
            "Full BPTT: the LSTM learns L = 40 with b_f = +3, not with b_f = 0 or +1",
            40,
            "lstm",
            "near chance",
            least=4,
            forget_bias=bias,
        )
        for bias in (0.0, 1.0)
    ),
    *(
        Claim(
            "With the tanh RNN and the GRU, a window k = L/2 rarely learns L = 20, which "
            "full BPTT learns",
            20,
            cell,
            "learned",
            most=1,
            full=False,
        )
        for cell in ("rnn", "gru")
    ),
    Claim(  # revised
        "With the tanh RNN, a window k = L/2 rarely learns L = 40",
        40,
        "rnn",
        "learned",
        most=1,
        full=False,
    ),
    Claim(  # revised
        "With b_f = +3, the LSTM learns L = 40 through a window k = L/2 too",
        40,
        "lstm",
        "learned",
        least=3,
        full=False,
        forget_bias=3.0,
    ),
    Claim(  # revised
        "At L = 10 the GRU's window ends more than 10 points above chance",
        10,
        "gru",
        "above chance",
        least=4,
        full=False,
    ),
)


def check_report(rows: Sequence[Row], claims: Sequence[Claim] = CLAIMS, symbols: int = 4) -> str:
    """Every claim with at least one row, grouped by conclusion, one line each
    (:meth:`CheckResult.line`), and how many claims had no row at all."""
    results = [check(c, rows, symbols) for c in claims]
    ran = [r for r in results if r.runs]
    lines: list[str] = []
    for conclusion in dict.fromkeys(r.claim.conclusion for r in ran):
        lines.append(conclusion + ":")
        lines += ["  " + r.line() for r in ran if r.claim.conclusion == conclusion]
    if len(ran) < len(results):
        lines.append(f"({len(results) - len(ran)} claims are about settings not run here.)")
    return "\n".join(lines)


def _cpu() -> str:
    """The CPU's model name, family and model number from /proc/cpuinfo (the name alone
    can be as vague as "AMD EPYC"), or what platform knows where there is none."""
    try:
        with open("/proc/cpuinfo") as f:
            first = f.read().split("\n\n")[0]  # the first processor's block
    except OSError:
        return platform.processor() or platform.machine()
    info = {
        k.strip(): v.strip() for k, _, v in (line.partition(":") for line in first.splitlines())
    }
    if "model name" not in info:
        return platform.processor() or platform.machine()
    return f"{info['model name']} (family {info.get('cpu family')}, model {info.get('model')})"


def machine() -> dict[str, object]:
    """What the numbers came from: CPU model (/proc/cpuinfo), logical cores, Python,
    numpy and torch versions (torch's from its metadata: this does not import it), and
    numpy's BLAS as threadpoolctl reports it (library, version, kernel, threads), if
    threadpoolctl is installed."""
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = "not installed"
    blas: object = "unknown: threadpoolctl is not installed"
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        pass
    else:
        blas = [
            {k: info.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for info in threadpool_info()
            if info.get("user_api") == "blas"
        ]
    return {
        "cpu": _cpu(),
        "logical cores": os.cpu_count(),
        "system": f"{platform.system()} {platform.machine()}",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch_version,
        "blas": blas,
    }


def machine_line(record: dict[str, object]) -> str:
    """:func:`machine`'s record as one line of text."""
    blas = record["blas"]
    if isinstance(blas, list):
        blas = (
            "; ".join(
                f"{b['internal_api']} {b['version']}, kernel {b['architecture']}, "
                f"{b['num_threads']} thread{'' if b['num_threads'] == 1 else 's'}"
                for b in blas
            )
            or "none found"
        )
    return (
        f"{record['cpu']}, {record['logical cores']} logical cores, {record['system']}; "
        f"Python {record['python']}, numpy {record['numpy']} (BLAS: {blas}), "
        f"torch {record['torch']} (not used by the experiment)"
    )
