"""The package as a user meets it: imports, the command line, the declared layout."""

from __future__ import annotations

import subprocess
import sys

import manual_bptt


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )


def test_importing_manual_bptt_does_not_import_torch() -> None:
    probe = run_python("import sys, manual_bptt, manual_bptt.cli; print('torch' in sys.modules)")
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "False"


def test_public_names_are_exported() -> None:
    for name in ("Params", "init_params", "forward", "loss", "bptt", "naive_bptt", "BPTTResult"):
        assert hasattr(manual_bptt, name), name
