"""Pure pieces of lip-sync inference: which source frame drives each output frame, and how a
generated face goes back into its frame.

`pingpong_indices` loops a video back and forth when the audio is longer than it (as
LatentSync does: forward, backward, forward, …) so the face never jumps.  `paste_back`
undoes the 3-point alignment: the r×r face is resized to the template crop (W×H), warped
into the frame with the inverse of the image→crop matrix, and blended with a soft mask —
the warped crop area, eroded by a margin that grows with the face (a twentieth of the
square root of its area) and blurred, so the seam fades over a few pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["pingpong_indices", "paste_back", "soft_paste_mask"]


def pingpong_indices(num_video_frames: int, num_output_frames: int) -> np.ndarray:
    """Source frame index of each output frame: 0..n-1, n-1..0, 0..n-1, … cut to the output length."""
    if num_video_frames <= 0:
        raise ValueError("the video has no frames")
    if num_output_frames < 0:
        raise ValueError(f"negative output length {num_output_frames}")
    forward = np.arange(num_video_frames)
    period = np.concatenate([forward, forward[::-1]])
    reps = -(-num_output_frames // len(period)) if num_output_frames else 0
    return np.tile(period, max(reps, 1))[:num_output_frames]


def soft_paste_mask(matrix_inv: np.ndarray, crop_size: tuple[int, int], frame_size: tuple[int, int]) -> np.ndarray:
    """float32 (H, W) weights in [0, 1] of the pasted face in the frame (see the module docstring)."""
    w, h = frame_size
    ones = np.ones((crop_size[1], crop_size[0]), np.float32)
    area = cv2.warpAffine(ones, matrix_inv, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    area = cv2.erode(area, np.ones((2, 2), np.uint8))
    edge = int(float(area.sum()) ** 0.5) // 20
    if edge > 0:
        area = cv2.erode(area, np.ones((2 * edge, 2 * edge), np.uint8))
        size = 2 * edge + 1
        sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
        area = cv2.GaussianBlur(area, (size, size), sigma)
    return np.clip(area, 0.0, 1.0)


def paste_back(frame: np.ndarray, face: np.ndarray, matrix: np.ndarray, crop_size: tuple[int, int]) -> np.ndarray:
    """`frame` (H, W, 3) uint8 with the aligned `face` (r, r, 3) uint8 put back where `matrix`
    (2×3, frame → W×H crop) took it from."""
    h, w = frame.shape[:2]
    crop_w, crop_h = crop_size
    if not np.isfinite(matrix).all():
        return frame.copy()
    face_crop = cv2.resize(face, (crop_w, crop_h), interpolation=cv2.INTER_CUBIC)
    inv = cv2.invertAffineTransform(np.asarray(matrix, np.float64))
    warped = cv2.warpAffine(face_crop, inv, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    weight = soft_paste_mask(inv, crop_size, (w, h))[..., None]
    out = weight * warped.astype(np.float32) + (1.0 - weight) * frame.astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
