"""``prowtrace demo``: the README's first command (see :mod:`processor.tools.demo.run`)."""

from __future__ import annotations

from processor.tools.demo.run import (
    DEFAULT_OUTPUT,
    DemoFailed,
    DemoOptions,
    DemoResult,
    demo_main,
    run_demo,
)

__all__ = ["DEFAULT_OUTPUT", "DemoFailed", "DemoOptions", "DemoResult", "demo_main", "run_demo"]
