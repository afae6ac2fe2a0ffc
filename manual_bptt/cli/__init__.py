"""The ``bptt`` command (also ``python -m manual_bptt``).

Each subcommand lives in manual_bptt/cli/<name>.py and provides
``register(subparsers)``, which adds its parser and sets ``run`` (args → exit code).
With no subcommand, ``check`` runs on its built-in default network.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

# Module names under manual_bptt.cli, in the order --help lists them.
COMMAND_MODULES = (
    "check",
    "sweep",
    "verify",
    "gallery",
    "epsilon_plot",
    "vanishing",
    "truncation",
)
DEFAULT_COMMAND = "check"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bptt",
        description=(
            "Backpropagation through time for a vanilla RNN, an LSTM and a GRU, by hand in "
            "NumPy, checked against PyTorch autograd. With no command, runs 'check' on a "
            "default network."
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"manual_bptt.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: sys.argv[1:]), run the command, return its exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not args_list or (args_list[0].startswith("-") and args_list[0] not in ("-h", "--help")):
        args_list.insert(0, DEFAULT_COMMAND)
    args = parser.parse_args(args_list)
    from manual_bptt.errors import UsageError

    command = f"bptt {args.command or DEFAULT_COMMAND}"
    try:
        code = int(args.run(args))
        sys.stdout.flush()  # a reader gone by now is seen here, not at exit
        return code
    except UsageError as err:  # parsed, but cannot be used: one line, as argparse does
        print(f"{command}: error: {err}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"{command}: error: out of memory; choose smaller sizes", file=sys.stderr)
        return 2
    except ImportError as err:  # an optional extra (matplotlib) is missing: say how to get it
        print(f"bptt {args.command or DEFAULT_COMMAND}: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (bptt gallery | head): nothing to say
        # Python would complain again when it flushes stdout at exit: point it at devnull.
        # 141 (128 + SIGPIPE), as a shell reports it: never 0, which under pipefail would
        # pass a verify whose report was cut short.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as err:  # an output path that cannot be written: not a bug, one line
        print(f"bptt {args.command or DEFAULT_COMMAND}: cannot write: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
