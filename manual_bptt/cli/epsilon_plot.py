"""bptt epsilon-plot: the error of numerical derivatives against step size, as a PNG.

Forward differences (f(θ+εv) − f(θ))/ε, central differences (f(θ+εv) − f(θ−εv))/2ε
and the complex step Im f(θ+ihv)/h, each compared with the analytic directional
derivative ⟨∇L, v⟩ from manual_bptt.bptt, along one random unit direction v, for
ε from 1e-16 to 1e-1, on a log–log plot. The differences trace a V: truncation
error falls with ε (as ε for forward, ε² for central) until round-off, which grows as
1/ε, takes over. The complex step subtracts nothing, so it stays at round-off.
Needs matplotlib (pip install matplotlib).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from manual_bptt.backward import bptt
from manual_bptt.cases import make_case
from manual_bptt.checking.gradcheck import bptt_objective, step_size_errors
from manual_bptt.cli.arguments import add_command, existing_parent, nonnegative_int


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "epsilon-plot",
        "plot the error of finite differences and the complex step against step size",
        __doc__,
        run,
    )
    p.add_argument(
        "--out",
        default="epsilon.png",
        type=existing_parent,
        help="PNG file to write, in an existing folder; .png is added to a name without a "
        "suffix (default epsilon.png)",
    )
    p.add_argument("--activation", choices=["tanh", "sigmoid", "identity", "relu"], default="tanh")
    p.add_argument(
        "--seed",
        type=nonnegative_int,
        default=0,
        help="seed of weights, data and v, ≥ 0 (default 0)",
    )


def run(args: argparse.Namespace) -> int:
    from manual_bptt.cli.plots import epsilon_plot, png_path

    try:
        png_path(args.out)
    except ValueError as err:
        print(f"bptt epsilon-plot: --out: {err}", file=sys.stderr)
        return 2

    case = make_case(
        T=12, N=3, D=8, H=16, K=5, seed=args.seed, activation=args.activation, with_h0=True
    )
    result = case.call(bptt)
    objective = case.call(bptt_objective)
    errors = step_size_errors(
        objective, result.grads, seed=args.seed, with_complex=args.activation != "relu"
    )
    title = f"Numerical derivatives of L, {args.activation} RNN (T=12, N=3, D=8, H=16, K=5)"
    path = epsilon_plot(errors, args.out, title=title)
    best = errors.eps[errors.central.argmin()]
    print(
        f"wrote {path}: central differences are best at ε ≈ {best:.0e} "
        f"(error {errors.central.min():.1e}); forward at ε ≈ "
        f"{errors.eps[errors.forward.argmin()]:.0e} (error {errors.forward.min():.1e})"
        + (
            ""
            if errors.complex is None
            else f"; complex step {errors.complex[errors.eps <= 1e-8].max():.1e} for h ≤ 1e-8"
        )
    )
    return 0
