"""Hold messages whose artifacts are late and re-check them soon, instead of nacking them.

A terminal message usually arrives a moment before crier's GCS reporter has written
``prowjob.json``/``podinfo.json``. Nacking it hands it to the subscription's retry policy, whose
backoff (10 s, then doubling) rather than the file decides when the trace appears, and spends one
of ``max_delivery_attempts``. A transport that can keep a message (the pull worker: its lease is
extended by the client library for as long as it is neither acked nor nacked) holds it here and
runs it again on a short, growing schedule: :func:`next_recheck`.

:class:`Holding` is the timer: one thread and a heap, however many messages are held, so holding
costs no thread per message. Closing it hands back what it still holds, for the caller to nack.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

FIRST_RECHECK_SECONDS = 0.25
SOON_RECHECK_SECONDS = 1.0
"""While a file is plausibly about to land, re-check at most this long apart."""
SOON_SECONDS = 60.0
"""How long after the message that is: crier writes its files within seconds, rarely a minute."""
LATER_RECHECK_SECONDS = 10.0
"""After that, re-check this far apart (a file this late is rare; reads are billed)."""

T = TypeVar("T")


def next_recheck(previous: float | None, held_for: float) -> float:
    """Return the wait before the next re-check of a message held ``held_for`` seconds so far.

    0.25 s, then doubling to 1 s while the message is under a minute old; doubling to 10 s after.
    A file landing in the first minute is seen within about a second of landing; a message held
    for the whole default grace period (300 s) costs about 85 re-checks of up to five reads each.
    """
    if previous is None:
        return FIRST_RECHECK_SECONDS
    most = SOON_RECHECK_SECONDS if held_for < SOON_SECONDS else LATER_RECHECK_SECONDS
    return min(previous * 2, most)


class Holding(Generic[T]):
    """Items held until a time, then passed to ``due`` (on the timer thread: keep it quick)."""

    def __init__(
        self, due: Callable[[T], None], clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Start the timer thread; ``due(item)`` is called when an item's time has come."""
        self._due = due
        self._clock = clock
        self._heap: list[tuple[float, int, T]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="prowtrace-holding", daemon=True)
        self._thread.start()

    def __len__(self) -> int:
        """Return how many items are held."""
        with self._wake:
            return len(self._heap)

    def hold(self, item: T, seconds: float) -> bool:
        """Hold ``item`` for ``seconds``; False (item not taken) once closed."""
        with self._wake:
            if self._closed:
                return False
            heapq.heappush(self._heap, (self._clock() + seconds, next(self._order), item))
            self._wake.notify()
            return True

    def close(self) -> list[T]:
        """Stop the timer and return every item still held (none will be passed to ``due``)."""
        with self._wake:
            self._closed = True
            held = [item for _, _, item in sorted(self._heap)]
            self._heap.clear()
            self._wake.notify()
        self._thread.join()
        return held

    def _run(self) -> None:
        with self._wake:
            while not self._closed:
                if not self._heap:
                    self._wake.wait()
                    continue
                wait = self._heap[0][0] - self._clock()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                _, _, item = heapq.heappop(self._heap)
                self._due(item)
