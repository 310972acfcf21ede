"""``python -m runner``: the ``rollout`` command."""

from runner.cli.main import main

raise SystemExit(main())
