"""Detect once, then follow one face frame to frame with the landmark model.

Per frame the tracker either runs the detector (first frame of a shot, every
`redetect_every` frames, and whenever the tracked landmarks look wrong) or
rebuilds the predictor's box from the previous frame's landmarks and runs only
the landmark model.  Tracked landmarks are checked on every frame (landmarks
leaving the image, the box jumping or changing size, the shape no longer
looking like the face found at the last detection) and, every `verify_every`
frames, by asking the backend whether the tracked region is still a face.
Any failed check triggers a detection on the same frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from syncvid.face.backends import FaceBackend, FaceObservation
from syncvid.face.landmarks import Box, box_center, box_wh, inside_fraction, shape_residual, yaw_from_68
from syncvid.media.picture import Picture, as_picture

# While no face is being tracked, look for one every this many frames (detection is the costly part).
SEARCH_EVERY = 5
# Plausibility limits for a tracked frame relative to the previous one.
MIN_INSIDE = 0.75  # fraction of landmarks inside the image
MAX_SIZE_CHANGE = 1.25  # ratio of box sizes (either way)
MAX_JUMP = 0.25  # centre displacement, in face sizes
MAX_SHAPE_RESIDUAL = 0.25  # `shape_residual` against the shape at the last detection (a collapsed shape)


@dataclass(frozen=True)
class FrameFace:
    """The face stage's view of one 25 fps frame.

    landmarks: float32 [68, 2] image pixels (x, y), or None when no face;
    box: reference face box (x0, y0, x1, y1) or None; score: detection
    confidence in [0, 1]; num_faces: faces seen at the last detection (after
    the score and aspect filters); second_face_ratio: area of the second
    largest / the largest at the last detection (0 if none); detected: this
    frame ran the detector; yaw_deg: head yaw estimate or None; anchors: the
    three alignment points [3, 2] or None; small_faces: faces skipped at the
    last detection only because they were smaller than the size limits.
    """

    landmarks: np.ndarray | None
    box: Box | None
    score: float
    num_faces: int
    second_face_ratio: float
    detected: bool
    yaw_deg: float | None
    anchors: np.ndarray | None = None
    small_faces: int = 0

    @property
    def has_face(self) -> bool:
        return self.landmarks is not None


@dataclass(frozen=True)
class Selection:
    face: FaceObservation | None
    num_faces: int
    second_face_ratio: float
    small_faces: int


def select_face(
    faces: list[FaceObservation],
    *,
    min_width: float,
    min_height: float,
    min_aspect: float,
    max_aspect: float,
    min_score: float,
) -> Selection:
    """LatentSync's face selection (docs/face.md): drop low scores and odd aspect ratios, skip
    too-small faces, take the largest."""
    candidates = []
    for f in faces:
        w, h = box_wh(f.box)
        if h <= 0 or w <= 0 or f.score < min_score:
            continue
        if not (min_aspect <= w / h <= max_aspect):
            continue
        candidates.append(f)
    candidates.sort(key=lambda f: f.area, reverse=True)
    valid = [f for f in candidates if box_wh(f.box)[0] >= min_width and box_wh(f.box)[1] >= min_height]
    small = len(candidates) - len(valid)
    if not valid:
        return Selection(None, len(candidates), 0.0, small)
    main = valid[0]
    others = [f.area for f in candidates if f is not main]
    ratio = max(others) / main.area if others and main.area > 0 else 0.0
    return Selection(main, len(candidates), float(ratio), small)


def plausible_step(prev: FaceObservation, cur: FaceObservation, reference: np.ndarray, width: int, height: int) -> str:
    """'' when `cur` is a believable next position of `prev`, else the name of the failed check."""
    if inside_fraction(cur.landmarks, width, height) < MIN_INSIDE:
        return "outside"
    pw, ph = box_wh(prev.box)
    cw, ch = box_wh(cur.box)
    ps, cs = math.sqrt(max(pw * ph, 1e-9)), math.sqrt(max(cw * ch, 1e-9))
    if not (1.0 / MAX_SIZE_CHANGE <= cs / ps <= MAX_SIZE_CHANGE):
        return "size"
    (px, py), (cx, cy) = box_center(prev.box), box_center(cur.box)
    if math.hypot(cx - px, cy - py) > MAX_JUMP * ps:
        return "jump"
    if shape_residual(cur.landmarks, reference) > MAX_SHAPE_RESIDUAL:
        return "shape"
    return ""


class FaceTracker:
    """Follows the largest face of a shot; one instance per worker, `reset()` per source."""

    def __init__(self, backend: FaceBackend, params):
        self.backend = backend
        self.params = params
        self.redetect_every = max(1, int(params.redetect_every))
        self.verify_every = max(0, int(getattr(params, "verify_every", 5)))
        self.reset()
        # Counters for benchmarks and tests.
        self.num_detections = 0
        self.num_verifications = 0
        self.num_recoveries = 0

    def reset(self) -> None:
        self._face: FaceObservation | None = None
        self._reference: np.ndarray | None = None
        self._since_detect = 0
        self._searched = False
        self._selection = Selection(None, 0, 0.0, 0)

    def _detect(self, image: Picture) -> None:
        p = self.params
        self.num_detections += 1
        sel = select_face(
            self.backend.detect(image),
            min_width=p.min_width_px,
            min_height=p.min_height_px,
            min_aspect=p.min_aspect,
            max_aspect=p.max_aspect,
            min_score=p.min_score,
        )
        self._selection = sel
        self._face = sel.face
        self._reference = None if sel.face is None else sel.face.landmarks
        self._since_detect = 0
        self._searched = True

    def step(self, image: Picture | np.ndarray, new_shot: bool = False) -> FrameFace:
        """Track into the next frame (a Picture or an RGB array); `new_shot` forgets the face first."""
        image = as_picture(image)
        h, w = image.height, image.width
        detected = False
        if new_shot:
            self.reset()
        self._since_detect += 1
        if self._face is None:
            if not self._searched or self._since_detect >= SEARCH_EVERY:
                self._detect(image)
                detected = True
        elif self._since_detect >= self.redetect_every:
            self._detect(image)
            detected = True
        else:
            cur = self.backend.refine(image, self._face)
            ok = plausible_step(self._face, cur, self._reference, w, h) == ""
            if ok and self.verify_every and self._since_detect % self.verify_every == 0:
                self.num_verifications += 1
                ok = self.backend.verify(image, cur) > 0.0
            if ok:
                self._face = cur
            else:
                self.num_recoveries += 1
                self._detect(image)
                detected = True
        face = self._face
        sel = self._selection
        if face is None:
            return FrameFace(None, None, 0.0, sel.num_faces, sel.second_face_ratio, detected, None, None, sel.small_faces)
        return FrameFace(
            landmarks=face.landmarks,
            box=tuple(float(v) for v in face.box),
            score=float(face.score),
            num_faces=sel.num_faces,
            second_face_ratio=sel.second_face_ratio,
            detected=detected,
            yaw_deg=yaw_from_68(face.landmarks, w, h),
            anchors=face.anchors,
            small_faces=sel.small_faces,
        )
