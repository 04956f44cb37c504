"""The one dispatch loop every worker pool runs: the local processes, Ray actors and `rescore`'s pool.

`dispatch` hands tasks to idle workers, one task per worker at a time, and yields results as they
complete.  A worker that dies (out of memory, a decoder crash, kill -9, a lost node) or whose call
raises is replaced by a fresh one and its task retried, `max_retries` times; then `give_up` turns
the task into its final result (for sources: a `worker_crashed` rejection that a resume retries) —
never an endless loop, never a lost task.  A worker whose setup raises stops the run
(`WorkerSetupError`); workers that keep dying at start stop it too.
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Iterable, Iterator, Literal, NamedTuple, Protocol

from syncvid.pipeline.devices import WorkerSlot
from syncvid.pipeline.source_runner import SourceOutcome
from syncvid.records import Source
from syncvid.rows import Reason, RowType, Status

__all__ = ["STARTUP_FAILURES_PER_SLOT", "CallResult", "WorkerPool", "WorkerSetupError", "crashed_outcome", "dispatch",
           "short_error"]

# A worker slot that cannot start this many times (per slot) stops the run.
STARTUP_FAILURES_PER_SLOT = 3


class CallResult(NamedTuple):
    """What a pool says of one finished call: "ok" with the call's value; "died" (the worker process
    is gone) or "failed" (the call raised) with a one-line detail."""

    status: Literal["ok", "died", "failed"]
    value: object


class WorkerSetupError(RuntimeError):
    """A worker could not load its stages (bad backend, missing checkpoint, unreachable folders...)."""


class WorkerPool(Protocol):
    """What `dispatch` needs from a set of workers: start/stop them, submit calls, wait for results."""

    def start(self, slot: WorkerSlot) -> object: ...
    def setup(self, handle: object) -> object: ...
    def submit(self, handle: object, task: object) -> object: ...
    def next_done(self, calls: list) -> object: ...
    def result(self, call: object) -> CallResult: ...
    def stop(self, handle: object) -> None: ...


def short_error(exc: BaseException, limit: int = 200) -> str:
    """One line naming a failure: the exception type and the first line of its message."""
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def crashed_outcome(source: Source, attempts: int, detail: str) -> SourceOutcome:
    """The final outcome of a source whose worker died `attempts` times on it."""
    row = {
        "source": source.rel, "clip": "", "row_type": RowType.SOURCE, "status": Status.DROPPED, "stage": "resample",
        "reason": Reason.WORKER_CRASHED, "message": f"worker process died {attempts} time(s) on this source ({detail})",
        "output": "", "candidate": "",
    }
    return SourceOutcome(source.rel, [row], 0.0, retry_on_resume=True)


def dispatch(pool: WorkerPool, slots: list[WorkerSlot], tasks: Iterable, max_retries: int,
             on_crash: Callable[[object, int, str], None] | None = None,
             placements: dict | None = None,
             give_up: Callable[[object, int, str], object] = crashed_outcome,
             key: Callable[[object], str] = lambda task: task.rel) -> Iterator:
    """Run every task on the pool's workers; yield results as they complete (see the module doc).

    `placements`, when given, maps each task's key to what its worker's setup returned (where it ran)."""
    pending = deque(tasks)
    if not pending or not slots:
        return
    attempts: dict[str, int] = {}
    startup_failures = 0
    workers: dict[int, list] = {}  # slot index -> [handle, setup value or None]
    in_flight: dict[object, tuple[WorkerSlot, object]] = {}  # call -> (slot, task; None = setup)

    def start(slot: WorkerSlot) -> None:
        handle = pool.start(slot)
        workers[slot.index] = [handle, None]
        in_flight[pool.setup(handle)] = (slot, None)

    def retire(slot: WorkerSlot) -> None:
        handle, _ = workers.pop(slot.index)
        pool.stop(handle)

    for slot in slots[: len(pending)]:
        start(slot)
    try:
        while in_flight:
            call = pool.next_done(list(in_flight))
            slot, task = in_flight.pop(call)
            status, value = pool.result(call)
            if status != "ok":
                retire(slot)
                if task is None:
                    if status == "failed":
                        raise WorkerSetupError(str(value))
                    startup_failures += 1
                    if startup_failures > STARTUP_FAILURES_PER_SLOT * len(slots):
                        raise WorkerSetupError(f"workers keep dying at start ({value})")
                else:
                    n = attempts[key(task)] = attempts.get(key(task), 0) + 1
                    if on_crash is not None:
                        on_crash(task, n, str(value))
                    if n > max_retries:
                        yield give_up(task, n, str(value))
                    else:
                        pending.appendleft(task)
                if pending:
                    start(slot)
                continue
            handle, info = workers[slot.index]
            if task is None:
                workers[slot.index][1] = value
            else:
                if placements is not None and info is not None:
                    placements[key(task)] = info
                yield value
            if pending:
                nxt = pending.popleft()
                in_flight[pool.submit(handle, nxt)] = (slot, nxt)
            else:
                retire(slot)
    finally:
        for handle, _ in workers.values():
            pool.stop(handle)
