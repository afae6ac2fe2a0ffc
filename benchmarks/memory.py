"""Peak memory of one path's forward + backward at the largest full size, in this process.

    python benchmarks/memory.py manual float64     # or torch.nn; float64 or float32
    python benchmarks/memory.py torch.nn float32 --cell lstm   # rnn (default), lstm, gru

The paths are problems.py's contenders: manual (manual_bptt.bptt) and torch.nn (the
cell's torch.nn module + nn.Linear + F.cross_entropy + .backward()). Prints one line of
JSON: {"path", "cell", "dtype", "first", "three"}, the peak resident set size (RSS)
above the RSS after setup, in MiB, after the first call and after two more.
The process makes its problem and its path, resets its peak RSS (writing 5 to
/proc/self/clear_refs; Linux ≥ 4.0) and reads the peak (VmHWM in /proc/self/status).
It must be a fresh process, so that nothing else has raised the peak: run.py runs this
script once per path and dtype (:func:`in_fresh_process`). Peak RSS rather than
tracemalloc, because torch's allocations are invisible to tracemalloc. The second
figure is the one to compare: a process that keeps freed memory (torch's .grad tensors
stay alive between calls, which keeps glibc from returning the heap below them) shows
it there, not in the first call.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from machine import match_torch_threads
from problems import FULL_SIZES, make_contender, make_problem

PATHS = ("manual", "torch.nn")
CELLS = ("rnn", "lstm", "gru")
SIZE = FULL_SIZES[-1]  # the largest full size


def rss_kib(field_name: str) -> int:
    """A memory figure of this process from /proc/self/status, in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field_name} not in /proc/self/status")


def reset_peak() -> None:
    """Reset the process's peak RSS (VmHWM) to its current RSS."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def measure(path: str, dtype: str, cell: str = "rnn") -> dict[str, float | str]:
    """The peak RSS above the RSS after setup, in MiB, for the first call alone
    ("first") and over that call and two more ("three")."""
    match_torch_threads()
    run = make_contender(path, make_problem(SIZE, dtype, cell)).call
    before = rss_kib("VmRSS")
    reset_peak()
    run()
    first = (rss_kib("VmHWM") - before) / 1024
    run()
    run()
    three = (rss_kib("VmHWM") - before) / 1024
    return {"path": path, "cell": cell, "dtype": dtype, "first": first, "three": three}


def in_fresh_process(path: str, dtype: str, cell: str = "rnn") -> dict[str, float | str]:
    """:func:`measure` in a new Python process running this script."""
    argv = [sys.executable, __file__, path, dtype, "--cell", cell]
    out = subprocess.run(argv, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Measure the path and dtype given on the command line; print the JSON line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("path", choices=PATHS)
    parser.add_argument("dtype", choices=("float64", "float32"))
    parser.add_argument("--cell", choices=CELLS, default="rnn")
    args = parser.parse_args()
    print(json.dumps(measure(args.path, args.dtype, args.cell)))


if __name__ == "__main__":
    main()
