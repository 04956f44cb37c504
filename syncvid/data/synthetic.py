"""Synthetic talking clips with known audio–mouth correspondence, for tests and smoke runs.

`talking_clip` draws a random "syllable" envelope (one opening value in [0, 1] per video
frame), voices it as an amplitude-modulated harmonic tone and draws it as the height of
a dark mouth rectangle in the lower half of a flat, face-coloured frame with two eyes.
Frame t and audio samples [t·spf, (t+1)·spf) carry the same opening value, so a model
that learns audio–visual synchrony can be trained and checked on these clips.

`click_clip` is silent except for one click in the middle of a chosen frame.
"""

from __future__ import annotations

import numpy as np

__all__ = ["syllable_envelope", "talking_clip", "click_clip"]


def syllable_envelope(num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """Per-frame mouth opening in [0, 1]: syllables of 3–8 frames separated by 1–5 frames of rest."""
    env = np.zeros(num_frames, np.float64)
    t = int(rng.integers(0, 4))
    while t < num_frames:
        length = int(rng.integers(3, 9))
        peak = float(rng.uniform(0.35, 1.0))
        shape = np.sin(np.linspace(0.0, np.pi, length + 2)[1:-1])
        seg = env[t : t + length]
        seg[:] = peak * shape[: len(seg)]
        t += length + int(rng.integers(1, 6))
    return env


def _frames_for(envelope: np.ndarray, resolution: int, rng: np.random.Generator) -> np.ndarray:
    r = resolution
    t = len(envelope)
    base = np.empty((r, r, 3), np.uint8)
    base[:] = (205, 160, 130)
    eye_y, eye_dx, eye_r = int(0.3 * r), int(0.18 * r), max(1, r // 16)
    for cx in (r // 2 - eye_dx, r // 2 + eye_dx):
        base[eye_y - eye_r : eye_y + eye_r, cx - eye_r : cx + eye_r] = (40, 30, 30)
    frames = np.repeat(base[None], t, axis=0)
    mouth_w = int(0.4 * r)
    x0 = r // 2 - mouth_w // 2
    centre = int(0.72 * r)
    max_half = int(0.12 * r)
    for i, a in enumerate(envelope):
        half = 1 + int(round(a * max_half))
        frames[i, centre - half : centre + half, x0 : x0 + mouth_w] = (90, 20, 30)
    noise = rng.integers(-6, 7, size=frames.shape)
    return np.clip(frames.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def talking_clip(
    num_frames: int,
    resolution: int,
    rng: np.random.Generator,
    fps: int = 25,
    sample_rate: int = 16000,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frames uint8 [T, r, r, 3] RGB, audio float32 [T·sample_rate/fps], envelope [T])."""
    if sample_rate % fps:
        raise ValueError("sample_rate must be a multiple of fps")
    spf = sample_rate // fps
    env = syllable_envelope(num_frames, rng)
    n = num_frames * spf
    time = np.arange(n) / sample_rate
    f0 = float(rng.uniform(110.0, 220.0))
    tone = sum(np.sin(2 * np.pi * f0 * k * time + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3, 5))
    tone = tone + 0.3 * rng.standard_normal(n)
    amplitude = np.repeat(env, spf)
    audio = (0.25 * amplitude * tone / np.abs(tone).max()).astype(np.float32)
    return _frames_for(env, resolution, rng), audio, env


def click_clip(
    num_frames: int, resolution: int, click_frame: int, fps: int = 25, sample_rate: int = 16000
) -> tuple[np.ndarray, np.ndarray]:
    """(frames, audio): grey frames numbered by brightness, silence with one click at the
    middle of frame `click_frame` (a 2 ms burst)."""
    if not 0 <= click_frame < num_frames:
        raise ValueError(f"click_frame {click_frame} outside [0, {num_frames})")
    spf = sample_rate // fps
    audio = np.zeros(num_frames * spf, np.float32)
    centre = click_frame * spf + spf // 2
    burst = sample_rate // 500
    audio[centre - burst // 2 : centre + burst // 2] = 0.8 * np.hanning(burst // 2 * 2).astype(np.float32)
    levels = (np.arange(num_frames) * 200 // max(1, num_frames - 1) + 20).astype(np.uint8)
    frames = np.repeat(levels[:, None, None, None], resolution, axis=1)
    frames = np.repeat(np.repeat(frames, resolution, axis=2), 3, axis=3)
    return np.ascontiguousarray(frames), audio
