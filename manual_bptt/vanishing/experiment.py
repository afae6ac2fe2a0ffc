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
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from manual_bptt.backward import bptt
from manual_bptt.network import forward
from manual_bptt.params import PARAM_NAMES, Params, init_params
from manual_bptt.progress import Progress
from manual_bptt.vanishing.clipping import clip_grad_norm


@dataclass(frozen=True)
class Setting:
    """One row of the experiment: the activation, its initialisation, the truncation."""

    label: str
    activation: str = "tanh"
    scheme: str = "uniform"
    truncate: int | None = None


@dataclass(frozen=True)
class Task:
    """Delayed recall: vocabulary ``symbols``, delay ``L``, sequences of ``T`` steps.

    Trained on ``steps`` fresh batches of ``batch`` sequences, hidden size ``hidden``,
    SGD with learning rate ``lr`` on the mean loss, global-norm clipping at
    ``max_norm``; ``seed`` fixes the initialisation and every batch.
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


def make_batch(task: Task, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x (T, N) tokens in [0, symbols), y (T, N) with y_t = x_{t−L} (0 for t < L), and
    mask (T, N), False for t < L where there is nothing to recall; N = task.batch."""
    x = rng.integers(0, task.symbols, size=(task.T, task.batch))
    y = np.zeros_like(x)
    y[task.L :] = x[: -task.L]
    mask = np.zeros(x.shape, dtype=bool)
    mask[task.L :] = True
    return x, y, mask


def accuracy(params: Params, task: Task, setting: Setting, rng: np.random.Generator) -> float:
    """Share of masked steps where argmax ŷ_t is the token shown L steps earlier."""
    x, y, mask = make_batch(replace(task, batch=512), rng)
    guess = forward(params, x, activation=setting.activation).y_hat.argmax(axis=-1)
    return float((guess == y)[mask].mean())


def train(task: Task, setting: Setting, progress: Progress | None = None) -> tuple[float, float]:
    """Train one setting; return (held-out accuracy, final training loss per step)."""
    rng = np.random.default_rng(task.seed)
    params = init_params(
        task.symbols, task.hidden, task.symbols, seed=task.seed, scheme=setting.scheme
    )
    loss = float("nan")
    for _ in range(task.steps):
        x, y, mask = make_batch(task, rng)
        result = bptt(
            params,
            x,
            y,
            mask=mask,
            activation=setting.activation,
            truncate=setting.truncate,
            reduction="mean",
        )
        grads, _ = clip_grad_norm({k: result.grads[k] for k in PARAM_NAMES}, task.max_norm)
        params = Params(**{k: getattr(params, k) - task.lr * grads[k] for k in PARAM_NAMES})
        loss = result.loss
        if progress is not None:
            progress.update()
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
