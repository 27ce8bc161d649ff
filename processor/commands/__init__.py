"""One module per ``prowtrace`` command: ``register`` adds its flags, ``run`` runs it.

Each command imports what it runs inside ``run``, so ``prowtrace --help`` stays fast.
"""

from __future__ import annotations

from processor.commands import backfill, demo, pull, replay, serve, show, traceparent

COMMANDS = (replay, pull, serve, backfill, traceparent, show, demo)
"""In the order ``--help`` lists them."""
