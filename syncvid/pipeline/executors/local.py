"""Executors on this machine: who runs `SourceRunner.run` for each source.

* `SequentialExecutor` — in this process, one source after another (tests, debugging).
* `LocalProcessExecutor` — one worker process per slot of the worker plan; each loads its
  models once and takes one source at a time, through `dispatch` (crashes, retries and setup
  errors are handled there, exactly as for Ray).

Stages never import an executor; executors only know `WorkerJob` and `SourceOutcome`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from syncvid.config.pipeline_schema import PipelineConfig
from syncvid.outputs.layout import OutputLayout
from syncvid.pipeline.devices import WorkerSlot
from syncvid.pipeline.executors.dispatch import dispatch
from syncvid.pipeline.executors.processes import ProcessPool
from syncvid.pipeline.source_runner import SourceOutcome, SourceRunner, StageSet
from syncvid.records import Source

__all__ = ["LocalProcessExecutor", "SequentialExecutor", "WorkerJob"]


@dataclass(frozen=True)
class WorkerJob:
    """Everything a worker needs to build its runner (picklable)."""

    cfg: PipelineConfig
    layout: OutputLayout
    fingerprint: str

    def make_runner(self, slot: WorkerSlot) -> SourceRunner:
        os.environ.update(slot.environment())
        return SourceRunner(self.cfg, self.layout, StageSet.create(self.cfg, slot.device), self.fingerprint)

    def make_worker(self, slot: WorkerSlot) -> SourceRunner:
        """What a worker process builds once (`ProcessPool`'s factory contract)."""
        return self.make_runner(slot)


class SequentialExecutor:
    def __init__(self, job: WorkerJob, slot: WorkerSlot | None = None,
                 on_progress: Callable[[object, float], None] | None = None):
        self.job = job
        self.slot = slot or WorkerSlot(0, None)
        self.on_progress = on_progress

    def run(self, sources: Iterable[Source]) -> Iterator[SourceOutcome]:
        runner = self.job.make_runner(self.slot)
        if self.on_progress is not None:
            runner.on_progress = lambda value: self.on_progress(0, value)
        for source in sources:
            yield runner.run(source)


class LocalProcessExecutor:
    def __init__(self, job: WorkerJob, slots: list[WorkerSlot], max_retries: int = 2,
                 on_crash: Callable[[Source, int], None] | None = None,
                 on_progress: Callable[[object, float], None] | None = None):
        self.job = job
        self.slots = slots
        self.max_retries = max_retries
        self.on_crash = on_crash
        self.on_progress = on_progress

    def run(self, sources: Iterable[Source]) -> Iterator[SourceOutcome]:
        pool = ProcessPool(self.job, on_progress=self.on_progress)
        on_crash = (lambda s, n, detail: self.on_crash(s, n)) if self.on_crash is not None else None
        yield from dispatch(pool, self.slots, list(sources), self.max_retries, on_crash=on_crash)
