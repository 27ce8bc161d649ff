"""A latency model for artifact reads, and a lag model for when crier's files appear.

The other benchmarks read a local mirror whose files are all written before the message is
published. Production differs on two counts, and both decide how soon a finished job's trace is
seen:

- **Read latency.** A Cloud Storage GET from a nearby region takes tens of milliseconds, with a
  tail in the hundreds. :data:`GCS_GET` models it as a log-normal with p50 30 ms and p99 150 ms.
  Sources: a published Cloud Storage benchmark from a GCE VM
  (https://gist.github.com/markvincze/6b652e5c2052a3fd9932b8df75d6cafe: 1 KiB downloads
  110-230 ms once warm, metadata GETs 35-75 ms) and a survey of object-store small-object latency
  (https://gist.github.com/Hardik94: "S3-style object API ~30-150 ms per op"). The JSON API GET
  prowtrace does (``Blob.download_as_bytes``) is one metadata-plus-media round trip; we take the
  low end of the first source as the median and the survey's upper figure as the p99.
- **Artifact lag.** crier's GCS reporter writes ``prowjob.json`` and ``podinfo.json`` a moment
  after its Pub/Sub reporter published the message (they are independent reporters, and
  podinfo.json is written only once the pod is gone). :class:`LagModel` draws when each late
  file appears: most within 0-5 s, a tail to 60 s. ``started.json``, ``finished.json`` and
  ``clone-records.json`` are written by the pod's own utilities before the job ends, so they are
  there when the message is.

:class:`ModelledStore` wraps any :class:`~processor.artifacts.ArtifactStore`: every read sleeps a
drawn latency, files not yet "appeared" read as missing, and reads are counted per folder (each
read is a billed Class B operation on Cloud Storage).
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from processor.artifacts import ArtifactStore, ListedFile
from processor.core.facts import PODINFO, PROWJOB

Z_99 = 2.3263478740408408
"""The standard normal's 99th percentile: a log-normal's p99 = p50 * exp(Z_99 * sigma)."""

LATE_FILES = (PROWJOB, PODINFO)
"""The files crier's GCS reporter writes after the Pub/Sub message (the others precede it)."""

GCS_CLASS_B_USD_PER_10K = 0.004
"""Standard storage, Class B (GET) operations: $0.004 per 10,000."""
# Source: https://cloud.google.com/storage/pricing (operation charges, Standard storage).


@dataclass(frozen=True, slots=True)
class LatencyModel:
    """A log-normal per-GET latency given by its median and 99th percentile, in seconds."""

    p50: float = 0.030
    p99: float = 0.150

    @property
    def sigma(self) -> float:
        """The log-normal's shape parameter."""
        return math.log(self.p99 / self.p50) / Z_99

    @property
    def mean(self) -> float:
        """The distribution's mean (what a throughput bound divides by)."""
        return self.p50 * math.exp(self.sigma**2 / 2)

    def draw(self, rng: random.Random) -> float:
        """Draw one latency."""
        return rng.lognormvariate(math.log(self.p50), self.sigma)

    def describe(self) -> str:
        """Say what the model is, for a report."""
        return f"log-normal GET latency, p50 {self.p50 * 1e3:.0f} ms, p99 {self.p99 * 1e3:.0f} ms"


GCS_GET = LatencyModel()


@dataclass(frozen=True, slots=True)
class LagModel:
    """When each late file appears after the message: uniform in ``typical``, else in ``tail``."""

    typical: tuple[float, float] = (0.0, 5.0)
    tail: tuple[float, float] = (5.0, 60.0)
    tail_share: float = 0.05
    scale: float = 1.0
    """Multiplies every lag (a quick run shrinks the minutes a full run takes)."""

    def draw(self, rng: random.Random) -> float:
        """Draw one lag in seconds."""
        low, high = self.tail if rng.random() < self.tail_share else self.typical
        return self.scale * rng.uniform(low, high)

    def describe(self) -> str:
        """Say what the model is, for a report."""
        (a, b), (c, d) = self.typical, self.tail
        return (
            f"late files appear {a * self.scale:g}-{b * self.scale:g} s after the message, "
            f"{100 * self.tail_share:g} % of them {c * self.scale:g}-{d * self.scale:g} s"
        )


@dataclass
class ModelledStore:
    """An :class:`~processor.artifacts.ArtifactStore` with read latency and files that appear late.

    ``appears`` maps ``(folder, name)`` to the time (on ``clock``) the file appears; until then a
    read answers ``None`` as a real store does for a missing file. Folders are compared without a
    trailing slash.
    """

    inner: ArtifactStore
    latency: LatencyModel | None = GCS_GET
    appears: dict[tuple[str, str], float] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    seed: int = 12
    reads: Counter[str] = field(default_factory=Counter)
    """Reads per folder (every call, found or not)."""
    _rng: random.Random = field(init=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        """Seed the latency draws."""
        self._rng = random.Random(self.seed)  # noqa: S311 - a model, not a secret

    def read(self, folder: str, name: str) -> bytes | None:
        """Wait one modelled round trip, then answer as ``inner`` does, or ``None`` if not yet."""
        folder = folder.rstrip("/")
        with self._lock:
            self.reads[folder] += 1
            delay = self.latency.draw(self._rng) if self.latency else 0.0
        if delay:
            self.sleep(delay)
        appears = self.appears.get((folder, name))
        if appears is not None and self.clock() < appears:
            return None
        return self.inner.read(folder, name)

    def list_files(self, folder: str, under: str, name_glob: str, limit: int) -> list[ListedFile]:
        """List as ``inner`` does, one modelled round trip, counted with the folder's reads."""
        folder = folder.rstrip("/")
        with self._lock:
            self.reads[folder] += 1
            delay = self.latency.draw(self._rng) if self.latency else 0.0
        if delay:
            self.sleep(delay)
        return self.inner.list_files(folder, under, name_glob, limit)

    def find(self, prefix: str, name: str) -> Iterator[str]:
        """List as ``inner`` does, one modelled round trip per call."""
        with self._lock:
            delay = self.latency.draw(self._rng) if self.latency else 0.0
        if delay:
            self.sleep(delay)
        return self.inner.find(prefix, name)

    def withhold(self, folder: str, name: str, until: float) -> None:
        """Make ``folder/name`` appear at ``until`` (on ``clock``)."""
        self.appears[(folder.rstrip("/"), name)] = until


def reads_floor_p50(
    model: LatencyModel, first: int, then: int, *, draws: int = 20_000, seed: int = 5
) -> float:
    """Return the median time, under ``model``, of reads in two waves with no CPU between.

    ``first`` GETs start together; one of them (a listing) is followed by ``then`` GETs that
    start together when it answers (the files the listing named). Nothing one message does can
    end sooner: it is the model's own floor for its reads, whatever the code around them.
    """
    rng = random.Random(seed)  # noqa: S311 - a model, not a secret
    times = []
    for _ in range(draws):
        waves = [model.draw(rng) for _ in range(first)]
        if then:
            waves[0] += max(model.draw(rng) for _ in range(then))
        times.append(max(waves, default=0.0))
    times.sort()
    return times[len(times) // 2]


def usd_per_million_jobs(reads_per_job: float) -> float:
    """Return what ``reads_per_job`` GETs cost per million jobs at the Class B price."""
    return reads_per_job * 1e6 * GCS_CLASS_B_USD_PER_10K / 1e4
