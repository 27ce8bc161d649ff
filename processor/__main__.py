"""Allow ``python -m processor`` as an alias of the ``prowtrace`` command."""

from processor.cli import main

raise SystemExit(main())
