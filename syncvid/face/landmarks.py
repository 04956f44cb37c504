"""Geometry of 68-point landmarks: boxes, plausibility measures, head yaw.

Box conventions (all (x0, y0, x1, y1) in image pixels):

* *predictor box*: the square box dlib's HOG detector draws (about brows to
  chin).  The 68-point shape predictor was trained on such boxes, so tracking
  rebuilds one from the previous frame's landmarks (`predictor_box_from_68`);
  the coefficients were fitted on HOG detections of the real test videos.
* *reference box*: an estimate of the box InsightFace's SCRFD detector draws,
  which includes part of the forehead.  LatentSync's size rules (w ≥ 50, h ≥ 80,
  0.2 ≤ w/h ≤ 1.5; docs/face.md) were written for that box, so the dlib backend applies them
  to this estimate: width = horizontal extent of the landmarks (jaw to jaw),
  bottom = chin, top = brow line raised by 30 % of the brow-to-chin height.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from syncvid.face.align import best_rotation

Box = tuple[float, float, float, float]

# Predictor box from landmark statistics (fitted on dlib HOG boxes of real frames).
_PRED_SIDE = 1.02  # side = 1.02·sqrt(extent_w·extent_h)
_PRED_DX = 0.02  # centre x = landmark mean x + 0.02·side
_PRED_DY = -0.06  # centre y = landmark mean y − 0.06·side
_FOREHEAD = 0.30  # reference box top = brow top − 0.30·(chin − brow top)

# Generic 3-D head model (millimetre-like units, x right, y up, z towards the camera)
# for six 68-point landmarks: nose tip 30, chin 8, outer eye corners 36/45, mouth corners 48/54.
_HEAD_IDX = (30, 8, 36, 45, 48, 54)
_HEAD_3D = np.array(
    [
        [0.0, 0.0, 0.0],
        [0.0, -330.0, -65.0],
        [-225.0, 170.0, -135.0],
        [225.0, 170.0, -135.0],
        [-150.0, -150.0, -125.0],
        [150.0, -150.0, -125.0],
    ]
)
_HEAD_IDX_LIST = list(_HEAD_IDX)
# The model's y axis points up, the image's down: the model flipped to image axes.
_HEAD_3D_IMAGE_AXES = _HEAD_3D * np.array([1.0, -1.0, -1.0])
# Points that do not move when the mouth does: brows, nose, eyes, upper jaw.
STABLE_68 = tuple(range(27, 48))  # nose and eyes: the best-placed points of the predictor
RIGID_68 = tuple(list(range(0, 5)) + list(range(12, 17)) + list(range(17, 48)))


def _square_box(p: np.ndarray, k_side: float, k_dx: float, k_dy: float) -> Box:
    lo, hi = p.min(0), p.max(0)
    ext = np.maximum(hi - lo, 1.0)
    side = k_side * math.sqrt(ext[0] * ext[1])
    cx = p[:, 0].mean() + k_dx * side
    cy = p[:, 1].mean() + k_dy * side
    return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


def predictor_box_from_68(lm: np.ndarray) -> Box:
    """The square HOG-style box the shape predictor expects around these landmarks."""
    return _square_box(np.asarray(lm, dtype=np.float64), _PRED_SIDE, _PRED_DX, _PRED_DY)


def predictor_box_from_outline(jaw_and_brows: np.ndarray) -> Box:
    """The same box from only the 17 jaw + 10 eyebrow points (68-point order 0..26).

    Used by backends whose own landmarks share only those points with the
    68-point layout (InsightFace's 106 points); fitted on the same HOG boxes.
    """
    p = np.asarray(jaw_and_brows, dtype=np.float64)
    if p.shape != (27, 2):
        raise ValueError(f"expected [27, 2] jaw and eyebrow points, got {p.shape}")
    return _square_box(p, 1.06, 0.0, -0.035)


def follow_box(key_box: Box, key_landmarks: np.ndarray, landmarks: np.ndarray, idx: tuple[int, ...] | None = None) -> Box:
    """Move `key_box` (where `key_landmarks` were found) with the face to where `landmarks` are.

    The motion is the similarity transform between the stable points (eyes and
    nose; `idx`, default `STABLE_68`) of the two shapes; the box keeps its
    axis alignment, as landmark models take upright boxes.
    """
    sel = list(STABLE_68 if idx is None else idx)
    a = np.asarray(key_landmarks, dtype=np.float64)[sel]
    b = np.asarray(landmarks, dtype=np.float64)[sel]
    ca, cb = a.mean(0), b.mean(0)
    na, nb = np.linalg.norm(a - ca), np.linalg.norm(b - cb)
    scale = nb / na if na > 1e-9 else 1.0
    kx, ky = box_center(key_box)
    # Centre of the box relative to the shape's centre, rotated and scaled with the face
    # (not turned at all when the best orthogonal fit is a reflection: a scrambled shape).
    h = (a - ca).T @ (b - cb)
    rot = best_rotation(h) if h[0, 0] * h[1, 1] - h[0, 1] * h[1, 0] >= 0 else np.eye(2)
    cx, cy = cb + scale * rot @ (np.array([kx, ky]) - ca)
    hw = scale * (key_box[2] - key_box[0]) / 2.0
    hh = scale * (key_box[3] - key_box[1]) / 2.0
    return (cx - hw, cy - hh, cx + hw, cy + hh)


def reference_box_from_68(lm: np.ndarray) -> Box:
    """An InsightFace-like face box (includes part of the forehead) from 68 landmarks."""
    p = np.asarray(lm, dtype=np.float64)
    x0, x1 = float(p[:, 0].min()), float(p[:, 0].max())
    y1 = float(p[:, 1].max())
    brow = float(p[17:27, 1].min())
    y0 = brow - _FOREHEAD * max(y1 - brow, 0.0)
    return (x0, y0, x1, y1)


def box_wh(box: Box) -> tuple[float, float]:
    return max(box[2] - box[0], 0.0), max(box[3] - box[1], 0.0)


def box_area(box: Box) -> float:
    w, h = box_wh(box)
    return w * h


def box_center(box: Box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0


def iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = box_area(a) + box_area(b) - inter
    return inter / union if union > 0 else 0.0


def inside_fraction(lm: np.ndarray, width: int, height: int) -> float:
    """Fraction of the landmarks that lie inside the image."""
    p = np.asarray(lm)
    ok = (p[:, 0] >= 0) & (p[:, 0] < width) & (p[:, 1] >= 0) & (p[:, 1] < height)
    return float(ok.mean())


def shape_residual(lm: np.ndarray, reference: np.ndarray, idx: tuple[int, ...] = RIGID_68) -> float:
    """RMS distance between two shapes after the best similarity fit, in units of the
    reference's RMS radius (0 = same shape; a collapsed or scrambled shape gives > 0.3)."""
    a = np.asarray(lm, dtype=np.float64)[list(idx)]
    b = np.asarray(reference, dtype=np.float64)[list(idx)]
    a = a - a.mean(0)
    b = b - b.mean(0)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na < 1e-9 or nb < 1e-9:
        return float("inf")
    a, b = a / na, b / nb
    # Orthogonal Procrustes with optimal scale: residual² = 1 − (sum of singular values)²; for a
    # 2×2 matrix (σ1 + σ2)² = σ1² + σ2² + 2·σ1·σ2 = ‖h‖² + 2·|det h|.
    h = a.T @ b
    nuclear_sq = float(np.sum(h * h)) + 2.0 * abs(float(h[0, 0] * h[1, 1] - h[0, 1] * h[1, 0]))
    return float(math.sqrt(max(0.0, 1.0 - nuclear_sq)))


def yaw_from_68(lm: np.ndarray, width: int, height: int) -> float | None:
    """Head yaw in degrees from a generic 3-D head model (0 = frontal).

    Positive when the nose points towards the image's right (the subject's left).
    A coarse estimate (±10°) meant for rejecting profile views, not for geometry.
    """
    pts = np.asarray(lm, dtype=np.float64)[_HEAD_IDX_LIST]
    f = float(max(width, height))
    cam = np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])
    ok, rvec, _ = cv2.solvePnP(_HEAD_3D_IMAGE_AXES, pts, cam, None, flags=cv2.SOLVEPNP_SQPNP)
    if not ok:
        return None
    rot, _ = cv2.Rodrigues(rvec)
    # Yaw = rotation about the vertical axis: angle of the model's forward axis in the x–z plane.
    fwd = rot @ np.array([0.0, 0.0, -1.0])
    yaw = math.degrees(math.atan2(fwd[0], -fwd[2]))
    return float(yaw)
