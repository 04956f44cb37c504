"""`ProcessPool`: a `WorkerPool` of spawned local processes, each holding one worker.

A worker factory (picklable, with `make_worker(slot)`) builds the worker inside its process once;
the worker's `run(task)` then handles one task per call.  Workers ignore Ctrl-C and SIGTERM's
default death is kept: the parent alone decides when they stop, so an interrupted run prints one
line, not a traceback per worker.  On Linux a worker also dies with its parent (never an orphan
that keeps writing after the run was killed).
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import sys
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Callable

from syncvid.pipeline.devices import WorkerSlot
from syncvid.pipeline.executors.dispatch import CallResult, short_error

__all__ = ["ProcessPool"]

# How long a worker that was asked to stop may take before it is killed.
STOP_GRACE_S = 5.0


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def _process_main(factory, slot: WorkerSlot, conn: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    try:
        worker = factory.make_worker(slot)
    except Exception as exc:  # reported to the parent, which stops the run with this message
        conn.send(("error", short_error(exc, limit=300)))
        conn.close()
        return
    if hasattr(worker, "on_progress"):
        worker.on_progress = lambda value: conn.send(("progress", value))
    conn.send(("ok", None))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            break
        if task is None:
            break
        try:
            result = worker.run(task)
        except Exception as exc:  # a failed call: the parent retries the task on a fresh worker
            conn.send(("error", short_error(exc, limit=300)))
            break
        conn.send(("ok", result))
    conn.close()


@dataclass(eq=False)
class _Handle:
    proc: mp.process.BaseProcess
    conn: Connection
    busy: bool = False


@dataclass(eq=False)
class _Call:
    handle: _Handle
    message: tuple = field(default=())


class ProcessPool:
    """`WorkerPool` on spawned processes.  `on_progress(handle_id, value)` receives what a worker
    reports while it runs a task (e.g. the fraction of its source done)."""

    def __init__(self, factory, name: str = "syncvid-worker",
                 on_progress: Callable[[int, object], None] | None = None):
        self.factory = factory
        self.name = name
        self.on_progress = on_progress
        self._ctx = mp.get_context("spawn")

    def start(self, slot: WorkerSlot) -> _Handle:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_process_main, args=(self.factory, slot, child), daemon=True,
                                 name=f"{self.name}-{slot.index}")
        proc.start()
        child.close()
        return _Handle(proc, parent, busy=True)

    def setup(self, handle: _Handle) -> _Call:
        return _Call(handle)

    def submit(self, handle: _Handle, task) -> _Call:
        handle.busy = True
        handle.conn.send(task)
        return _Call(handle)

    def next_done(self, calls: list) -> _Call:
        while True:
            by_conn = {c.handle.conn: c for c in calls}
            by_sentinel = {c.handle.proc.sentinel: c for c in calls}
            ready = wait(list(by_conn) + list(by_sentinel))
            for obj in ready:
                call = by_conn.get(obj) or by_sentinel[obj]
                conn = call.handle.conn
                if obj in by_sentinel and not conn.poll():
                    call.handle.proc.join(timeout=1)
                    call.message = ("died", f"exit code {call.handle.proc.exitcode}")
                    return call
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    call.handle.proc.join(timeout=1)
                    call.message = ("died", f"exit code {call.handle.proc.exitcode}")
                    return call
                if message[0] == "progress":
                    if self.on_progress is not None:
                        self.on_progress(id(call.handle), message[1])
                    break  # wait again: the call is still running
                call.message = message
                return call

    def result(self, call: _Call) -> CallResult:
        kind, payload = call.message
        call.handle.busy = False
        if kind == "ok":
            return CallResult("ok", payload)
        return CallResult("failed" if kind == "error" else "died", payload)

    def stop(self, handle: _Handle) -> None:
        proc = handle.proc
        if proc.is_alive() and not handle.busy:
            try:
                handle.conn.send(None)
            except (OSError, ValueError):
                pass
            proc.join(timeout=STOP_GRACE_S)
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=STOP_GRACE_S)
        handle.conn.close()
