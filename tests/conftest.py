"""Hypothesis settings profiles, chosen by the HYPOTHESIS_PROFILE environment variable.

- ci: Hypothesis's own built-in "ci" profile (derandomised so a red run reproduces, no
  deadline, no example database, print_blob), which loads itself when CI is set, with
  the example count raised; .ci/run uses it.
- dev: quick, for iterating (the default when CI is not set).
- thorough: thousands of examples, for before a release: HYPOTHESIS_PROFILE=thorough pytest
- mutation: dev without an example database, for mutmut (which passes
  --hypothesis-profile=mutation --hypothesis-seed=0).

Every profile runs BLAS and torch on one thread (below).

A test that needs more (or fewer) examples than the rest scales the loaded profile's
count, so that every profile still governs it:
    @settings(max_examples=5 * settings.default.max_examples)
"""

from __future__ import annotations

import os

# One BLAS and one torch thread, set before numpy or torch is first imported: the
# suite's products are small, where a second thread costs more than it gives (and on
# a busy 2-core machine, far more). Timing claims come from benchmarks/, never from here.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

from hypothesis import settings

# The built-in ci profile; extended, not replaced.
settings.register_profile("ci", settings.get_profile("ci"), max_examples=200)
settings.register_profile("dev", max_examples=25, deadline=None)
settings.register_profile("thorough", max_examples=2000, deadline=None)
# For mutation testing (pyproject.toml's [tool.mutmut] selects it, with a fixed seed):
# dev's count, no example database (a mutant's failures must not steer the next run).
settings.register_profile("mutation", settings.get_profile("dev"), database=None)

_default = "ci" if os.environ.get("CI") else "dev"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", _default))
