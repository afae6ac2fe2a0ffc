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
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from manual_bptt.backward import bptt
from manual_bptt.cells import init_params
from manual_bptt.network import forward
from manual_bptt.params import CellParams
from manual_bptt.progress import Progress
from manual_bptt.vanishing.clipping import clip_grad_norm


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


def train_params(
    task: Task, setting: Setting, progress: Progress | None = None
) -> tuple[CellParams, float]:
    """Train one setting; return (the trained parameters, final training loss per step)."""
    if task.optimizer not in ("sgd", "adam"):
        raise ValueError(f'optimizer must be "sgd" or "adam"; got {task.optimizer!r}')
    rng = np.random.default_rng(task.seed)
    params = initial_params(task, setting)
    adam = _Adam(task.lr) if task.optimizer == "adam" else None
    loss = float("nan")
    for _ in range(task.steps):
        x, y, mask = make_batch(task, rng)
        result = bptt(
            params,
            x,
            y,
            mask=mask,
            truncate=setting.truncate,
            reduction="mean",
            activation=setting.activation,  # the vanilla cell's φ; "tanh" for the others
        )
        grads, _ = clip_grad_norm({k: result.grads[k] for k in params.NAMES}, task.max_norm)
        steps = adam.steps(grads) if adam else {k: task.lr * g for k, g in grads.items()}
        params = params.with_arrays(**{k: getattr(params, k) - steps[k] for k in params.NAMES})
        loss = result.loss
        if progress is not None:
            progress.update()
    return params, loss


def train(task: Task, setting: Setting, progress: Progress | None = None) -> tuple[float, float]:
    """Train one setting; return (held-out accuracy, final training loss per step)."""
    params, loss = train_params(task, setting, progress)
    return accuracy(params, task, setting, np.random.default_rng(task.seed + 1)), loss


def run_experiment(
    task: Task | None = None,
    settings: list[Setting] | None = None,
    show_progress: bool | None = None,
) -> list[dict]:
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


def table(rows: list[dict], task: Task) -> str:
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


def run_cell_table(
    lags: tuple[int, ...],
    cells: tuple[str, ...],
    seeds: tuple[int, ...],
    *,
    forget_bias: float = 0.0,
    show_progress: bool | None = None,
    steps: int | None = None,
    full_only: bool = False,
) -> list[dict]:
    """Every (L, cell, full BPTT or window L/2, seed) at :func:`cell_table_task`'s
    budget (``steps`` overrides its number of steps, for a reduced run; ``full_only``
    leaves the windows out). With ``forget_bias`` the LSTM is run twice, with b_f = 0
    and b_f = forget_bias. One row each: L, cell, setting, full, truncate, seed,
    accuracy, loss, seconds (wall time of the run), steps."""
    import time

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
            settings = cell_settings(tasks[(L, seeds[0])], cell, bias)[:per_setting]
            for index, setting in enumerate(settings):
                for seed in seeds:
                    start = time.perf_counter()
                    acc, loss = train(tasks[(L, seed)], setting, bar)
                    rows.append(
                        {
                            "L": L,
                            "cell": cell,
                            "setting": setting.label,
                            "full": index == 0,
                            "truncate": setting.truncate,
                            "seed": seed,
                            "accuracy": acc,
                            "loss": loss,
                            "seconds": time.perf_counter() - start,
                            "steps": tasks[(L, seed)].steps,
                        }
                    )
    bar.close()
    return rows


def cell_table(rows: list[dict], symbols: int = 4) -> str:
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
    groups: dict[tuple[int, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["L"], r["setting"]), []).append(r)
    for (L, setting), group in groups.items():
        by_seed = {r["seed"]: r for r in group}
        accs = [f"{by_seed[s]['accuracy']:.1%}" if s in by_seed else "—" for s in seeds]
        mean = np.mean([r["accuracy"] for r in group])
        secs = np.mean([r["seconds"] for r in group])
        lines.append(f"| {L} | {setting} | " + " | ".join(accs) + f" | {mean:.1%} | {secs:.0f} |")
    return head + "\n".join(lines)
