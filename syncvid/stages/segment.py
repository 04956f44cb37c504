"""Stage 4 — segment: cut each shot frame-exactly into fixed-length pieces.

The pure core works on frame indices of the 25 fps output timeline; audio is
cut sample-exactly by the runner (``samples_per_frame`` samples per frame).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from syncvid.config.pipeline_schema import SegmentSection


@dataclass(frozen=True)
class SegmentPlan:
    """One piece of a shot: output frames [start, end); `keep` is False for a too-short tail."""

    shot_index: int
    seg_index: int
    start: int
    end: int
    keep: bool

    @property
    def num_frames(self) -> int:
        return self.end - self.start


def segment_frames(params: SegmentSection, fps: int) -> tuple[int, int]:
    """(frames per segment, minimum frames of a kept segment) for the given output rate."""
    length = int(round(params.seconds * fps))
    minimum = int(math.ceil(params.min_seconds * fps - 1e-9))
    if length <= 0:
        raise ValueError(f"segment.seconds must give at least one frame at {fps} fps, got {params.seconds}")
    return length, max(1, minimum)


def split_shot(shot_index: int, start: int, end: int, length: int, minimum: int) -> list[SegmentPlan]:
    """Split shot frames [start, end) into `length`-frame pieces; a tail under `minimum` is marked not kept."""
    plans = []
    seg = 0
    pos = start
    while pos < end:
        stop = min(pos + length, end)
        plans.append(SegmentPlan(shot_index, seg, pos, stop, keep=(stop - pos) >= minimum))
        seg += 1
        pos = stop
    return plans


def shots_from_cuts(cuts: list[int], num_frames: int) -> list[tuple[int, int]]:
    """Shots [start, end) from cut frames (first frame of each new shot); no cut => one shot."""
    bounds = [0] + sorted(c for c in set(cuts) if 0 < c < num_frames) + [num_frames]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def locate(frame: int, shot_start: int, length: int) -> tuple[int, int]:
    """(segment index within the shot, first frame of that segment) for a frame of a shot."""
    seg = (frame - shot_start) // length
    return seg, shot_start + seg * length
