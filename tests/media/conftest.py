"""Synthetic media with known ground truth for the media tests.

Frames carry their source index as a visible code: 8 vertical bars, bar 0 always white (an
orientation marker), bars 1..7 the index in binary (most significant first).  The code survives
H.264 at any sane quality, and a frame shown mirrored or turned the wrong way reads as a
different (or invalid) index.  Audio carries clicks: a single full-scale sample at a known time.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from syncvid.media.encode import ClipWriter

W, H = 64, 48
BARS = 8


def index_image(index: int, width: int = W, height: int = H) -> np.ndarray:
    """An upright RGB frame showing `index` (0..127) as bars."""
    if not 0 <= index < 2 ** (BARS - 1):
        raise ValueError(index)
    bits = [1] + [(index >> (BARS - 2 - b)) & 1 for b in range(BARS - 1)]
    row = np.repeat(np.array(bits, np.uint8) * 255, width // BARS)
    return np.ascontiguousarray(np.broadcast_to(row[None, :, None], (height, width, 3)))


def read_index(image: np.ndarray) -> int:
    """The index shown by a decoded upright frame; -1 when the marker bar is not where it belongs."""
    bar_w = image.shape[1] // BARS
    means = [image[:, b * bar_w + 2 : (b + 1) * bar_w - 2].mean() for b in range(BARS)]
    bits = [int(m > 127) for m in means]
    if bits[0] != 1:
        return -1
    value = 0
    for bit in bits[1:]:
        value = value * 2 + bit
    return value


def stored_for_rotation(upright: np.ndarray, rotation: int) -> np.ndarray:
    """The stored frame that a player turns `rotation` degrees clockwise to show `upright`."""
    return np.ascontiguousarray(np.rot90(upright, k=rotation // 90))  # counter-clockwise


def nearest_oracle(times, out_times, video_end) -> list[int]:
    """Brute force: for each output time before `video_end`, the index of the nearest source
    time (ties to the later frame) — an independent statement of the selection rule."""
    shown = []
    for t in out_times:
        if t >= video_end:
            break
        best = min(range(len(times)), key=lambda i: (abs(times[i] - t), -i))
        shown.append(best)
    return shown


def click_track(n: int, positions, channels: int = 1, value: float = 0.9) -> np.ndarray:
    audio = np.zeros((n, channels) if channels > 1 else n, np.float32)
    for p in positions:
        audio[p] = value
    return audio


def click_position(audio: np.ndarray, around: int, radius: int) -> int:
    """Index of the largest |sample| within `radius` of `around`."""
    lo = max(0, around - radius)
    return lo + int(np.argmax(np.abs(audio[lo : around + radius])))


def make_video(
    path: Path,
    times,
    *,
    indices=None,
    rotation: int = 0,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    audio_start_s: float = 0.0,
    fps: int | Fraction = 25,
    size=(W, H),
    **kw,
) -> Path:
    """Write frames showing their index at the given times (seconds), with optional audio."""
    width, height = size
    stored_w, stored_h = (height, width) if rotation in (90, 270) else (width, height)
    channels = 0 if audio is None else (1 if audio.ndim == 1 else audio.shape[1])
    with ClipWriter(
        path,
        stored_w,
        stored_h,
        fps=fps,
        sample_rate=sample_rate if audio is not None else 0,
        channels=channels,
        rotation=rotation,
        audio_start_s=audio_start_s,
        **kw,
    ) as writer:
        if audio is not None:
            writer.write_audio(audio)
        for i, t in enumerate(times):
            index = i if indices is None else indices[i]
            writer.write_frame(stored_for_rotation(index_image(index, width, height), rotation), pts_s=t)
    return path


class Synth:
    """Namespace handed to tests through the `synth` fixture."""

    W, H = W, H
    index_image = staticmethod(index_image)
    read_index = staticmethod(read_index)
    stored_for_rotation = staticmethod(stored_for_rotation)
    nearest_oracle = staticmethod(nearest_oracle)
    click_track = staticmethod(click_track)
    click_position = staticmethod(click_position)
    make_video = staticmethod(make_video)


@pytest.fixture(scope="session")
def synth() -> type[Synth]:
    return Synth
