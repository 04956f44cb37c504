"""Stage 5 — face: detect, track and landmark one face per frame; align; judge segments.

The runner calls, per worker: `FaceStage(params).setup()`; per 25 fps frame,
in order: `track(picture, new_shot)`; per clip: `new_aligner()` then
`aligner.warp(picture, frame_face)` (a `syncvid.media.picture.Picture` or an RGB array); per candidate segment:
`judge(frame_faces)`, which returns `FaceStats` or raises
`Rejected("face", reason, ...)` with reason one of `no_face`,
`multiple_faces`, `face_too_small`, `face_lost`, `extreme_yaw` (`Reason.of_stage("face")`).
The contract it shares with sync and quality: `syncvid.stages.base.Stage`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from syncvid.config.pipeline_schema import FaceSection
from syncvid.face.align import FaceAligner, OneEuroFilter, template_points_output
from syncvid.face.backends import FaceBackend, create_backend
from syncvid.face.landmarks import RIGID_68, box_wh
from syncvid.face.tracker import FaceTracker, FrameFace
from syncvid.records import Rejected
from syncvid.rows import Reason
from syncvid.stages.base import Stage

__all__ = ["FaceStage", "FrameFace", "FaceStats", "judge_faces", "landmark_jitter"]

FPS = 25.0


@dataclass(frozen=True)
class FaceStats:
    """What the face stage measured on one candidate segment."""

    face_size_px: float  # median over frames of the face box's smaller side (reference box, source pixels)
    detection_rate: float  # fraction of frames with a face
    landmark_jitter_px: float  # median landmark acceleration of rigid points, in pixels of the aligned r×r face
    backend: str
    num_faces_max: int  # most faces seen at one detection
    second_face_ratio: float  # median over detections of (2nd largest area / largest)
    yaw_deg_p90: float | None  # 90th percentile of |yaw| over frames with a face
    num_frames: int
    missing_frames: int

    def as_dict(self) -> dict:
        """Manifest columns."""
        return {
            "face_size_px": round(self.face_size_px, 2),
            "face_detect_rate": round(self.detection_rate, 4),
            "face_jitter": round(self.landmark_jitter_px, 4),
            "face_backend": self.backend,
            "face_num_faces_max": self.num_faces_max,
            "face_second_ratio": round(self.second_face_ratio, 4),
            "face_yaw_deg": None if self.yaw_deg_p90 is None else round(self.yaw_deg_p90, 2),
            "face_missing_frames": self.missing_frames,
        }


def landmark_jitter(frame_faces: list[FrameFace], resolution: int) -> float:
    """Median, over runs of consecutive frames with a face, of the landmark acceleration.

    For each frame t with faces at t−1, t, t+1: the mean over the rigid points
    (brows, eyes, nose, upper jaw — not the mouth, which moves when speaking)
    of |x(t+1) − 2x(t) + x(t−1)|, scaled to pixels of the aligned face (the
    brow-to-brow distance of the template).  0 for a perfectly still track.
    """
    tmpl = template_points_output(resolution)
    tmpl_dist = float(np.linalg.norm(tmpl[1] - tmpl[0]))
    vals = []
    idx = list(RIGID_68)
    for a, b, c in zip(frame_faces, frame_faces[1:], frame_faces[2:]):
        if a.landmarks is None or b.landmarks is None or c.landmarks is None or b.anchors is None:
            continue
        scale = float(np.linalg.norm(b.anchors[1] - b.anchors[0]))
        if scale <= 1e-6:
            continue
        acc = a.landmarks[idx] - 2.0 * b.landmarks[idx] + c.landmarks[idx]
        vals.append(float(np.linalg.norm(acc, axis=1).mean()) * tmpl_dist / scale)
    return float(np.median(vals)) if vals else 0.0


def judge_faces(frame_faces: list[FrameFace], params: FaceSection, backend: str) -> FaceStats:
    """The segment rules (LatentSync's plus ours, docs/face.md); pure, no models.  Raises `Rejected`."""
    n = len(frame_faces)
    if n == 0:
        raise ValueError("judge_faces needs at least one frame")
    present = [f for f in frame_faces if f.landmarks is not None]
    missing = n - len(present)
    detections = [f for f in frame_faces if f.detected]
    num_faces_max = max((f.num_faces for f in frame_faces), default=0)
    base = {
        "face_backend": backend,
        "face_detect_rate": round(len(present) / n, 4),
        "face_missing_frames": missing,
        "face_num_faces_max": num_faces_max,
    }
    if not present:
        small = sum(1 for f in frame_faces if f.small_faces > 0)
        if small:
            raise Rejected(
                "face", Reason.FACE_TOO_SMALL,
                f"faces were found in {small} of {n} frames but all were below the size limits "
                f"({params.min_width_px}x{params.min_height_px} px)",
                base,
            )
        raise Rejected("face", Reason.NO_FACE, f"no face in any of the {n} frames", base)

    sizes = [min(box_wh(f.box)) for f in present if f.box is not None]
    face_size = float(np.median(sizes)) if sizes else 0.0
    ratios = [f.second_face_ratio for f in (detections or present)]
    ratio = float(np.median(ratios)) if ratios else 0.0
    yaws = [abs(f.yaw_deg) for f in present if f.yaw_deg is not None]
    yaw90 = float(np.percentile(yaws, 90)) if yaws else None
    jitter = landmark_jitter(frame_faces, params.resolution)
    stats = FaceStats(
        face_size_px=face_size,
        detection_rate=len(present) / n,
        landmark_jitter_px=jitter,
        backend=backend,
        num_faces_max=num_faces_max,
        second_face_ratio=ratio,
        yaw_deg_p90=yaw90,
        num_frames=n,
        missing_frames=missing,
    )
    measured = stats.as_dict()
    if ratio >= params.multiple_face_ratio:
        raise Rejected(
            "face", Reason.MULTIPLE_FACES,
            f"a second face {ratio:.2f}x the main face's area (limit {params.multiple_face_ratio})",
            measured,
        )
    if missing > params.max_missing_frames:
        missing_small = sum(1 for f in frame_faces if f.landmarks is None and f.small_faces > 0)
        if missing_small * 2 >= missing:
            raise Rejected(
                "face", Reason.FACE_TOO_SMALL,
                f"the face was below the size limits in {missing_small} of {n} frames",
                measured,
            )
        first = next(i for i, f in enumerate(frame_faces) if f.landmarks is None)
        raise Rejected(
            "face", Reason.FACE_LOST,
            f"no face in {missing} of {n} frames (first at frame {first}; {params.max_missing_frames} allowed)",
            measured,
        )
    if face_size < params.min_size_px:
        raise Rejected(
            "face", Reason.FACE_TOO_SMALL, f"face {face_size:.0f} px < {params.min_size_px} px (median over frames)",
            measured,
        )
    if params.max_yaw_deg is not None and yaw90 is not None and yaw90 > params.max_yaw_deg:
        raise Rejected(
            "face", Reason.EXTREME_YAW, f"head yaw {yaw90:.0f}° (90th percentile) > {params.max_yaw_deg}°", measured
        )
    return stats


class FaceStage(Stage):
    """Detection + tracking + landmarks per frame, alignment per clip, rules per segment."""

    name = "face"
    gpu_backends = frozenset({"insightface"})

    def __init__(self, params: FaceSection):
        self.params = params
        self.backend: FaceBackend | None = None
        self.tracker: FaceTracker | None = None

    def setup(self) -> None:
        """Load the backend's models (once per worker)."""
        if self.backend is None:
            backend = create_backend(self.params)
            backend.setup()
            self.backend = backend
            self.tracker = FaceTracker(backend, self.params)

    def configured_backends(self) -> tuple[str, ...]:
        return (self.params.backend,)

    @property
    def backend_name(self) -> str:
        return self.backend.name if self.backend is not None else self.params.backend

    def reset(self) -> None:
        """Forget the tracked face (call between sources)."""
        if self.tracker is not None:
            self.tracker.reset()

    def track(self, image, new_shot: bool) -> FrameFace:
        """`image`: the frame as a `Picture` (what the runner passes) or an RGB uint8 array."""
        if self.tracker is None:
            raise RuntimeError("FaceStage.setup() must be called before track()")
        return self.tracker.step(image, new_shot)

    def new_aligner(self) -> FaceAligner:
        p = self.params
        filt = OneEuroFilter(FPS, p.smooth_min_cutoff_hz, p.smooth_beta) if p.smooth_anchors else None
        return FaceAligner(p.resolution, smooth_bias=True, anchor_filter=filt, resize=p.resize_interpolation)

    def judge(self, frame_faces: list[FrameFace]) -> FaceStats:
        """The segment rules on its tracked frames (`judge_faces`); raises `Rejected`."""
        return judge_faces(frame_faces, self.params, self.backend_name)
