"""Quality backends behind one small interface, chosen by name in `quality.backends`.

A backend has a `name`, the `metrics` it measures, `setup()` (loads whatever
it needs; may raise naming the missing file) and `score(frames)` which takes
the whole clip [T, r, r, 3] RGB uint8, picks its own frames and returns
{metric: value}.  Modules are imported only when their backend is asked for,
so the default backends never import torch.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from syncvid.config.pipeline_schema import QualitySection
from syncvid.quality.classic import METRICS as CLASSIC_METRICS

BACKEND_NAMES = ("classic", "brisque", "hyperiqa")


class BackendSetupError(RuntimeError):
    """One or more configured quality backends could not be created or set up (each failure named)."""


class QualityBackend(Protocol):
    name: str
    metrics: tuple[str, ...]

    def setup(self) -> None: ...

    def score(self, frames: np.ndarray) -> dict[str, float]: ...


def create_backend(name: str, params: QualitySection) -> QualityBackend:
    """A backend by name, configured from the quality section (not yet set up)."""
    if name == "classic":
        from syncvid.quality.classic import ClassicBackend

        return ClassicBackend(num_frames=params.num_frames)
    if name == "brisque":
        from syncvid.quality.brisque_backend import BrisqueBackend

        return BrisqueBackend(num_frames=params.num_frames, model_dir=params.brisque_model_dir)
    if name == "hyperiqa":
        from syncvid.quality.hyperiqa import HyperIQABackend

        return HyperIQABackend(checkpoint=params.hyperiqa_checkpoint, device=params.device)
    raise ValueError(f"quality.backends: unknown backend {name!r} (known: {', '.join(BACKEND_NAMES)})")


def backend_metrics(name: str) -> tuple[str, ...]:
    """Metrics a backend measures, without importing it."""
    table = {
        "classic": CLASSIC_METRICS,
        "brisque": ("brisque",),
        "hyperiqa": ("hyperiqa",),
    }
    if name not in table:
        raise ValueError(f"quality.backends: unknown backend {name!r} (known: {', '.join(BACKEND_NAMES)})")
    return table[name]


def create_backends(params: QualitySection) -> list[QualityBackend]:
    """All configured backends, set up; every failure is collected into one error."""
    if params.num_frames < 1:
        raise ValueError(f"quality.num_frames must be at least 1, got {params.num_frames}")
    names = list(dict.fromkeys(params.backends))  # drop repeats, keep order
    if not names:
        raise ValueError("quality.backends is empty: name at least one of " + ", ".join(BACKEND_NAMES))
    backends, errors = [], []
    for name in names:
        try:
            backend = create_backend(name, params)
            backend.setup()
            backends.append(backend)
        except (ValueError, FileNotFoundError, ImportError, OSError) as exc:
            errors.append(f"{name}: {exc}")
    if errors:
        raise BackendSetupError("quality backends could not be set up:\n  " + "\n  ".join(errors))
    return backends
