"""How well a dubbed video's lips follow its audio, measured with the pipeline's sync backends."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

__all__ = ["SyncScore", "score_sync"]


@dataclass(frozen=True)
class SyncScore:
    backend: str
    offset_frames: int  # positive: the audio leads the video
    conf: float


def score_sync(path: str | os.PathLike, overrides: Iterable[str] = ()) -> SyncScore:
    """Offset and confidence of a video with audio, by the sync backend of the pipeline config
    (`landmark` by default; `--set sync.backend=syncnet --set sync.syncnet_checkpoint=…` style
    `overrides` choose another), searching ±`sync.search_frames`."""
    from syncvid.config import load_pipeline_config
    from syncvid.media.decode import read_clip
    from syncvid.sync.backends import SyncInput, create_backend

    params = load_pipeline_config(overrides=list(overrides)).sync
    frames, audio, _, sample_rate = read_clip(path)
    backend = create_backend(params)
    backend.setup()
    if len(frames) < backend.min_frames:
        raise ValueError(f"{path}: {len(frames)} frames; the {backend.name} sync backend needs {backend.min_frames}")
    estimate, _ = backend.measure(SyncInput(frames, None, audio, 0, int(sample_rate)), int(params.search_frames))
    return SyncScore(backend.name, int(estimate.offset), float(estimate.conf))
