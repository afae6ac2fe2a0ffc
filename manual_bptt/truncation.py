"""Which losses reach which steps: the δ recurrence (7) for full, chunked, window and
TBPTT(k1, k2) truncation, and the two randomized truncations that are unbiased.

Every function here takes
    g     (T, N, H): ∂L/∂h_t through the output layer alone, Vᵀ ∂L/∂o_t,
    dphi  (T, N, H): φ'(a_t),
    W     (H, H),
and returns Δ (T, N, H), the total gradient that reaches the pre-activation a_t from
all the losses whose backward pass is allowed to reach step t:

    Δ_t = Σ_{losses E_s that reach step t} ∂E_s/∂a_t.

The parameter gradients are then the same sums for every kind of truncation (see
backward.py): only Δ changes. With E_s the masked loss at step s (scaled by s for
reduction="mean"), write δ^{(s)}_t = ∂E_s/∂a_t for one loss:

    δ^{(s)}_s = Vᵀ ∂E_s/∂o_s ⊙ φ'(a_s),   δ^{(s)}_t = Wᵀ δ^{(s)}_{t+1} ⊙ φ'(a_t).

In row-vector form (one row per sequence) Wᵀ δ is ``δ @ W``.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import product

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]


def deltas_chunked(
    g: Array, dphi: Array, W: Array, chunk: int | None, *, out: Array | None = None
) -> Array:
    """Δ for full BPTT (chunk=None) or for chunks [0, k), [k, 2k), … (chunk=k).

    (7) δ_t = (Vᵀ ∂L/∂o_t + Wᵀ δ_{t+1}) ⊙ φ'(a_t), with δ_T = 0, and with the carried
    term Wᵀ δ_{t+1} cut (taken as 0) when step t+1 starts a chunk: a loss then reaches
    back to the start of its own chunk only. One pass backward in time: the losses at
    steps ≥ t are summed before they are multiplied by W, which is why full BPTT costs
    one product per step rather than one per (loss, step) pair.

    ``out`` may be g itself (each g_t is read once, before δ_t is written over it):
    backward.py does so to save one (T, N, H) array.
    """
    T = g.shape[0]
    k = T if chunk is None else chunk
    delta = np.empty_like(g) if out is None else out
    carry = np.zeros_like(g[0])  # Wᵀ δ_{t+1}, one buffer reused every step
    for t in range(T - 1, -1, -1):
        if (t + 1) % k == 0:  # step t+1 starts a new chunk (or t is the last step)
            carry.fill(0)
        np.add(g[t], carry, out=delta[t])
        delta[t] *= dphi[t]
        if t % k != 0:  # at a chunk's first step the carry would be cut: skip it
            np.matmul(delta[t], W, out=carry)
    return delta


def deltas_window(
    g: Array, dphi: Array, W: Array, truncate: int, *, out: Array | None = None
) -> Array:
    """Δ for window truncation: the loss at step s reaches steps s, s−1, …, max(0, s−k).

    Δ_t = Σ_{s = t}^{min(t + k, T − 1)} δ^{(s)}_t, computed lag by lag. For lag
    ℓ = s − t, let Λ^ℓ_t = δ^{(t+ℓ)}_t (the gradient of the loss ℓ steps later):

        Λ^0_t = g_t ⊙ φ'(a_t),   Λ^ℓ_t = (Wᵀ Λ^{ℓ−1}_{t+1}) ⊙ φ'(a_t),   Δ = Σ_ℓ Λ^ℓ.

    Each lag is one matrix product over all steps and sequences at once, so the Python
    loop runs min(k, T − 1) times rather than once per (loss, step) pair; the naive
    double loop in naive.py computes the same thing and the tests check they agree.
    The lags take turns in two buffers, so no array is allocated per lag.

    ``out`` may be g itself (Δ starts as Λ^0 = g ⊙ φ', written over g).
    """
    T, N, H = g.shape
    total = np.multiply(g, dphi, out=out)  # Δ, so far Λ^0
    lag_delta = total  # Λ^{ℓ−1}: read below before total changes
    lags = min(truncate, T - 1)
    buffers = [np.empty((T - 1, N, H), dtype=g.dtype) for _ in range(min(lags, 2))]
    for lag in range(1, lags + 1):
        # Λ^ℓ_t for t = 0 … T−1−ℓ comes from Λ^{ℓ−1}_{t+1}, t+1 = 1 … T−ℓ: one product
        # over all (T−ℓ)·N rows.
        rows = (T - lag) * N
        nxt = buffers[(lag - 1) % 2][: T - lag]
        np.matmul(lag_delta[1:].reshape(rows, H), W, out=nxt.reshape(rows, H))
        nxt *= dphi[: T - lag]
        total[: T - lag] += nxt
        lag_delta = nxt
    return total


def deltas(
    g: Array,
    dphi: Array,
    W: Array,
    truncate: int | None,
    chunk: int | None,
    *,
    overwrite_g: bool = False,
) -> Array:
    """Δ (T, N, H) for whichever truncation is asked for (at most one of the two).

    With ``overwrite_g`` Δ is written over g (saving memory).
    """
    out = g if overwrite_g else None
    if truncate is not None:
        return deltas_window(g, dphi, W, truncate, out=out)
    return deltas_chunked(g, dphi, W, chunk, out=out)


# Any cell: truncation written once over a cell's backward step.
#
# A cell's state may have several parts (h, and s for the LSTM). Its backward step
#     step(lo, hi, ε) → (δ, δ̃, ε')
# takes, for steps lo … hi−1 at once, the gradient ε reaching each part of the state
# leaving each step (a tuple of (hi−lo, N, H) arrays), and returns the gradients of
# that step's input-side and hidden-side pre-activations, δ and δ̃ (hi−lo, N, G·H), and
# the gradient ε' reaching each part of the state entering the step. The functions
# below return (Δ, Δ̃, ε_{−1}): δ and δ̃ summed over the losses allowed to reach each
# step, and the gradient reaching the initial state (h0, c0) from the losses allowed
# to reach it.

CellStep = Callable[[int, int, tuple[Array, ...]], tuple[Array, Array, tuple[Array, ...]]]


def cell_deltas_chunked(
    step: CellStep,
    g: Array,
    parts: int,
    chunk: int | None,
    links: NDArray[np.float64] | None = None,
) -> tuple[Array, Array, tuple[Array, ...]]:
    """Full BPTT (chunk=None) or chunks of k for any cell: one pass backward in time.

    g (T, N, H) is Vᵀ ∂L/∂o_t, the loss's gradient reaching h_t; ``parts`` is how many
    parts the state has. As (7) for the vanilla cell: ε_t = (g_t, 0, …) + the carry
    from step t+1, the carry cut where step t+1 starts a chunk.

    ``links`` (T,), for randomized truncation (:class:`RandomTruncation`): the carry from
    step t+1 is multiplied by ξ_{t+1} = links[t+1] (0 cuts it), so the loss at step s
    reaches step t with the weight ξ_{t+1} ⋯ ξ_s.
    """
    T = g.shape[0]
    k = T if chunk is None else chunk
    zero = tuple(np.zeros_like(g[:1]) for _ in range(parts))  # δ_T = 0: nothing after T−1
    carry = zero
    total = total_h = np.empty(0, dtype=g.dtype)  # (T, N, G·H), made at the first step
    for t in range(T - 1, -1, -1):
        if (t + 1) % k == 0:  # step t+1 starts a new chunk: its carry is cut
            carry = zero
        elif links is not None:
            # ξ_{t+1} ε; ξ as a Python float, so that a float32 carry stays float32
            xi = float(links[t + 1])
            carry = tuple(part * xi for part in carry)
        incoming = (g[t : t + 1] + carry[0], *carry[1:])
        delta, delta_h, carry = step(t, t + 1, incoming)
        if t == T - 1:
            total = np.empty((T, *delta.shape[1:]), dtype=delta.dtype)
            # the LSTM's two sides are one array: keep it once
            total_h = total if delta_h is delta else np.empty_like(total)
        total[t] = delta[0]
        if total_h is not total:
            total_h[t] = delta_h[0]
    return total, total_h, tuple(part[0] for part in carry)


def cell_deltas_window(
    step: CellStep, g: Array, parts: int, truncate: int
) -> tuple[Array, Array, tuple[Array, ...]]:
    """Window truncation for any cell, lag by lag as deltas_window does for the vanilla one.

    For lag ℓ let E^ℓ_t be the gradient reaching the state leaving step t from the
    loss at step t+ℓ. E^0_t = (g_t, 0, …); one backward step turns E^ℓ_t into that
    loss's δ, δ̃ at step t and its gradient reaching the state entering step t, which is
    E^{ℓ+1}_{t−1}. So each lag is one backward step over all steps and sequences at
    once, and the loop runs min(k, T−1) + 1 times. The initial state receives, at each
    lag ℓ ≤ k, what the loss at step ℓ sends into it.
    """
    T = g.shape[0]
    incoming = (g, *(np.zeros_like(g) for _ in range(parts - 1)))
    delta, delta_h, carry = step(0, T, incoming)  # lag 0
    total = delta.copy()
    total_h = total if delta_h is delta else delta_h.copy()
    initial = [part[0].copy() for part in carry]
    for lag in range(1, min(truncate, T - 1) + 1):
        # the state leaving step t, t = 0 … T−1−ℓ, is the state entering step t+1
        delta, delta_h, carry = step(0, T - lag, tuple(part[1:] for part in carry))
        total[: T - lag] += delta
        if total_h is not total:
            total_h[: T - lag] += delta_h
        for init, part in zip(initial, carry, strict=True):
            init += part[0]
    return total, total_h, tuple(initial)


def cell_deltas(
    step: CellStep,
    g: Array,
    parts: int,
    truncate: int | None,
    chunk: int | None,
    *,
    tbptt: tuple[int, int] | None = None,
    links: NDArray[np.float64] | None = None,
    step_on: StepOn | None = None,
) -> tuple[Array, Array, tuple[Array, ...]]:
    """(Δ, Δ̃, ε_{−1}) for whichever truncation is asked for (at most one of them).

    TBPTT needs ``step_on``, the same backward step over any slice of steps."""
    if truncate is not None:
        return cell_deltas_window(step, g, parts, truncate)
    if tbptt is not None:
        if step_on is None:
            raise TypeError("TBPTT(k1, k2) needs step_on, the backward step over a slice")
        return cell_deltas_tbptt(step_on, g, parts, *tbptt)
    return cell_deltas_chunked(step, g, parts, chunk, links)


# TBPTT(k1, k2) (Williams & Peng 1990; Sutskever 2013, §2.8): every k1 steps,
# backpropagate k2 steps.
#
# Block j holds the losses of steps s_j = j·k1 … e_j = min(s_j + k1, T) − 1 (the last
# block is shorter when k1 does not divide T). Its backward pass starts at e_j and runs
# k2 steps back, to e_j − k2 + 1, but never further back than k2 − k1 steps before the
# block's first step (which matters only for a last block cut short by the end of the
# sequence: it reaches no further back than a full block in its place would), and not
# before step 0:
#
#     first_j = max(0, e_j − k2 + 1, min(s_j, s_j + k1 − k2)).
#
# The loss at step t of block j reaches steps first_j … t, and h0 (and c0) when
# first_j = 0. When k2 < k1, the block's first k1 − k2 losses lie before first_j: they
# reach no step at all, and count only in ∂L/∂V and ∂L/∂c. Special cases: chunk=k is
# TBPTT(k, k) and truncate=k is TBPTT(1, k+1), for every T; TBPTT(k1, k2) is full BPTT
# exactly when first_j = 0 for every block: k2 ≥ T when k1 ≥ T (one block), and
# k2 ≥ k1·⌈T/k1⌉ when k1 < T.


def tbptt_blocks(T: int, k1: int, k2: int) -> list[tuple[int, int, int]]:
    """The blocks of TBPTT(k1, k2) over T steps, as (s_j, e_j, first_j) in order."""
    blocks = []
    for start in range(0, T, k1):
        end = min(start + k1, T) - 1
        blocks.append((start, end, max(0, end - k2 + 1, min(start, start + k1 - k2))))
    return blocks


def tbptt_first_step(t: int, T: int, k1: int, k2: int) -> int:
    """first_j for the block j = ⌊t/k1⌋ that holds the loss at step t: the earliest step
    that loss reaches (greater than t when it reaches none)."""
    return tbptt_blocks(T, k1, k2)[t // k1][2]


StepOn = Callable[[slice, tuple[Array, ...]], tuple[Array, Array, tuple[Array, ...]]]


def cell_deltas_tbptt(
    step_on: StepOn, g: Array, parts: int, k1: int, k2: int
) -> tuple[Array, Array, tuple[Array, ...]]:
    """(Δ, Δ̃, ε_{−1}) for TBPTT(k1, k2), any cell: every block's own backward pass.

    ``step_on(steps, ε)`` is the cell's backward step over the steps of a slice (one
    incoming gradient per step, (len, N, H) per part of the state). The full blocks
    all end at e_j = (j+1)·k1 − 1, so they are run together: at offset i, one backward
    step over the steps e_j − i of every block (a slice with stride k1), each on its
    own block's carry, plus the loss g_t while the step is still in its block (i < k1).
    So the loop runs min(k2, ⌊T/k1⌋·k1) times, not once per (block, step) pair;
    with k1 = 1 this is the window's lag-by-lag form. A last, shorter block is run on
    its own, one step at a time. Where windows overlap (k2 > k1) a step receives from
    several blocks, and Δ sums them.
    """
    T, N, H = g.shape
    totals: list[Array] = []  # [Δ, Δ̃]; made at the first step, when G·H is known
    initial = [np.zeros((N, H), dtype=g.dtype) for _ in range(parts)]

    def add(steps: slice, delta: Array, delta_h: Array) -> None:
        if not totals:
            totals.append(np.zeros((T, *delta.shape[1:]), dtype=delta.dtype))
            # the LSTM's two sides are one array: keep it once
            totals.append(totals[0] if delta_h is delta else np.zeros_like(totals[0]))
        totals[0][steps] += delta
        if totals[1] is not totals[0]:
            totals[1][steps] += delta_h

    full = T // k1  # blocks 0 … full−1 have k1 steps
    carry: tuple[Array, ...] = ()
    first_block = 0
    for i in range(min(k2, full * k1)):
        j0 = i // k1  # the first block whose step e_j − i is ≥ 0
        steps = slice((j0 + 1) * k1 - 1 - i, full * k1 - i, k1)  # e_j − i, j = j0 … full−1
        if i == 0:
            incoming = (g[steps], *(np.zeros_like(g[steps]) for _ in range(parts - 1)))
        else:
            dropped = j0 - first_block  # block first_block passed step 0 last time
            incoming = tuple(part[dropped:] for part in carry)
            if i < k1:  # still inside every block: its loss joins
                incoming = (incoming[0] + g[steps], *incoming[1:])
        first_block = j0
        delta, delta_h, carry = step_on(steps, incoming)
        add(steps, delta, delta_h)
        if steps.start == 0:  # block j0 is at step 0: what leaves it reaches h0 (and c0)
            for init, part in zip(initial, carry, strict=True):
                init += part[0]
    if full * k1 < T:  # the last block, shorter than k1
        start, end, first = tbptt_blocks(T, k1, k2)[-1]
        one: tuple[Array, ...] = tuple(np.zeros_like(g[:1]) for _ in range(parts))
        for t in range(end, first - 1, -1):
            if t >= start:
                one = (one[0] + g[t : t + 1], *one[1:])
            delta, delta_h, one = step_on(slice(t, t + 1), one)
            add(slice(t, t + 1), delta, delta_h)
        if first == 0:
            for init, part in zip(initial, one, strict=True):
                init += part[0]
    # Some step always ran: the full blocks' first offset when T ≥ k1, else the last block
    # from its last step T − 1, which its window always holds (k2 ≥ 1).
    return totals[0], totals[1], tuple(initial)


# Randomized truncation, unbiased: the carry from step t into step t−1 is multiplied by
# a random ξ_t with E[ξ_t | the draws before it] = 1, either 0 (the gradient is cut
# there) or 1/P(not cut) (it is compensated for the cuts it survived). The loss at step
# s reaches step t with the weight ξ_{t+1} ⋯ ξ_s, whose expectation is 1 by the tower
# rule, so the expected gradient is the full-BPTT gradient (Tallec & Ollivier 2017,
# "Unbiasing truncated backpropagation through time", arXiv:1705.08209). The link into
# the initial state (h0, c0) is never cut. Two distributions:
#
# - "d2l": d2l.ai §9.7 ("Randomized Truncation"): ξ_t = 1/π with probability π, else 0,
#   the same π at every step: a cut every 1/(1−π) steps on average, and a gradient that
#   survives ℓ links is multiplied by π^−ℓ.
# - "artbp": Tallec & Ollivier's form, where the truncation probability c_t may depend
#   on the past: here (our choice of schedule, not the paper's) c_t = 1/(a + d_t), with
#   d_t ≥ 1 the number of links since the last cut (or since step 0). A run of ℓ links
#   survives with probability a/(a + ℓ) and is multiplied by (a + ℓ)/a: a heavy tail
#   with compensation that grows linearly, where "d2l"'s grows exponentially.

KINDS = ("d2l", "artbp")


@dataclass(frozen=True)
class RandomTruncation:
    """Randomized truncation: which distribution, its parameter, and the seed.

    Attributes:
        kind: "d2l" (parameter π in (0, 1], the probability of keeping each link) or
            "artbp" (parameter a > 0 in c_t = 1/(a + d_t)).
        param: π or a.
        seed: the seed of numpy's default_rng, from which the links are drawn.
    """

    kind: str
    param: float
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"random truncation's kind must be one of {KINDS}; got {self.kind!r}")
        if isinstance(self.param, (bool, np.bool_)) or not isinstance(self.param, numbers.Real):
            raise TypeError(
                f"random truncation's parameter must be a number; got {type(self.param).__name__}"
            )
        if self.kind == "d2l" and not 0 < self.param <= 1:
            raise ValueError(f"d2l's π must be in (0, 1]; got {self.param}")
        if self.kind == "artbp" and not (self.param > 0 and np.isfinite(self.param)):
            raise ValueError(f"artbp's a must be a finite number > 0; got {self.param}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise TypeError(f"random truncation's seed must be an integer; got {self.seed!r}")
        if self.seed < 0:  # default_rng would refuse it only when the links are drawn
            raise ValueError(
                f"random truncation's seed must be ≥ 0 (a seed of numpy's default_rng); "
                f"got {self.seed}"
            )

    def cut_probability(self, since: int) -> float:
        """P(cut the next link), ``since`` ≥ 1 links after the last cut (or step 0)."""
        if self.kind == "d2l":
            return 1.0 - float(self.param)
        return 1.0 / (float(self.param) + since)

    def links(self, cuts: tuple[bool, ...]) -> NDArray[np.float64]:
        """ξ (T,) for a pattern of cuts at links 1 … T−1 (len T−1): ξ_0 = 1 (the
        link into h0), ξ_t = 0 at a cut, else 1/(1 − c_t)."""
        xi = np.ones(len(cuts) + 1)
        since = 1
        for t, cut in enumerate(cuts, start=1):
            c = self.cut_probability(since)
            xi[t] = 0.0 if cut else 1.0 / (1.0 - c)
            since = 1 if cut else since + 1
        return xi

    def draw(self, T: int) -> NDArray[np.float64]:
        """ξ (T,) drawn from ``seed``: the same links for every call with this seed."""
        rng = np.random.default_rng(self.seed)
        cuts = []
        since = 1
        for _ in range(T - 1):
            cut = bool(rng.random() < self.cut_probability(since))
            cuts.append(cut)
            since = 1 if cut else since + 1
        return self.links(tuple(cuts))

    def outcomes(self, T: int) -> Iterator[tuple[float, NDArray[np.float64]]]:
        """Every pattern of cuts over T steps with its probability, as (P, ξ): all
        2^(T−1) of them (patterns of probability 0 left out), for exact expectations."""
        for cuts in product((False, True), repeat=T - 1):
            probability = 1.0
            since = 1
            for cut in cuts:
                c = self.cut_probability(since)
                probability *= c if cut else 1.0 - c
                since = 1 if cut else since + 1
            if probability > 0:
                yield probability, self.links(cuts)
