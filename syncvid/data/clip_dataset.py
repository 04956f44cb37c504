"""What the UNet and SyncNet datasets share: the clip index, the mel cache, the pixels.

A dataset is built from a training config (`cfg.data` names the clips and the shapes).
At construction every clip is probed once (container index only); clips that cannot be
opened, have no audio, run at another frame rate or are too short for a sample are
skipped up front and counted by reason in `skipped`, and the counts are logged.

Sampling is a pure function of (seed, index): `dataset[i]` uses clip `i mod len(clips)`
and a generator seeded with (seed, i), so indices beyond `len(dataset)` give further,
different samples of the same clips (the training loop's epochs), any worker returns the
same sample for the same index, and a resumed run continues the exact sequence.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

import av
import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from syncvid.data.clips import ClipInfo, clip_info, read_audio, read_frame_windows
from syncvid.data.fileslist import resolve_clip_paths
from syncvid.data.mel import (
    MelParams,
    crop_mel_window,
    load_mel_params,
    max_window_start,
    mel_window_length,
    melspectrogram,
)
from syncvid.data.mel_cache import MelCache

__all__ = ["ClipDataset", "frames_to_pixels", "option"]

log = logging.getLogger(__name__)

_SPLIT_CODES = {"train": 0, "val": 1}


def option(section: Any, key: str, default: Any) -> Any:
    """`section.key` when the config defines it (and it is not null), else `default`."""
    value = getattr(section, key, None)
    return default if value is None else value


def frames_to_pixels(frames: np.ndarray, resolution: int) -> np.ndarray:
    """uint8 [f, h, w, 3] → float32 [f, 3, r, r] in [-1, 1], resized when h or w ≠ r.

    Shrinking uses area averaging, enlarging bilinear interpolation.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames [f, h, w, 3], got {frames.shape}")
    f, h, w, _ = frames.shape
    if (h, w) != (resolution, resolution):
        interp = cv2.INTER_AREA if resolution < min(h, w) else cv2.INTER_LINEAR
        frames = np.stack([cv2.resize(fr, (resolution, resolution), interpolation=interp) for fr in frames])
    pixels = frames.astype(np.float32) * (2.0 / 255.0) - 1.0
    return np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))


class ClipDataset(Dataset):
    """Base class: clip index, per-index RNG, cached mel spectrograms, frame windows.

    Subclasses set `min_windows` (a clip needs `min_windows · num_frames` frames) and
    implement `__getitem__`.
    """

    min_windows = 2
    name = "ClipDataset"

    def __init__(
        self,
        cfg: Any,
        split: str = "train",
        *,
        paths: Sequence[str] | None = None,
        num_samples: int | None = None,
        seed: int | None = None,
        mel_params: MelParams | None = None,
    ) -> None:
        if split not in _SPLIT_CODES:
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        data = cfg.data
        self.split = split
        self.num_frames = int(data.num_frames)
        self.resolution = int(data.resolution)
        self.video_fps = int(data.video_fps)
        self.sample_rate = int(data.audio_sample_rate)
        self.mel_params = mel_params or load_mel_params(option(data, "audio_config_path", None) or None)
        if self.mel_params.sample_rate != self.sample_rate:
            raise ValueError(
                f"data.audio_sample_rate ({self.sample_rate}) differs from the audio config's "
                f"sample_rate ({self.mel_params.sample_rate})"
            )
        self.mel_fps: Fraction = self.mel_params.frames_per_second
        self.mel_window = mel_window_length(self.num_frames, self.video_fps, self.mel_fps)
        run = getattr(cfg, "run", None)
        self.seed = int(seed if seed is not None else option(run, "seed", 0))
        self._split_code = _SPLIT_CODES[split]

        if paths is None:
            if split == "train":
                paths = resolve_clip_paths(
                    option(data, "train_fileslist", ""), option(data, "train_data_dir", ""),
                    ("data.train_fileslist", "data.train_data_dir"),
                )
            else:
                paths = resolve_clip_paths(
                    option(data, "val_fileslist", ""), option(data, "val_data_dir", ""),
                    ("data.val_fileslist", "data.val_data_dir"),
                )
        self.mel_cache = MelCache(self._cache_dir(data), self.mel_params)
        self.clips, self.skipped = self._index(list(paths))
        if not self.clips:
            detail = ", ".join(f"{k}: {len(v)}" for k, v in self.skipped.items()) or "no clips listed"
            raise ValueError(f"{self.name}({split}): no usable clips ({detail})")
        if num_samples is not None and num_samples <= 0:
            raise ValueError(f"num_samples must be positive, got {num_samples}")
        self.num_samples = num_samples

    # ---- construction -------------------------------------------------------------------

    @staticmethod
    def _cache_dir(data: Any) -> Path:
        configured = option(data, "audio_mel_cache_dir", "")
        if configured:
            return Path(configured).expanduser()
        return Path(option(data, "train_output_dir", "") or ".") / "mel_cache"

    @property
    def min_frames(self) -> int:
        """Frames (with audio under them) a clip needs to yield a sample."""
        return self.min_windows * self.num_frames

    def _index(self, paths: list[str]) -> tuple[list[ClipInfo], dict[str, list[str]]]:
        clips: list[ClipInfo] = []
        skipped: dict[str, list[str]] = {}
        for path in paths:
            reason = None
            info = None
            if not os.path.isfile(path):
                reason = "missing"
            else:
                try:
                    info = clip_info(path)
                except (av.FFmpegError, OSError, ValueError) as exc:
                    log.debug("cannot open %s: %s", path, exc)
                    reason = "unreadable"
            if info is not None:
                if info.audio_seconds <= 0:
                    reason = "no_audio"
                elif info.fps != self.video_fps:
                    reason = "fps_mismatch"
                elif info.usable_frames() < self.min_frames:
                    reason = "too_short"
            if reason is None and info is not None:
                clips.append(info)
            else:
                skipped.setdefault(str(reason), []).append(path)
        counts = Counter({k: len(v) for k, v in skipped.items()})
        if counts:
            log.warning(
                "%s(%s): %d clips usable, %d skipped (%s; a sample needs %d frames)",
                self.name, self.split, len(clips), sum(counts.values()),
                ", ".join(f"{k}: {n}" for k, n in sorted(counts.items())), self.min_frames,
            )
        else:
            log.info("%s(%s): %d clips", self.name, self.split, len(clips))
        return clips, skipped

    # ---- per-sample helpers -------------------------------------------------------------

    def __len__(self) -> int:
        return self.num_samples if self.num_samples is not None else len(self.clips)

    def clip_for(self, index: int) -> ClipInfo:
        if index < 0:
            raise IndexError(f"negative sample index {index}")
        return self.clips[index % len(self.clips)]

    def rng_for(self, index: int) -> np.random.Generator:
        """The generator that decides everything random about sample `index`."""
        return np.random.default_rng([self.seed, self._split_code, int(index)])

    def _compute_mel(self, path: str) -> np.ndarray:
        return melspectrogram(read_audio(path, self.sample_rate), self.mel_params)

    def clip_mel(self, clip: ClipInfo) -> np.ndarray:
        """The clip's full mel spectrogram [num_mels, T] (cached on disk)."""
        return self.mel_cache.get(clip.path, self._compute_mel)

    def last_start(self, clip: ClipInfo, mel: np.ndarray) -> int:
        """Largest window start whose frames and mel window both exist."""
        last = max_window_start(clip.num_frames, mel.shape[-1], self.num_frames, self.video_fps, self.mel_fps)
        if last < 0:
            raise ValueError(
                f"{clip.path}: its audio ({mel.shape[-1]} mel frames) is too short for a "
                f"{self.num_frames}-frame window"
            )
        return last

    def mel_window_at(self, mel: np.ndarray, start_frame: int) -> torch.Tensor:
        """Mel window [1, num_mels, L] for video frames [start_frame, start_frame+num_frames)."""
        window = crop_mel_window(mel, start_frame, self.num_frames, self.video_fps, self.mel_fps)
        return torch.from_numpy(np.ascontiguousarray(window)).unsqueeze(0)

    def pixels_at(self, clip: ClipInfo, *starts: int) -> list[np.ndarray]:
        """For each start, frames [start, start+num_frames) as float32 [f, 3, r, r] in [-1, 1]."""
        windows = read_frame_windows(clip.path, list(starts), self.num_frames)
        return [frames_to_pixels(w, self.resolution) for w in windows]

    @staticmethod
    def worker_init_fn(worker_id: int) -> None:
        """DataLoader hook: one compute thread per worker (the workers are the parallelism)."""
        torch.set_num_threads(1)
        cv2.setNumThreads(1)
