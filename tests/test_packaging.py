"""The package as a user meets it: imports, the command line, the declared layout."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )


def test_importing_manual_bptt_does_not_import_torch() -> None:
    probe = run_python("import sys, manual_bptt, manual_bptt.cli; print('torch' in sys.modules)")
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "False"


# Every name docs/using.md documents at the top level, and nothing else in __all__.
PUBLIC = {
    "manual_bptt": {
        "ACTIVATIONS",
        "GRAD_NAMES",
        "BPTTResult",
        "ForwardResult",
        "GRUParams",
        "LSTMParams",
        "OverflowWarning",
        "Params",
        "RandomTruncation",
        "bptt",
        "clip_grad_norm",
        "clip_grad_value",
        "contribution_norms",
        "contributions",
        "forward",
        "hidden_jacobians",
        "init_params",
        "jacobian_row",
        "loss",
        "naive_bptt",
        "product_bounds",
        "sigma_max",
        "spectral_norms",
    },
    "torch_reference": {"Leaves", "bptt", "contributions", "one_thread"},
}


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_every_public_name_is_exported_and_callable_or_data(package: str) -> None:
    module = importlib.import_module(package)
    assert set(module.__all__) == PUBLIC[package]
    for name in PUBLIC[package]:
        assert hasattr(module, name), f"{package}.{name}"


def test_no_module_name_shadows_a_function_of_its_package() -> None:
    """import manual_bptt.X must give the module X, never a function of the same name."""
    for package in ("manual_bptt", "torch_reference"):
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
            if info.name.endswith(".__main__"):  # importing it would run the command
                continue
            module = importlib.import_module(info.name)
            parent, _, leaf = info.name.rpartition(".")
            assert getattr(importlib.import_module(parent), leaf) is module, info.name
