"""Probe a source: streams, sizes, frame rate, rotation, audio — or a typed rejection.

Rejections (stage ``broken``):

``not_found``    the path does not exist or is not a regular file
``empty_file``   the file has 0 bytes
``truncated``    an ISO-BMFF (MP4/MOV) file whose top-level boxes run past the end of the file
                 and which FFmpeg cannot open, or whose first video frame cannot be decoded
``decode_error`` FFmpeg cannot open the file (not media, unknown format, damaged header)
``no_video``     no video stream (cover art attached to an audio file does not count)
``zero_frames``  a video stream whose first frame cannot be decoded
"""

from __future__ import annotations

import os
import struct
from fractions import Fraction
from pathlib import Path

import av

from syncvid.records import MediaInfo, Rejected

__all__ = ["probe", "rotation_from_display_angle", "isobmff_truncated", "ffmpeg_message", "open_container"]


def ffmpeg_message(exc: BaseException) -> str:
    """FFmpeg's error as one short line (PyAV's message without the repeated file name)."""
    if isinstance(exc, av.FFmpegError) and exc.strerror:
        text = exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def rotation_from_display_angle(angle: float) -> int:
    """Degrees clockwise (0/90/180/270) to turn stored frames upright, from FFmpeg's display
    matrix angle (`av_display_rotation_get`, counter-clockwise, in [-180, 180]).

    This is the rule FFmpeg's own auto-rotation follows: a display angle of -90 means the
    frames are shown turned 90 degrees clockwise.  Angles are snapped to the nearest quarter turn.
    """
    clockwise = -float(angle) % 360.0
    return int(round(clockwise / 90.0)) % 4 * 90


def isobmff_truncated(path: str | os.PathLike) -> bool | None:
    """True when the top-level boxes of an MP4/MOV file run past its end (a cut-off file),
    False when they fit, None when the file is not ISO-BMFF (no ``ftyp``/``moov``/... box first).

    Only box headers are read: a handful of small reads however large the file.
    """
    path = Path(path)
    size = path.stat().st_size
    known_first = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"styp"}
    offset = 0
    with open(path, "rb") as fh:
        while offset < size:
            fh.seek(offset)
            header = fh.read(16)
            if len(header) < 8:
                return True  # a box header cut in the middle
            box_size, box_type = struct.unpack(">I4s", header[:8])
            if offset == 0 and box_type not in known_first:
                return None
            if box_size == 1:
                if len(header) < 16:
                    return True
                box_size = struct.unpack(">Q", header[8:16])[0]
                if box_size < 16:
                    return None
            elif box_size == 0:
                return False  # the last box extends to the end of the file by definition
            elif box_size < 8:
                return None  # not a box structure we understand
            offset += box_size
    return offset > size


def open_container(path: Path) -> av.container.InputContainer:
    """Open `path` for reading or raise the matching ``broken`` rejection."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise Rejected("broken", "not_found", f"{path.name}: no such file") from None
    if not path.is_file():
        raise Rejected("broken", "not_found", f"{path.name}: not a regular file")
    if stat.st_size == 0:
        raise Rejected("broken", "empty_file", f"{path.name}: file is empty (0 bytes)")
    try:
        return av.open(str(path), "r")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        if isobmff_truncated(path):
            raise Rejected(
                "broken",
                "truncated",
                f"{path.name}: cut-off MP4/MOV file ({stat.st_size} bytes); "
                f"FFmpeg cannot open it: {ffmpeg_message(exc)}",
            ) from exc
        raise Rejected(
            "broken", "decode_error", f"{path.name}: FFmpeg cannot open it: {ffmpeg_message(exc)}"
        ) from exc


def _main_video_stream(container) -> av.video.stream.VideoStream | None:
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def _first_frame_rotation(path: Path, container, stream) -> int:
    """Decode the first video frame (rotation lives in the frames' display matrix)."""
    stream.codec_context.thread_count = 1
    try:
        for packet in container.demux(stream):
            for frame in packet.decode():
                return rotation_from_display_angle(frame.rotation)
    except av.FFmpegError as exc:
        if isobmff_truncated(path):
            raise Rejected(
                "broken", "truncated", f"{path.name}: cut-off file; no video frame decodes: {ffmpeg_message(exc)}"
            ) from exc
        raise Rejected(
            "broken", "decode_error", f"{path.name}: first video frame fails to decode: {ffmpeg_message(exc)}"
        ) from exc
    if isobmff_truncated(path):
        raise Rejected("broken", "truncated", f"{path.name}: cut-off file; no video frame decodes")
    raise Rejected("broken", "zero_frames", f"{path.name}: the video stream has no decodable frame")


def _fps(stream) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return Fraction(rate)
    return Fraction(0)


def probe(path: str | os.PathLike) -> MediaInfo:
    """Describe a source without decoding more than its first video frame.

    Raises `Rejected("broken", reason, message)` with reason ``not_found``, ``empty_file``,
    ``truncated``, ``decode_error``, ``no_video`` or ``zero_frames``.  A missing audio stream
    is not an error here (``has_audio=False``).  Width and height are display sizes: swapped
    when the rotation is 90 or 270.
    """
    path = Path(path)
    container = open_container(path)
    with container:
        video = _main_video_stream(container)
        if video is None:
            kinds = ", ".join(s.type for s in container.streams) or "none"
            raise Rejected("broken", "no_video", f"{path.name}: no video stream (streams: {kinds})")
        audio = container.streams.audio[0] if container.streams.audio else None
        ctx = video.codec_context
        width, height = ctx.width, ctx.height
        fps = _fps(video)
        duration_s = 0.0
        if video.duration is not None and video.time_base:
            duration_s = float(video.duration * video.time_base)
        elif container.duration is not None:
            duration_s = container.duration / av.time_base
        rotation = _first_frame_rotation(path, container, video)
        if rotation in (90, 270):
            width, height = height, width
        return MediaInfo(
            width=width,
            height=height,
            fps=fps,
            duration_s=duration_s,
            rotation=rotation,
            video_codec=ctx.name,
            has_audio=audio is not None,
            audio_rate=audio.codec_context.sample_rate if audio is not None else 0,
            audio_channels=audio.codec_context.channels if audio is not None else 0,
            audio_codec=audio.codec_context.name if audio is not None else "",
        )
