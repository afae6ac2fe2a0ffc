"""Jacobians of the hidden state, ∂h_t/∂h_k, and the bounds that say when they vanish.

From (1)–(2), ∂h_j/∂h_{j−1} = diag(φ'(a_j)) W, so for k ≤ t

    ∂h_t/∂h_k = Π_{j=k+1}^{t} diag(φ'(a_j)) W            (the identity when k = t)
    ‖∂h_t/∂h_k‖₂ ≤ Π_{j=k+1}^{t} ‖diag(φ'(a_j))‖₂ ‖W‖₂ ≤ (γ σ_max(W))^{t−k}

with γ = sup φ' (1 for tanh, relu and identity, 1/4 for sigmoid). Hence (Pascanu,
Mikolov & Bengio 2013, §2.1): σ_max(W) < 1/γ is SUFFICIENT for the Jacobians, and so
the long-range gradients, to vanish exponentially; σ_max(W) > 1/γ is NECESSARY for
them to explode (and not sufficient: saturation, φ' ≪ γ, can still make them vanish).

The gated cells' state is h (GRU) or (h, s) (LSTM, stacked [h; s], 2H entries), and
∂state_t/∂state_k = Π_{j=k+1}^{t} ∂state_j/∂state_{j−1}, one step Jacobian per step
written from the cell's equations (:func:`step_jacobians`). The LSTM's s→s block of
one step is diag(f_j) (15); leaving every path through h out, the cell state's
Jacobian is the constant-error carousel diag(Π_{j=k+1}^{t} f_j) (Hochreiter &
Schmidhuber 1997, with the forget gate of Gers, Schmidhuber & Cummins 2000):
:func:`carousel`. It vanishes only as fast as the forget gates close.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from manual_bptt import gru, lstm
from manual_bptt.activations import get_activation
from manual_bptt.arraychecks import is_integer
from manual_bptt.cells import cell_of
from manual_bptt.inputs import check_params, prepare, prepare_inputs, require_vanilla
from manual_bptt.network import AnyCache, quietly, run_batch, run_forward
from manual_bptt.params import CellParams, Params, plain_array

Array = NDArray[np.floating]


def _sequence_dphi(
    params: Params, x: ArrayLike, h0: ArrayLike | None, activation: str, n: int
) -> Array:
    """φ'(a_t) of sequence n, (T, H), after checking every argument."""
    act = get_activation(activation)
    params = require_vanilla(params, "this Jacobian tool", "; state_jacobians takes every cell")
    xb, h0b, tokens, _ = prepare_inputs(params, x, h0=h0)
    N = xb.shape[1]
    if not is_integer(n) or not 0 <= n < N:
        raise ValueError(f"n must index a sequence in [0, N) = [0, {N}); got {n!r}")
    return run_forward(params, xb, h0b, tokens, act).dphi[:, n]


@quietly  # a non-finite forward is reported by run_forward, not by numpy at every step
def hidden_jacobians(
    params: Params,
    x: ArrayLike,
    *,
    h0: ArrayLike | None = None,
    activation: str = "tanh",
    n: int = 0,
) -> Array:
    """J (T, T, H, H) with J[t, k] = ∂h_t/∂h_k for sequence n; zero for k > t.

    x and h0 as in :func:`manual_bptt.forward`. Built column by column: J[t, k] =
    diag(φ'(a_t)) W J[t−1, k], all k at once per t. Memory T²·H²: for long sequences
    use :func:`jacobian_row`.
    """
    dphi = _sequence_dphi(params, x, h0, activation, n)
    steps = dphi[:, :, None] * params.W  # [t] = ∂h_t/∂h_{t−1} = diag(φ'(a_t)) W
    return _chained(steps, params.dtype)


def _chained(steps: Array, dtype: DTypeLike) -> Array:
    """J (T, T, S, S), J[t, k] = steps[t] ⋯ steps[k+1] (I at k = t, zero for k > t), from
    the step Jacobians steps (T, S, S) (steps[0] unused); built column by column,
    J[t, k] = steps[t] J[t−1, k], all k at once per t."""
    T, S = steps.shape[0], steps.shape[1]
    J = np.zeros((T, T, S, S), dtype=dtype)
    for t in range(T):
        J[t, t] = np.eye(S)
        if t > 0:
            J[t, :t] = steps[t] @ J[t - 1, :t]
    return J


@quietly
def jacobian_row(
    params: Params,
    x: ArrayLike,
    *,
    t: int | None = None,
    h0: ArrayLike | None = None,
    activation: str = "tanh",
    n: int = 0,
) -> Array:
    """R (T, H, H) with R[k] = ∂h_t/∂h_k for one t (default T − 1); zero for k > t.

    Row t of :func:`hidden_jacobians` in T·H² memory, built backwards from R[t] = I:
    R[k] = R[k+1] diag(φ'(a_{k+1})) W.
    """
    dphi = _sequence_dphi(params, x, h0, activation, n)
    T, H = dphi.shape
    t = T - 1 if t is None else t
    if not is_integer(t) or not 0 <= t < T:
        raise ValueError(f"t must be a step in [0, T) = [0, {T}); got {t!r}")
    R = np.zeros((T, H, H), dtype=params.dtype)
    R[t] = np.eye(H)
    for k in range(t - 1, -1, -1):
        R[k] = (R[k + 1] * dphi[k + 1]) @ params.W  # R[k+1] diag(φ'(a_{k+1})) W
    return R


def _finite_matrices(name: str, value: object, least_ndim: int, shape: str) -> np.ndarray:
    """value as a plain float array of at least ``least_ndim`` axes with finite entries."""
    arr = plain_array(name, value)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers; got dtype {arr.dtype}")
    if arr.ndim < least_ndim or arr.ndim > 4:
        raise ValueError(f"{name} must have shape {shape}; got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty; got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise ValueError(f"{name} must be finite; entry {bad} is {arr[bad]}")
    return arr


def spectral_norms(J: Array) -> NDArray[np.float64]:
    """‖J[t, k]‖₂ (largest singular value) for every (t, k).

    J: (T, T, H, H) as :func:`hidden_jacobians` returns it, or (T, H, H) as
    :func:`jacobian_row` does; the norms are over the last two axes, (T, T) or (T,).
    """
    arr = _finite_matrices("J", J, 3, "(T, T, H, H) or (T, H, H)")
    norms: NDArray[np.float64] = np.linalg.norm(arr, ord=2, axis=(-2, -1))
    return norms


def sigma_max(W: Array) -> float:
    """σ_max(W) = ‖W‖₂, the largest singular value of the matrix W (H, H) (any (m, n))."""
    arr = _finite_matrices("W", W, 2, "(H, H)")
    if arr.ndim != 2:
        raise ValueError(f"W must be one matrix, shape (H, H); got shape {arr.shape}")
    return float(np.linalg.norm(arr, ord=2))


def product_bounds(
    params: Params,
    x: ArrayLike,
    *,
    h0: ArrayLike | None = None,
    activation: str = "tanh",
    n: int = 0,
) -> NDArray[np.float64]:
    """B (T, T): B[t, k] = Π_{j=k+1}^{t} max|φ'(a_j)| · σ_max(W) ≥ ‖∂h_t/∂h_k‖₂ (k ≤ t).

    max|φ'(a_j)| = ‖diag(φ'(a_j))‖₂ for sequence n. B[t, t] = 1 (the empty product),
    B = 0 above the diagonal. Summed in logs so that long products neither overflow
    nor underflow early; a factor of exactly 0 (every relu unit off) is taken as 1e-300,
    which keeps B an upper bound.
    """
    dphi = _sequence_dphi(params, x, h0, activation, n)
    per_step = np.log(np.abs(dphi).max(axis=1) * sigma_max(params.W) + 1e-300)  # (T,)
    cumulative = np.concatenate([[0.0], np.cumsum(per_step)])  # Σ_{j<t+1}
    T = len(per_step)
    t, k = np.meshgrid(np.arange(T), np.arange(T), indexing="ij")
    # Σ_{j=k+1}^{t} = cumulative[t+1] − cumulative[k+1]; a bound past float range is inf.
    with np.errstate(over="ignore"):
        bounds = np.exp(cumulative[t + 1] - cumulative[k + 1])
    return np.where(k <= t, bounds, 0.0)


def critical_sigma(activation: str) -> float:
    """1/γ: σ_max(W) below it guarantees vanishing; above it is needed for exploding."""
    return 1.0 / get_activation(activation).gamma


def _sequence_cache(
    params: CellParams,
    x: ArrayLike,
    h0: ArrayLike | None,
    c0: ArrayLike | None,
    activation: str,
    n: int,
) -> AnyCache:
    """Any cell's forward cache (all sequences), after checking every argument and n."""
    params = check_params(params)
    xb, _, _, batched = prepare_inputs(params, x, h0=h0)
    T, N = xb.shape[0], xb.shape[1]
    if not is_integer(n) or not 0 <= n < N:
        raise ValueError(f"n must index a sequence in [0, N) = [0, {N}); got {n!r}")
    # The Jacobians do not depend on the targets, so any valid ones do.
    y = np.zeros((T, N) if batched else (T,), dtype=np.intp)
    return run_batch(params, prepare(params, x, y, h0=h0, c0=c0, activation=activation))


def _lstm_steps(params: lstm.LSTMParams, cache: lstm.LSTMCache, n: int) -> Array:
    """(T, 2H, 2H): ∂(h_t, s_t)/∂(h_{t−1}, s_{t−1}) of sequence n, from (13)–(16)."""
    H = params.H
    W_i, W_f, W_g, W_q = (params.W[j * H : (j + 1) * H] for j in range(4))
    gates = cache.gates[:, n]
    i, f, g, q = (gates[:, j * H : (j + 1) * H] for j in range(4))
    s_prev, tanh_s = cache.s_prev[:, n], cache.tanh_s[:, n]
    # (15) ∂s_t/∂h_{t−1} through the three gates that read h_{t−1}
    ds_dh = (
        (s_prev * f * (1 - f))[:, :, None] * W_f
        + (g * i * (1 - i))[:, :, None] * W_i
        + (i * (1 - g * g))[:, :, None] * W_g
    )
    dh_ds = q * (1 - tanh_s * tanh_s)  # (16) ∂h_t/∂s_t, diagonal
    J = np.zeros((len(gates), 2 * H, 2 * H), dtype=params.dtype)
    J[:, :H, :H] = (tanh_s * q * (1 - q))[:, :, None] * W_q + dh_ds[:, :, None] * ds_dh
    J[:, :H, H:] = _diag(dh_ds * f)  # h_t through s_t from s_{t−1}
    J[:, H:, :H] = ds_dh
    J[:, H:, H:] = _diag(f)  # (15) the carousel: ∂s_t/∂s_{t−1} = diag(f_t)
    return J


def _gru_steps(params: gru.GRUParams, cache: gru.GRUCache, n: int) -> Array:
    """(T, H, H): ∂h_t/∂h_{t−1} of sequence n, from (25)–(27), either reset variant."""
    H = params.H
    W_r, W_z, W_n = (params.W[j * H : (j + 1) * H] for j in range(3))
    gates = cache.gates[:, n]
    r, z, n_ = (gates[:, j * H : (j + 1) * H] for j in range(3))
    h_prev, inner = cache.h_prev[:, n], cache.inner[:, n]
    dr = (r * (1 - r))[:, :, None] * W_r  # (25) ∂r_t/∂h_{t−1}
    dz = (z * (1 - z))[:, :, None] * W_z  # (25) ∂z_t/∂h_{t−1}
    if params.reset == "after":  # (26) n = tanh(… + r ⊙ m), m = W_n h_{t−1} + bh_n
        dn_pre = inner[:, :, None] * dr + r[:, :, None] * W_n
    else:  # (26) n = tanh(… + W_n (r ⊙ h_{t−1}) + bh_n)
        dn_pre = W_n @ (h_prev[:, :, None] * dr + _diag(r))
    dn = (1 - n_ * n_)[:, :, None] * dn_pre
    # (27) h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}
    return _diag(z) + (1 - z)[:, :, None] * dn + (h_prev - n_)[:, :, None] * dz


def _diag(v: Array) -> Array:
    """(T, H) → (T, H, H), each row on a diagonal."""
    out = np.zeros((*v.shape, v.shape[-1]), dtype=v.dtype)
    idx = np.arange(v.shape[-1])
    out[:, idx, idx] = v
    return out


def step_jacobians(
    params: CellParams,
    x: ArrayLike,
    *,
    h0: ArrayLike | None = None,
    c0: ArrayLike | None = None,
    activation: str = "tanh",
    n: int = 0,
) -> Array:
    """(T, S, S): [t] = ∂state_t/∂state_{t−1} for sequence n, every cell.

    The state is h (S = H) for the vanilla cell (diag(φ'(a_t)) W, from (1)–(2)) and the
    GRU ((25)–(27)), and [h; s] (S = 2H) for the LSTM ((13)–(16)). x, h0 as in
    :func:`manual_bptt.forward`; c0 the LSTM's initial cell state; ``activation`` the
    vanilla cell's φ.
    """
    cache = _sequence_cache(params, x, h0, c0, activation, n)
    if isinstance(params, Params):
        rows_scaled: Array = cache.dphi[:, n][:, :, None] * params.W  # diag(φ'(a_t)) W
        return rows_scaled
    closed = CLOSED_FORMS.get(cell_of(params).name)
    if closed is not None:
        return closed(params, cache, n)
    return _steps_by_backward(params, cache, n)


def _steps_by_backward(params: CellParams, cache: AnyCache, n: int) -> Array:
    """(T, S, S) for any registered cell from its backward step, which maps the gradient
    ε reaching state_t to J_tᵀ ε reaching state_{t−1}: fed the unit vector e_j at every
    step at once, it gives J_tᵀ e_j, row j of every J_t."""
    cell = cell_of(params)
    parts, H = len(cell.state), params.H
    T, N = cache.h.shape[0], cache.h.shape[1]
    J = np.zeros((T, parts * H, parts * H), dtype=params.dtype)
    for j in range(parts * H):
        unit = [np.zeros((T, N, H), dtype=params.dtype) for _ in range(parts)]
        unit[j // H][:, n, j % H] = 1.0
        _, _, carried = cell.backward_step(params, cache, 0, T, tuple(unit))
        J[:, j, :] = np.concatenate([part[:, n] for part in carried], axis=-1)
    return J


# The closed forms written out from the cells' equations, for reading; any other cell's
# by its backward step (_steps_by_backward).
CLOSED_FORMS: dict[str, Callable[[Any, Any, int], Array]] = {
    "lstm": _lstm_steps,
    "gru": _gru_steps,
}


def state_jacobians(
    params: CellParams,
    x: ArrayLike,
    *,
    h0: ArrayLike | None = None,
    c0: ArrayLike | None = None,
    activation: str = "tanh",
    n: int = 0,
) -> Array:
    """J (T, T, S, S) with J[t, k] = ∂state_t/∂state_k for sequence n; zero for k > t.

    Arguments and the state as :func:`step_jacobians` (the LSTM's [h; s], S = 2H: the
    blocks J[..., :H, :H] = ∂h_t/∂h_k and J[..., H:, H:] = ∂s_t/∂s_k). The product of the
    step Jacobians, J[t, k] = [t] J[t−1, k], all k at once per t; for the vanilla
    cell it equals :func:`hidden_jacobians`. Memory T²·S².
    """
    steps = step_jacobians(params, x, h0=h0, c0=c0, activation=activation, n=n)
    return _chained(steps, steps.dtype)


def carousel(
    params: lstm.LSTMParams,
    x: ArrayLike,
    *,
    h0: ArrayLike | None = None,
    c0: ArrayLike | None = None,
    n: int = 0,
) -> NDArray[np.float64]:
    """C (T, T, H): C[t, k] = Π_{j=k+1}^{t} f_j for sequence n (1 at k = t, 0 for k > t).

    The LSTM's constant-error carousel: ∂s_t/∂s_k along the cell state alone, diag(C[t,
    k]), every path through h left out. Summed in logs, so that long products neither
    overflow nor underflow early.
    """
    if not isinstance(params, lstm.LSTMParams):
        check_params(params)
        raise TypeError(f"the carousel is the LSTM's (LSTMParams); got {type(params).__name__}")
    cache = _sequence_cache(params, x, h0, c0, "tanh", n)
    assert isinstance(cache, lstm.LSTMCache)
    H = params.H
    log_f = np.log(cache.gates[:, n, H : 2 * H].astype(np.float64))  # (T, H)
    cumulative = np.concatenate([np.zeros((1, H)), np.cumsum(log_f, axis=0)])
    T = log_f.shape[0]
    t, k = np.meshgrid(np.arange(T), np.arange(T), indexing="ij")
    C = np.exp(cumulative[t + 1] - cumulative[k + 1])  # Σ_{j=k+1}^{t} log f_j
    return np.where((k <= t)[..., None], C, 0.0)


def state_jacobian_row(
    params: CellParams,
    x: ArrayLike,
    *,
    t: int | None = None,
    h0: ArrayLike | None = None,
    c0: ArrayLike | None = None,
    activation: str = "tanh",
    n: int = 0,
) -> Array:
    """R (T, S, S) with R[k] = ∂state_t/∂state_k for one t (default T − 1); zero for k > t.

    Row t of :func:`state_jacobians` in T·S² memory, built backwards from R[t] = I:
    R[k] = R[k+1] ∂state_{k+1}/∂state_k.
    """
    steps = step_jacobians(params, x, h0=h0, c0=c0, activation=activation, n=n)
    T, S = steps.shape[0], steps.shape[1]
    t = T - 1 if t is None else t
    if not is_integer(t) or not 0 <= t < T:
        raise ValueError(f"t must be a step in [0, T) = [0, {T}); got {t!r}")
    R = np.zeros((T, S, S), dtype=steps.dtype)
    R[t] = np.eye(S)
    for k in range(t - 1, -1, -1):
        R[k] = R[k + 1] @ steps[k + 1]
    return R
