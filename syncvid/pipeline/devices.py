"""How pipeline workers map to GPUs (the reference's total_num_workers / per_gpu_num_workers).

* CPU-only backends: `total_num_workers` worker processes, all on the CPU.
* A GPU backend enabled and N GPUs visible: `N * per_gpu_num_workers` workers, worker i
  pinned to GPU `i % N` (its process sees only that GPU through CUDA_VISIBLE_DEVICES,
  so inside it the device is `cuda:0`).
* A GPU backend enabled but no GPU visible: `total_num_workers` workers on the CPU,
  with a one-line notice instead of a failure.
* More CPU workers than twice the machine's cores: planned as asked, with a one-line notice
  (each worker decodes, detects and encodes on its own core; beyond that they only share them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerSlot:
    index: int
    gpu: int | None  # physical GPU index, None = CPU

    @property
    def device(self) -> str:
        return "cpu" if self.gpu is None else "cuda:0"

    def environment(self) -> dict[str, str]:
        """Environment variables to set in the worker before any GPU library loads."""
        return {} if self.gpu is None else {"CUDA_VISIBLE_DEVICES": str(self.gpu)}


@dataclass(frozen=True)
class WorkerPlan:
    slots: list[WorkerSlot]
    notice: str | None = None


def plan_workers(total_num_workers: int, per_gpu_num_workers: int, num_gpus: int, needs_gpu: bool,
                 cpu_count: int | None = None) -> WorkerPlan:
    """`cpu_count`: the machine's cores (default `os.cpu_count()`), for the too-many-workers notice."""
    if total_num_workers < 1:
        raise ValueError(f"total_num_workers must be at least 1, got {total_num_workers}")
    if per_gpu_num_workers < 1:
        raise ValueError(f"per_gpu_num_workers must be at least 1, got {per_gpu_num_workers}")
    if needs_gpu and num_gpus > 0:
        count = num_gpus * per_gpu_num_workers
        return WorkerPlan([WorkerSlot(i, i % num_gpus) for i in range(count)])
    notices = ["no GPU visible: GPU-capable backends run on the CPU"] if needs_gpu else []
    cores = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    if total_num_workers > 2 * cores:
        notices.append(f"total_num_workers {total_num_workers} is more than twice the {cores} CPU core(s): "
                       "the workers will mostly wait for each other (and each holds its own memory)")
    return WorkerPlan([WorkerSlot(i, None) for i in range(total_num_workers)], notice="; ".join(notices) or None)


def visible_gpu_count() -> int:
    """GPUs this process may use, without importing torch: CUDA_VISIBLE_DEVICES, else nvidia-smi."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return len([d for d in env.split(",") if d.strip() not in ("", "-1")])
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))
