"""Worker jobs for the Ray executor tests.

Ray worker processes import this module by name (the tests put its folder on PYTHONPATH of
every Ray node), so it must stay importable on its own: no pytest, no relative imports.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from syncvid.pipeline.devices import WorkerSlot
from syncvid.pipeline.executors import WorkerJob
from syncvid.pipeline.source_runner import SourceOutcome
from syncvid.records import Source


class _CrashingRunner:
    def __init__(self, runner, crashes: dict[str, int], counter_dir: Path):
        self.runner = runner
        self.crashes = crashes
        self.counter_dir = counter_dir

    def run(self, source: Source) -> SourceOutcome:
        times = self.crashes.get(source.rel, 0)
        if times:
            counter = self.counter_dir / (source.rel.replace("/", "__") + ".attempts")
            with open(counter, "a", encoding="utf-8") as f:
                f.write(f"{os.getpid()}\n")
            if len(counter.read_text(encoding="utf-8").splitlines()) <= times:
                os._exit(1)  # the worker process dies abruptly, as on a decoder crash
        return self.runner.run(source)


@dataclass(frozen=True)
class CrashingJob(WorkerJob):
    """The real pipeline job, except that the worker process dies the first N times it is given
    some sources (`crashes`: (source rel, N) pairs); every attempt is logged in `counter_dir`."""

    crashes: tuple[tuple[str, int], ...] = ()
    counter_dir: str = ""

    def make_runner(self, slot: WorkerSlot):
        return _CrashingRunner(super().make_runner(slot), dict(self.crashes), Path(self.counter_dir))


class _DeviceProbeRunner:
    def __init__(self, slot: WorkerSlot):
        self.slot = slot

    def run(self, source: Source) -> SourceOutcome:
        row = {"source": source.rel, "clip": "", "row_type": "source", "status": "kept", "stage": "quality",
               "device": self.slot.device, "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
               "slot_gpu": self.slot.gpu}
        return SourceOutcome(source.rel, [row])


@dataclass(frozen=True)
class DeviceProbeJob(WorkerJob):
    """Reports, per source, the device and CUDA_VISIBLE_DEVICES its worker was given (no stages run)."""

    def make_runner(self, slot: WorkerSlot):
        os.environ.update(slot.environment())
        return _DeviceProbeRunner(slot)


@dataclass(frozen=True)
class BrokenSetupJob(WorkerJob):
    """A job whose workers cannot start (as with a missing model checkpoint)."""

    def make_runner(self, slot: WorkerSlot):
        raise FileNotFoundError("checkpoint syncnet_v2.model not found")


@dataclass(frozen=True)
class CrashingProbeJob(DeviceProbeJob):
    """`DeviceProbeJob` whose worker dies the first N times it is given some sources, or raises on
    `fails` (no stages run: executor tests without decoding)."""

    crashes: tuple[tuple[str, int], ...] = ()
    fails: tuple[str, ...] = ()
    counter_dir: str = ""

    def make_runner(self, slot: WorkerSlot):
        runner = _CrashingRunner(super().make_runner(slot), dict(self.crashes), Path(self.counter_dir))
        return _FailingRunner(runner, self.fails)


class _FailingRunner:
    def __init__(self, runner, fails: tuple[str, ...]):
        self.runner = runner
        self.fails = fails

    def run(self, source: Source) -> SourceOutcome:
        if source.rel in self.fails:
            raise RuntimeError(f"decoder exploded on {source.rel}\nsecond line of detail")
        return self.runner.run(source)
