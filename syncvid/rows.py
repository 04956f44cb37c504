"""Typed values of the manifest's `row_type`, `status` and `reason` columns.

The enums are `str` subclasses whose `str()` and f-string form is the plain value, so
``row["status"] == "kept"`` holds whether the row came from a stage (an enum member) or from a
completion marker or the parquet file (a plain string), and json and pyarrow write the values
unchanged.  `Reason` lists every code a row can carry, with the stages that emit it and its meaning;
docs/outputs.md's reason table mirrors it.
"""

from __future__ import annotations

from enum import Enum


class _Code(str, Enum):
    """A `str` enum that prints, formats and serialises as its value (like Python 3.11's StrEnum)."""

    __str__ = str.__str__
    __format__ = str.__format__


class RowType(_Code):
    SOURCE = "source"  # one row per input file
    CLIP = "clip"  # one row per candidate segment


class Status(_Code):
    KEPT = "kept"
    DROPPED = "dropped"


class Reason(_Code):
    """Why a source or a candidate segment was dropped: (code, stages that emit it, meaning)."""

    stages: tuple[str, ...]
    meaning: str

    def __new__(cls, code: str, stages: tuple[str, ...], meaning: str) -> "Reason":
        member = str.__new__(cls, code)
        member._value_ = code
        member.stages = stages
        member.meaning = meaning
        return member

    # broken: the source as a whole
    NOT_FOUND = "not_found", ("broken",), "the path does not exist or is not a regular file"
    EMPTY_FILE = "empty_file", ("broken",), "the file has 0 bytes"
    TRUNCATED = "truncated", ("broken",), "a cut-off MP4/MOV file: no video frame decodes"
    DECODE_ERROR = "decode_error", ("broken",), "FFmpeg cannot open the file or decode a frame of it"
    ZERO_FRAMES = "zero_frames", ("broken",), "the video stream has no decodable frame"
    NO_VIDEO = "no_video", ("broken",), "the file has no video stream"
    NO_AUDIO = "no_audio", ("broken",), "the file has no audio stream"
    EMPTY_AUDIO = "empty_audio", ("broken",), "the audio stream has no decodable sample"
    NO_COMMON_SPAN = "no_common_span", ("broken", "resample"), "audio and video do not overlap in time"
    INTERNAL_ERROR = "internal_error", ("broken", "resample"), \
        "an unexpected error while processing the source (the message names the cause); retried on resume"
    WORKER_CRASHED = "worker_crashed", ("resample",), \
        "the worker process died on this source on every attempt; retried on resume"
    # broken: paths under the input folder that never became sources (discovery)
    BAD_NAME = "bad_name", ("broken",), "a file name that is not valid UTF-8 or holds a line break"
    NOT_A_REGULAR_FILE = "not_a_regular_file", ("broken",), "a FIFO, device or socket with a video extension (never opened)"
    DANGLING_LINK = "dangling_link", ("broken",), "a symbolic link whose target cannot be reached"
    UNREADABLE_FILE = "unreadable_file", ("broken",), "a file whose status cannot be read"
    UNREADABLE_FOLDER = "unreadable_folder", ("broken",), "a folder that cannot be listed"
    # writing the run's own files: `stage` is the stage whose file it was
    DISK_FULL = "disk_full", (), \
        "no space left (ENOSPC, EDQUOT) writing one of the run's files (the message names it); the run stops"
    WRITE_ERROR = "write_error", (), \
        "any other error writing one of the run's files (the message names it); retried on resume"
    # source row: its stage is the commonest stage among its segments' rejections
    NO_CLIPS_KEPT = "no_clips_kept", (), "every segment of the source was dropped (the message counts their reasons)"
    # segment, sync: a candidate too short to keep
    TOO_SHORT = "too_short", ("segment", "sync"), \
        "fewer frames than `segment.min_seconds`, than the sync backend needs, or left after the sync correction"
    # face
    NO_FACE = "no_face", ("face",), "no face in any frame of the segment"
    MULTIPLE_FACES = "multiple_faces", ("face",), "a second face at least `face.multiple_face_ratio` of the main one"
    FACE_TOO_SMALL = "face_too_small", ("face",), "the face is below the size limits (`face.min_size_px`, ...)"
    FACE_LOST = "face_lost", ("face",), "no face in more than `face.max_missing_frames` frames of the segment"
    EXTREME_YAW = "extreme_yaw", ("face",), "the head turns further than `face.max_yaw_deg`"
    # sync
    LOW_SYNC_CONF = "low_sync_conf", ("sync",), "sync confidence below `sync.conf_threshold`"
    OFFSET_TOO_LARGE = "offset_too_large", ("sync",), \
        "offset beyond `sync.max_offset_frames`, or the best offset on the border of the search"
    # quality: the first failed check, in the order of syncvid.stages.quality.CHECKS
    LOW_QUALITY_DARK = "low_quality:dark", ("quality",), "brightness below `quality.min_brightness`"
    LOW_QUALITY_BRIGHT = "low_quality:bright", ("quality",), "brightness above `quality.max_brightness`"
    LOW_QUALITY_BLUR = "low_quality:blur", ("quality",), "face sharpness below `quality.min_sharpness`"
    LOW_QUALITY_MOUTH_BLUR = "low_quality:mouth_blur", ("quality",), \
        "mouth sharpness below `quality.min_mouth_sharpness`"
    LOW_QUALITY_CONTRAST = "low_quality:contrast", ("quality",), "contrast below `quality.min_contrast`"
    LOW_QUALITY_NOISE = "low_quality:noise", ("quality",), "noise above `quality.max_noise`"
    LOW_QUALITY_BLOCKINESS = "low_quality:blockiness", ("quality",), "blockiness above `quality.max_blockiness`"
    LOW_QUALITY_BRISQUE = "low_quality:brisque", ("quality",), "BRISQUE score above `quality.max_brisque`"
    LOW_QUALITY_HYPERIQA = "low_quality:hyperiqa", ("quality",), "HyperIQA score below `quality.min_hyperiqa`"

    @classmethod
    def low_quality(cls, check: str) -> "Reason":
        """The reason of a failed quality check (`Check.reason`, e.g. ``blur``)."""
        return cls(f"low_quality:{check}")

    @classmethod
    def of_stage(cls, stage: str) -> tuple["Reason", ...]:
        """The reasons `stage` may record, in declaration order."""
        return tuple(r for r in cls if stage in r.stages)
