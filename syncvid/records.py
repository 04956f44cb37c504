"""Typed records that flow between the pipeline's stages.

Times are seconds (float) in *source* time unless a name says otherwise; frame
indices are positions on the 25 fps output timeline of one source (frame 0 is
the first frame of the common audio/video span).  Frame rates are `Fraction`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

STAGES = ("broken", "resample", "scene", "segment", "face", "sync", "quality")

# Clip names are `<clip stem>_shot_<NNN>_<SSS>.mp4`: a clip stem of at most this many UTF-8 bytes
# leaves room for the suffix (and shot numbers beyond 999) within the 255-byte name limit.
MAX_CLIP_STEM_BYTES = 200
_CLIP_SUFFIX = re.compile(r"_shot_\d{3,}_\d{3,}$")


def fit_clip_stem(stem: str) -> str:
    """`stem` itself when it fits MAX_CLIP_STEM_BYTES, else its start and 8 hex digits of its SHA-1."""
    data = stem.encode("utf-8", "surrogateescape")
    if len(data) <= MAX_CLIP_STEM_BYTES:
        return stem
    digest = hashlib.sha1(data).hexdigest()[:8]
    head = data[: MAX_CLIP_STEM_BYTES - len(digest) - 1].decode("utf-8", "ignore")  # whole characters only
    return f"{head}_{digest}"


def default_clip_stem(source_rel: str) -> str:
    """The clip stem of a source whose stem no other source in its folder shares: its own stem."""
    return fit_clip_stem(Path(source_rel).stem)


def clip_stem_of(clip_id: str) -> str:
    """The clip stem a clip id `<clip stem>_shot_<NNN>_<SSS>` starts with ("" when it is not one)."""
    match = _CLIP_SUFFIX.search(clip_id or "")
    return clip_id[: match.start()] if match else ""


class Rejected(Exception):
    """Raised by a stage to reject a source or a segment; the runner records it.

    `reason` is a short code, a `syncvid.rows.Reason` (``no_audio``, ``no_face``,
    ``low_quality:blur``, ...; a `str`), `stage` one of `STAGES`, `message` a one-line human explanation.  `measurements`
    carries whatever the stage measured before deciding (face size, sync
    confidence, ...) so that the manifest keeps scores of dropped candidates too.
    """

    def __init__(self, stage: str, reason: str, message: str, measurements: dict | None = None):
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}")
        super().__init__(f"{stage}/{reason}: {message}")
        self.stage = stage
        self.reason = reason
        self.message = message
        self.measurements = dict(measurements or {})


@dataclass(frozen=True)
class Source:
    """One input file."""

    path: Path  # absolute path of the file
    rel: str  # path relative to the input root, with '/' separators
    # What its clips are named after when not its own stem (discovery sets it when stems
    # collide within a folder: see `pipeline.discovery.assign_clip_stems`).
    clip_stem: str = ""

    @property
    def stem(self) -> str:
        return Path(self.rel).stem

    @property
    def output_stem(self) -> str:
        """The stem of every file named after this source (clips, intermediates, thumbnails)."""
        return self.clip_stem or default_clip_stem(self.rel)

    @property
    def rel_dir(self) -> str:
        parent = Path(self.rel).parent.as_posix()
        return "" if parent == "." else parent


@dataclass(frozen=True)
class MediaInfo:
    """What probing a source tells us (before any frame is decoded)."""

    width: int  # display width (after rotation)
    height: int  # display height (after rotation)
    fps: Fraction  # average frame rate as reported by the container
    duration_s: float  # container or stream duration, 0.0 when unknown
    rotation: int  # degrees clockwise the frames must be turned to be upright (0/90/180/270)
    video_codec: str
    has_audio: bool
    audio_rate: int  # 0 without audio
    audio_channels: int  # 0 without audio
    audio_codec: str = ""


@dataclass(frozen=True)
class Segment:
    """A frame-exact piece of one shot: output frames [start_frame, end_frame)."""

    source_rel: str
    shot_index: int
    seg_index: int
    start_frame: int
    end_frame: int
    fps: Fraction = Fraction(25)
    time_offset_s: float = 0.0  # source time of output frame 0 (start of the common span)
    clip_stem: str = ""  # the source's `output_stem` ("" for its default)

    @property
    def num_frames(self) -> int:
        return self.end_frame - self.start_frame

    @property
    def start_s(self) -> float:
        return self.time_offset_s + float(self.start_frame / self.fps)

    @property
    def end_s(self) -> float:
        return self.time_offset_s + float(self.end_frame / self.fps)

    @property
    def clip_id(self) -> str:
        stem = self.clip_stem or default_clip_stem(self.source_rel)
        return f"{stem}_shot_{self.shot_index:03d}_{self.seg_index:03d}"

    @property
    def clip_rel(self) -> str:
        """Clip path relative to a stage folder: mirrors the source's folder."""
        parent = Path(self.source_rel).parent.as_posix()
        name = f"{self.clip_id}.mp4"
        return name if parent == "." else f"{parent}/{name}"


@dataclass
class Clip:
    """A candidate clip held in memory between the face stage and encoding.

    frames: uint8 [T, r, r, 3] RGB aligned faces; audio: float32 [T * 640] at
    16 kHz mono, in [-1, 1]; landmarks: float32 [T, 68, 2] in aligned-crop
    pixel coordinates (x, y).  `source_audio[audio_start_sample:]` starts with
    `audio` when the source audio is attached.
    """

    segment: Segment
    frames: np.ndarray
    audio: np.ndarray
    landmarks: np.ndarray | None = None
    sample_rate: int = 16000
    measurements: dict = field(default_factory=dict)
    # The whole source's 16 kHz audio (a view, not a copy) and the index in it of
    # the clip's first sample: lets the sync stage search and shift beyond the clip.
    source_audio: np.ndarray | None = None
    audio_start_sample: int = 0
