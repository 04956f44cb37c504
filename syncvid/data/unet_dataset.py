"""UNet training samples: a window of frames, its masked copy, a reference window, the mel.

Each sample picks a window start s uniformly in [0, T − num_frames] (`data.window_rule:
full`, LatentSync's rule since its 1.5 release; `inset` keeps the older
[num_frames//2, T − num_frames − num_frames//2]) and a reference window of the same clip
that does not overlap it (its start r satisfies |r − s| ≥ num_frames).  A clip needs
3·num_frames frames, as in LatentSync.

Sample (LatentSync's keys):
  gt_pixel_values      float32 [f, 3, r, r] in [-1, 1]
  masked_pixel_values  gt · mask (masked pixels are 0)
  masks                float32 [f, 1, r, r]: 1 = kept, 0 = masked (to be generated)
  ref_pixel_values     float32 [f, 3, r, r], the reference window, unmasked
  mel                  float32 [1, num_mels, mel_window] under frames [s, s+f)
  audio_embeds         float32 [f, 10·(layers+1), D]: Whisper conditioning of the window
                       (only when the dataset is given `audio_features`; computed and cached
                       per clip in the worker process)
  video_path, start_idx (s), ref_start_idx (r)

The mask is, in order of precedence: the `mask` argument (a `MaskSpec` or an [r, r]
array), the image at data.mask_image_path (white = keep), a `MaskSpec` built from a
data.mask section when the config has one, or the default lower-half mask.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from syncvid.data.clip_dataset import ClipDataset, option
from syncvid.data.masks import MaskSpec, apply_mask, load_mask_image, lower_face_mask
from syncvid.data.mel import MelParams
from syncvid.data.unet_audio import AudioFeatures

__all__ = ["UNetDataset", "reference_starts", "WINDOW_RULES"]

WINDOW_RULES = ("full", "inset")

_MASK_KEYS = ("shape", "top", "bottom", "left", "right", "feather")


def reference_starts(num_video_frames: int, num_frames: int, start: int) -> np.ndarray:
    """Starts of every window of the clip that does not overlap [start, start+num_frames)."""
    candidates = np.arange(0, num_video_frames - num_frames + 1)
    return candidates[np.abs(candidates - start) >= num_frames]


class UNetDataset(ClipDataset):
    """UNet samples from the clips `cfg.data` names (see the module docstring)."""

    min_windows = 3
    name = "UNetDataset"

    def __init__(
        self,
        cfg: Any,
        split: str = "train",
        *,
        paths: Sequence[str] | None = None,
        num_samples: int | None = None,
        seed: int | None = None,
        mel_params: MelParams | None = None,
        mask: MaskSpec | np.ndarray | None = None,
        audio_features: AudioFeatures | None = None,
    ) -> None:
        super().__init__(cfg, split, paths=paths, num_samples=num_samples, seed=seed, mel_params=mel_params)
        self.mask = self._build_mask(cfg.data, mask)
        self.window_rule = str(option(cfg.data, "window_rule", "full"))
        if self.window_rule not in WINDOW_RULES:
            raise ValueError(f"data.window_rule must be one of {', '.join(WINDOW_RULES)}, got {self.window_rule!r}")
        self.audio_features = audio_features

    def _build_mask(self, data: Any, mask: MaskSpec | np.ndarray | None) -> np.ndarray:
        r = self.resolution
        if isinstance(mask, np.ndarray):
            if mask.shape != (r, r):
                raise ValueError(f"mask of shape {mask.shape} does not match resolution {r}")
            return mask.astype(np.float32)
        if isinstance(mask, MaskSpec):
            return lower_face_mask(r, r, mask)
        image_path = option(data, "mask_image_path", "")
        if image_path:
            return load_mask_image(image_path, r)
        section = getattr(data, "mask", None)
        if section is not None and not isinstance(section, str):
            values = {k: getattr(section, k) for k in _MASK_KEYS if getattr(section, k, None) is not None}
            return lower_face_mask(r, r, MaskSpec(**values))
        return lower_face_mask(r, r, MaskSpec())

    def choose_windows(self, num_video_frames: int, last_start: int, rng: np.random.Generator) -> tuple[int, int]:
        """(window start, reference start) for one sample; a pure function of its inputs."""
        lo = self.num_frames // 2 if self.window_rule == "inset" else 0
        hi = min(num_video_frames - self.num_frames - lo, last_start)
        if hi < lo:
            raise ValueError(
                f"clip of {num_video_frames} frames has no window start in [{lo}, {hi}] "
                f"(needs {self.min_frames} frames with audio)"
            )
        start = int(rng.integers(lo, hi + 1))
        ref_start = int(rng.choice(reference_starts(num_video_frames, self.num_frames, start)))
        return start, ref_start

    def __getitem__(self, index: int) -> dict[str, Any]:
        clip = self.clip_for(index)
        rng = self.rng_for(index)
        mel = self.clip_mel(clip)
        start, ref_start = self.choose_windows(clip.num_frames, self.last_start(clip, mel), rng)
        gt, ref = self.pixels_at(clip, start, ref_start)
        masked, masks = apply_mask(gt, self.mask)
        sample = {
            "gt_pixel_values": torch.from_numpy(gt),
            "masked_pixel_values": torch.from_numpy(masked),
            "ref_pixel_values": torch.from_numpy(ref),
            "masks": torch.from_numpy(masks),
            "mel": self.mel_window_at(mel, start),
            "video_path": clip.path,
            "start_idx": start,
            "ref_start_idx": ref_start,
        }
        if self.audio_features is not None:
            sample["audio_embeds"] = self.audio_features.window(clip.path, start, self.num_frames)
        return sample
