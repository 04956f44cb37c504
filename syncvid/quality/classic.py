"""Model-free visual quality metrics of aligned face crops.

Every metric is measured on the luma of one aligned face frame (uint8 RGB,
r x r).  Sharpness, exposure, contrast and noise are measured at a fixed
analysis resolution (`ANALYSIS_SIZE`, frames of other sizes are resized with
area interpolation first) so that one set of thresholds serves clips aligned
at 256 and at 512.  Blockiness is measured at the frame's own resolution,
where an encoder's 8x8 grid lies.

The 3-point alignment puts the face at a known place in the crop: the eyebrows
near y = 0.2 r, the nose near y = 0.4 r, the mouth in the lower half.  The
regions below are fixed fractions of the crop, so that re-scoring an aligned
candidate file (which carries no landmarks) gives the same numbers as scoring
it in the pipeline, and so that the grey fill the warp leaves at the crop's
edges never enters a measurement.
"""

from __future__ import annotations

import cv2
import numpy as np

ANALYSIS_SIZE = 256

# Regions as (x0, y0, x1, y1) fractions of the aligned crop.
FACE_BOX = (0.16, 0.12, 0.84, 0.92)  # forehead to chin, cheek to cheek
MOUTH_BOX = (0.30, 0.56, 0.70, 0.84)  # lips, teeth and the skin around them

BLOCK = 8  # transform block size of the codecs the clips go through (H.264, MPEG-4, JPEG)

# 3x3 kernel whose response to a smooth (piecewise planar) image is zero and to
# i.i.d. noise of std s has std 6 s (the sum of its squared taps is 36).
_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
_MAD_TO_STD = 0.6744897501960817  # median(|N(0, 1)|)

METRICS = ("sharpness", "mouth_sharpness", "brightness", "contrast", "noise", "blockiness")


def sample_indices(total: int, count: int) -> np.ndarray:
    """`count` frame indices spread evenly over [0, total), first and last included, no repeats."""
    if total <= 0:
        raise ValueError(f"a clip needs at least one frame, got {total}")
    if count <= 0:
        raise ValueError(f"the number of frames to score must be positive, got {count}")
    return np.unique(np.round(np.linspace(0, total - 1, min(count, total))).astype(np.int64))


def luma(frame: np.ndarray) -> np.ndarray:
    """BT.601 luma (0-255, float32) of an RGB uint8 frame [H, W, 3]."""
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an RGB frame [H, W, 3], got shape {frame.shape}")
    rgb = frame.astype(np.float32)
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def resize_square(gray: np.ndarray, size: int = ANALYSIS_SIZE) -> np.ndarray:
    """`gray` resized to size x size (area interpolation when shrinking, cubic when enlarging)."""
    h, w = gray.shape[:2]
    if (h, w) == (size, size):
        return gray
    interp = cv2.INTER_AREA if min(h, w) > size else cv2.INTER_CUBIC
    return cv2.resize(gray, (size, size), interpolation=interp)


def box_slices(shape: tuple[int, ...], box: tuple[float, float, float, float]) -> tuple[slice, slice]:
    """(rows, cols) slices of the fractional `box` (x0, y0, x1, y1) inside an image of `shape`."""
    h, w = shape[:2]
    x0, y0, x1, y1 = box
    return slice(int(round(y0 * h)), int(round(y1 * h))), slice(int(round(x0 * w)), int(round(x1 * w)))


def laplacian_variance(gray: np.ndarray, box: tuple[float, float, float, float] | None = None) -> float:
    """Variance of the 4-neighbour Laplacian of `gray` (luma levels squared), inside `box` if given.

    The Laplacian is taken over the whole image and then cropped, so that the
    box's own edges add nothing.
    """
    lap = cv2.Laplacian(np.ascontiguousarray(gray, dtype=np.float32), cv2.CV_32F, ksize=1)
    if box is not None:
        lap = lap[box_slices(lap.shape, box)]
    return float(lap.var(dtype=np.float64))


def noise_sigma(gray: np.ndarray) -> float:
    """Standard deviation of additive white noise in `gray` (luma levels).

    Immerkaer's Laplacian-difference operator cancels smooth image content;
    the median of its absolute response (instead of the mean) keeps the
    few edge pixels from inflating the estimate.
    """
    g = np.ascontiguousarray(gray, dtype=np.float32)
    if g.shape[0] < 3 or g.shape[1] < 3:
        raise ValueError(f"noise estimation needs at least 3x3 pixels, got {g.shape}")
    resp = cv2.filter2D(g, cv2.CV_32F, _NOISE_KERNEL, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
    return float(np.median(np.abs(resp)) / (6.0 * _MAD_TO_STD))


def blockiness(gray: np.ndarray, box: tuple[float, float, float, float] | None = None, block: int = BLOCK) -> float:
    """Ratio of the mean luma step across `block`-grid boundaries to the mean step elsewhere.

    The grid is anchored at the image origin, as an encoder's is; `box` (if
    given) only restricts which rows and columns are counted.  1.0 means no
    grid structure; coarse block-transform compression gives clearly more.
    Returns 1.0 for an image without any luma steps (a flat frame).
    """
    g = np.asarray(gray, dtype=np.float32)
    rows, cols = box_slices(g.shape, box) if box is not None else (slice(0, g.shape[0]), slice(0, g.shape[1]))
    ratios = []
    for axis in (1, 0):
        steps = np.abs(np.diff(g, axis=axis))  # step j lies between pixel j and pixel j + 1 along `axis`
        if axis == 1:
            lo, hi = cols.start, min(cols.stop, g.shape[1]) - 1
            profile = steps[rows, lo:hi].mean(axis=0, dtype=np.float64)
        else:
            lo, hi = rows.start, min(rows.stop, g.shape[0]) - 1
            profile = steps[lo:hi, cols].mean(axis=1, dtype=np.float64)
        positions = np.arange(lo, hi)
        on_grid = (positions % block) == block - 1
        if not on_grid.any() or on_grid.all():
            raise ValueError(f"region too small to measure a {block}-pixel grid")
        inside = profile[~on_grid].mean()
        across = profile[on_grid].mean()
        ratios.append(across / inside if inside > 0 else (1.0 if across == 0 else float("inf")))
    return float(np.mean(ratios))


def frame_metrics(frame: np.ndarray) -> dict[str, float]:
    """All classic metrics of one aligned RGB uint8 face frame [r, r, 3]."""
    y_native = luma(frame)
    y = resize_square(y_native)
    face = y[box_slices(y.shape, FACE_BOX)]
    return {
        "sharpness": laplacian_variance(y, FACE_BOX),
        "mouth_sharpness": laplacian_variance(y, MOUTH_BOX),
        "brightness": float(face.mean(dtype=np.float64)),
        "contrast": float(face.std(dtype=np.float64)),
        "noise": noise_sigma(face),
        "blockiness": blockiness(y_native, FACE_BOX),
    }


def mean_metrics(per_frame: list[dict[str, float]]) -> dict[str, float]:
    """Per-metric mean over frames (NaN-propagating: an unmeasurable frame makes the metric NaN)."""
    if not per_frame:
        raise ValueError("no frames were scored")
    return {k: float(np.mean([m[k] for m in per_frame])) for k in per_frame[0]}


class ClassicBackend:
    """Sharpness, exposure, contrast, noise and blockiness; no model, nothing to load."""

    name = "classic"
    metrics = METRICS

    def __init__(self, num_frames: int = 5):
        self.num_frames = num_frames

    def setup(self) -> None:
        return None

    def score(self, frames: np.ndarray) -> dict[str, float]:
        """Mean of each metric over `num_frames` frames spread over the clip [T, r, r, 3]."""
        idx = sample_indices(len(frames), self.num_frames)
        return mean_metrics([frame_metrics(frames[i]) for i in idx])
