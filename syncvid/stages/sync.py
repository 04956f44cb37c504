"""Stage 6 — audio-video sync: measure the offset, correct it, drop what cannot be trusted.

`SyncStage(params).setup()`, then per candidate (`syncvid.pipeline.decisions.score_clip`, then
`decide`):
- `measure(clip)`: the offset and a confidence with the backend named by `sync.backend`
  (`landmark` by default; `syncnet`, `stable_syncnet` with user-supplied weights);
- `correct(clip, result)`: delays the audio by the offset (syncnet_python's sign: positive = audio
  leads), taking the new audio from the source's audio around the clip, and trims frames
  at the end where the source has no audio, so every kept frame has real audio;
- `judge(measurements)`, on the recorded measurements only: rejects the clip
  (`Rejected("sync", ...)`) when conf < `conf_threshold` (`low_sync_conf`), or when
  |offset| > `max_offset_frames` or the best offset lies on the border of the
  ±`search_frames` search (`offset_too_large`).
`measure` and `correct` reject the clip (`too_short`) when fewer frames than the backend
needs remain.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from syncvid.records import Clip, Rejected
from syncvid.rows import Reason
from syncvid.stages.base import Stage
from syncvid.sync.backends import SyncBackend, SyncInput, create_backend

__all__ = ["SyncStage", "SyncResult", "correction_plan"]


@dataclass(frozen=True)
class SyncResult:
    """What the sync stage measured for one clip."""

    offset_frames: int
    conf: float
    backend: str
    at_search_edge: bool
    trimmed_frames: int = 0
    curve: tuple[float, ...] = ()
    extras: dict = field(default_factory=dict)

    def measurements(self) -> dict:
        out = {
            "sync_offset_frames": int(self.offset_frames),
            "sync_conf": float(self.conf),
            "sync_backend": self.backend,
            "sync_at_search_edge": bool(self.at_search_edge),
            "sync_trimmed_frames": int(self.trimmed_frames),
        }
        out.update(self.extras)
        return out


def correction_plan(
    source_len: int, audio_start_sample: int, num_frames: int, offset: int, hop: int = 640
) -> tuple[int, int, int]:
    """Delay the audio by `offset` frames: (new_start_sample, head_trim, tail_trim).

    The corrected clip keeps frames [head_trim, num_frames - tail_trim) and their audio
    starts at new_start_sample + head_trim·hop in the source; trimmed frames are those
    whose corrected audio would fall before the source's start or after its end.
    """
    new_start = audio_start_sample - offset * hop
    head = math.ceil(-new_start / hop) if new_start < 0 else 0
    end = new_start + num_frames * hop
    tail = math.ceil((end - source_len) / hop) if end > source_len else 0
    return new_start, min(head, num_frames), min(tail, num_frames)


class SyncStage(Stage):
    """Stage 6.  `params` is the config's `sync` section (`SyncSection`)."""

    name = "sync"
    gpu_backends = frozenset({"syncnet", "stable_syncnet"})

    def __init__(self, params, backend: SyncBackend | None = None) -> None:
        self.params = params
        self.backend = backend if backend is not None else create_backend(params)
        self._ready = False

    def configured_backends(self) -> tuple[str, ...]:
        return (self.params.backend,)

    def setup(self) -> None:
        self.backend.setup()
        self._ready = True

    @staticmethod
    def _context(clip: Clip) -> tuple[np.ndarray, int]:
        source = getattr(clip, "source_audio", None)
        if source is None:
            return np.asarray(clip.audio, dtype=np.float32).reshape(-1), 0
        return np.asarray(source, dtype=np.float32).reshape(-1), int(getattr(clip, "audio_start_sample", 0))

    def measure(self, clip: Clip) -> SyncResult:
        """Offset and confidence only (no decision, no correction)."""
        if not self._ready:
            self.setup()
        t = int(clip.frames.shape[0])
        p = self.params
        if t < self.backend.min_frames:
            raise Rejected(
                "sync",
                Reason.TOO_SHORT,
                f"{t} frames; the {self.backend.name} sync backend needs at least {self.backend.min_frames}",
                {"sync_backend": self.backend.name},
            )
        source, start = self._context(clip)
        inp = SyncInput(clip.frames, clip.landmarks, source, start, clip.sample_rate)
        est, extras = self.backend.measure(inp, int(p.search_frames))
        conf = float(est.conf) if np.isfinite(est.conf) else 0.0
        return SyncResult(
            offset_frames=int(est.offset),
            conf=conf,
            backend=self.backend.name,
            at_search_edge=bool(est.at_edge),
            curve=tuple(float(c) for c in est.curve),
            extras=extras,
        )

    def judge(self, measurements: dict) -> None:
        """Apply the thresholds to recorded measurements (pure: `syncvid filter` re-runs it)."""
        p = self.params
        conf = float(measurements["sync_conf"])
        offset = int(measurements["sync_offset_frames"])
        backend = measurements.get("sync_backend", "")
        m = {k: v for k, v in measurements.items() if k.startswith("sync_")}
        if conf < float(p.conf_threshold):
            raise Rejected(
                "sync",
                Reason.LOW_SYNC_CONF,
                f"sync confidence {conf:.2f} < {float(p.conf_threshold):g} ({backend}, offset {offset:+d})",
                m,
            )
        at_edge = bool(measurements.get("sync_at_search_edge", False))
        if abs(offset) > int(p.max_offset_frames) or at_edge:
            why = (
                f"best offset {offset:+d} lies on the border of the ±{p.search_frames} search"
                if at_edge
                else f"|offset| {abs(offset)} > {p.max_offset_frames} frames"
            )
            raise Rejected("sync", Reason.OFFSET_TOO_LARGE, why, m)

    def correct(self, clip: Clip, result: SyncResult) -> Clip:
        """Delay the clip's audio by `result.offset_frames`, trimming frames without audio."""
        t = int(clip.frames.shape[0])
        hop = clip.sample_rate // 25
        source, start = self._context(clip)
        new_start, head, tail = correction_plan(len(source), start, t, result.offset_frames, hop)
        keep = t - head - tail
        trimmed = head + tail
        m = dict(result.measurements(), sync_trimmed_frames=trimmed)
        clip.measurements.update(m)
        if keep < max(1, self.backend.min_frames):
            raise Rejected(
                "sync",
                Reason.TOO_SHORT,
                f"correcting the offset {result.offset_frames:+d} leaves {keep} frames with audio",
                m,
            )
        if result.offset_frames == 0 and trimmed == 0:
            return clip
        a0 = new_start + head * hop
        clip.frames = clip.frames[head : t - tail]
        if clip.landmarks is not None:
            clip.landmarks = clip.landmarks[head : t - tail]
        clip.audio = np.ascontiguousarray(source[a0 : a0 + keep * hop], dtype=np.float32)
        if trimmed:
            seg = clip.segment
            clip.segment = dataclasses.replace(
                seg, start_frame=seg.start_frame + head, end_frame=seg.end_frame - tail
            )
        if getattr(clip, "source_audio", None) is not None:
            clip.audio_start_sample = a0
        return clip
