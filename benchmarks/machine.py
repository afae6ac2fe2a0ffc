"""The machine the benchmarks run on: numpy's BLAS, its threads, and the CPU.

Every benchmark script gives torch as many threads as numpy's BLAS has
(:func:`match_torch_threads`), so that both libraries use the same cores.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

import torch

# Some machines set these to work around old OpenBLAS builds; they force a kernel.
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


@dataclass(frozen=True)
class Blas:
    """numpy's BLAS as the header reports it: threads, and library/kernel or how found."""

    threads: int
    description: str  # library, version and kernel, or how the thread count was found


def numpy_blas() -> Blas:
    """numpy's BLAS: its thread count, and which library and kernel it runs."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
            if os.environ.get(var, "").isdigit():
                return Blas(int(os.environ[var]), f"threads read from {var} (no threadpoolctl)")
        count = os.cpu_count() or 1
        return Blas(count, "threads assumed = CPU count (no threadpoolctl, no *_NUM_THREADS)")
    for info in threadpool_info():
        if info.get("user_api") == "blas":
            kernel = info.get("architecture") or "kernel not reported"
            return Blas(
                int(info["num_threads"]),
                f"{info['internal_api']} {info['version']}, kernel {kernel} (threadpoolctl)",
            )
    return Blas(os.cpu_count() or 1, "no BLAS found by threadpoolctl; threads = CPU count")


def match_torch_threads() -> Blas:
    """Set torch's thread count to numpy's BLAS thread count; return numpy's BLAS."""
    blas = numpy_blas()
    torch.set_num_threads(blas.threads)
    return blas


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (or what platform knows)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
