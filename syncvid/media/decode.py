"""Decode a source once: audio up front at 16 kHz mono, video streamed at a constant 25 fps.

Frame-rate conversion is by timestamp: output frame k stands for time ``t0 + k/fps`` and shows
the source frame whose timestamp is nearest to it (the switch to the next source frame happens
when ``t_k`` reaches the midpoint between the two frames' timestamps; exactly at the midpoint the
later frame wins, as FFmpeg's round-half-up would).  Source frames are never blended, so a
constant-rate source at the output rate passes through unchanged and variable-rate sources keep
their real timing.  FFmpeg's ``fps`` filter instead shows the latest frame stamped before
``t_k + 1/(2 fps)``; both agree for 30 -> 25 and for any upsampling, and differ only when several
source frames fall inside one output period (e.g. 60 -> 25), where the nearest frame is the
smaller timing error.

`NearestFrameSelector` is that rule as a small streaming core with no I/O; `SourceReader` feeds
it decoded frame times; `select_source_frames` is a convenience for whole timestamp lists.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from syncvid.records import MediaInfo, Rejected

from .picture import Converters, VideoPicture, rotate_upright

from .probe import (
    _fps,
    _main_video_stream,
    ffmpeg_message,
    isobmff_truncated,
    open_container,
    rotation_from_display_angle,
)

__all__ = [
    "NearestFrameSelector",
    "select_source_frames",
    "rotate_upright",
    "decode_audio",
    "SourceReader",
    "read_clip",
    "tune_allocator",
    "release_free_memory",
]

# Audio frames whose timestamp differs from the end of the previous frame by more than this
# start a new run placed by its own timestamp (a gap is filled with silence, an overlap
# overwrites); smaller differences are timestamp rounding and are ignored.
_AUDIO_GAP_TOLERANCE_S = Fraction(2, 1000)


class NearestFrameSelector:
    """Streaming nearest-timestamp frame selection onto a constant output rate.

    Output frame k stands for ``t0 + k/fps``; outputs at or after `end` (when given) are never
    produced.  Push the source frames' times in decoding order: `push` returns how many output
    frames the *previously* pushed source frame fills (it is only known once the next time is
    seen), `finish` returns the count for the last frame given the time the source video ends.
    Times may be any exact or float numbers; `Fraction` keeps ties exact.
    """

    def __init__(self, fps: int | Fraction, t0: Fraction | float = 0, end: Fraction | float | None = None):
        self.fps = Fraction(fps)
        if self.fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.t0 = t0
        self.end = end
        self.next_index = 0  # index of the next output frame to fill
        self._prev = None  # time of the previously pushed source frame

    def output_time(self, k: int):
        return self.t0 + k / self.fps

    @property
    def done(self) -> bool:
        """True once every output frame before `end` has been assigned."""
        return self.end is not None and self.output_time(self.next_index) >= self.end

    def _fill_before(self, limit) -> int:
        count = 0
        while True:
            t = self.output_time(self.next_index)
            if t >= limit or (self.end is not None and t >= self.end):
                return count
            self.next_index += 1
            count += 1

    def push(self, t) -> int:
        """Register the next source frame's time; return the repeats of the previous frame."""
        prev, self._prev = self._prev, t
        if prev is None:
            return 0
        # Outputs before the midpoint show the previous frame.  A time that does not increase
        # gives a midpoint at or before `prev`, so the newer frame simply replaces the older.
        return self._fill_before((prev + t) / 2)

    def finish(self, video_end) -> int:
        """Repeats of the last pushed frame: every output before `video_end` not yet assigned."""
        if self._prev is None:
            return 0
        return self._fill_before(video_end)


def select_source_frames(times: Iterable, fps: int | Fraction, t0=0, end=None, video_end=None) -> list[int]:
    """The source frame index shown by each output frame (see `NearestFrameSelector`).

    `video_end` defaults to the last time plus the last interval between times.
    """
    times = list(times)
    selector = NearestFrameSelector(fps, t0, end)
    shown: list[int] = []
    for i, t in enumerate(times):
        shown += [i - 1] * selector.push(t)
    if times:
        if video_end is None:
            step = times[-1] - times[-2] if len(times) > 1 else 1 / Fraction(fps)
            video_end = times[-1] + step
        shown += [len(times) - 1] * selector.finish(video_end)
    return shown


_ALLOCATOR_TUNED = False
# Heap kept beyond each request (glibc M_TOP_PAD): room for a few full-resolution frames.
_TOP_PAD_BYTES = 64 << 20


def tune_allocator() -> bool:
    """Make glibc recycle full-frame buffers instead of returning them to the kernel every frame.

    A decoded 1080p RGB frame is a 6 MB allocation made and freed once per frame.  With glibc's
    default (dynamic) thresholds such blocks first come from ``mmap`` and, after the threshold
    has risen, from the heap, which is trimmed back after nearly every free: either way each
    frame's pages are faulted in and zeroed again, which costs about as much as the
    YUV -> RGB conversion itself, and a fragmented heap can keep growing with the source's
    length.  A fixed top pad (which also turns the dynamic thresholds off) keeps 64 MB of freed
    heap for reuse.  Call it once per worker process; returns False where the C library is not
    glibc (nothing is changed there).
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return True
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_top_pad = -2
    _ALLOCATOR_TUNED = bool(mallopt(m_top_pad, _TOP_PAD_BYTES))
    return _ALLOCATOR_TUNED


def release_free_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc ``malloc_trim``; no-op elsewhere).

    Freed blocks in the middle of the heap stay resident until reused; over a long source the
    mix of frame-sized and small allocations leaves such holes behind.  Called between
    segments it keeps a worker's resident memory flat for a cost of a few page faults per
    segment.
    """
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        try:
            import ctypes
            import ctypes.util

            _MALLOC_TRIM = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _MALLOC_TRIM = False
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)


_MALLOC_TRIM = None


def _frame_time(frame, fallback: Fraction) -> Fraction:
    if frame.pts is None or frame.time_base is None:
        return fallback
    return frame.pts * frame.time_base


def _place_runs(runs: list[tuple[Fraction, list[np.ndarray]]], start: Fraction, rate: int) -> np.ndarray:
    """Lay runs of samples on one timeline starting at `start` (silence in gaps)."""
    if len(runs) == 1:
        chunks = runs[0][1]
        return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    placed = []
    total = 0
    for run_start, chunks in runs:
        data = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        offset = max(0, round((run_start - start) * rate))
        placed.append((offset, data))
        total = max(total, offset + len(data))
    out = np.zeros(total, np.float32)
    for offset, data in placed:
        out[offset : offset + len(data)] = data
    return out


class _PacketDecoder:
    """Decode one stream packet by packet with the media layer's error policy.

    An error while reading the file ends the stream: in a cut-off MP4/MOV file that is the
    expected end (`cut_off` becomes True), otherwise it is a ``decode_error`` rejection.  An
    error while decoding one packet skips that packet and is counted in `errors`; more than
    `max_errors` of them is a ``decode_error`` rejection (the default 0 rejects on the first),
    except at the cut-off end of a truncated file.
    """

    def __init__(self, path: Path, container, stream, kind: str, max_errors: int = 0):
        self.path, self.kind, self.max_errors = path, kind, max_errors
        self._packets = container.demux(stream)
        self.errors = 0
        self.cut_off = False
        self.position_s = None  # time of the last packet read, for messages

    def _fail(self, exc: BaseException, what: str) -> None:
        if isobmff_truncated(self.path):
            self.cut_off = True
            return
        where = f" near {float(self.position_s):.3f} s" if self.position_s is not None else ""
        raise Rejected(
            "broken",
            "decode_error",
            f"{self.path.name}: {self.kind} {what}{where}: {ffmpeg_message(exc)}",
        ) from exc

    def next_frames(self) -> list | None:
        """The frames of the next packet that yields any, or None at the end of the stream."""
        while not self.cut_off:
            try:
                packet = next(self._packets, None)
            except av.FFmpegError as exc:
                self._fail(exc, "cannot be read")
                return None
            if packet is None:
                if isobmff_truncated(self.path):
                    self.cut_off = True
                return None
            if packet.pts is not None and packet.time_base is not None:
                self.position_s = packet.pts * packet.time_base
            try:
                frames = packet.decode()
            except av.FFmpegError as exc:
                self.errors += 1
                if self.errors > self.max_errors:
                    self._fail(exc, "fails to decode")
                    return None
                continue
            if frames:
                return frames
        return None


def decode_audio(
    path: str | os.PathLike, sample_rate: int = 16000, max_decode_errors: int = 0
) -> tuple[np.ndarray, Fraction, bool]:
    """Decode the first audio stream of `path` to float32 mono at `sample_rate`.

    Video packets are discarded by the demuxer, never decoded.  Returns ``(samples, start_s,
    cut_off)``: sample 0 sits at source time `start_s` (the first decoded frame's timestamp,
    after the decoder dropped any encoder priming the container asks to skip); gaps in the
    timestamps become silence.  `cut_off` is True when the file is a truncated MP4/MOV (the
    samples before its end are returned).  Raises ``Rejected("broken", "decode_error")`` on a
    read error in a file that is not truncated, or on more than `max_decode_errors` packets
    that fail to decode (each skipped packet leaves a silent gap).
    """
    path = Path(path)
    container = open_container(path)
    with container:
        if not container.streams.audio:
            return np.zeros(0, np.float32), Fraction(0), False
        stream = container.streams.audio[0]
        for other in container.streams:
            if other.index != stream.index:
                other.discard = av.stream.Discard.all
        stream.codec_context.thread_count = 1
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        runs: list[tuple[Fraction, list[np.ndarray]]] = []
        expected: Fraction | None = None

        def take(frames) -> None:
            for out in frames:
                runs[-1][1].append(out.to_ndarray().reshape(-1))

        packets = _PacketDecoder(path, container, stream, "audio", max_decode_errors)
        while (frames := packets.next_frames()) is not None:
            for frame in frames:
                t = _frame_time(frame, expected if expected is not None else Fraction(0))
                if expected is None or abs(t - expected) > _AUDIO_GAP_TOLERANCE_S:
                    if runs:
                        take(resampler.resample(None))
                        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
                    runs.append((t, []))
                take(resampler.resample(frame))
                expected = t + Fraction(frame.samples, frame.sample_rate)
        cut_off = packets.cut_off
        if not runs:
            return np.zeros(0, np.float32), Fraction(0), cut_off
        take(resampler.resample(None))
        start = runs[0][0]
        samples = _place_runs(runs, start, sample_rate)
        # The container may declare fewer samples than the decoder returns (AAC pads its last
        # frame); keep the declared length when it is known and shorter.
        if stream.duration is not None and stream.time_base is not None and not cut_off:
            stream_start = stream.start_time * stream.time_base if stream.start_time is not None else start
            declared_end = stream_start + stream.duration * stream.time_base
            keep = round((declared_end - start) * sample_rate)
            if 0 < keep < len(samples):
                samples = samples[:keep]
        return np.clip(samples, -1.0, 1.0, out=samples), start, cut_off


class SourceReader:
    """One source opened once: audio decoded up front, then video streamed at a constant output rate.

    Attributes after construction: `info` (MediaInfo), `t0` (source time of output frame 0: the
    start of the common audio/video span), `audio` (float32 mono in [-1, 1] at `sample_rate`,
    sample 0 at `t0`, up to the end of the audio; empty without audio), `audio_end_s`.

    `frames()` yields uint8 HxWx3 RGB upright frames; output frame k is the source frame shown at
    ``t0 + k/fps``.  It stops at the end of the common span (or the video's end without audio).
    Frames are read-only; a source frame repeated by the rate conversion is yielded as the same
    array.  Pass ``contiguous=True`` to get C-contiguous arrays (by default frames are views
    that may skip row padding).  After iteration, `num_frames` is the count yielded and
    `truncated` tells whether the file was cut off (frames stop at the last decodable one).
    Packets that fail to decode are rejected (``decode_error``) unless `max_decode_errors` allows
    skipping that many per stream; `decode_errors` counts the video packets skipped.

    Errors: ``Rejected("broken", reason)`` with the reasons of `probe`, plus ``no_audio`` (no
    audio stream while `require_audio`), ``empty_audio`` (an audio stream with no decodable
    sample), ``no_common_span`` (audio and video do not overlap; raised by the constructor or
    by `frames()` once the video's end is known), and from `frames()` ``decode_error``, or
    ``truncated`` / ``zero_frames`` when no frame decodes.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: int | Fraction = 25,
        sample_rate: int = 16000,
        threads: int = 1,
        require_audio: bool = True,
        *,
        contiguous: bool = False,
        max_decode_errors: int = 0,
    ):
        self.path = Path(path)
        self.max_decode_errors = int(max_decode_errors)
        self.fps = Fraction(fps)
        self.sample_rate = int(sample_rate)
        self.contiguous = contiguous
        self.num_frames = 0
        self.truncated = False
        self._container = open_container(self.path)
        try:
            self._open(threads, require_audio)
        except BaseException:
            self._container.close()
            raise

    def _open(self, threads: int, require_audio: bool) -> None:
        name = self.path.name
        container = self._container
        video = _main_video_stream(container)
        if video is None:
            kinds = ", ".join(s.type for s in container.streams) or "none"
            raise Rejected("broken", "no_video", f"{name}: no video stream (streams: {kinds})")
        has_audio = bool(container.streams.audio)
        if require_audio and not has_audio:
            raise Rejected("broken", "no_audio", f"{name}: no audio stream")
        self._video = video
        for other in container.streams:
            if other.index != video.index:
                other.discard = av.stream.Discard.all
        ctx = video.codec_context
        ctx.thread_count = max(1, int(threads))
        if threads > 1:
            ctx.thread_type = "AUTO"
        self._source_fps = _fps(video)
        self._decoder = _PacketDecoder(self.path, container, video, "video", self.max_decode_errors)
        self._pending: list = []
        first = self._next_frame()
        if first is None:
            self._raise_no_frames()
        self._pending.append(first)
        self.rotation = rotation_from_display_angle(first.rotation)
        width, height = ctx.width or first.width, ctx.height or first.height
        if self.rotation in (90, 270):
            width, height = height, width
        audio_stream = container.streams.audio[0] if has_audio else None
        duration_s = float(video.duration * video.time_base) if video.duration and video.time_base else 0.0
        self.info = MediaInfo(
            width=width,
            height=height,
            fps=self._source_fps,
            duration_s=duration_s,
            rotation=self.rotation,
            video_codec=ctx.name,
            has_audio=has_audio,
            audio_rate=audio_stream.codec_context.sample_rate if has_audio else 0,
            audio_channels=audio_stream.codec_context.channels if has_audio else 0,
            audio_codec=audio_stream.codec_context.name if has_audio else "",
        )
        self.video_start_s = _frame_time(first, Fraction(0))
        self.t0 = self.video_start_s
        self.audio = np.zeros(0, np.float32)
        self.audio_start_s: Fraction | None = None
        self.audio_end_s: Fraction | None = None
        if has_audio:
            samples, audio_start, cut_off = decode_audio(self.path, self.sample_rate, self.max_decode_errors)
            self.truncated |= cut_off
            if len(samples) == 0:
                raise Rejected("broken", "empty_audio", f"{name}: the audio stream has no decodable sample")
            self.audio_start_s = audio_start
            self.t0 = max(self.video_start_s, audio_start)
            skip = round((self.t0 - audio_start) * self.sample_rate)
            self.audio = samples[skip:]
            self.audio_end_s = self.t0 + Fraction(len(self.audio), self.sample_rate)
            if len(self.audio) == 0:
                raise Rejected(
                    "broken",
                    "no_common_span",
                    f"{name}: audio ({float(audio_start):.3f}-"
                    f"{float(audio_start) + len(samples) / self.sample_rate:.3f} s) "
                    f"ends before the video starts ({float(self.video_start_s):.3f} s)",
                )
        self._iterated = False
        self._converters = Converters()

    # -- decoding --------------------------------------------------------------------------
    def _next_frame(self):
        """The next decoded video frame, or None at the end of the stream."""
        if not self._pending:
            frames = self._decoder.next_frames()
            self.truncated |= self._decoder.cut_off
            if frames is None:
                return None
            self._pending = frames[::-1]
        return self._pending.pop()

    @property
    def decode_errors(self) -> int:
        return self._decoder.errors

    def _raise_no_frames(self):
        if self.truncated or isobmff_truncated(self.path):
            raise Rejected("broken", "truncated", f"{self.path.name}: cut-off file; no video frame decodes")
        raise Rejected("broken", "zero_frames", f"{self.path.name}: the video stream has no decodable frame")

    def _picture(self, frame) -> VideoPicture:
        return VideoPicture(frame, self.rotation, self._converters, self.contiguous)

    def _declared_video_end(self) -> Fraction | None:
        video = self._video
        if video.duration is None or video.time_base is None:
            return None
        start = video.start_time if video.start_time is not None else 0
        return (start + video.duration) * video.time_base

    def frames(self) -> Iterator[np.ndarray]:
        """Yield the output frames as RGB arrays (can be iterated once; see `pictures`)."""
        for picture in self.pictures():
            yield picture.rgb()

    def pictures(self) -> Iterator[VideoPicture]:
        """Yield the output frames as `VideoPicture`s, which convert to RGB only what is asked for.

        The same rules as `frames()`, which is built on it; one of the two can be iterated, once.
        A source frame repeated by the rate conversion is yielded as the same picture.
        """
        if self._iterated:
            raise RuntimeError(f"{self.path.name}: frames() can be iterated only once")
        self._iterated = True
        selector = NearestFrameSelector(self.fps, self.t0, self.audio_end_s)
        default_step = 1 / self._source_fps if self._source_fps else 1 / self.fps
        prev_frame = None
        prev_t: Fraction | None = None
        step = default_step
        while not selector.done:
            frame = self._next_frame()
            if frame is None:
                break
            t = _frame_time(frame, prev_t + step if prev_t is not None else self.video_start_s)
            repeats = selector.push(t)
            if repeats:
                picture = self._picture(prev_frame)
                for _ in range(repeats):
                    yield picture
                self.num_frames += repeats
            if prev_t is not None and t > prev_t:
                step = t - prev_t
            prev_frame, prev_t = frame, t
        if prev_frame is not None and not selector.done:
            end = prev_t + step
            declared = self._declared_video_end()
            if not self.truncated and declared is not None and prev_t < declared <= prev_t + 3 * step:
                end = declared
            repeats = selector.finish(end)
            if repeats:
                picture = self._picture(prev_frame)
                for _ in range(repeats):
                    yield picture
                self.num_frames += repeats
        if self.num_frames == 0:
            if prev_frame is not None:
                raise Rejected(
                    "broken",
                    "no_common_span",
                    f"{self.path.name}: the video ({float(self.video_start_s):.3f}-{float(prev_t + step):.3f} s) "
                    f"ends before the audio starts ({float(self.t0):.3f} s)",
                )
            self._raise_no_frames()

    # -- lifetime --------------------------------------------------------------------------
    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> SourceReader:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()


def read_clip(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, int | Fraction, int]:
    """Read a clip written by `write_clip` at its native rates.

    Returns ``(frames uint8 [T, H, W, 3] RGB, audio float32 mono, fps, sample_rate)``.  Audio is
    placed by its timestamps relative to the first video frame (sample 0 is the time of frame 0;
    audio that starts later is preceded by silence), so the alignment written is the alignment
    read.  `fps` is an int when the rate is whole, else a `Fraction`; `sample_rate` is 0 and the
    audio empty for a clip without audio.
    """
    path = Path(path)
    container = open_container(path)
    with container:
        video = _main_video_stream(container)
        if video is None:
            raise Rejected("broken", "no_video", f"{path.name}: no video stream")
        for other in container.streams:
            if other.index != video.index:
                other.discard = av.stream.Discard.all
        video.codec_context.thread_count = 1
        images = []
        start: Fraction | None = None
        rotation = 0
        try:
            for frame in container.decode(video):
                if start is None:
                    start = _frame_time(frame, Fraction(0))
                    rotation = rotation_from_display_angle(frame.rotation)
                images.append(rotate_upright(frame.reformat(format="rgb24", threads=1).to_ndarray(), rotation))
        except av.FFmpegError as exc:
            raise Rejected("broken", "decode_error", f"{path.name}: {ffmpeg_message(exc)}") from exc
        if not images:
            raise Rejected("broken", "zero_frames", f"{path.name}: the video stream has no decodable frame")
        fps = _fps(video)
        has_audio = bool(container.streams.audio)
        rate = container.streams.audio[0].codec_context.sample_rate if has_audio else 0
    frames = np.stack(images)
    audio = np.zeros(0, np.float32)
    if has_audio:
        samples, audio_start, _ = decode_audio(path, rate)
        shift = round((audio_start - start) * rate)
        audio = np.concatenate([np.zeros(shift, np.float32), samples]) if shift >= 0 else samples[-shift:]
    return frames, audio, (fps.numerator if fps.denominator == 1 else fps), rate
