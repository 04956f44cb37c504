"""Synthetic talking-head signals with a known audio-video offset (tests, benchmarks).

A random syllable rhythm (3-6 Hz bumps) drives both the mouth opening of a 68-point
landmark face and the loudness of a speech-band noise carrier.  `synthetic_clip` cuts a
clip whose audio leads its video by `offset` frames (syncnet_python's sign), so an exact
sync estimator must return `offset`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SyntheticClip", "syllable_rhythm", "landmarks_from_opening", "speech_like_audio", "synthetic_clip"]

HOP = 640


@dataclass(frozen=True)
class SyntheticClip:
    landmarks: np.ndarray  # float32 [T, 68, 2]
    frames: np.ndarray  # uint8 [T, r, r, 3] (flat grey: the landmark backend ignores pixels)
    source_audio: np.ndarray  # float32, the whole synthetic source
    audio_start_sample: int  # where the clip's audio starts in source_audio
    offset: int  # true offset (positive = audio leads)

    @property
    def audio(self) -> np.ndarray:
        t = len(self.landmarks)
        return self.source_audio[self.audio_start_sample : self.audio_start_sample + t * HOP]


def syllable_rhythm(num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """Mouth activity in [0, 1] per frame: bumps every 4-8 frames, with pauses."""
    a = np.zeros(num_frames)
    t = int(rng.integers(0, 4))
    while t < num_frames:
        width = rng.uniform(2.0, 4.0)
        height = rng.uniform(0.4, 1.0)
        idx = np.arange(num_frames)
        a += height * np.exp(-0.5 * ((idx - t) / (width / 2.0)) ** 2)
        t += int(rng.integers(4, 9)) + (int(rng.integers(8, 15)) if rng.random() < 0.1 else 0)
    return np.clip(a, 0.0, 1.0)


def landmarks_from_opening(opening: np.ndarray, size: int = 256, rng: np.random.Generator | None = None, jitter: float = 0.3) -> np.ndarray:
    """A frontal 68-point face in a size×size crop whose lips part by `opening`·0.25·eye distance."""
    t = len(opening)
    s = size / 256.0
    base = np.zeros((68, 2))
    base[0:17, 0] = np.linspace(40, 216, 17)
    base[0:17, 1] = 110 + 90 * np.sin(np.linspace(0, np.pi, 17))
    base[17:22] = np.stack([np.linspace(60, 115, 5), np.full(5, 75.0)], 1)
    base[22:27] = np.stack([np.linspace(141, 196, 5), np.full(5, 75.0)], 1)
    base[27:36] = np.stack([np.full(9, 128.0), np.linspace(95, 150, 9)], 1)
    ang = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    base[36:42] = np.stack([88 + 14 * np.cos(ang), 100 + 5 * np.sin(ang)], 1)
    base[42:48] = np.stack([168 + 14 * np.cos(ang), 100 + 5 * np.sin(ang)], 1)
    base[48:60] = np.stack([128 + 30 * np.cos(np.linspace(np.pi, -np.pi, 12, endpoint=False)), np.full(12, 185.0)], 1)
    base[60:68] = np.stack([128 + 20 * np.cos(np.linspace(np.pi, -np.pi, 8, endpoint=False)), np.full(8, 185.0)], 1)
    eye = 80.0
    out = np.repeat(base[None], t, axis=0)
    half = 0.25 * eye * np.asarray(opening, dtype=np.float64) / 2.0
    upper = [49, 50, 51, 52, 53, 61, 62, 63]
    lower = [55, 56, 57, 58, 59, 65, 66, 67]
    out[:, upper, 1] -= half[:, None]
    out[:, lower, 1] += half[:, None]
    if rng is not None and jitter > 0:
        out += rng.normal(0.0, jitter, out.shape)
    return (out * s).astype(np.float32)


def speech_like_audio(activity: np.ndarray, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """Speech-band noise whose loudness follows `activity` (one value per 25 fps frame)."""
    from scipy.signal import butter, sosfilt

    n = len(activity) * HOP
    env = np.interp(np.arange(n) / HOP - 0.5, np.arange(len(activity)), activity)
    sos = butter(4, [300, 3000], btype="band", fs=sample_rate, output="sos")
    carrier = sosfilt(sos, rng.standard_normal(n))
    carrier /= np.abs(carrier).max() + 1e-9
    audio = 0.5 * env * carrier + 0.002 * rng.standard_normal(n)
    return audio.astype(np.float32)


def synthetic_clip(num_frames: int = 125, offset: int = 0, *, margin: int = 40, seed: int = 0, size: int = 256) -> SyntheticClip:
    """A clip of `num_frames` frames whose audio leads the video by `offset` frames,
    with `margin` frames of source audio on each side."""
    rng = np.random.default_rng(seed)
    total = num_frames + 2 * margin
    act = syllable_rhythm(total, rng)
    audio = speech_like_audio(act, rng)
    lm = landmarks_from_opening(act[margin : margin + num_frames], size, rng)
    frames = np.full((num_frames, size, size, 3), 127, dtype=np.uint8)
    return SyntheticClip(lm, frames, audio, (margin + offset) * HOP, offset)
