"""Lower-face masks for the UNet dataset.

A mask is a float32 [H, W] array with 1 where the image is kept and 0 where it is masked
(the region the model must fill in); `masked = pixels * mask`, as in LatentSync, so a
masked pixel becomes 0 (mid-grey in [-1, 1]).  Masks are generated from a `MaskSpec`
in fractions of the image size, so one spec serves every resolution; a user-supplied
mask image (white = keep, black = masked) can be loaded instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

__all__ = ["MaskSpec", "lower_face_mask", "load_mask_image", "apply_mask"]

_SHAPES = ("jaw", "rect", "ellipse")

# The jaw shape, in fractions of its box: the sides round off as an ellipse from this height
# down, and above this height the band between these columns (the nose) is kept.  With
# LatentSync's box (rows 0.371-0.949, columns 0.035-0.969) this matches its mask image with an
# intersection-over-union of 0.989 and masks 40.7 % of the image, as the image does.
JAW_ROUND_FROM = 0.292
JAW_NOSE_COLUMNS = (0.289, 0.707)
JAW_NOSE_BOTTOM = 0.223


@dataclass(frozen=True)
class MaskSpec:
    """Where the masked region lies, in fractions of height (top, bottom) and width (left, right).

    `rect` masks the box [top, bottom) × [left, right).  `ellipse` masks the lower half of
    an ellipse that hangs from the `top` row, spans left..right and reaches `bottom`.
    `jaw` (LatentSync's mask, the UNet default) masks the box with its lower part rounded
    like a chin and the nose between the cheeks left visible at the top.  `feather` softens
    the edge with a Gaussian of that many image heights (0 = a hard 0/1 mask).
    """

    shape: str = "rect"  # jaw | rect | ellipse
    top: float = 0.5
    bottom: float = 1.0
    left: float = 0.0
    right: float = 1.0
    feather: float = 0.0

    def __post_init__(self) -> None:
        if self.shape not in _SHAPES:
            raise ValueError(f"mask shape must be one of {_SHAPES}, got {self.shape!r}")
        if not 0.0 <= self.top < self.bottom <= 1.0:
            raise ValueError(f"mask needs 0 <= top < bottom <= 1, got top={self.top}, bottom={self.bottom}")
        if not 0.0 <= self.left < self.right <= 1.0:
            raise ValueError(f"mask needs 0 <= left < right <= 1, got left={self.left}, right={self.right}")
        if not 0.0 <= self.feather <= 0.5:
            raise ValueError(f"mask feather must be in [0, 0.5], got {self.feather}")


def lower_face_mask(height: int, width: int, spec: MaskSpec = MaskSpec()) -> np.ndarray:
    """float32 [height, width]: 1 = keep, 0 = masked (see `MaskSpec`)."""
    if height <= 0 or width <= 0:
        raise ValueError(f"mask size must be positive, got {height}x{width}")
    # Pixel centres, so a row is masked when its centre falls inside the region.
    ys = (np.arange(height, dtype=np.float64) + 0.5)[:, None]
    xs = (np.arange(width, dtype=np.float64) + 0.5)[None, :]
    top, bottom = spec.top * height, spec.bottom * height
    left, right = spec.left * width, spec.right * width
    in_box = (ys >= top) & (ys < bottom) & (xs >= left) & (xs < right)
    if spec.shape == "rect":
        inside = in_box
    elif spec.shape == "jaw":
        box_h, box_w = bottom - top, right - left
        round_from = top + JAW_ROUND_FROM * box_h
        depth = np.clip((ys - round_from) / (bottom - round_from), 0.0, None)
        half_width = (box_w / 2.0) * np.sqrt(np.clip(1.0 - depth**2, 0.0, None))
        chin = np.abs(xs - (left + right) / 2.0) < half_width
        nose = ((ys < top + JAW_NOSE_BOTTOM * box_h) & (xs >= left + JAW_NOSE_COLUMNS[0] * box_w)
                & (xs < left + JAW_NOSE_COLUMNS[1] * box_w))
        inside = in_box & chin & ~nose
    else:
        cx, rx = (left + right) / 2.0, (right - left) / 2.0
        ry = bottom - top
        inside = (ys >= top) & (((xs - cx) / rx) ** 2 + ((ys - top) / ry) ** 2 <= 1.0)
    mask = np.where(inside, 0.0, 1.0).astype(np.float32)
    if spec.feather > 0:
        sigma = spec.feather * height
        mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REPLICATE)
        mask = np.clip(mask, 0.0, 1.0)
    return mask


def load_mask_image(path: str | os.PathLike, height: int, width: int | None = None) -> np.ndarray:
    """A mask from an image file (white = keep, black = masked), resized, float32 in [0, 1]."""
    width = width or height
    image = cv2.imread(os.fspath(Path(path).expanduser()), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise FileNotFoundError(f"mask image not found or unreadable: {path}")
    if image.shape != (height, width):
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    return (image.astype(np.float32) / 255.0).clip(0.0, 1.0)


def apply_mask(pixels: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mask frames [f, c, h, w]: returns (pixels·mask, masks [f, 1, h, w])."""
    if pixels.ndim != 4 or pixels.shape[-2:] != mask.shape:
        raise ValueError(f"frames {pixels.shape} do not match a mask of {mask.shape}")
    m = mask.astype(pixels.dtype, copy=False)
    masked = pixels * m[None, None]
    masks = np.broadcast_to(m[None, None], (pixels.shape[0], 1) + mask.shape).copy()
    return masked, masks
