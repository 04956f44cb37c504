"""Encode clips: H.264 yuv420p + AAC in MP4, written atomically.

A clip is written to a hidden temporary file beside its final name (``.<name>.<random>.part``)
and renamed onto the final name only by `ClipWriter.close`, so no partial file ever sits under
the final name: a crash leaves at most a hidden temporary, which `abort` (or the context
manager on an exception) deletes.

Timestamps.  Video frames are stamped on an exact rational time base (a multiple of the frame
rate's numerator, >= 90 kHz), so a constant-rate clip has exactly k/fps as frame k's time and a
variable-rate source can pass its own times.  Audio frames are stamped in samples from
``audio_start_s``.  The AAC encoder primes its output with ``initial_padding`` samples; FFmpeg
hands those packets out with negative timestamps and the MP4 muxer records them in an edit list,
so a reader that honours timestamps (FFmpeg's MP4 demuxer applies the edit list and the decoder
drops the priming samples) gets audio sample 0 back at time ``audio_start_s`` exactly.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from syncvid.atomic import temp_name
from syncvid.config.pipeline_schema import EncodeSection

# The encoder settings a caller leaves out: the pipeline schema's `encode` section, stated once.
ENCODE_DEFAULTS = EncodeSection()

__all__ = ["ClipWriter", "write_clip", "replace_audio", "temp_path_for"]

_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


def temp_path_for(path: Path) -> Path:
    """The hidden temporary name a clip is written under before being renamed onto `path`
    (`syncvid.atomic.temp_name`: it fits the name limit whatever `path`'s name)."""
    return path.with_name(temp_name(path.name))


def _video_time_base(fps: Fraction) -> Fraction:
    """A time base in which every k/fps is an integer and whose resolution is at least 90 kHz."""
    multiple = max(1, math.ceil(90000 / fps.numerator))
    return Fraction(1, fps.numerator * multiple)


class ClipWriter:
    """Writes an H.264 yuv420p + AAC MP4 to a hidden temporary name beside `path`, renamed
    onto `path` by close(); abort() deletes the temporary.

    `write_frame` takes RGB uint8 images of exactly ``height x width``; frame k is stamped at
    ``k / fps`` unless `pts_s` is given (times must increase).  `write_audio` appends float32
    samples in [-1, 1] (shape ``[n]`` or ``[n, channels]``) contiguously from ``audio_start_s``.
    A writer that never receives audio writes a file without an audio stream only when
    ``sample_rate`` is 0 or ``channels`` is 0; otherwise the audio stream is present (possibly
    empty).

    Optional keyword arguments: ``rotation`` (0/90/180/270: degrees clockwise a player must turn
    the stored frames to show them upright, written as a display matrix), ``audio_start_s``
    (time of the first audio sample, >= 0), ``format`` (container; guessed from the suffix of
    `path`, MP4 by default), ``faststart`` (move the index to the front of the file), ``fsync``
    (flush the file to disk before the rename).  ``x264_params`` adds x264 options
    (``"key=value:key=value"``) to the preset's; ``aac_coder`` picks FFmpeg's AAC coder
    (``"twoloop"``, FFmpeg's default, or ``"fast"``, about 5x cheaper; the pipeline's
    `encode` section chooses, see `EncodeSection.writer_options`).  Encoder settings left out
    (None) are `EncodeSection`'s defaults (`ENCODE_DEFAULTS`).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        width: int,
        height: int,
        fps: int | Fraction = 25,
        sample_rate: int = 16000,
        channels: int = 1,
        crf: int | None = None,
        preset: str | None = None,
        audio_bitrate: int | None = None,
        threads: int = 1,
        x264_params: str | None = None,
        aac_coder: str | None = None,
        *,
        rotation: int = 0,
        audio_start_s: float = 0.0,
        format: str | None = None,
        faststart: bool = False,
        fsync: bool = False,
    ):
        self.path = Path(path)
        d = ENCODE_DEFAULTS
        crf = d.crf if crf is None else crf
        preset = d.preset if preset is None else preset
        audio_bitrate = d.audio_bitrate if audio_bitrate is None else audio_bitrate
        x264_params = d.x264_params if x264_params is None else x264_params
        aac_coder = d.aac_coder if aac_coder is None else aac_coder
        self.settings = {"crf": crf, "preset": preset, "x264_params": x264_params, "audio_bitrate": audio_bitrate,
                         "aac_coder": aac_coder}
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise ValueError(f"yuv420p needs a positive even frame size, got {width}x{height}")
        fps = Fraction(fps)
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if rotation % 90 or not 0 <= rotation < 360:
            raise ValueError(f"rotation must be 0, 90, 180 or 270, got {rotation}")
        if audio_start_s < 0:
            raise ValueError(f"audio_start_s must be >= 0, got {audio_start_s}")
        self.width, self.height, self.fps = width, height, fps
        self.sample_rate = int(sample_rate)
        self.channels = int(channels) if self.sample_rate > 0 else 0
        if self.channels not in (0, 1, 2):
            raise ValueError(f"channels must be 1 or 2 (or 0 for no audio), got {channels}")
        self.tmp_path = temp_path_for(self.path)
        self._fsync = fsync
        self._frames_written = 0
        self._last_pts: int | None = None
        self._closed = False
        container_format = format or _FORMATS.get(self.path.suffix.lower(), "mp4")
        options = {"movflags": "+faststart"} if faststart and container_format in ("mp4", "mov") else {}

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.tmp_path), "w", format=container_format, options=options)
        try:
            options = {"crf": str(crf), "preset": preset}
            if x264_params:
                options["x264-params"] = x264_params
            self._video = self._container.add_stream("libx264", rate=fps, options=options)
            self._video.width = width
            self._video.height = height
            self._video.pix_fmt = "yuv420p"
            self._video_tb = _video_time_base(fps)
            self._video.codec_context.time_base = self._video_tb
            self._video.time_base = self._video_tb
            self._frame_step = int(1 / (fps * self._video_tb))  # ticks per frame, exact
            self._video.codec_context.thread_count = max(1, int(threads))
            if rotation:
                # PyAV takes the counter-clockwise display angle; a player turns the frames
                # clockwise by `rotation` to show them upright.
                self._video.set_display_rotation(-rotation)
            self._audio = None
            if self.channels:
                self._audio = _AacTrack(self._container, self.sample_rate, self.channels, audio_bitrate,
                                        round(audio_start_s * self.sample_rate), aac_coder)
            self._container.start_encoding()
        except BaseException:
            self._discard()
            raise

    # -- video -----------------------------------------------------------------------------
    def write_frame(self, image: np.ndarray, pts_s: float | None = None) -> None:
        """Append one RGB uint8 frame of shape (height, width, 3)."""
        if self._closed:
            raise ValueError(f"{self.path.name}: writer already closed")
        if image.shape != (self.height, self.width, 3) or image.dtype != np.uint8:
            raise ValueError(
                f"{self.path.name}: expected uint8 ({self.height}, {self.width}, 3), "
                f"got {image.dtype} {image.shape}"
            )
        if pts_s is None:
            pts = self._frames_written * self._frame_step
        else:
            pts = round(Fraction(pts_s) / self._video_tb)
        if self._last_pts is not None and pts <= self._last_pts:
            raise ValueError(f"{self.path.name}: frame time {pts_s} does not increase")
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = pts
        frame.time_base = self._video_tb
        self._container.mux(self._video.encode(frame))
        self._last_pts = pts
        self._frames_written += 1

    # -- audio -----------------------------------------------------------------------------
    def write_audio(self, samples: np.ndarray) -> None:
        """Append float32 samples in [-1, 1], shape [n] or [n, channels]."""
        if self._closed:
            raise ValueError(f"{self.path.name}: writer already closed")
        if self._audio is None:
            raise ValueError(f"{self.path.name}: writer was opened without audio")
        self._audio.write(samples, self.path.name)

    # -- finishing -------------------------------------------------------------------------
    @property
    def frames_written(self) -> int:
        return self._frames_written

    def close(self) -> None:
        """Flush the encoders, finish the file and rename it onto the final name."""
        if self._closed:
            return
        try:
            if self._frames_written == 0:
                raise ValueError(f"{self.path.name}: no video frame was written")
            if self._audio is not None:
                self._audio.close()
            self._container.mux(self._video.encode(None))
            self._container.close()
            _finish_file(self.tmp_path, self.path, self._fsync)
        except BaseException:
            self._discard()
            raise
        self._closed = True

    def abort(self) -> None:
        """Drop everything written so far; the final name is left untouched."""
        if not self._closed:
            self._discard()

    def _discard(self) -> None:
        self._closed = True
        try:
            self._container.close()
        except (av.FFmpegError, ValueError, OSError):
            # The file is deleted next; an error while closing a half-written container
            # cannot leave anything behind under the final name.
            pass
        finally:
            self.tmp_path.unlink(missing_ok=True)

    def __enter__(self) -> ClipWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class _AacTrack:
    """The AAC stream of an output container: float32 samples in, frames stamped in samples.

    Samples are appended contiguously from sample `start`; the encoder's priming is left to
    FFmpeg (negative timestamps, recorded by the MP4 muxer in an edit list; see the module
    docstring), so sample 0 reads back at time ``start / sample_rate``.
    """

    def __init__(self, container, sample_rate: int, channels: int, bitrate: int, start: int = 0,
                 coder: str = "twoloop"):
        self.container = container
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.stream = container.add_stream("aac", rate=self.sample_rate, options={"aac_coder": coder})
        self.stream.layout = "mono" if self.channels == 1 else "stereo"
        self.stream.bit_rate = int(bitrate)
        self.stream.time_base = Fraction(1, self.sample_rate)
        self.stream.codec_context.time_base = Fraction(1, self.sample_rate)
        self.layout = self.stream.layout.name
        self.next_pts = int(start)
        self.buf = np.zeros((self.channels, 0), np.float32)

    def write(self, samples: np.ndarray, name: str) -> None:
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim == 1:
            planar = np.broadcast_to(samples, (self.channels, samples.shape[0]))
        elif samples.ndim == 2 and samples.shape[1] == self.channels:
            planar = samples.T
        else:
            raise ValueError(f"{name}: audio must be [n] or [n, {self.channels}], got {samples.shape}")
        self.buf = np.concatenate([self.buf, planar], axis=1)
        self._drain(final=False)

    def _drain(self, final: bool) -> None:
        size = self.stream.codec_context.frame_size or 1024
        buf = self.buf
        start = 0
        while buf.shape[1] - start >= size or (final and buf.shape[1] > start):
            chunk = np.ascontiguousarray(buf[:, start : start + size])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=self.layout)
            frame.sample_rate = self.sample_rate
            frame.pts = self.next_pts
            frame.time_base = Fraction(1, self.sample_rate)
            self.container.mux(self.stream.encode(frame))
            self.next_pts += chunk.shape[1]
            start += chunk.shape[1]
        self.buf = buf[:, start:]

    def close(self) -> None:
        """Encode what is buffered and flush the encoder."""
        self._drain(final=True)
        self.container.mux(self.stream.encode(None))


def _finish_file(tmp_path: Path, path: Path, fsync: bool) -> None:
    """Optionally flush `tmp_path` to disk, then rename it onto `path`."""
    if fsync:
        fd = os.open(tmp_path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    os.replace(tmp_path, path)


def replace_audio(
    src: str | os.PathLike,
    path: str | os.PathLike,
    audio: np.ndarray,
    sample_rate: int = 16000,
    audio_bitrate: int | None = None,
    *,
    aac_coder: str | None = None,
    fsync: bool = False,
) -> None:
    """Write `path`: the video stream of the clip `src` copied packet for packet (no re-encode)
    and `audio` (float32 [n] or [n, channels] in [-1, 1]) encoded as AAC from time 0, atomically.

    For a clip written by `ClipWriter` the result is what `write_clip` would write with the same
    frames, encoder settings and the new audio (x264 is deterministic, so the video stream is the
    same), at the cost of the audio encode only; audio sample 0 reads back at the time of the
    first video frame, as with `ClipWriter`.  `src` is only read.
    """
    src, path = Path(src), Path(path)
    audio_bitrate = ENCODE_DEFAULTS.audio_bitrate if audio_bitrate is None else audio_bitrate
    aac_coder = ENCODE_DEFAULTS.aac_coder if aac_coder is None else aac_coder
    samples = np.asarray(audio, dtype=np.float32)
    channels = 1 if samples.ndim == 1 else int(samples.shape[1])
    if channels not in (1, 2):
        raise ValueError(f"{path.name}: audio must be [n] or [n, 1|2], got {samples.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = temp_path_for(path)
    container_format = _FORMATS.get(path.suffix.lower(), "mp4")
    with av.open(str(src), "r") as source:
        if not source.streams.video:
            raise ValueError(f"{src.name}: no video stream to copy")
        video_in = source.streams.video[0]
        out = av.open(str(tmp_path), "w", format=container_format)
        try:
            video_out = out.add_stream_from_template(video_in)
            video_out.time_base = video_in.time_base
            track = _AacTrack(out, sample_rate, channels, audio_bitrate, coder=aac_coder)
            out.start_encoding()
            track.write(samples, path.name)
            track.close()
            for packet in source.demux(video_in):
                if packet.dts is None:  # the demuxer's end-of-stream marker
                    continue
                packet.stream = video_out
                out.mux(packet)
            out.close()
            _finish_file(tmp_path, path, fsync)
        except BaseException:
            try:
                out.close()
            except (av.FFmpegError, ValueError, OSError):
                pass  # the temporary is deleted next
            tmp_path.unlink(missing_ok=True)
            raise


def write_clip(
    path: str | os.PathLike,
    frames: np.ndarray | Iterable[np.ndarray],
    audio: np.ndarray | None,
    fps: int | Fraction = 25,
    sample_rate: int = 16000,
    **kw,
) -> None:
    """Write `frames` (array [T, H, W, 3] or an iterable of [H, W, 3] RGB uint8) and `audio`
    (float32 [n] or [n, channels], or None for a clip without audio) as one MP4, atomically.

    Extra keyword arguments go to `ClipWriter` (crf, preset, rotation, audio_start_s, ...).
    """
    iterator = iter(frames)
    try:
        first = next(iterator)
    except StopIteration:
        raise ValueError(f"{Path(path).name}: no frames to write") from None
    if audio is None:
        sample_rate = 0
    elif "channels" not in kw:
        kw["channels"] = 1 if np.ndim(audio) == 1 else int(np.shape(audio)[1])
    height, width = first.shape[:2]
    with ClipWriter(path, width, height, fps=fps, sample_rate=sample_rate, **kw) as writer:
        # Interleave: after frame k, hand over the audio up to the end of frame k's time.
        per_frame = Fraction(sample_rate) / Fraction(fps)
        done = 0
        for k, image in enumerate(itertools.chain((first,), iterator)):
            writer.write_frame(image)
            if audio is not None:
                upto = min(len(audio), math.floor((k + 1) * per_frame))
                if upto > done:
                    writer.write_audio(audio[done:upto])
                    done = upto
        if audio is not None and done < len(audio):
            writer.write_audio(audio[done:])
