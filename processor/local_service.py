"""A local server that is started, used and stopped, also as a ``with`` block."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class LocalService(ABC):
    """Base of the local servers the tests, demo and benchmarks run (receivers, emulators)."""

    @abstractmethod
    def start(self) -> Self:
        """Start serving; return once ready."""

    @abstractmethod
    def stop(self) -> None:
        """Stop serving and release every process, thread and port; safe to call twice."""

    def __enter__(self) -> Self:
        """Start on entering the block."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop on leaving it, whatever happened inside."""
        self.stop()
