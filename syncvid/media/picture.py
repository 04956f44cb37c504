"""One decoded video frame that converts to RGB only the pixels that are asked for.

Converting a whole 1080p frame from YUV to RGB costs about as much as decoding it, and the
pipeline looks at a small part of most frames: the face (landmarks, alignment, checks) and a
320-pixel thumbnail (shot detection).  A `Picture` offers exactly those views:

* `rgb()`: the whole upright frame, uint8 H×W×3 RGB (converted once, on first use);
* `rgb_region(x0, y0, x1, y1)`: the pixels of a rectangle, with the origin they start at;
* `small_bgr(width)`: the frame shrunk to at most `width` pixels wide, BGR (for PySceneDetect);
* `warp_affine(matrix, size)`: an affine warp that reads only the region it maps back to.

`VideoPicture` wraps a PyAV frame.  For 8-bit 4:2:0 frames stored upright (nearly every
source) a region is converted from the planes of that rectangle alone, with FFmpeg's scaler
and the frame's own colour matrix and range, so its pixels are identical to the same rectangle
of `rgb()`.  Other formats and
rotated sources convert the whole frame once and slice it.  `ArrayPicture` wraps an RGB array
(tests, callers that already hold pixels); `as_picture` accepts either.
"""

from __future__ import annotations

import math

import av
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

__all__ = ["Picture", "ArrayPicture", "VideoPicture", "Converters", "as_picture", "shrink_to_width", "rotate_upright"]

# Formats whose planes are converted region by region (8-bit 4:2:0, limited or full range).
_PLANAR_420 = ("yuv420p", "yuvj420p")
# Region sides are rounded up to a multiple of this, so that the scaler's cached set-up is reused
# while a face moves (a new size costs a new set-up, about a full-frame conversion of 720p).
_SIDE_STEP = 64
# Pixels beyond a warp's footprint that its interpolation may read (Lanczos reaches 4).
_WARP_REACH = 5
# A region larger than this fraction of the frame is served from one whole-frame conversion.
_WHOLE_FRAME_FRACTION = 0.5


def shrink_to_width(width: int, height: int, max_width: int) -> tuple[int, int]:
    """(w, h) of a width×height image shrunk to at most `max_width` wide (never enlarged)."""
    if width <= max_width:
        return width, height
    return max_width, max(1, round(height * max_width / width))


def _clip_rect(x0: float, y0: float, x1: float, y1: float, width: int, height: int) -> tuple[int, int, int, int]:
    """Integer pixel rectangle covering [x0, x1) × [y0, y1), clipped to the image."""
    ix0 = min(max(int(math.floor(x0)), 0), width)
    iy0 = min(max(int(math.floor(y0)), 0), height)
    ix1 = min(max(int(math.ceil(x1)), ix0), width)
    iy1 = min(max(int(math.ceil(y1)), iy0), height)
    return ix0, iy0, ix1, iy1


def rotate_upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a stored frame `rotation` degrees clockwise (0/90/180/270) to make it upright."""
    if rotation % 360 == 0:
        return image
    if rotation % 90:
        raise ValueError(f"rotation must be a multiple of 90, got {rotation}")
    return np.ascontiguousarray(np.rot90(image, k=-(rotation // 90) % 4))


def _read_only(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


class Picture:
    """The views of one upright frame; subclasses implement `rgb` and may speed up the others."""

    width: int
    height: int
    _small: tuple[int, np.ndarray] | None = None  # (width, thumbnail) made by `small_bgr`

    def rgb(self) -> np.ndarray:
        """The whole frame, uint8 H×W×3 RGB, read-only."""
        raise NotImplementedError

    def rgb_region(self, x0: float, y0: float, x1: float, y1: float) -> tuple[np.ndarray, int, int]:
        """``(pixels, ox, oy)``: RGB pixels covering the rectangle clipped to the frame, whose
        top-left pixel is frame pixel (ox, oy).  The array may extend a little beyond the
        rectangle (never beyond the frame); it may be empty when the rectangle lies outside."""
        ix0, iy0, ix1, iy1 = _clip_rect(x0, y0, x1, y1, self.width, self.height)
        return self.rgb()[iy0:iy1, ix0:ix1], ix0, iy0

    def warp_affine(self, matrix: np.ndarray, size: tuple[int, int], flags: int = cv2.INTER_LINEAR,
                    border_value=(0, 0, 0)) -> np.ndarray:
        """``cv2.warpAffine(self.rgb(), matrix, size, ...)`` with a constant border, reading only
        the region the output maps back to (plus the interpolation's reach)."""
        w, h = size
        inverse = cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))
        corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], np.float64) @ inverse[:, :2].T + inverse[:, 2]
        (x0, y0), (x1, y1) = corners.min(0) - _WARP_REACH, corners.max(0) + _WARP_REACH
        pixels, ox, oy = self.rgb_region(x0, y0, x1, y1)
        if pixels.size == 0:  # the output maps entirely outside the frame
            return np.full((h, w, 3), border_value, np.uint8)
        shifted = np.array(matrix, dtype=np.float64)
        shifted[:, 2] += shifted[:, :2] @ (ox, oy)
        return cv2.warpAffine(pixels, shifted, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=border_value)

    def small_bgr(self, width: int) -> np.ndarray:
        """The frame at most `width` pixels wide (area-averaged), uint8 BGR, read-only; cached."""
        cached = self._small
        if cached is None or cached[0] != width:
            cached = (width, _read_only(self._make_small_bgr(width)))
            self._small = cached
        return cached[1]

    def _make_small_bgr(self, width: int) -> np.ndarray:
        image = self.rgb()
        w, h = shrink_to_width(self.width, self.height, width)
        if (w, h) != (self.width, self.height):
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        # cvtColor swaps the channels into a new contiguous array (a reversed-stride copy is ~20x slower).
        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)


class ArrayPicture(Picture):
    """A picture over an RGB uint8 H×W×3 array (regions are views of it)."""

    def __init__(self, image: np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected a uint8 HxWx3 RGB image, got {image.dtype} {image.shape}")
        self._rgb = np.ascontiguousarray(image)
        self.height, self.width = image.shape[:2]

    def rgb(self) -> np.ndarray:
        return self._rgb


def as_picture(image) -> Picture:
    """`image` itself when it is a Picture, else an ArrayPicture over the RGB array."""
    return image if isinstance(image, Picture) else ArrayPicture(np.asarray(image))


class Converters:
    """The scalers one reader's pictures share: whole frames, regions, thumbnails (each keeps its
    set-up while sizes repeat; a new set-up costs about one whole-frame conversion)."""

    def __init__(self):
        self.whole = VideoReformatter()
        self.region = VideoReformatter()
        self.small = VideoReformatter()
        self._region_frame: av.VideoFrame | None = None

    def region_frame(self, width: int, height: int, format_name: str) -> av.VideoFrame:
        """A frame to copy a region's planes into, reused while size and format repeat (filling a
        frame's planes in place costs a third of building one with `VideoFrame.from_ndarray`)."""
        f = self._region_frame
        if f is None or (f.width, f.height, f.format.name) != (width, height, format_name):
            f = av.VideoFrame(width, height, format_name)
            self._region_frame = f
        return f


class VideoPicture(Picture):
    """A decoded PyAV frame turned upright by `rotation` (0/90/180/270 degrees clockwise)."""

    def __init__(self, frame: av.VideoFrame, rotation: int = 0, converters: Converters | None = None,
                 contiguous: bool = False):
        self.frame = frame
        self.rotation = rotation
        self.contiguous = contiguous
        self._conv = converters or Converters()
        self._rgb: np.ndarray | None = None
        self._region: tuple[int, int, int, int, np.ndarray] | None = None  # last converted region
        stored_w, stored_h = frame.width, frame.height
        self.width, self.height = (stored_h, stored_w) if rotation in (90, 270) else (stored_w, stored_h)
        self.planar = rotation == 0 and frame.format.name in _PLANAR_420

    # -- whole frame -----------------------------------------------------------------------
    def rgb(self) -> np.ndarray:
        if self._rgb is None:
            image = self._conv.whole.reformat(self.frame, format="rgb24", threads=1).to_ndarray()
            if self.rotation:
                image = rotate_upright(image, self.rotation)
            elif self.contiguous and not image.flags.c_contiguous:
                image = np.ascontiguousarray(image)
            self._rgb = _read_only(image)
        return self._rgb

    # -- regions ---------------------------------------------------------------------------
    def rgb_region(self, x0: float, y0: float, x1: float, y1: float) -> tuple[np.ndarray, int, int]:
        ix0, iy0, ix1, iy1 = _clip_rect(x0, y0, x1, y1, self.width, self.height)
        if ix1 == ix0 or iy1 == iy0:
            return _read_only(np.zeros((iy1 - iy0, ix1 - ix0, 3), np.uint8)), ix0, iy0
        if self._rgb is not None or not self.planar:
            return self._rgb_slice(ix0, iy0, ix1, iy1)
        cached = self._region
        if cached is not None and cached[0] <= ix0 and cached[1] <= iy0 and ix1 <= cached[2] and iy1 <= cached[3]:
            cx0, cy0, _, _, pixels = cached
            return pixels[iy0 - cy0 : iy1 - cy0, ix0 - cx0 : ix1 - cx0], ix0, iy0
        cover = (ix0, iy0, ix1, iy1)
        if cached is not None:  # cover both, so that the next request of either is a slice
            cover = (min(ix0, cached[0]), min(iy0, cached[1]), max(ix1, cached[2]), max(iy1, cached[3]))
        rect = self._even_rect(*cover)
        if rect is None:
            return self._rgb_slice(ix0, iy0, ix1, iy1)
        pixels = self._convert_region(*rect)
        self._region = (*rect, pixels)
        return pixels[iy0 - rect[1] : iy1 - rect[1], ix0 - rect[0] : ix1 - rect[0]], ix0, iy0

    def _rgb_slice(self, ix0: int, iy0: int, ix1: int, iy1: int) -> tuple[np.ndarray, int, int]:
        return self.rgb()[iy0:iy1, ix0:ix1], ix0, iy0

    def _even_rect(self, ix0: int, iy0: int, ix1: int, iy1: int) -> tuple[int, int, int, int] | None:
        """The rectangle grown to even corners and sides rounded up to `_SIDE_STEP` (shifted to stay
        inside the frame's even part), or None when a whole-frame conversion is the better buy."""
        even_w, even_h = self.width - self.width % 2, self.height - self.height % 2
        if ix1 > even_w or iy1 > even_h:  # touches an odd last column or row
            return None
        x0, y0 = ix0 - ix0 % 2, iy0 - iy0 % 2
        w = min(-(-(ix1 - x0) // _SIDE_STEP) * _SIDE_STEP, even_w)
        h = min(-(-(iy1 - y0) // _SIDE_STEP) * _SIDE_STEP, even_h)
        if w * h > _WHOLE_FRAME_FRACTION * self.width * self.height:
            return None
        x0, y0 = min(x0, even_w - w), min(y0, even_h - h)
        return x0, y0, x0 + w, y0 + h

    def _planes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        f = self.frame
        ch = (f.height + 1) // 2
        y = np.frombuffer(f.planes[0], np.uint8).reshape(f.height, -1)
        u = np.frombuffer(f.planes[1], np.uint8).reshape(ch, -1)
        v = np.frombuffer(f.planes[2], np.uint8).reshape(ch, -1)
        return y, u, v

    def _convert_region(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """RGB of the even rectangle, converted from its own planes (same pixels as `rgb()`)."""
        w, h = x1 - x0, y1 - y0
        region = self._conv.region_frame(w, h, self.frame.format.name)
        for plane, src, div in zip(region.planes, self._planes(), (1, 2, 2)):
            dst = np.frombuffer(plane, np.uint8).reshape(h // div, plane.line_size)
            dst[:, : w // div] = src[y0 // div : y1 // div, x0 // div : x1 // div]
        region.colorspace, region.color_range = self.frame.colorspace, self.frame.color_range
        return _read_only(self._conv.region.reformat(region, format="rgb24", threads=1).to_ndarray())

    # -- thumbnail -------------------------------------------------------------------------
    def _make_small_bgr(self, width: int) -> np.ndarray:
        """FFmpeg's scaler shrinks and converts in one pass (area averaging, as ``cv2.INTER_AREA``
        does within a level or two), with the reader's shared set-up: a fraction of the cost of a
        whole-frame RGB conversion."""
        w, h = shrink_to_width(self.width, self.height, width)
        stored_w, stored_h = (h, w) if self.rotation in (90, 270) else (w, h)
        small = self._conv.small.reformat(self.frame, stored_w, stored_h, "bgr24", interpolation="AREA",
                                          threads=1).to_ndarray()
        return rotate_upright(small, self.rotation) if self.rotation else np.ascontiguousarray(small)
