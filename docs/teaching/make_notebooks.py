"""Write docs/teaching/bptt.ipynb (the walk-through) and bptt-solutions.ipynb from one list
of cells, so that the two cannot drift apart: an exercise cell holds the student's
starting point and the solution side by side. Run from anywhere:

    python docs/teaching/make_notebooks.py

Outputs are never written (the notebooks are committed without them; CI executes both,
tests/test_notebooks.py). Needs nbformat (installed with nbclient, the test extra).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

# A cell: ("md", text), ("code", source), or ("exercise", student's source, solution's
# source) for code, or ("answer", student's text, solution's text) for prose.
Cell = tuple[str, ...]

TITLE = "# Backpropagation through time, by hand: a walk-through"

INTRO = """\
A walk-through of backpropagation through time (BPTT) for a recurrent network, to hand
out. Seven steps, each ending with a short exercise: **derive** the gradient, **check**
it numerically, **break** it (three classic slips to find), **verify** your own
backward pass, see why plain RNNs **vanish**, **the remedy** (LSTM and GRU), and
**truncation**. The solutions are in [bptt-solutions.ipynb](bptt-solutions.ipynb).

Notation and equation numbers are those of [docs/derivation.md](../derivation.md)
(Goodfellow et al., *Deep Learning*, §10.2). Run it from a checkout of the project with
`pip install -c constraints.txt -e ".[test]"`; every cell runs in seconds, and nothing
is downloaded. An exercise's check prints *not answered yet*, *✗ not yet right* or
*✓ right*."""

SETUP = '''\
import inspect
import textwrap
import time

import matplotlib.pyplot as plt
import numpy as np

from manual_bptt import bptt, contribution_norms, contributions, forward
from manual_bptt.cases import make_case

START = time.perf_counter()
SEED = 0  # every network, input and search below is drawn from this seed
plt.rcParams.update({"figure.figsize": (7.5, 4.2), "font.size": 11, "axes.titlesize": 11})


def check(exercise, ok, detail=""):
    """Say whether an exercise's answer is right; ok=None: not answered yet."""
    if ok is None:
        print(f"exercise {exercise}: not answered yet")
    elif ok:
        print(f"exercise {exercise}: ✓ right")
    else:
        print(f"exercise {exercise}: ✗ not yet right: {detail}")'''

DERIVE_MD = """\
## Derive: the equations and two worked sums

The network, for steps t = 0 … T−1, with h₋₁ the initial state:

```
(1)  a_t = b + W h_{t−1} + U x_t          (2)  h_t = φ(a_t)
(3)  o_t = c + V h_t                       (4)  ŷ_t = softmax(o_t)
(5)  L = Σ_t E_t,   E_t = −log ŷ_t[y_t]
```

Backward, with δ_t = ∂L/∂a_t:

```
(6)  ∂L/∂o_t = ŷ_t − onehot(y_t)
(7)  δ_t = (Vᵀ ∂L/∂o_t + Wᵀ δ_{t+1}) ⊙ φ'(a_t),    δ_T = 0
(10) ∂L/∂U = Σ_t δ_t x_tᵀ        (11) ∂L/∂W = Σ_t δ_t h_{t−1}ᵀ,   ∂L/∂b = Σ_t δ_t
```

Every parameter is used at every step, so its gradient is a **sum over the steps at
which it was used**. One loss E_t alone already is such a sum: E_t depends on U through
U's use at every step k ≤ t. Kravets's three-step example splits ∂E₂/∂U (his ∂L₃/∂W_xh,
steps counted from 1) into its three parts, one per input x_k:

    ∂E₂/∂U = Σ_{k=0}^{2} δ⁽²⁾_k x_kᵀ,   δ⁽²⁾_2 = Vᵀ(ŷ₂ − onehot(y₂)) ⊙ φ'(a₂),
                                         δ⁽²⁾_k = Wᵀ δ⁽²⁾_{k+1} ⊙ φ'(a_k)

`manual_bptt.vanishing.study.kravets_example` computes every part with
`manual_bptt.contributions` (checked against autograd in the test suite):"""

KRAVETS = """\
from manual_bptt.vanishing.study import kravets_example, tutorial_example

ex = kravets_example(seed=SEED)  # D = K = 4, H = 3, tanh, tokens 0, 1, 2 → targets 1, 2, 3
for k, part in enumerate(ex.components):
    print(f"‖∂E₂/∂U via step {k}‖ = {np.linalg.norm(part):.6f}")
own_sum = ex.components.sum(axis=0)
print("the three parts add up to ∂E₂/∂U:", np.allclose(own_sum, ex.parts[2].sum(axis=0)))
print(f"all parts of all losses add up to bptt's ∂L/∂U: largest difference {ex.total_error:.1e}")"""

EX1_MD = """\
**Exercise 1.** Compute Kravets's three parts yourself, with NumPy, from the forward
pass: start at the loss's own step with (6) and (7), carry δ back one step at a time,
and place each δ_k in column x_k of U's shape (x_k is a token id: a one-hot input)."""

EX1_STUDENT = '''\
def my_kravets_parts(params, x, y):
    """The three parts of ∂E₂/∂U, shape (3, H, D): part k = δ⁽²⁾_k x_kᵀ."""
    fw = forward(params, x)  # unbatched: fw.a and fw.h are (T, H), fw.y_hat is (T, K)
    return None  # your code here


answer = my_kravets_parts(ex.params, ex.x, ex.y)
check("1", None if answer is None else np.allclose(answer, ex.components, atol=1e-12),
      "compare your parts with ex.components")'''

EX1_SOLUTION = '''\
def my_kravets_parts(params, x, y):
    """The three parts of ∂E₂/∂U, shape (3, H, D): part k = δ⁽²⁾_k x_kᵀ."""
    fw = forward(params, x)  # unbatched: fw.a and fw.h are (T, H), fw.y_hat is (T, K)
    dphi = 1 - np.tanh(fw.a) ** 2  # φ'(a) for tanh
    t = 2
    d_o = fw.y_hat[t].copy()
    d_o[y[t]] -= 1  # (6)
    delta = (params.V.T @ d_o) * dphi[t]  # (7) at the loss's own step: no δ_{t+1}
    parts = np.zeros((3, params.H, params.D))
    for k in range(t, -1, -1):
        parts[k][:, x[k]] = delta  # (10): δ_k x_kᵀ with x_k one-hot
        if k > 0:
            delta = (params.W.T @ delta) * dphi[k - 1]  # (7): one step back
    return parts


answer = my_kravets_parts(ex.params, ex.x, ex.y)
check("1", None if answer is None else np.allclose(answer, ex.components, atol=1e-12),
      "compare your parts with ex.components")'''

TUTORIAL_MD = """\
The WildML tutorial writes the same sum for W, with zero-based steps and s for our h:
∂E₃/∂W = Σ_{k=0}^{3} ∂E₃/∂ŷ₃ · ∂ŷ₃/∂s₃ · ∂s₃/∂s_k · ∂s_k/∂W. Its network has no biases
and a zero initial state:"""

TUTORIAL = """\
for with_h0 in (False, True):
    tut = tutorial_example(seed=SEED, with_h0=with_h0)
    norms = ", ".join(f"k={k}: {n:.2e}" for k, n in enumerate(tut.norms))
    print(f"h₋₁ {'drawn' if with_h0 else '= 0  '}  ‖∂E₃/∂W via step k‖  {norms}")"""

ANSWER1_STUDENT = """\
*Question.* Why is the k = 0 part exactly zero with the tutorial's zero initial state,
and not with a drawn one? (Look at (11).)

*Your answer:* …"""

ANSWER1_SOLUTION = """\
*Question.* Why is the k = 0 part exactly zero with the tutorial's zero initial state,
and not with a drawn one? (Look at (11).)

*Answer.* W's use at step k contributes δ_k h_{k−1}ᵀ (11): ∂s_k/∂W multiplies the state
entering step k. At k = 0 that is h₋₁, so the part is δ₀ h₋₁ᵀ, zero when h₋₁ = 0
whatever δ₀ is. U's parts have no such zero: U multiplies x_k, never the state."""

CHECK_MD = """\
## Check: central differences and the step size ε

A gradient is checked against numerical derivatives of the loss itself. The central
difference (L(θ + ε e_i) − L(θ − ε e_i)) / 2ε has a truncation error of order ε²;
round-off adds about u·|L|/ε (u ≈ 1.1e-16), which grows as ε shrinks. Compare entries
with a **relative** error, |a − n| / (|a| + |n|): a gradient entry of 1e-8 off by 1e-9
is as wrong as one of 1 off by 0.1. (The project itself judges with atol + rtol·|ref|,
because the relative error is 0/0 when both vanish: docs/verify.md.)"""

CENTRAL = """\
from manual_bptt.checking.gradcheck import bptt_objective, central_differences

case = make_case(T=5, N=2, D=3, H=4, K=3, seed=SEED, with_h0=True)  # float inputs, tanh
grads = case.call(bptt).grads
objective = case.call(bptt_objective)  # L as a function of every differentiable array
numeric = central_differences(objective.f, objective.arrays, eps=1e-6)
for name, n in numeric.items():
    a = np.reshape(grads[name], n.shape)
    rel = np.abs(a - n) / np.maximum(np.abs(a) + np.abs(n), 1e-300)
    print(f"d{name:<3} largest relative error {rel.max():.1e}")"""

EPS_MD = """\
How much does ε matter? Along one random unit direction v, the error of forward
differences, central differences and the complex step Im L(θ + ihv)/h against the
exact ⟨∇L, v⟩ from `bptt` (the picture `bptt epsilon-plot` draws):"""

EPS_PLOT = """\
from manual_bptt.checking.gradcheck import step_size_errors

eps_case = make_case(T=12, N=3, D=8, H=16, K=5, seed=SEED, with_h0=True)
errors = step_size_errors(eps_case.call(bptt_objective), eps_case.call(bptt).grads, seed=SEED)
fig, ax = plt.subplots()
ax.loglog(errors.eps, errors.forward, "o-", ms=3, label="forward difference")
ax.loglog(errors.eps, errors.central, "s-", ms=3, label="central difference")
ax.loglog(errors.eps, np.maximum(errors.complex, 1e-18), "^-", ms=3, label="complex step")
ax.set_xlabel("step size ε (h for the complex step)")
ax.set_ylabel("|numerical − exact| of ⟨∇L, v⟩")
ax.set_title(f"Error against step size: tanh RNN, T=12, N=3, D=8, H=16, K=5,\\n"
             f"untrained weights, seed {SEED}")
ax.legend()
plt.show()
best = errors.eps[errors.central.argmin()]
print(f"central differences are best at ε ≈ {best:.0e}, error {errors.central.min():.1e}")"""

EX2_MD = """\
**Exercise 2.** Write the central difference for one entry of one array, and use it on
W[0, 1] with ε = 1e-6. Then try ε = 1e-2 and 1e-12 and explain the errors with the
picture."""

EX2_STUDENT = '''\
def my_central(f, arrays, name, index, eps):
    """(f(θ + ε e_i) − f(θ − ε e_i)) / 2ε for entry ``index`` of arrays[name]."""
    return None  # your code here (copy the arrays: do not change the ones given)


got = my_central(objective.f, objective.arrays, "W", (0, 1), 1e-6)
exact = grads["W"][0, 1]
check("2", None if got is None else abs(got - exact) <= 1e-7 * abs(exact),
      f"got {got}, bptt says {exact}")'''

EX2_SOLUTION = '''\
def my_central(f, arrays, name, index, eps):
    """(f(θ + ε e_i) − f(θ − ε e_i)) / 2ε for entry ``index`` of arrays[name]."""
    values = []
    for sign in (+1, -1):
        moved = {k: v.copy() for k, v in arrays.items()}
        moved[name][index] += sign * eps
        values.append(f(moved))
    return (values[0] - values[1]) / (2 * eps)


got = my_central(objective.f, objective.arrays, "W", (0, 1), 1e-6)
exact = grads["W"][0, 1]
check("2", None if got is None else abs(got - exact) <= 1e-7 * abs(exact),
      f"got {got}, bptt says {exact}")
for eps in (1e-2, 1e-12):
    print(f"ε = {eps:.0e}: error {abs(my_central(objective.f, objective.arrays, 'W', (0, 1), eps) - exact):.1e}")
# ε = 1e-2: truncation (ε²) dominates; ε = 1e-12: round-off (u·|L|/ε) dominates.'''

BREAK_MD = """\
## Break: three slips to find with verify

The project keeps a gallery of classic slips, each wrong in one place
(`bptt gallery` lists them with a hint each). Below are three, called A, B and C so
that their names do not give them away. `verify` runs each against autograd on random
problems drawn by Hypothesis, and shrinks every wrong gradient to the smallest problem
that still shows it. Read which gradients are wrong, and at which sizes: that says
where to look."""

BREAK = '''\
from manual_bptt.checking import gallery, gallery_cs231n
from manual_bptt.checking.verify import verify
from manual_bptt.cli.gallery import without_comments, without_docstrings

# (the slip, its style, the method that holds the slip)
SLIPS = {
    "A": (gallery.TUTORIAL_SLIPS[1], "tutorial", "bptt"),
    "B": (gallery_cs231n.CS231N_SLIPS[0], "cs231n", "rnn_step_backward"),
    "C": (gallery_cs231n.CS231N_SLIPS[3], "cs231n", "rnn_step_backward"),
}


def summary(report):
    """Which gradients verify found wrong, each with its smallest failing problem."""
    for v in report.verdicts:
        if v.ok:
            print(f"  {v.gradient.label:<36} agrees on {v.compared} problems")
        else:
            r = v.finding.case.recipe
            sizes = ", ".join(f"{k}={r[k]}" for k in ("T", "N", "D", "H"))
            print(f"  {v.gradient.label:<36} WRONG; smallest failing problem: {sizes}")


for letter, (slip, style, method) in SLIPS.items():
    report = verify(slip, style=style, max_examples=20, random_seed=SEED, name=f"slip {letter}")
    print(f"slip {letter} ({style} style): {'passed' if report.passed else 'FAILED'}")
    summary(report)
    code = textwrap.dedent(inspect.getsource(getattr(slip, method)))
    print(textwrap.indent(without_comments(without_docstrings(code)), "    "))'''

EX3_MD = """\
**Exercise 3.** For each slip, say which line is wrong and why the smallest failing
problem has the sizes it has (why does B need H = 2, and C need N = 2?). Then put it
right: subclass the slip, override the method with the line corrected, and put your
class in `FIXED`. The check runs verify on it."""

EX3_STUDENT = """\
FIXED = {"A": None, "B": None, "C": None}  # your classes here"""

EX3_SOLUTION = """\
import numpy as np


class FixedA(SLIPS["A"][0]):
    def bptt(self, x, y):
        T = len(y)
        y_hat, s = self.forward(x)
        dU, dV, dW = np.zeros_like(self.U), np.zeros_like(self.V), np.zeros_like(self.W)
        delta_o = y_hat.copy()
        delta_o[np.arange(T), y] -= 1.0
        for t in range(T - 1, -1, -1):
            dV += np.outer(delta_o[t], s[t])
            delta = (self.V.T @ delta_o[t]) * (1 - s[t] ** 2)
            for step in range(t, max(0, t - self.bptt_truncate) - 1, -1):
                dW += np.outer(delta, s[step - 1])  # (11): W multiplies h_{t−1}, s[step − 1]
                dU[:, x[step]] += delta
                delta = (self.W.T @ delta) * (1 - s[step - 1] ** 2)
        return [dU, dV, dW]


class FixedB(SLIPS["B"][0]):
    @classmethod
    def rnn_step_backward(cls, dnext_h, cache):
        x, prev_h, Wx, Wh, next_h = cache
        da = dnext_h * (1 - next_h**2)
        return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)  # Wh.T


class FixedC(SLIPS["C"][0]):
    @classmethod
    def rnn_step_backward(cls, dnext_h, cache):
        x, prev_h, Wx, Wh, next_h = cache
        da = dnext_h * (1 - next_h**2)
        return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)  # sum


FIXED = {"A": FixedA, "B": FixedB, "C": FixedC}"""

EX3_CHECK = """\
for letter, fixed in FIXED.items():
    if fixed is None:
        check(f"3{letter}", None)
        continue
    report = verify(fixed, style=SLIPS[letter][1], max_examples=30, random_seed=SEED)
    check(f"3{letter}", report.passed, "verify still finds: "
          + ", ".join(v.gradient.label for v in report.verdicts if not v.ok))"""

ANSWER3_STUDENT = """\
*Your answers (which line, and why those sizes):* …"""

ANSWER3_SOLUTION = """\
*Answers.* A is `CurrentStateInDW`: dW pairs δ_t with s[step], which is h_t, where
(11) needs h_{t−1}; at T = 1 the right part is δ₀ h₋₁ᵀ = 0 and the wrong one is not.
B is `TransposedWhInBackward`: dprev_h = da Wh instead of da Whᵀ; a 1×1 matrix is its
own transpose, so only H ≥ 2 shows it. C is `DbNotSummedOverBatch`: db averaged over
the batch instead of summed; with N = 1 the mean is the sum. The command line shows
each with its answer: `bptt gallery CurrentStateInDW --diff` (or `--check`)."""

REVEAL = """\
from manual_bptt.cli import main

main(["gallery", "CurrentStateInDW", "--diff"])"""

VERIFY_MD = """\
## Verify: your own CS231n-style layer

Now your own backward pass, in the shape of the CS231n assignment's `rnn_layers.py`:
`rnn_step_forward`, `rnn_step_backward`, `rnn_forward` and `rnn_backward`, batch-major,
x (N, T, D), Wx (D, H), Wh (H, H). The cell below writes it to `my_rnn_layers.py` in
the notebook's folder; the forward functions are given. From a terminal, the same
check is

```
bptt verify my_rnn_layers.py --style cs231n
```

which the last cell runs through the same entry point (`manual_bptt.cli.main`), with
fewer examples to keep it quick."""

EX4_MD = """\
**Exercise 4.** Write `rnn_step_backward` (equation (7) for one step, then the step's
parts of (10)–(12)) and `rnn_backward` (back in time, each h_t getting its own upstream
gradient plus what step t + 1 sends back) in the cell below, run it, then run the check.
Until then the backward returns zeros, and verify says which gradients are wrong."""

FORWARD_PART = """\
import numpy as np


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    return next_h, (x, prev_h, Wx, Wh, next_h)


def rnn_forward(x, h0, Wx, Wh, b):
    h, caches, prev_h = [], [], h0
    for t in range(x.shape[1]):
        prev_h, cache = rnn_step_forward(x[:, t], prev_h, Wx, Wh, b)
        h.append(prev_h)
        caches.append(cache)
    return np.stack(h, axis=1), caches
"""

EX4_STUDENT = (
    "%%writefile my_rnn_layers.py\n"
    + FORWARD_PART
    + '''

def rnn_step_backward(dnext_h, cache):
    """dnext_h (N, H) → dx (N, D), dprev_h (N, H), dWx (D, H), dWh (H, H), db (H,)."""
    x, prev_h, Wx, Wh, next_h = cache
    # your code here: (7) for one step, then (10)–(12)
    return np.zeros_like(x), np.zeros_like(prev_h), np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(Wh.shape[0])


def rnn_backward(dh, caches):
    """dh (N, T, H), the upstream gradient of every h_t → dx, dh0, dWx, dWh, db."""
    # your code here: walk back in time, adding the gradient carried from step t + 1
    N, T, H = dh.shape
    x = caches[0][0]
    return np.zeros((N, T, x.shape[1])), np.zeros((N, H)), np.zeros((x.shape[1], H)), np.zeros((H, H)), np.zeros(H)
'''
)

EX4_SOLUTION = (
    "%%writefile my_rnn_layers.py\n"
    + FORWARD_PART
    + '''

def rnn_step_backward(dnext_h, cache):
    """dnext_h (N, H) → dx (N, D), dprev_h (N, H), dWx (D, H), dWh (H, H), db (H,)."""
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 - next_h**2)  # (7): through tanh
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)  # (10)–(12)


def rnn_backward(dh, caches):
    """dh (N, T, H), the upstream gradient of every h_t → dx, dh0, dWx, dWh, db."""
    dx, dWx, dWh, db = [], 0.0, 0.0, 0.0
    dprev_h = np.zeros_like(dh[:, 0])
    for t in reversed(range(dh.shape[1])):
        # every h_t gets its own upstream gradient plus what step t + 1 sends back
        dx_t, dprev_h, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t] + dprev_h, caches[t])
        dx.insert(0, dx_t)
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t  # shared by every step: a sum
    return np.stack(dx, axis=1), dprev_h, dWx, dWh, db
'''
)

EX4_CHECK = """\
from manual_bptt.cli import main

code = main(["verify", "my_rnn_layers.py", "--style", "cs231n", "--examples", "30"])
check("4", code == 0, f"verify found something wrong (above); exit code {code}")"""

VANISH_MD = """\
## Vanish: why plain RNNs forget

Split each loss's gradient by the step through which it came: [t, k] = the part of
∂E_t/∂U that enters through U's use at step k (`contribution_norms`). For an early
input to be learned from, the parts far left of the diagonal must not vanish."""

HEATMAP = """\
from manual_bptt.vanishing.study import study_case

T = 40
vcase = study_case(T=T, activation="tanh", seed=SEED)  # D = K = 8, H = 32, N = 4
norms = contribution_norms(vcase.params, vcase.x, vcase.y, param="U")
masked = np.where(np.tril(np.ones((T, T), bool)), norms, np.nan)
fig, ax = plt.subplots(figsize=(6.5, 5))
image = ax.imshow(np.log10(masked), cmap="viridis", origin="upper")
fig.colorbar(image, ax=ax, label="log₁₀ ‖∂E_t/∂U via step k‖")
ax.set_xlabel("step k where U is used")
ax.set_ylabel("loss E_t")
ax.set_title(f"Where each loss's gradient comes from: tanh RNN, T={T}, H=32, N=4,\\n"
             f"untrained weights (0 steps trained), seed {SEED}")
plt.show()
print(f"loss at step {T - 1}: via step {T - 1}: {norms[T - 1, T - 1]:.1e}, via step 0: {norms[T - 1, 0]:.1e}")"""

SIGMA_MD = """\
Why: ∂h_t/∂h_k = Π_{j=k+1}^{t} diag(φ'(a_j)) W, so
‖∂h_t/∂h_k‖₂ ≤ Π_j ‖diag φ'(a_j)‖₂ · σ_max(W) ≤ (γ σ_max(W))^{t−k}, with γ = sup φ'
(1 for tanh). σ_max(W) < 1/γ is *sufficient* for the long-range gradient to vanish;
σ_max(W) > 1/γ is *necessary*, not sufficient, for it to explode (Pascanu, Mikolov &
Bengio 2013). Below, W rescaled to σ_max(W) = 0.6, 1.6 and 3 (γ = 1): the median part
against the lag t − k, and the Jacobian norms against their bound."""

REGIMES = """\
from manual_bptt.vanishing.study import regimes

found = regimes(T=T, seed=SEED, factors=(0.6, 1.6, 3.0), activations=("tanh",))
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
for r in found:
    left.semilogy(r.decay / r.decay[0], label=r.label)
    (line,) = right.semilogy(r.jacobian, label=f"Jacobian, σ_max(W) = {r.sigma:g}")
    right.semilogy(r.bound, "--", color=line.get_color(), label=f"its bound, σ_max(W) = {r.sigma:g}")
left.set_xlabel("lag ℓ = t − k")
left.set_ylabel("‖∂E_t/∂U via step t − ℓ‖ (median, ÷ lag 0)")
left.set_title(f"Decay with the lag: tanh RNN, T={T}, H=32,\\nuntrained, seed {SEED}")
left.legend(fontsize=9)
right.set_xlabel("lag ℓ")
right.set_ylabel("‖∂h(T−1) / ∂h(T−1−ℓ)‖₂")
right.set_title(f"Jacobian norms (solid) and bound (dashed):\\nsame networks, seed {SEED}")
right.legend(fontsize=9)
fig.tight_layout()
plt.show()
for r in found:
    print(f"{r.label}: the gradient {r.verdict} (mean factor per step {r.rate:.3f})")"""

EX5_MD = """\
**Exercise 5.** Compute ‖∂h_{T−1}/∂h₀‖₂ for `vcase`'s first sequence yourself, by
multiplying the step Jacobians diag(φ'(a_j)) W, and compare it with the bound
(γ σ_max(W))^{T−1}. Is vanishing guaranteed for this network?"""

EX5_STUDENT = '''\
from manual_bptt import jacobian_row, sigma_max, spectral_norms


def my_jacobian_norm(params, x):
    """‖∂h_{T−1}/∂h_0‖₂ for sequence 0 of x (T, N, D), tanh."""
    return None  # your code here


guaranteed = None  # True or False: is σ_max(W) below 1/γ = 1?
got = my_jacobian_norm(vcase.params, vcase.x)
exact = spectral_norms(jacobian_row(vcase.params, vcase.x))[0]
right = got is not None and guaranteed is not None and np.isclose(got, exact, rtol=1e-8)
check("5", None if got is None else right and guaranteed == (sigma_max(vcase.params.W) < 1),
      f"got {got} and {guaranteed}; jacobian_row gives {exact:.3e}")'''

EX5_SOLUTION = '''\
from manual_bptt import jacobian_row, sigma_max, spectral_norms


def my_jacobian_norm(params, x):
    """‖∂h_{T−1}/∂h_0‖₂ for sequence 0 of x (T, N, D), tanh."""
    a = forward(params, x).a[:, 0]  # (T, H), sequence 0
    J = np.eye(params.H)
    for j in range(1, len(a)):  # ∂h_j/∂h_{j−1} = diag(φ'(a_j)) W, newest on the left
        J = ((1 - np.tanh(a[j]) ** 2)[:, None] * params.W) @ J
    return np.linalg.norm(J, 2)


guaranteed = sigma_max(vcase.params.W) < 1
got = my_jacobian_norm(vcase.params, vcase.x)
exact = spectral_norms(jacobian_row(vcase.params, vcase.x))[0]
right = got is not None and guaranteed is not None and np.isclose(got, exact, rtol=1e-8)
check("5", None if got is None else right and guaranteed == (sigma_max(vcase.params.W) < 1),
      f"got {got} and {guaranteed}; jacobian_row gives {exact:.3e}")
print(f"σ_max(W) = {sigma_max(vcase.params.W):.3f}: bound (γσ_max)^(T−1) = "
      f"{sigma_max(vcase.params.W) ** (T - 1):.1e}, measured {got:.1e}")'''

REMEDY_MD = """\
## The remedy: LSTM and GRU gradient flow

The LSTM's cell state carries its gradient back through s_t = f_t ⊙ s_{t−1} + i_t ⊙ g_t:
along that path each step multiplies by f_t alone, no W and no squashing derivative
((18), the constant-error carousel when f ≈ 1). The GRU's h_t = (1 − z_t) ⊙ n_t +
z_t ⊙ h_{t−1} keeps a share z_t per step the same way (27). With zero biases every
gate starts at σ(0) = 0.5, which halves the gradient at every step; a forget-gate
bias b_f = +1 starts f at σ(1) ≈ 0.73 (Gers, Schmidhuber & Cummins 2000).

The same measurement for the three cells, on the network of the long-range experiment
(4 symbols, H = 32, T = 61, every loss scored), at initialisation. `TRAIN_STEPS`
trains each cell with full BPTT on a delay L = 20 first (Adam); 0 keeps this notebook
quick; 3000 gives the trained rows of docs/vanishing.md's table (about 5 minutes on two
cores; what training gives depends on the machine's BLAS, docs/experiment.md)."""

REMEDY = """\
from manual_bptt.vanishing.cells import compare_cells

TRAIN_STEPS = 0  # 3000: docs/vanishing.md's trained rows
studies = compare_cells(("rnn", "lstm", "gru"), T=61, seed=SEED, forget_bias=1.0,
                        trained=TRAIN_STEPS > 0, train_steps=TRAIN_STEPS or None)
print(f"{'cell':<40} {'mean f or z':>11} {'lag 10':>9} {'lag 20':>9} {'lag 40':>9} {'Π f, lag 40':>11}")
for s in studies:
    gate = f"{s.gate}: {s.gate_mean:.3f}" if s.gate else ""
    kept = f"{s.carousel[40]:.1e}" if s.carousel is not None else ""
    print(f"{s.label:<40} {gate:>11} {s.reach(10):9.1e} {s.reach(20):9.1e} {s.reach(40):9.1e} {kept:>11}")

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
for s in studies:
    left.semilogy(s.decay / s.decay[0], label=s.label)
    right.semilogy(s.jacobian, label=s.label)
left.set_xlabel("lag ℓ = t − k")
left.set_ylabel("‖∂E_t/∂U via step t − ℓ‖ (median, ÷ lag 0)")
left.set_title(f"How far back each cell's gradient reaches:\\n"
               f"H=32, T=61, {TRAIN_STEPS} steps trained, seed {SEED}")
left.legend(fontsize=9)
right.set_xlabel("lag ℓ")
right.set_ylabel("‖∂state(T−1) / ∂state(T−1−ℓ)‖₂")
right.set_title(f"State Jacobian norms (the LSTM's state is [h; s]):\\n"
                f"same networks, sequence 0, seed {SEED}")
right.legend(fontsize=9)
fig.tight_layout()
plt.show()"""

FORGET_MD = """\
The forget-gate bias on its own: the LSTM at initialisation with b_f from 0 to 3 (the
same network and sequences; b_f is added to the f rows of b):"""

FORGET = """\
from manual_bptt.vanishing.cells import measure
from manual_bptt.vanishing.experiment import Setting, cell_table_task, initial_params

task = cell_table_task(20, SEED)
print(f"{'b_f':>4} {'mean f':>7} {'lag 10':>9} {'lag 20':>9} {'lag 40':>9} {'Π f, lag 20':>11} {'Π f, lag 40':>11}")
for b_f in (0.0, 1.0, 2.0, 3.0):
    lstm = initial_params(task, Setting("lstm", cell="lstm", forget_bias=b_f))
    s = measure(lstm, task, 61, SEED, f"b_f = {b_f:g}")
    print(f"{b_f:4g} {s.gate_mean:7.3f} {s.reach(10):9.1e} {s.reach(20):9.1e} {s.reach(40):9.1e}"
          f" {s.carousel[20]:11.1e} {s.carousel[40]:11.1e}")"""

REMEDY_AFTER = """\
After 3000 steps of training (docs/vanishing.md, seed 0) the picture changes: the tanh
RNN and the GRU, which learned the task, pass most of the gradient 40 steps back, while
the LSTM with b_f = 0, which did not, closed its forget gates (mean f 0.31) and passes
2e-9 at lag 20; with b_f = +1 it keeps 5e-4."""

EX6_MD = """\
**Exercise 6.** If every forget gate stayed at its initial value σ(b_f), what share of
the gradient would the carousel keep after 20 steps? Give it for b_f = 0, 1 and 2, and
compare b_f = 1 with the measured Π f at lag 20 of the LSTM with forget bias +1 above."""

EX6_STUDENT = '''\
def kept_after(b_f, steps):
    """The carousel's share after ``steps`` steps with every f = σ(b_f)."""
    return None  # your code here


answers = {b: kept_after(b, 20) for b in (0, 1, 2)}
expected = {b: (1 / (1 + np.exp(-b))) ** 20 for b in (0, 1, 2)}
done = all(v is not None for v in answers.values())
check("6", None if not done else all(np.isclose(answers[b], expected[b]) for b in answers),
      f"got {answers}")'''

EX6_SOLUTION = '''\
def kept_after(b_f, steps):
    """The carousel's share after ``steps`` steps with every f = σ(b_f)."""
    return (1 / (1 + np.exp(-b_f))) ** steps


answers = {b: kept_after(b, 20) for b in (0, 1, 2)}
expected = {b: (1 / (1 + np.exp(-b))) ** 20 for b in (0, 1, 2)}
done = all(v is not None for v in answers.values())
check("6", None if not done else all(np.isclose(answers[b], expected[b]) for b in answers),
      f"got {answers}")
measured = next(s for s in studies if s.label == "LSTM, forget bias +1, initial").carousel[20]
print({b: f"{v:.1e}" for b, v in answers.items()}, f"measured Π f at lag 20: {measured:.1e}")
# The measured product is of the same order: each f_j = σ(b_f + input + recurrent terms)
# scatters around σ(b_f), and the mean over units of a product is not the product of means.'''

TRUNC_MD = """\
## Truncation: the window, chunks, TBPTT and randomized truncation

Truncated BPTT lets each loss reach back only so far. Two definitions are in everyday
use, and `bptt` takes both ([docs/derivation.md](../derivation.md#truncation)):

- `truncate=k`, the tutorial's `bptt_truncate`: the loss at step t reaches steps
  t, t−1, …, max(0, t−k), a window of k + 1 steps that slides with t;
- `chunk=k`, as frameworks practise it: the state is carried forward but its gradient
  is cut every k steps; each loss reaches back to the start of its own chunk.

Which steps each loss reaches, read off the contributions (● reached, · not), T = 6:"""

REACH = """\
tcase = make_case(T=6, N=1, D=3, H=4, K=3, seed=SEED, with_h0=True)


def reach(**options):
    parts = tcase.call(contributions, param="U", **options)  # (T, T, H, D)
    return np.abs(parts).sum(axis=(2, 3)) > 0


for options in ({"truncate": 2}, {"chunk": 3}):
    print(f"{options}:        step 0 1 2 3 4 5")
    for t, row in enumerate(reach(**options)):
        print(f"  loss E_{t}              " + " ".join("●" if r else "·" for r in row))"""

BIAS_MD = """\
Truncation changes the gradient (never the loss): it drops the parts left of the
window. How far the truncated gradient is from the full one, as k grows, on the
untrained tanh RNN of the Vanish step and on the same with σ_max(W) = 1.6:"""

BIAS = """\
from manual_bptt.vanishing.study import with_sigma

full_case = study_case(T=T, activation="tanh", seed=SEED)
fig, ax = plt.subplots()
for sigma in (None, 1.6):
    params = full_case.params if sigma is None else with_sigma(full_case.params, sigma)
    full = bptt(params, full_case.x, full_case.y).grads["U"]
    for kind, style in (("truncate", "-"), ("chunk", "--")):
        ks = range(1, T + 1) if kind == "chunk" else range(T)
        gaps = [np.linalg.norm(bptt(params, full_case.x, full_case.y, **{kind: k}).grads["U"] - full)
                / np.linalg.norm(full) for k in ks]
        label = f"{kind}=k, σ_max(W) = {sigma or sigma_max(full_case.params.W):.2f}"
        ax.semilogy(list(ks), np.maximum(gaps, 1e-17), style, label=label)
ax.set_xlabel("k")
ax.set_ylabel("‖∂L/∂U truncated − full‖ / ‖full‖")
ax.set_title(f"How far truncation moves the gradient: tanh RNN, T={T}, H=32, N=4,\\n"
             f"untrained, seed {SEED}")
ax.legend(fontsize=9)
plt.show()"""

BIAS_AFTER = """\
The window's gap falls as fast as the contributions decay with the lag (the Vanish step): on a
network whose gradient vanishes anyway, a short window loses little. Chunks lose more
for the same k: a loss early in its chunk reaches back fewer than k steps. Neither gap
is noise: for a given network and batch the truncated gradient is a fixed function,
and the difference is a bias, which no amount of averaging removes."""

EX7_MD = """\
**Exercise 7.** For T = 6 (`tcase`), what is the smallest k for which `truncate=k` gives
exactly the full gradient, and the smallest for `chunk=k`? Answer from the definitions,
then the check confirms it with `bptt`."""

EX7_STUDENT = """\
k_window = None  # your answer
k_chunk = None  # your answer"""

EX7_SOLUTION = """\
k_window = 5  # T − 1: the loss at step 5 reaches steps 5 … 0
k_chunk = 6  # T: one chunk holds the whole sequence"""

EX7_CHECK = '''\
def same_as_full(**options):
    """Whether the truncated gradients equal the full ones, to round-off (the truncated
    forms sum the same terms in another order)."""
    full, cut = tcase.call(bptt).grads, tcase.call(bptt, **options).grads
    return all(np.allclose(full[n], cut[n], rtol=1e-12, atol=1e-14) for n in full)


def smallest(kind, k):
    low = 0 if kind == "truncate" else 1
    return same_as_full(**{kind: k}) and (k == low or not same_as_full(**{kind: k - 1}))


answered = k_window is not None and k_chunk is not None
check("7", None if not answered else smallest("truncate", k_window) and smallest("chunk", k_chunk),
      f"truncate={k_window}, chunk={k_chunk}")'''

TBPTT_MD = """\
Both are special cases of **TBPTT(k1, k2)** (Williams & Peng 1990; Sutskever 2013): every
k1 steps, the block of k1 losses is backpropagated k2 steps from its last step
(`tbptt=(k1, k2)`). With k2 > k1 the windows of neighbouring blocks overlap; with
k2 < k1 a block's first k1 − k2 losses reach no step at all. Which steps each loss
reaches under `tbptt=(2, 4)`, T = 6:"""

TBPTT_REACH = """\
print("{'tbptt': (2, 4)}:       step 0 1 2 3 4 5")
for t, row in enumerate(reach(tbptt=(2, 4))):
    print(f"  loss E_{t}              " + " ".join("●" if r else "·" for r in row))"""

EX8_MD = """\
**Exercise 8.** Which (k1, k2) makes TBPTT the same as `chunk=3`, and which the same as
`truncate=2`? Read them off the definitions; the check compares the gradients on
`tcase`."""

EX8_STUDENT = """\
as_chunk_3 = None  # your (k1, k2)
as_window_2 = None  # your (k1, k2)"""

EX8_SOLUTION = """\
as_chunk_3 = (3, 3)  # blocks of 3 losses, each backpropagated 3 steps: to its start
as_window_2 = (1, 3)  # every loss alone, 3 steps back: t, t−1, t−2"""

EX8_CHECK = """\
def same(a, b):
    ga, gb = tcase.call(bptt, **a).grads, tcase.call(bptt, **b).grads
    return all(np.allclose(ga[n], gb[n], rtol=1e-12, atol=1e-14) for n in ga)


answered = as_chunk_3 is not None and as_window_2 is not None
check("8", None if not answered else same({"tbptt": as_chunk_3}, {"chunk": 3})
      and same({"tbptt": as_window_2}, {"truncate": 2}), f"{as_chunk_3}, {as_window_2}")"""

RANDOM_MD = """\
Every truncation above is **biased**: for a given batch it is a fixed function, and
the gradient it drops is never made up. Randomized truncation cuts the backward pass at
random links instead, and multiplies what crosses a link uncut by 1/P(not cut), so
that each path's weight has expectation 1 (Tallec & Ollivier 2017). d2l.ai (§9.7) cuts
each link with probability 1 − π; "artbp" cuts with probability 1/(a + d), d links
after the last cut (this project's schedule of their estimator). A seed fixes one draw.
For T = 6 there are only 2⁵ = 32 patterns of cuts, so the expectation can be summed
exactly instead of sampled: it is the full gradient."""

RANDOM = """\
from manual_bptt.truncation import RandomTruncation

full = tcase.call(bptt).grads["W"]
for kind, param in (("d2l", 0.5), ("artbp", 1.0)):
    estimator = RandomTruncation(kind, param)
    one = tcase.call(bptt, randomized=RandomTruncation(kind, param, seed=SEED)).grads["W"]
    expected = sum(p * tcase.call(bptt, randomized=links).grads["W"]
                   for p, links in estimator.outcomes(tcase.T))
    print(f"{kind}: one draw is {np.linalg.norm(one - full) / np.linalg.norm(full):.2f} of ‖∂L/∂W‖ "
          f"away; the exact expectation {np.linalg.norm(expected - full) / np.linalg.norm(full):.0e}")"""

BIASVAR_MD = """\
So the randomized estimators trade bias for variance. The table below measures both
at k = 5 on the untrained tanh RNN of the Vanish step, with only its last loss scored
(the long-range task's setting): bias ‖E g − g_full‖/‖g_full‖ and variance
E‖g − E g‖²/‖g_full‖², exact for the randomized ones, and the cost in steps
backpropagated per sequence (`manual_bptt.vanishing.truncation_study`, which
`bptt truncation` runs for every k and both cells)."""

BIASVAR = """\
from manual_bptt.vanishing import truncation_study as ts

bv = study_case(T=T, activation="tanh", seed=SEED)
last_only = np.zeros(bv.y.shape, dtype=bool)
last_only[-1] = True
batch = (bv.x, bv.y, last_only)
g_full = ts.flat_grad(bv.params, *batch)
print(f"{'estimator':18} {'cost':>5} {'bias':>8} {'variance':>9}")
for estimator in [ts.Estimator("full"), *ts.estimators(5)]:
    row = ts.measure(bv.params, batch, estimator, g_full, ts.draw_seeds(SEED, 20))
    print(f"{row['estimator']:18} {row['cost']:>5} {row['bias']:>8.2g} {row['variance']:>9.2g}")"""

BIASVAR_AFTER = """\
After training, on the long-range task (a token to recall across L = 20 steps), the
project measured at k = 10 ([truncation-measured.md](../truncation-measured.md): every
k, the LSTM, the machine), and then trained the RNN with each estimator over five
seeds:

| estimator | bias | variance | cost | learned L = 20 (of 5 seeds) |
|---|---|---|---|---|
| full BPTT | 0 | 0 | 21 | 5 |
| window `truncate=10` | 0.38 | 0 | 176 | 0 |
| chunks `chunk=10` | 0.64 | 0 | 21 | 0 |
| `tbptt=(5, 10)` | 0.46 | 0 | 41 | 1 |
| d2l, π = 0.9 | < 1e-15 | 1.0 | 21 | 3 |
| artbp, a = 5.35 | < 1e-15 | 0.51 | 21 | 3 |

d2l.ai says that randomized truncation "does not work much better than regular
truncation". Here, where the one signal lies beyond k, it did: 6 of 10 randomized runs
learned, 0 of 5 with the window of the same k (chunks and TBPTT reach back even less
here: the one scored step starts a chunk of its own, and TBPTT(5, 10)'s last block
reaches back only 5 steps). Neither is full BPTT, which learned in all five."""

CLOSING = """\
## Closing note

What a student does in each step:

1. **Derive**: writes the three parts of ∂E₂/∂U by hand (Kravets's example) and says why
   the tutorial's k = 0 part of ∂E₃/∂W is zero.
2. **Check**: writes a central difference, and reads from the ε plot why 1e-6 is right
   and 1e-2 or 1e-12 is not.
3. **Break**: reads verify's report on three slips, finds the wrong line in each, says
   why its counterexample needs those sizes, and fixes it until verify passes.
4. **Verify**: writes a CS231n-style backward pass and verifies it.
5. **Vanish**: multiplies the step Jacobians and tests the σ_max condition.
6. **The remedy**: works out what a forget-gate bias buys the carousel.
7. **Truncation**: finds where the window and the chunks become full BPTT, writes the
   window and the chunks as TBPTT(k1, k2), and sees randomized truncation's expectation
   come out exactly as the full gradient.

Run time, measured on this project's two-core machine while other jobs shared it: 16 to
27 s for this notebook alone, about the same for its solutions (together about 26 s of
CPU); the two side by side under tests/test_notebooks.py (pytest -n 2), 45 to 71 s of
wall time, depending on the other jobs' load. The cell below prints this run's time."""

FINISH = """\
print(f"this notebook ran in {time.perf_counter() - START:.0f} s")"""

CELLS: list[Cell] = [
    ("md", TITLE + "\n\n" + INTRO),
    ("md", "## Setup"),
    ("code", SETUP),
    ("md", DERIVE_MD),
    ("code", KRAVETS),
    ("md", EX1_MD),
    ("exercise", EX1_STUDENT, EX1_SOLUTION),
    ("md", TUTORIAL_MD),
    ("code", TUTORIAL),
    ("answer", ANSWER1_STUDENT, ANSWER1_SOLUTION),
    ("md", CHECK_MD),
    ("code", CENTRAL),
    ("md", EPS_MD),
    ("code", EPS_PLOT),
    ("md", EX2_MD),
    ("exercise", EX2_STUDENT, EX2_SOLUTION),
    ("md", BREAK_MD),
    ("code", BREAK),
    ("md", EX3_MD),
    ("exercise", EX3_STUDENT, EX3_SOLUTION),
    ("code", EX3_CHECK),
    ("answer", ANSWER3_STUDENT, ANSWER3_SOLUTION),
    ("exercise", "", REVEAL),
    ("md", VERIFY_MD),
    ("md", EX4_MD),
    ("exercise", EX4_STUDENT, EX4_SOLUTION),
    ("code", EX4_CHECK),
    ("md", VANISH_MD),
    ("code", HEATMAP),
    ("md", SIGMA_MD),
    ("code", REGIMES),
    ("md", EX5_MD),
    ("exercise", EX5_STUDENT, EX5_SOLUTION),
    ("md", REMEDY_MD),
    ("code", REMEDY),
    ("md", FORGET_MD),
    ("code", FORGET),
    ("md", REMEDY_AFTER),
    ("md", EX6_MD),
    ("exercise", EX6_STUDENT, EX6_SOLUTION),
    ("md", TRUNC_MD),
    ("code", REACH),
    ("md", BIAS_MD),
    ("code", "from manual_bptt import sigma_max\n" + BIAS),
    ("md", BIAS_AFTER),
    ("md", EX7_MD),
    ("exercise", EX7_STUDENT, EX7_SOLUTION),
    ("code", EX7_CHECK),
    ("md", TBPTT_MD),
    ("code", TBPTT_REACH),
    ("md", EX8_MD),
    ("exercise", EX8_STUDENT, EX8_SOLUTION),
    ("code", EX8_CHECK),
    ("md", RANDOM_MD),
    ("code", RANDOM),
    ("md", BIASVAR_MD),
    ("code", BIASVAR),
    ("md", BIASVAR_AFTER),
    ("md", CLOSING),
    ("code", FINISH),
]

SOLUTIONS_TITLE = """\
# Backpropagation through time, by hand: solutions

The walk-through [bptt.ipynb](bptt.ipynb) with every exercise answered: the same cells,
with the solutions in place of the starting points. Every check below prints ✓."""


def notebook(solutions: bool) -> nbformat.NotebookNode:
    """The walk-through (solutions=False) or its solutions, without outputs."""
    cells = []
    for kind, *texts in CELLS:
        if kind == "md":
            text = texts[0]
            if solutions and text.startswith(TITLE):
                text = SOLUTIONS_TITLE
            cells.append(new_markdown_cell(text))
        elif kind == "code":
            cells.append(new_code_cell(texts[0]))
        elif kind in ("exercise", "answer"):
            text = texts[1] if solutions else texts[0]
            if not text:  # a cell of the solutions only
                continue
            make = new_code_cell if kind == "exercise" else new_markdown_cell
            cells.append(make(text))
        else:
            raise ValueError(f"unknown cell kind {kind!r}")
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):  # stable ids: a rebuilt notebook is the same file
        cell["id"] = f"cell-{i:02d}"
    return nb


NOTEBOOKS = {"bptt.ipynb": False, "bptt-solutions.ipynb": True}


def render(solutions: bool) -> str:
    """The notebook's file contents, as written."""
    return nbformat.writes(notebook(solutions)) + "\n"


def main() -> int:
    for name, solutions in NOTEBOOKS.items():
        (HERE / name).write_text(render(solutions), encoding="utf-8")
        print(f"wrote {HERE / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
