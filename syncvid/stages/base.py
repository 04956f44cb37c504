"""The contract of the stages that measure and judge every candidate segment: face, sync, quality.

Each worker process creates one instance per stage from its config section, calls `setup()` once
(models load there), then, for every candidate, the stage's measuring methods and `judge`:

========  ==========================================  ====================================
stage     measures (per frame / per candidate)          judge(...) decides on
========  ==========================================  ====================================
face      `track(picture, new_shot)` per frame;         the segment's `FrameFace` list
          `new_aligner()` per segment                   (returns `FaceStats`)
sync      `measure(clip)` then `correct(clip, result)`  recorded ``sync_*`` measurements
quality   `score(frames)`                               recorded ``quality_*`` measurements
========  ==========================================  ====================================

`judge` raises `Rejected(stage.name, reason, message, measurements)` with a reason among
`stage.reasons`.  Sync's and quality's `judge` read only recorded measurements, so `syncvid filter`
re-decides a finished run without decoding anything (`syncvid.pipeline.decisions.decide`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from syncvid.rows import Reason


@dataclass(frozen=True)
class Resources:
    """What one instance of a stage uses inside a worker process."""

    needs_gpu: bool = False  # the configured backend runs on a GPU when the worker has one
    threads: int = 1  # CPU threads (workers run OpenCV single-threaded; parallelism comes from processes)


class Stage(ABC):
    """A per-candidate stage: `name`, `reasons`, `resources`, `setup()`, `judge(...)`."""

    name: ClassVar[str]
    # Backends (the config section's `backend`/`backends` values) that run on a GPU when one is visible.
    gpu_backends: ClassVar[frozenset[str]] = frozenset()

    params: Any  # the stage's config section

    @property
    def reasons(self) -> tuple[Reason, ...]:
        """The reasons this stage's `judge` (and measuring) may reject with."""
        return Reason.of_stage(self.name)

    @property
    def resources(self) -> Resources:
        return Resources(needs_gpu=bool(set(self.configured_backends()) & self.gpu_backends))

    @abstractmethod
    def configured_backends(self) -> tuple[str, ...]:
        """The backend names the config section selects."""

    @abstractmethod
    def setup(self) -> None:
        """Load models (once per worker, before the first candidate)."""

    @abstractmethod
    def judge(self, measured: Any) -> Any:
        """Decide on one candidate from what was measured; raise `Rejected(self.name, ...)` to drop it."""
