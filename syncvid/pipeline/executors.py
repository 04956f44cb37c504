"""Executors: who runs `SourceRunner.run` for each source.

* `SequentialExecutor` — in this process, one source after another (tests, debugging).
* `LocalProcessExecutor` — one worker process per slot of the worker plan; each loads its
  models once and takes one source at a time.  A worker that dies (out of memory, a
  decoder crash, kill -9) is replaced; its source is retried `max_retries` times and then
  recorded as a `worker_crashed` rejection — never an endless loop, never a lost source.
* `RayExecutor` lives in `syncvid.pipeline.ray_executor` (optional dependency).

Stages never import an executor; executors only know `WorkerJob` and `SourceOutcome`.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Callable, Iterable, Iterator

from syncvid.config.pipeline_schema import PipelineConfig
from syncvid.pipeline.devices import WorkerSlot
from syncvid.pipeline.layout import OutputLayout
from syncvid.pipeline.source_runner import SourceOutcome, SourceRunner, StageSet
from syncvid.records import Source


@dataclass(frozen=True)
class WorkerJob:
    """Everything a worker needs to build its runner (picklable)."""

    cfg: PipelineConfig
    layout: OutputLayout
    fingerprint: str

    def make_runner(self, slot: WorkerSlot) -> SourceRunner:
        os.environ.update(slot.environment())
        return SourceRunner(self.cfg, self.layout, StageSet.create(self.cfg, slot.device), self.fingerprint)


def crashed_outcome(source: Source, attempts: int, detail: str) -> SourceOutcome:
    row = {
        "source": source.rel, "clip": "", "row_type": "source", "status": "dropped", "stage": "resample",
        "reason": "worker_crashed", "message": f"worker process died {attempts} time(s) on this source ({detail})",
        "output": "", "candidate": "",
    }
    return SourceOutcome(source.rel, [row], 0.0, retry_on_resume=True)


class SequentialExecutor:
    def __init__(self, job: WorkerJob, slot: WorkerSlot | None = None):
        self.job = job
        self.slot = slot or WorkerSlot(0, None)

    def run(self, sources: Iterable[Source]) -> Iterator[SourceOutcome]:
        runner = self.job.make_runner(self.slot)
        for source in sources:
            yield runner.run(source)


class WorkerSetupError(RuntimeError):
    """A worker could not load its stages (bad backend, missing checkpoint, ...)."""


def _worker_main(job: WorkerJob, slot: WorkerSlot, conn: Connection) -> None:
    try:
        runner = job.make_runner(slot)
    except Exception as exc:  # reported to the parent, which stops the run with this message
        conn.send(("setup_error", f"{type(exc).__name__}: {exc}"))
        conn.close()
        return
    conn.send(("ready", None))
    while True:
        task = conn.recv()
        if task is None:
            break
        conn.send(("done", runner.run(task)))
    conn.close()


class LocalProcessExecutor:
    def __init__(self, job: WorkerJob, slots: list[WorkerSlot], max_retries: int = 2,
                 on_crash: Callable[[Source, int], None] | None = None):
        self.job = job
        self.slots = slots
        self.max_retries = max_retries
        self.on_crash = on_crash
        self._ctx = mp.get_context("spawn")

    def _start(self, slot: WorkerSlot):
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_worker_main, args=(self.job, slot, child), daemon=True,
                                 name=f"syncvid-worker-{slot.index}")
        proc.start()
        child.close()
        return proc, parent

    def run(self, sources: Iterable[Source]) -> Iterator[SourceOutcome]:
        queue = list(sources)[::-1]  # pop() from the end keeps the input order
        attempts: dict[str, int] = {}
        startup_failures = 0
        workers = {}  # slot index -> [proc, conn, slot, current source or None]
        if not queue:
            return
        for slot in self.slots[: max(1, min(len(self.slots), len(queue)))]:
            proc, conn = self._start(slot)
            workers[slot.index] = [proc, conn, slot, None]
        try:
            while workers:
                ready = wait([w[1] for w in workers.values()] + [w[0].sentinel for w in workers.values()])
                for key in list(workers):
                    proc, conn, slot, current = workers[key]
                    message = None
                    if conn in ready:
                        try:
                            message = conn.recv()
                        except (EOFError, OSError):
                            message = None
                    if message is not None:
                        kind, payload = message
                        if kind == "setup_error":
                            raise WorkerSetupError(payload)
                        if kind == "done":
                            workers[key][3] = None
                            yield payload
                        if queue:
                            workers[key][3] = queue.pop()
                            conn.send(workers[key][3])
                        else:
                            conn.send(None)
                            proc.join(timeout=30)
                            del workers[key]
                        continue
                    if proc.sentinel in ready or not proc.is_alive():
                        proc.join(timeout=1)
                        conn.close()
                        del workers[key]
                        if current is None:
                            startup_failures += 1
                            if startup_failures > 3 * len(self.slots):
                                raise WorkerSetupError(f"worker processes keep dying at start (exit code {proc.exitcode})")
                        else:
                            n = attempts[current.rel] = attempts.get(current.rel, 0) + 1
                            if self.on_crash is not None:
                                self.on_crash(current, n)
                            if n > self.max_retries:
                                yield crashed_outcome(current, n, f"exit code {proc.exitcode}")
                            else:
                                queue.append(current)
                        if queue:
                            proc, conn = self._start(slot)
                            workers[key] = [proc, conn, slot, None]
        finally:
            for proc, conn, _, _ in workers.values():
                proc.kill()
                proc.join(timeout=5)
