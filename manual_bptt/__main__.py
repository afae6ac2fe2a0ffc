"""``python -m manual_bptt`` is the ``bptt`` command."""

from manual_bptt.cli import main

raise SystemExit(main())
