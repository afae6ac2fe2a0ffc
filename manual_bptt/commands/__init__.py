"""Subcommands of ``bptt``: one module each, see manual_bptt/cli.py."""
