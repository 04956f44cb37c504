"""Pieces every trainer shares: sample order, hold-out split, devices, precision, checkpoints,
learning-rate schedules and the metrics log.

Trainers (SyncNet, UNet) keep their loops; what they have in common lives here so that a
fix reaches both.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

from syncvid.atomic import atomic_path

__all__ = [
    "TrainingSetupError",
    "EpochSampler",
    "split_holdout",
    "pick_device",
    "amp_settings",
    "autocast",
    "save_checkpoint",
    "lr_lambda",
    "MetricsLog",
]

LR_SCHEDULES = ("constant", "constant_with_warmup", "linear", "cosine")


class TrainingSetupError(RuntimeError):
    """The run cannot start: bad data, a config that does not fit the data, a bad checkpoint."""


class EpochSampler(Sampler[int]):
    """Endless sample indices: epoch e visits e·n + (a seeded permutation of 0..n−1).

    Starting at sample `start` (= steps done × global batch size) a resumed run sees the
    same indices an uninterrupted one would; the dataset turns each index into a sample.
    With `num_replicas` > 1 the stream is cut into global batches of
    `batch_size · num_replicas` and replica `rank` takes its own `batch_size` slice of
    each, so that N processes see exactly the samples one process with the global batch
    would see.
    """

    def __init__(
        self, num_items: int, seed: int, start: int = 0, *, batch_size: int = 1, num_replicas: int = 1, rank: int = 0
    ) -> None:
        if num_items <= 0:
            raise ValueError("EpochSampler needs at least one item")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is outside 0..{num_replicas - 1}")
        self.num_items = num_items
        self.seed = seed
        self.start = start
        self.batch_size = batch_size
        self.num_replicas = num_replicas
        self.rank = rank

    def _stream(self) -> Iterator[int]:
        epoch, pos = divmod(self.start, self.num_items)
        while True:
            order = np.random.default_rng([self.seed, epoch]).permutation(self.num_items)
            for p in range(pos, self.num_items):
                yield epoch * self.num_items + int(order[p])
            epoch, pos = epoch + 1, 0

    def __iter__(self) -> Iterator[int]:
        if self.num_replicas == 1:
            yield from self._stream()
            return
        global_batch = self.batch_size * self.num_replicas
        lo, hi = self.rank * self.batch_size, (self.rank + 1) * self.batch_size
        for k, index in enumerate(self._stream()):
            if lo <= k % global_batch < hi:
                yield index

    def __len__(self) -> int:  # the DataLoader asks; the stream itself is endless
        return sys.maxsize


def split_holdout(paths: Sequence[str], fraction: float = 0.1, seed: int = 0) -> tuple[list[str], list[str]]:
    """(train, held out): a fixed `fraction` (at least one) of the clips, chosen by hash.

    The choice depends only on each path and the seed, never on the list's order.
    With fewer than two clips nothing is held out.
    """
    if len(paths) < 2:
        return list(paths), []
    count = max(1, int(round(fraction * len(paths))))
    ranked = sorted(paths, key=lambda p: hashlib.sha1(f"{seed}\0{p}".encode()).hexdigest())
    held = set(ranked[:count])
    return [p for p in paths if p not in held], [p for p in paths if p in held]


def pick_device(device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def amp_settings(enabled: bool, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, whether fp16 loss scaling is needed): bf16 where the GPU
    supports it, else fp16 with a GradScaler; plain fp32 on CPU."""
    if not enabled or device.type != "cuda":
        return None, False
    if torch.cuda.is_bf16_supported():
        return torch.bfloat16, False
    return torch.float16, True


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """torch.save to a temporary name in the same folder, then rename onto `path`."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def lr_lambda(schedule: str, warmup_steps: int, total_steps: int):
    """The multiplier of the base learning rate at each step (for torch's LambdaLR)."""
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"unknown lr_scheduler {schedule!r}; expected one of {', '.join(LR_SCHEDULES)}")
    warmup = max(0, int(warmup_steps))
    total = max(1, int(total_steps))

    def factor(step: int) -> float:
        if schedule != "constant" and step < warmup:
            return (step + 1) / (warmup + 1)
        if schedule in ("constant", "constant_with_warmup"):
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if schedule == "linear":
            return max(0.0, 1.0 - progress)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


class MetricsLog:
    """`metrics.jsonl`: one JSON object per line, appended and flushed as it is written.

    A resumed run first drops the lines of steps after the step it resumes from, so the
    file describes one consistent history.
    """

    def __init__(self, path: str | os.PathLike, resume_step: int | None = None) -> None:
        self.path = Path(path)
        if resume_step is not None and self.path.exists():
            kept = [line for line in self.read() if int(line.get("step", 0)) <= resume_step]
            with atomic_path(self.path) as tmp:
                tmp.write_text("".join(json.dumps(line) + "\n" for line in kept), encoding="utf-8")
        self._file = open(self.path, "a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        lines = []
        for text in self.path.read_text(encoding="utf-8").splitlines():
            if text.strip():
                lines.append(json.loads(text))
        return lines

    def close(self) -> None:
        self._file.close()
