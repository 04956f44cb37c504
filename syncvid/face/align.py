"""Three-point similarity alignment compatible with LatentSync's affine stage.

Pure numeric functions (no I/O) plus `FaceAligner`, which holds the per-clip
smoothing state.  Conventions (docs/face.md, "Compatibility with LatentSync"):

* anchors are three image points: L = left-eyebrow centre, R = right-eyebrow
  centre, N = nose centre (image left/right, i.e. as seen in the picture);
* the template lives in a crop of W×H = (int(75·k), int(100·k)) pixels with
  k = 2.8·r/256; the warp fills outside pixels with (127, 127, 127) and the
  crop is then resized, without keeping its aspect ratio, to r×r (LANCZOS4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from syncvid.media.picture import as_picture

# Template in units of the reference's 75×100 face box (before scaling by k).
_TEMPLATE_UNITS = np.array([[17.0, 20.0], [58.0, 20.0], [37.5, 40.0]])
_CROP_UNITS = (75, 100)
FILL_VALUE = (127, 127, 127)

# 68-point (iBUG / dlib) index groups, 0-based.
LEFT_BROW_68 = tuple(range(17, 22))
RIGHT_BROW_68 = tuple(range(22, 27))
NOSE_68 = tuple(range(27, 36))

# InsightFace 2d106det index groups used by LatentSync for the same three anchors.
LEFT_BROW_106 = (43, 48, 49, 51, 50)
RIGHT_BROW_106 = (101, 102, 103, 104, 105)
NOSE_106 = (74, 77, 83, 86)

# Resizes of the W×H crop to r×r: the reference's LANCZOS4, or bicubic (52-60 dB PSNR from it on
# real faces, an eighth of the cost; the pipeline's default, `face.resize_interpolation`).
_RESIZE = ("lanczos4", "cubic")

# Weight of the previous frame's bias in the reference's blend (0.2·prev + 0.8·cur).
BIAS_KEEP = 0.2


def template_scale(resolution: int) -> float:
    """k = 2.8·r/256: pixels of crop per template unit."""
    if resolution <= 0:
        raise ValueError(f"resolution must be positive, got {resolution}")
    return 2.8 * resolution / 256.0


def template_points(resolution: int) -> np.ndarray:
    """The three template points (L, R, N) in crop pixels, float64 [3, 2]."""
    return _TEMPLATE_UNITS * template_scale(resolution)


def crop_size(resolution: int) -> tuple[int, int]:
    """(W, H) of the warped crop before it is resized to resolution×resolution."""
    k = template_scale(resolution)
    # The reference truncates with int(); round first so that 75·2.8 = 209.99... gives 210.
    return int(round(_CROP_UNITS[0] * k, 6)), int(round(_CROP_UNITS[1] * k, 6))


def template_points_output(resolution: int) -> np.ndarray:
    """The template points in the final r×r image (after the anisotropic resize)."""
    w, h = crop_size(resolution)
    return template_points(resolution) * np.array([resolution / w, resolution / h])


def anchors_from_68(landmarks: np.ndarray) -> np.ndarray:
    """L, R, N anchors from 68-point landmarks: means of 17..21, 22..26, 27..35."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"expected [68, 2] landmarks, got {lm.shape}")
    return np.stack(
        [lm[list(LEFT_BROW_68)].mean(0), lm[list(RIGHT_BROW_68)].mean(0), lm[list(NOSE_68)].mean(0)]
    )


def anchor_error(crop_landmarks: np.ndarray, resolution: int) -> float:
    """Largest distance of the anchors of aligned 68-point landmarks from the template, / resolution."""
    a = anchors_from_68(crop_landmarks)
    return float(np.max(np.linalg.norm(a - template_points_output(resolution), axis=1)) / resolution)


def anchors_from_106(landmarks: np.ndarray) -> np.ndarray:
    """L, R, N anchors from InsightFace 106-point landmarks (LatentSync's index sets)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (106, 2):
        raise ValueError(f"expected [106, 2] landmarks, got {lm.shape}")
    return np.stack(
        [lm[list(LEFT_BROW_106)].mean(0), lm[list(RIGHT_BROW_106)].mean(0), lm[list(NOSE_106)].mean(0)]
    )


def _normalise(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    p = np.asarray(points, dtype=np.float64)
    c = p.mean(axis=0)
    q = p - c
    # The sample standard deviation of all coordinates (n - 1 in the denominator, torch.std's
    # default), as LatentSync normalises; the transform only uses a ratio of two of them, but the
    # nose bias is in these units.
    s = math.sqrt(float(np.sum(q * q)) / (q.size - 1))
    if not math.isfinite(s) or s <= 1e-12:
        raise ValueError("degenerate point set: all points coincide")
    return q / s, c, s


def best_rotation(h: np.ndarray) -> np.ndarray:
    """The 2×2 rotation R maximising trace(R·h), for a cross-covariance h = srcᵀ·dst of centred points.

    It is what the SVD recipe gives (h = U·S·Vᵀ, R = V·Uᵀ, the last column of V flipped when
    that would be a reflection), in closed form: R turns by atan2(h01 − h10, h00 + h11).
    """
    a = float(h[0, 0] + h[1, 1])
    b = float(h[0, 1] - h[1, 0])
    r = math.hypot(a, b)
    if r <= 1e-300:  # every rotation fits equally well (e.g. points on a line at a right angle)
        return np.eye(2)
    c, s = a / r, b / r
    return np.array([[c, -s], [s, c]])


def _similarity(p1: np.ndarray, c1: np.ndarray, s1: float, p2: np.ndarray, c2: np.ndarray, s2: float) -> np.ndarray:
    if p1.shape != p2.shape:
        raise ValueError(f"point sets differ in shape: {p1.shape} vs {p2.shape}")
    rot = best_rotation(p1.T @ p2)
    scale = s2 / s1
    m = np.empty((2, 3), dtype=np.float64)
    m[:, :2] = scale * rot
    m[:, 2] = c2 - scale * rot @ c1
    return m


def estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2×3 matrix M of the similarity transform taking `src` points onto `dst`.

    Normalised Procrustes: both sets are centred and divided by the (sample) standard
    deviation of all their coordinates; the rotation is the one the SVD of
    srcᵀ·dst gives, with the last column of V flipped when the result would be a
    reflection (`best_rotation`); M = [(s_dst/s_src)·R | c_dst − (s_dst/s_src)·R·c_src].
    """
    return _similarity(*_normalise(src), *_normalise(dst))


def nose_bias(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """LatentSync's per-frame translation bias: normalised nose of dst minus of src.

    Both point sets are normalised as in `estimate_similarity` (sample standard
    deviation, as LatentSync's torch.std); the result is in those dimensionless
    units and is added, as is, to M's translation (LatentSync does exactly that;
    the effect is well below a pixel).
    """
    p1, _, _ = _normalise(src)
    p2, _, _ = _normalise(dst)
    return p2[2] - p1[2]


def blend_bias(previous: np.ndarray | None, current: np.ndarray, keep: float = BIAS_KEEP) -> np.ndarray:
    """0.2·previous + 0.8·current (the first frame of a clip takes `current`)."""
    current = np.asarray(current, dtype=np.float64)
    if previous is None:
        return current.copy()
    return keep * np.asarray(previous, dtype=np.float64) + (1.0 - keep) * current


def apply_affine(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map [N, 2] points with a 2×3 matrix."""
    p = np.asarray(points, dtype=np.float64)
    return p @ m[:, :2].T + m[:, 2]


class OneEuroFilter:
    """Adaptive low-pass filter (Casiez et al. 2012) for a vector signal.

    The cut-off rises with the signal's speed, so that jitter is removed while
    the face is still and little lag is added while it moves.  Positions are
    filtered in pixels; the speed that drives the cut-off is divided by `scale`
    (a face size in pixels, given per sample), so that `beta` is in cut-off Hz
    per (face size per second) and does not depend on the source's resolution.
    """

    def __init__(self, rate_hz: float, min_cutoff_hz: float, beta: float, d_cutoff_hz: float = 1.0):
        if rate_hz <= 0 or min_cutoff_hz <= 0 or d_cutoff_hz <= 0 or beta < 0:
            raise ValueError("one-euro filter: rates and cut-offs must be positive, beta non-negative")
        self.rate_hz = float(rate_hz)
        self.min_cutoff_hz = float(min_cutoff_hz)
        self.beta = float(beta)
        self.d_cutoff_hz = float(d_cutoff_hz)
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None

    def _alpha(self, cutoff):
        tau = 1.0 / (2.0 * math.pi * cutoff)
        return 1.0 / (1.0 + tau * self.rate_hz)

    def reset(self) -> None:
        self._x = None
        self._dx = None

    def __call__(self, x: np.ndarray, scale: float = 1.0) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._x is None:
            self._x = x.copy()
            self._dx = np.zeros_like(x)
            return x.copy()
        dx = (x - self._x) * self.rate_hz / max(scale, 1e-6)
        a_d = self._alpha(self.d_cutoff_hz)
        self._dx = a_d * dx + (1.0 - a_d) * self._dx
        a = self._alpha(self.min_cutoff_hz + self.beta * np.abs(self._dx))
        self._x = a * x + (1.0 - a) * self._x
        return self._x.copy()


@dataclass(frozen=True)
class AlignResult:
    """What one warp produced: the crop, its landmarks and the matrix image → crop (W×H)."""

    crop: np.ndarray
    landmarks: np.ndarray
    matrix: np.ndarray


class FaceAligner:
    """Warps frames of one clip onto the template; holds that clip's smoothing state.

    `warp(image, face)` takes anything with `landmarks` ([68, 2] or None) and,
    when present, `anchors` ([3, 2]); anchors are otherwise computed from the
    68 landmarks.  A frame without a face reuses the clip's last transform (or
    gives a crop filled with 127 when the clip has none yet) and NaN landmarks.
    """

    def __init__(
        self,
        resolution: int = 256,
        smooth_bias: bool = True,
        anchor_filter: OneEuroFilter | None = None,
        resize: str = "lanczos4",
    ):
        if resize not in _RESIZE:
            raise ValueError(f"resize must be one of {', '.join(_RESIZE)}, got {resize!r}")
        self.resize = resize
        self.resolution = int(resolution)
        self.size = crop_size(self.resolution)
        self.template = template_points(self.resolution)
        self._template_normalised = _normalise(self.template)
        self.smooth_bias = smooth_bias
        self.anchor_filter = anchor_filter
        self._bias: np.ndarray | None = None
        self._last_matrix: np.ndarray | None = None
        w, h = self.size
        self._to_output = np.array([self.resolution / w, self.resolution / h])

    def reset(self) -> None:
        self._bias = None
        self._last_matrix = None
        if self.anchor_filter is not None:
            self.anchor_filter.reset()

    def matrix(self, anchors: np.ndarray) -> np.ndarray:
        """The 2×3 matrix image → crop for these anchors; advances the smoothing state."""
        pts = np.asarray(anchors, dtype=np.float64)
        if self.anchor_filter is not None:
            scale = float(np.linalg.norm(pts[1] - pts[0]))
            pts = self.anchor_filter(pts, scale)
        src = _normalise(pts)
        m = _similarity(*src, *self._template_normalised)  # = estimate_similarity(pts, self.template)
        if self.smooth_bias:
            bias = self._template_normalised[0][2] - src[0][2]  # = nose_bias(pts, self.template)
            self._bias = blend_bias(self._bias, bias)
            m[:, 2] += self._bias
        return m

    def warp_with_matrix(self, image, m: np.ndarray) -> np.ndarray:
        """`image` (a Picture or an RGB array) warped by `m` onto the W×H crop, then resized to r×r."""
        crop = as_picture(image).warp_affine(m, self.size, flags=cv2.INTER_LINEAR, border_value=FILL_VALUE)
        size = (self.resolution, self.resolution)
        if self.resize == "cubic":
            return cv2.resize(crop, size, interpolation=cv2.INTER_CUBIC)
        # LANCZOS4 on float32 gives the uint8 result within 1 level and is about twice as fast here.
        out = cv2.resize(crop.astype(np.float32), size, interpolation=cv2.INTER_LANCZOS4)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)

    def align(self, image, face) -> AlignResult:
        landmarks = getattr(face, "landmarks", None)
        anchors = getattr(face, "anchors", None)
        if landmarks is None and anchors is None:
            m = self._last_matrix
            if m is None:
                crop = np.full((self.resolution, self.resolution, 3), FILL_VALUE[0], dtype=np.uint8)
                return AlignResult(crop, np.full((68, 2), np.nan, np.float32), np.full((2, 3), np.nan))
            return AlignResult(self.warp_with_matrix(image, m), np.full((68, 2), np.nan, np.float32), m)
        if anchors is None:
            anchors = anchors_from_68(landmarks)
        m = self.matrix(anchors)
        self._last_matrix = m
        crop = self.warp_with_matrix(image, m)
        if landmarks is None:
            lm_out = np.full((68, 2), np.nan, np.float32)
        else:
            lm_out = (apply_affine(m, landmarks) * self._to_output).astype(np.float32)
        return AlignResult(crop, lm_out, m)

    def warp(self, image, face) -> tuple[np.ndarray, np.ndarray]:
        """(uint8 [r, r, 3] aligned face, float32 [68, 2] landmarks in its pixel coordinates)."""
        res = self.align(image, face)
        return res.crop, res.landmarks
