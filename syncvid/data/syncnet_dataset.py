"""SyncNet training pairs: a mel window and 16 face frames, aligned (y=1) or not (y=0).

Each sample picks a window start s in its clip; the mel window always covers video
frames [s, s+num_frames).  With probability ½ the frames are that same window (y = 1);
otherwise they are another window of the same clip, starting at least
`negative_min_shift` frames away (y = 0), as LatentSync's SyncNet dataset does.

Sample (LatentSync's keys plus bookkeeping):
  frames         float32 [num_frames·3, r/2, r] in [-1, 1] (lower half of the aligned face,
                 frames stacked frame-major: channel 3·i + c is colour c of frame i);
                 [num_frames·3, r, r] when data.lower_half is false
  audio_samples  float32 [1, num_mels, mel_window] (52 mel frames for 16 video frames)
  y              float32 [1]: 1.0 aligned, 0.0 shifted
  video_path     the clip
  start_idx      first video frame under the mel window
  frames_start_idx  first video frame of `frames` (== start_idx when y = 1)
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from syncvid.data.clip_dataset import ClipDataset, option
from syncvid.data.mel import MelParams

__all__ = ["SyncNetDataset", "stack_frames"]


def stack_frames(pixels: np.ndarray, lower_half: bool) -> np.ndarray:
    """[f, c, h, w] → [f·c, h, w] (frame-major), keeping rows h//2: when `lower_half`."""
    f, c, h, w = pixels.shape
    stacked = pixels.reshape(f * c, h, w)
    return np.ascontiguousarray(stacked[:, h // 2 :, :] if lower_half else stacked)


class SyncNetDataset(ClipDataset):
    """Aligned/shifted (mel, frames) pairs from the clips `cfg.data` names.

    `split="val"` reads data.val_fileslist / data.val_data_dir instead of the training
    clips; `paths` overrides both.  `num_samples` sets the length (default: one sample
    per clip); any index ≥ 0 is valid (see `ClipDataset`).
    """

    min_windows = 2
    name = "SyncNetDataset"

    def __init__(
        self,
        cfg: Any,
        split: str = "train",
        *,
        paths: Sequence[str] | None = None,
        num_samples: int | None = None,
        seed: int | None = None,
        mel_params: MelParams | None = None,
        negative_min_shift: int = 1,
    ) -> None:
        super().__init__(cfg, split, paths=paths, num_samples=num_samples, seed=seed, mel_params=mel_params)
        if negative_min_shift < 1:
            raise ValueError(f"negative_min_shift must be >= 1, got {negative_min_shift}")
        if negative_min_shift > self.num_frames:
            raise ValueError(
                f"negative_min_shift ({negative_min_shift}) must not exceed num_frames ({self.num_frames})"
            )
        self.negative_min_shift = int(negative_min_shift)
        self.lower_half = bool(option(cfg.data, "lower_half", True))

    def choose_windows(self, num_video_frames: int, last_start: int, rng: np.random.Generator) -> tuple[int, int, bool]:
        """(audio start, frames start, aligned) for one sample; a pure function of its inputs."""
        start = int(rng.integers(0, last_start + 1))
        aligned = bool(rng.random() < 0.5)
        if aligned:
            return start, start, True
        candidates = np.arange(0, num_video_frames - self.num_frames + 1)
        candidates = candidates[np.abs(candidates - start) >= self.negative_min_shift]
        return start, int(rng.choice(candidates)), False

    def __getitem__(self, index: int) -> dict[str, Any]:
        clip = self.clip_for(index)
        rng = self.rng_for(index)
        mel = self.clip_mel(clip)
        start, frames_start, aligned = self.choose_windows(clip.num_frames, self.last_start(clip, mel), rng)
        (pixels,) = self.pixels_at(clip, frames_start)
        return {
            "frames": torch.from_numpy(stack_frames(pixels, self.lower_half)),
            "audio_samples": self.mel_window_at(mel, start),
            "y": torch.tensor([1.0 if aligned else 0.0], dtype=torch.float32),
            "video_path": clip.path,
            "start_idx": start,
            "frames_start_idx": frames_start,
        }
