"""Clip access for the datasets: length probing, frame windows, audio.

Every call opens the clip, reads what it needs and closes it again, so a dataset holds
no file handle across a DataLoader fork.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from syncvid.media.decode import decode_audio, rotate_upright
from syncvid.media.probe import rotation_from_display_angle

__all__ = ["ClipInfo", "clip_info", "read_frames", "read_frame_windows", "read_audio"]


@dataclass(frozen=True)
class ClipInfo:
    """What the datasets need to know about a clip before reading it."""

    path: str
    num_frames: int  # video frames
    fps: Fraction
    width: int
    height: int
    audio_seconds: float  # declared audio duration (0.0 without an audio stream)

    def usable_frames(self) -> int:
        """Video frames that also have audio under them (the shorter of the two)."""
        if self.audio_seconds <= 0:
            return 0
        return min(self.num_frames, int(self.audio_seconds * self.fps + 1e-6))


def clip_info(path: str | os.PathLike) -> ClipInfo:
    """Frame count, rate, size and audio duration from the container's index (no decoding).

    When the container does not state a frame count the video packets are counted.
    Raises `av.FFmpegError`/`OSError` for a file that cannot be opened and ValueError for
    one without a video stream.
    """
    path = os.fspath(path)
    with av.open(path) as container:
        if not container.streams.video:
            raise ValueError(f"{path}: no video stream")
        video = container.streams.video[0]
        fps = Fraction(video.average_rate) if video.average_rate else Fraction(25)
        n = int(video.frames or 0)
        audio_seconds = 0.0
        if container.streams.audio:
            a = container.streams.audio[0]
            if a.duration is not None and a.time_base is not None:
                audio_seconds = float(a.duration * a.time_base)
            elif container.duration is not None:
                audio_seconds = container.duration / av.time_base
        if n <= 0:
            for other in container.streams:
                if other.index != video.index:
                    other.discard = av.stream.Discard.all
            n = sum(1 for p in container.demux(video) if p.size)
        return ClipInfo(
            path=path,
            num_frames=n,
            fps=fps,
            width=video.codec_context.width,
            height=video.codec_context.height,
            audio_seconds=audio_seconds,
        )


def read_frame_windows(path: str | os.PathLike, starts: list[int], count: int) -> list[np.ndarray]:
    """Several windows [s, s+count) of a constant-rate clip in one decoding pass.

    Frames are numbered in presentation order from the clip's first frame; decoding stops
    after the last frame any window needs.  Returns one uint8 [count, H, W, 3] RGB array per
    start.  Raises ValueError when the clip ends early.
    """
    if count <= 0 or not starts or min(starts) < 0:
        raise ValueError(f"invalid frame windows starts={starts} count={count}")
    path = os.fspath(path)
    first, stop = min(starts), max(starts) + count
    wanted: dict[int, np.ndarray] = {}
    with av.open(path) as container:
        video = container.streams.video[0]
        for other in container.streams:
            if other.index != video.index:
                other.discard = av.stream.Discard.all
        video.codec_context.thread_count = 1
        # One reformatter for the whole clip: it keeps its scaler context between frames,
        # which makes the RGB conversion ~50x cheaper than VideoFrame.to_ndarray per frame.
        reformatter = VideoReformatter()
        needed = set()
        for s in starts:
            needed.update(range(s, s + count))
        for index, frame in enumerate(container.decode(video)):
            if index >= first and index in needed:
                rotation = rotation_from_display_angle(frame.rotation)
                rgb = reformatter.reformat(frame, format="rgb24").to_ndarray()
                wanted[index] = rotate_upright(rgb, rotation)
            if index + 1 >= stop:
                break
    if len(wanted) != len(needed):
        raise ValueError(f"{path}: frames up to {stop} requested but the clip ends after {max(wanted, default=-1) + 1}")
    return [np.stack([wanted[i] for i in range(s, s + count)]) for s in starts]


def read_frames(path: str | os.PathLike, start: int, count: int) -> np.ndarray:
    """Frames [start, start+count) of a constant-rate clip as uint8 [count, H, W, 3] RGB."""
    return read_frame_windows(path, [start], count)[0]


def _first_video_time(path: str) -> Fraction:
    """Presentation time of the first decoded video frame (0 when it carries no timestamp)."""
    with av.open(path) as container:
        video = container.streams.video[0]
        for other in container.streams:
            if other.index != video.index:
                other.discard = av.stream.Discard.all
        video.codec_context.thread_count = 1
        for frame in container.decode(video):
            if frame.pts is None or frame.time_base is None:
                return Fraction(0)
            return Fraction(frame.pts) * Fraction(frame.time_base)
    return Fraction(0)


def read_audio(path: str | os.PathLike, sample_rate: int = 16000) -> np.ndarray:
    """The clip's mono audio as float32 at `sample_rate`, sample 0 at the time of frame 0.

    Same alignment as `read_clip` (audio placed by its timestamps relative to the first
    video frame), but only the first video frame is decoded.  Raises ValueError for a clip
    without audio.
    """
    path = os.fspath(path)
    samples, audio_start, _ = decode_audio(path, sample_rate)
    if samples.size == 0:
        raise ValueError(f"{path}: the clip has no audio")
    shift = round((audio_start - _first_video_time(path)) * sample_rate)
    if shift >= 0:
        audio = np.concatenate([np.zeros(shift, np.float32), samples])
    else:
        audio = samples[-shift:]
    return np.ascontiguousarray(audio, dtype=np.float32)
