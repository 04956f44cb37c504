"""`RayExecutor`: the pipeline's workers as Ray actors, on one machine or on a cluster.

``syncvid pipeline ... --executor ray [--ray_address auto|HOST:PORT]``

* One actor per worker slot of the worker plan (`syncvid.pipeline.devices`): it builds its
  `SourceRunner` once (models load once per worker process) and then processes one source
  per call.  Each actor asks for ``num_cpus=1``, and ``num_gpus=1/per_gpu_num_workers``
  when its slot has a GPU; Ray then pins the actor's process to its GPU
  (CUDA_VISIBLE_DEVICES), so inside it the device is ``cuda:0``.
* Sources go to idle actors: the driver waits (`ray.wait`) on every call in flight and
  hands the next source to whichever actor finished.  Outcomes are yielded as they
  complete; each runner writes its source's completion marker itself, so the driver merges
  the manifest from the markers exactly as with the local executor.
* A source whose actor dies (out of memory, a decoder crash, the process killed, its node
  lost) is retried on a fresh actor, `max_retries` times, then recorded as a
  `worker_crashed` rejection.  Attempts are counted here (Ray's own actor restarts and task
  retries are off), so the limit is exact.
* Without an address a private local Ray instance is started (and stopped at the end) with
  as many CPUs as the plan has workers.  With an address the executor joins that cluster,
  plans the GPU workers against the cluster's GPUs, and leaves the cluster running (a Ray
  already initialised in this process is used as it is).  Every node must see the input
  and output folders at the same paths (shared storage) and have syncvid installed.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from syncvid.pipeline.devices import WorkerPlan, WorkerSlot, plan_workers
from syncvid.pipeline.executors.dispatch import CallResult, WorkerSetupError, dispatch, short_error
from syncvid.pipeline.executors.local import WorkerJob
from syncvid.pipeline.source_runner import SourceOutcome
from syncvid.records import Source

# The private local instance only moves manifest rows between processes: a small object store.
LOCAL_OBJECT_STORE_BYTES = 128 * 1024 * 1024


@dataclass(frozen=True)
class WorkerInfo:
    """Where one actor runs."""

    node_id: str
    hostname: str
    pid: int
    gpu_ids: tuple[str, ...] = ()

    def __str__(self) -> str:
        gpus = f" gpu {','.join(self.gpu_ids)}" if self.gpu_ids else ""
        return f"{self.hostname}:{self.pid}{gpus}"


@dataclass(frozen=True)
class RayPinnedSlot(WorkerSlot):
    """A GPU slot inside a Ray actor: Ray has already set CUDA_VISIBLE_DEVICES for the process."""

    def environment(self) -> dict[str, str]:
        return {}


# ----------------------------------------------------------------------------- pure helpers
def cluster_plan(total_num_workers: int, per_gpu_num_workers: int, needs_gpu: bool,
                 resources: dict[str, float]) -> WorkerPlan:
    """The worker plan for a cluster with `resources` (as `ray.cluster_resources()` reports them)."""
    cpus = int(resources.get("CPU", 0))  # the cluster's cores, for the too-many-workers notice
    return plan_workers(total_num_workers, per_gpu_num_workers, int(resources.get("GPU", 0)), needs_gpu,
                        cpu_count=cpus or None)


def usable_slots(slots: list[WorkerSlot], num_sources: int, cluster_cpus: float) -> list[WorkerSlot]:
    """The slots that get an actor: no more than there are sources, nor than the cluster has CPUs
    (an actor that can never be scheduled would hold its source forever)."""
    if cluster_cpus < 1:
        raise WorkerSetupError("the Ray cluster has no CPU to run a worker on")
    return slots[: max(0, min(len(slots), num_sources, int(cluster_cpus)))]


def actor_options(slot: WorkerSlot, per_gpu_num_workers: int) -> dict:
    """Ray actor options of one worker slot."""
    options = {"num_cpus": 1, "max_restarts": 0, "max_task_retries": 0}
    if slot.gpu is not None:
        options["num_gpus"] = 1.0 / per_gpu_num_workers
    return options


def local_resources(plan: WorkerPlan, total_num_workers: int) -> dict[str, int]:
    """CPUs and GPUs to declare when starting a private local Ray instance for `plan`."""
    gpus = {s.gpu for s in plan.slots if s.gpu is not None}
    return {"num_cpus": max(total_num_workers, len(plan.slots)), "num_gpus": len(gpus)}


def check_shared_paths(job: WorkerJob) -> None:
    """Fail a worker's setup, with the node named, when it cannot see the run's folders."""
    host = socket.gethostname()
    input_dir = Path(job.cfg.run.input_dir)
    if not input_dir.is_dir():
        raise WorkerSetupError(f"input folder {input_dir} is not visible on node {host}: "
                               "every node must see the inputs at the same path (shared storage)")
    root = job.layout.root
    if not root.is_dir() or not os.access(root, os.W_OK):
        raise WorkerSetupError(f"output folder {root} is not writable on node {host}: "
                               "every node must see the output root at the same path (shared storage)")


# ----------------------------------------------------------------------------- the actor body
class SourceWorker:
    """The body of one Ray actor: builds its runner once (`setup`), then `run`s one source per call."""

    def __init__(self, job: WorkerJob, slot: WorkerSlot):
        self.job = job
        self.slot = slot
        self.runner = None

    def setup(self) -> WorkerInfo:
        import ray

        gpu_ids = tuple(str(g) for g in ray.get_gpu_ids())
        slot = self.slot
        if slot.gpu is not None:
            assigned = gpu_ids[0] if gpu_ids else str(slot.gpu)
            slot = RayPinnedSlot(slot.index, int(assigned) if assigned.isdigit() else 0)
        check_shared_paths(self.job)
        self.runner = self.job.make_runner(slot)
        return WorkerInfo(ray.get_runtime_context().get_node_id(), socket.gethostname(), os.getpid(), gpu_ids)

    def run(self, source: Source) -> SourceOutcome:
        return self.runner.run(source)


# ----------------------------------------------------------------------------- the pool
class RayPool:
    """`WorkerPool` on Ray actors."""

    def __init__(self, ray, job: WorkerJob, per_gpu_num_workers: int):
        self.ray = ray
        self.per_gpu_num_workers = per_gpu_num_workers
        self.actor_class = ray.remote(SourceWorker)
        self.job_ref = ray.put(job)  # stored once, handed to every actor

    def start(self, slot: WorkerSlot):
        options = actor_options(slot, self.per_gpu_num_workers)
        return self.actor_class.options(**options).remote(self.job_ref, slot)

    def setup(self, handle):
        return handle.setup.remote()

    def submit(self, handle, source: Source):
        return handle.run.remote(source)

    def next_done(self, calls: list):
        ready, _ = self.ray.wait(calls, num_returns=1)
        return ready[0]

    def result(self, call) -> CallResult:
        from ray import exceptions as rx

        died = tuple(getattr(rx, name) for name in ("RayActorError", "WorkerCrashedError", "NodeDiedError",
                                                    "OutOfMemoryError", "ObjectLostError", "ActorUnschedulableError")
                     if hasattr(rx, name))
        try:
            return CallResult("ok", self.ray.get(call))
        except rx.RayTaskError as exc:  # the call raised inside a live worker
            cause = getattr(exc, "cause", None)
            if isinstance(cause, WorkerSetupError):
                return CallResult("failed", str(cause))
            return CallResult("failed", short_error(cause if cause is not None else exc))
        except died as exc:
            return CallResult("died", short_error(exc))

    def stop(self, handle) -> None:
        try:
            self.ray.kill(handle, no_restart=True)
        except Exception:  # already gone: nothing left to stop
            pass


def import_ray():
    try:
        import ray
    except ImportError:
        from syncvid.errors import UsageError

        raise UsageError("--executor ray needs the 'ray' package: pip install 'syncvid[ray]'") from None
    return ray


class RayExecutor:
    """Runs `WorkerJob`'s runner on Ray actors; see the module docstring."""

    def __init__(self, job: WorkerJob, plan: WorkerPlan, address: str | None = None, max_retries: int = 2,
                 needs_gpu: bool | None = None, notice: Callable[[str], None] | None = None):
        self.job = job
        self.plan = plan
        self.address = address or None
        self.max_retries = max_retries
        self.needs_gpu = needs_gpu
        self.notice = notice or (lambda message: None)
        self.placements: dict[str, WorkerInfo] = {}

    def _connect(self, ray) -> tuple[bool, bool]:
        """Connect to Ray: (whether this executor called ray.init and must shut it down,
        whether that started a private local instance sized from the plan)."""
        if ray.is_initialized():  # the caller set Ray up: use it as it is
            return False, False
        if self.address:
            ray.init(address=self.address, logging_level="WARNING")
            return True, False
        ray.init(address="local", include_dashboard=False, logging_level="WARNING",
                 object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                 **local_resources(self.plan, self.job.cfg.run.total_num_workers))
        return True, True

    def run(self, sources: Iterable[Source]) -> Iterator[SourceOutcome]:
        sources = list(sources)
        if not sources:
            return
        ray = import_ray()
        connected, local = self._connect(ray)
        try:
            resources = ray.cluster_resources()
            plan = self.plan
            if not local and self.needs_gpu is not None:
                run = self.job.cfg.run
                plan = cluster_plan(run.total_num_workers, run.per_gpu_num_workers, self.needs_gpu, resources)
            if plan.notice:
                self.notice(plan.notice)
            slots = usable_slots(plan.slots, len(sources), resources.get("CPU", 0))
            nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
            self.notice(f"ray: {len(slots)} worker(s) on a cluster of {nodes} node(s), "
                        f"{resources.get('CPU', 0):g} CPU(s), {resources.get('GPU', 0):g} GPU(s)")
            pool = RayPool(ray, self.job, self.job.cfg.run.per_gpu_num_workers)
            yield from dispatch(pool, slots, sources, self.max_retries, on_crash=self._on_crash,
                                placements=self.placements)
            if self.placements:
                nodes_used = {info.node_id for info in self.placements.values()}
                self.notice(f"ray: {len(self.placements)} source(s) ran on {len(nodes_used)} node(s)")
        finally:
            if connected:  # stops a private local instance; only disconnects from a cluster
                ray.shutdown()

    def _on_crash(self, source: Source, attempt: int, detail: str) -> None:
        self.notice(f"worker died on {source.rel} (attempt {attempt}): {detail}")
