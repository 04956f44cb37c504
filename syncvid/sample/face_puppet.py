"""A talking puppet made from a real photograph: the astronaut portrait shipped with scikit-image.

The photograph's face is located once with dlib (frontal detector + 68-point predictor from the
``face_recognition_models`` package) and cached.  `open_mouth` then renders the head with its
mouth opened by a value in [0, 1] through a local image warp:

* in every column of the lower face the image below the middle of the mouth (lower lip, lower
  teeth, chin) moves down by ``D(x) = opening * max_drop * jaw_weight(x)``, and the neck below the
  chin absorbs the drop over a short stretch;
* inside the mouth the upper part stays where it is, so a gap opens between the lips, painted as a
  dark mouth cavity; towards the mouth corners the gap narrows to nothing (the lips stay joined)
  and the drop is taken up by stretching the upper lip and cheeks instead.

Every piece of the warp is piecewise linear in y, so its inverse is exact and the frame is one
`cv2.remap`.  dlib's predictor run on a rendered frame sees an inner-lip gap (points 61-63 vs
65-67) that grows monotonically with the commanded opening (tested).

`render_frame` places one or more such heads (position, size, tilt) on a background with a soft
elliptical matte, which is how the sample corpus builds its framings, cuts and face cases.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "FaceModel",
    "Placement",
    "load_face_model",
    "open_mouth",
    "placement_matrix",
    "face_box_on_canvas",
    "composite",
    "render_frame",
    "make_background",
    "BACKGROUNDS",
    "dlib_models",
    "detect_landmarks",
    "landmarks_in_box",
    "inner_lip_gap",
]

# Region of the 512x512 photograph cut out as the puppet's sprite (x0, y0, x1, y1): head, neck
# and the collar of the suit, but not the mission patch lower down (which dlib's detector takes
# for a second face).
_SPRITE_REGION = (110, 0, 340, 300)
_SPLIT = 0.85  # where the mouth parts, from the inner upper lip (0) to the inner lower lip (1)
_CAVITY_TOP = np.array([22.0, 6.0, 8.0])  # RGB deep in the mouth, under the upper teeth
_CAVITY_BOTTOM = np.array([92.0, 34.0, 40.0])  # RGB towards the tongue


Box = tuple[float, float, float, float]  # x, y, w, h in pixels


@functools.lru_cache(maxsize=1)
def dlib_models():
    """(frontal face detector, 68-point shape predictor), loaded once per process.

    The predictor file is located through the package's import spec rather than by importing
    ``face_recognition_models``, whose ``__init__`` needs ``pkg_resources`` (gone from recent
    setuptools)."""
    import dlib

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the face_recognition_models package is not installed")
    model = Path(list(spec.submodule_search_locations)[0]) / "models" / "shape_predictor_68_face_landmarks.dat"
    if not model.is_file():
        raise RuntimeError(f"dlib's 68-point model is missing from face_recognition_models: {model.name}")
    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(model))


def landmarks_in_box(image: np.ndarray, box: Box) -> np.ndarray:
    """dlib's 68 landmarks (float64 [68, 2], x y) for the face in `box` (x, y, w, h)."""
    import dlib

    _, predictor = dlib_models()
    x, y, w, h = box
    rect = dlib.rectangle(int(round(x)), int(round(y)), int(round(x + w)), int(round(y + h)))
    shape = predictor(np.ascontiguousarray(image), rect)
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


def detect_landmarks(image: np.ndarray, upsample: int = 0) -> list[tuple[Box, np.ndarray]]:
    """Every face dlib's frontal detector finds in an RGB image: (box x, y, w, h; landmarks)."""
    detector, _ = dlib_models()
    found = []
    for r in detector(np.ascontiguousarray(image), upsample):
        box = (float(r.left()), float(r.top()), float(r.width()), float(r.height()))
        found.append((box, landmarks_in_box(image, box)))
    return found


def inner_lip_gap(landmarks: np.ndarray) -> float:
    """Mean vertical gap between the inner lips (points 61/67, 62/66, 63/65, 0-based), divided by
    the distance between the eye centres, so that it does not depend on the face's size."""
    pts = np.asarray(landmarks, dtype=np.float64)
    gap = np.mean([np.linalg.norm(pts[a] - pts[b]) for a, b in ((61, 67), (62, 66), (63, 65))])
    eyes = np.linalg.norm(pts[36:42].mean(axis=0) - pts[42:48].mean(axis=0))
    return float(gap / eyes)


@dataclass(frozen=True)
class FaceModel:
    """The puppet: the sprite cut from the photograph and where its face is."""

    image: np.ndarray  # RGB uint8 [H, W, 3]
    alpha: np.ndarray  # float32 [H, W] in [0, 1]: the head-and-shoulders matte
    landmarks: np.ndarray  # float64 [68, 2] in sprite pixels (dlib, 0-based iBUG order)
    box: Box  # dlib's face box (x, y, w, h) in sprite pixels
    max_drop: float  # jaw drop in sprite pixels at opening 1.0

    @property
    def box_center(self) -> tuple[float, float]:
        x, y, w, h = self.box
        return x + 0.5 * w, y + 0.5 * h


def _matte(image: np.ndarray, landmarks: np.ndarray, box: Box) -> np.ndarray:
    """Soft head-and-shoulders matte.

    The portrait was shot on a pale, nearly grey, smooth backdrop while hair and skin are warm
    (red well above blue), so a colour key separates them (below the chin, where the suit's
    collar ring is grey too, a texture test as well).  The key is limited to an ellipse round
    the head joined to a wider one for the neck and collar; the face itself (hull of the
    landmarks, whose eye whites and teeth are grey too) is always kept, holes are filled and
    the edge is feathered.
    """
    h, w = image.shape[:2]
    x, y, bw, bh = box
    cx = x + 0.5 * bw
    region = np.zeros((h, w), np.uint8)
    head_c = (int(round(cx)), int(round(y + 0.30 * bh)))
    cv2.ellipse(region, head_c, (int(round(0.95 * bw)), int(round(1.12 * bh))), 0, 0, 360, 1, -1)
    body_c = (int(round(cx)), int(round(landmarks[8, 1] + 1.05 * bh)))
    cv2.ellipse(region, body_c, (int(round(1.3 * bw)), int(round(1.2 * bh))), 0, 0, 360, 1, -1)
    rgb = image.astype(np.int16)
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    local_var = cv2.blur(grey * grey, (7, 7)) - cv2.blur(grey, (7, 7)) ** 2
    backdrop = (rgb[..., 0] - rgb[..., 2] < 32) & (rgb.min(axis=2) > 135)
    # Below the chin the suit's silver collar ring is pale and grey too, but full of edges where
    # the backdrop is smooth: there only smooth grey counts as backdrop.  (Above the chin a
    # texture test would keep a halo of backdrop round the hair.)
    below_chin = np.arange(h)[:, None] > landmarks[8, 1]
    backdrop &= ~below_chin | (local_var < 60.0)
    fg = (region.astype(bool) & ~backdrop).astype(np.uint8)
    hull = cv2.convexHull(landmarks.astype(np.float32)).astype(np.int32)
    cv2.fillConvexPoly(fg, hull, 1)
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
    # Fill holes: whatever background cannot be reached from the top corners is foreground.
    flood = fg.copy()
    pad = np.zeros((h + 2, w + 2), np.uint8)
    for seed_pt in ((0, 0), (w - 1, 0)):
        if flood[seed_pt[1], seed_pt[0]] == 0:
            cv2.floodFill(flood, pad, seed_pt, 2)
    fg = (flood != 2).astype(np.float32) * region
    mask = cv2.GaussianBlur(fg, (0, 0), 1.2)
    # Fade to zero at the sprite's top and side edges so no hard rectangle ever shows; the
    # bottom edge is left hard: a bust is cut by the bottom of the frame.
    ramp = 4
    lin = np.linspace(0.0, 1.0, ramp, dtype=np.float32)
    mask[:ramp, :] *= lin[:, None]
    mask[:, :ramp] *= lin[None, :]
    mask[:, -ramp:] *= lin[::-1][None, :]
    return np.clip(mask, 0.0, 1.0)


@functools.lru_cache(maxsize=1)
def load_face_model() -> FaceModel:
    """Locate the face in the astronaut photograph once and build the puppet."""
    from skimage import data

    photo = data.astronaut()
    x0, y0, x1, y1 = _SPRITE_REGION
    sprite = np.ascontiguousarray(photo[y0:y1, x0:x1])
    found = detect_landmarks(sprite, upsample=1)
    if len(found) != 1:
        raise RuntimeError(f"expected one face in the astronaut photograph's head region, found {len(found)}")
    box, landmarks = found[0]
    inner_width = landmarks[64, 0] - landmarks[60, 0]
    sprite.setflags(write=False)
    alpha = _matte(sprite, landmarks, box)
    alpha.setflags(write=False)
    landmarks.setflags(write=False)
    return FaceModel(image=sprite, alpha=alpha, landmarks=landmarks, box=box, max_drop=0.32 * inner_width)


def _taper(dist: np.ndarray, flat: float, zero: float) -> np.ndarray:
    """1 for dist <= flat, 0 for dist >= zero, a raised cosine between."""
    t = np.clip((dist - flat) / max(zero - flat, 1e-6), 0.0, 1.0)
    return 0.5 + 0.5 * np.cos(np.pi * t)


def _mouth_midline(landmarks: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """y of the line where the mouth parts at each x: just above the inner lower lip, so that
    the teeth the portrait shows stay with the upper lip and the lower lip alone moves down."""
    upper = landmarks[[60, 61, 62, 63, 64]]
    lower = landmarks[[60, 67, 66, 65, 64]]
    y_up = np.interp(xs, upper[:, 0], upper[:, 1])
    y_lo = np.interp(xs, lower[:, 0], lower[:, 1])
    return y_up + _SPLIT * (y_lo - y_up)


def open_mouth(face: FaceModel, opening: float) -> np.ndarray:
    """The sprite with the jaw dropped and the mouth opened by `opening` in [0, 1]."""
    opening = float(np.clip(opening, 0.0, 1.0))
    image = face.image
    if opening <= 0.0:
        return image.copy()
    lm = face.landmarks
    h, w = image.shape[:2]
    _, _, bw, bh = face.box
    jaw_cx = 0.5 * (lm[4, 0] + lm[12, 0])
    jaw_hw = 0.5 * (lm[12, 0] - lm[4, 0])
    mouth_cx = lm[60:68, 0].mean()
    mouth_hw = 0.5 * (lm[64, 0] - lm[60, 0])
    chin_y = lm[8, 1] + 0.02 * bh
    neck = 0.55 * bh  # the neck below the chin takes up the drop
    drop = opening * face.max_drop

    xa = int(np.floor(jaw_cx - 1.1 * jaw_hw))
    xb = int(np.ceil(jaw_cx + 1.1 * jaw_hw)) + 1
    xs = np.arange(max(xa, 0), min(xb, w), dtype=np.float64)
    mid = _mouth_midline(lm, xs)
    ramp = np.maximum(mid - lm[33, 1] - 0.15 * (mid - lm[33, 1]), 2.0)  # from just under the nose
    top = mid - ramp
    d = drop * _taper(np.abs(xs - jaw_cx), 0.55 * jaw_hw, 1.05 * jaw_hw)  # jaw drop per column
    m = _taper(np.abs(xs - mouth_cx), 0.30 * mouth_hw, 1.0 * mouth_hw)  # how far the lips part
    gap_top = mid + d * (1.0 - m)
    gap_bot = mid + d
    ya = int(np.floor(top.min())) - 1
    yb = int(np.ceil(chin_y + neck)) + 2
    ya, yb = max(ya, 0), min(yb, h)
    yo = np.arange(ya, yb, dtype=np.float64)[:, None]  # output rows, one column per xs

    # Exact inverse of the piecewise-linear forward map, column by column.
    src = yo.repeat(len(xs), axis=1)
    upper_ramp = (yo >= top) & (yo < gap_top)
    src = np.where(upper_ramp, top + (yo - top) * ramp / (ramp + d * (1.0 - m)), src)
    in_gap = (yo >= gap_top) & (yo < gap_bot)
    src = np.where(in_gap, mid, src)
    rigid = (yo >= gap_bot) & (yo < chin_y + d)
    src = np.where(rigid, yo - d, src)
    neck_zone = (yo >= chin_y + d) & (yo < chin_y + neck)
    src = np.where(neck_zone, chin_y + (yo - chin_y - d) * neck / (neck - d), src)

    map_y = src.astype(np.float32)
    map_x = np.broadcast_to(xs[None, :], map_y.shape).astype(np.float32)
    roi = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    # The cavity, anti-aliased on its top and bottom edges.
    cover = np.minimum(np.clip(yo + 0.5 - gap_top, 0.0, 1.0), np.clip(gap_bot - (yo - 0.5), 0.0, 1.0))
    cover = np.where(gap_bot - gap_top > 0.05, cover, 0.0)
    if cover.max() > 0.0:
        depth = np.clip((yo - gap_top) / np.maximum(gap_bot - gap_top, 1e-6), 0.0, 1.0)
        colour = _CAVITY_TOP + (_CAVITY_BOTTOM - _CAVITY_TOP) * (depth[..., None] ** 1.5)
        cover = cv2.GaussianBlur(cover.astype(np.float32), (3, 3), 0.6)[..., None]
        roi = roi.astype(np.float32) * (1.0 - cover) + colour * cover
        roi = np.clip(roi + 0.5, 0, 255).astype(np.uint8)

    out = image.copy()
    out[ya:yb, int(xs[0]) : int(xs[-1]) + 1] = roi
    return out


@dataclass(frozen=True)
class Placement:
    """Where a head goes on the canvas: the centre of its face box, the face box's width in
    canvas pixels, and a tilt (degrees, counter-clockwise)."""

    center_x: float
    center_y: float
    face_width: float
    angle_deg: float = 0.0


def placement_matrix(face: FaceModel, placement: Placement) -> np.ndarray:
    """2x3 affine map from sprite pixels to canvas pixels for `placement`."""
    bcx, bcy = face.box_center
    scale = placement.face_width / face.box[2]
    matrix = cv2.getRotationMatrix2D((bcx, bcy), placement.angle_deg, scale)
    matrix[0, 2] += placement.center_x - bcx
    matrix[1, 2] += placement.center_y - bcy
    return matrix


def face_box_on_canvas(face: FaceModel, placement: Placement) -> Box:
    """Axis-aligned bounding box (x, y, w, h) of the puppet's dlib face box on the canvas."""
    x, y, w, h = face.box
    corners = np.array([[x, y, 1.0], [x + w, y, 1.0], [x, y + h, 1.0], [x + w, y + h, 1.0]])
    pts = corners @ placement_matrix(face, placement).T
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    return float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])


def composite(canvas: np.ndarray, sprite: np.ndarray, alpha: np.ndarray, matrix: np.ndarray) -> None:
    """Blend `sprite` (RGB uint8 with its float matte in [0, 1]) onto `canvas` (RGB uint8,
    modified in place) through the sprite-to-canvas affine `matrix`; only the covered rectangle
    of the canvas is touched."""
    ch, cw = canvas.shape[:2]
    sh, sw = sprite.shape[:2]
    corners = np.array([[0, 0, 1.0], [sw, 0, 1.0], [0, sh, 1.0], [sw, sh, 1.0]]) @ matrix.T
    x0 = max(int(np.floor(corners[:, 0].min())), 0)
    y0 = max(int(np.floor(corners[:, 1].min())), 0)
    x1 = min(int(np.ceil(corners[:, 0].max())) + 1, cw)
    y1 = min(int(np.ceil(corners[:, 1].max())) + 1, ch)
    if x1 <= x0 or y1 <= y0:
        return
    local = matrix.copy()
    local[0, 2] -= x0
    local[1, 2] -= y0
    # Premultiplied colour and a three-channel matte are warped alike; premultiplying keeps the
    # photograph's backdrop from bleeding into the matte's soft edge.
    a8 = np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
    a3 = cv2.merge([a8, a8, a8])
    premultiplied = cv2.multiply(np.ascontiguousarray(sprite), a3, scale=1 / 255)
    size = (x1 - x0, y1 - y0)
    colour = cv2.warpAffine(premultiplied, local, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    cover = cv2.warpAffine(a3, local, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    region = np.ascontiguousarray(canvas[y0:y1, x0:x1])
    canvas[y0:y1, x0:x1] = cv2.add(cv2.multiply(region, cv2.bitwise_not(cover), scale=1 / 255), colour)


_OPENING_STEPS = 128  # openings are drawn to 1/128 (under a fifth of a pixel of jaw drop)


@functools.lru_cache(maxsize=_OPENING_STEPS + 1)
def _mouth_sprite(step: int) -> np.ndarray:
    sprite = open_mouth(load_face_model(), step / _OPENING_STEPS)
    sprite.setflags(write=False)
    return sprite


def render_frame(background: np.ndarray, heads: list[tuple[Placement, float]]) -> np.ndarray:
    """A frame: `background` (RGB uint8, not modified) with one puppet head per
    (placement, mouth opening) pair, drawn in order."""
    face = load_face_model()
    canvas = background.copy()
    for placement, opening in heads:
        step = int(round(float(np.clip(opening, 0.0, 1.0)) * _OPENING_STEPS))
        composite(canvas, _mouth_sprite(step), face.alpha, placement_matrix(face, placement))
    return canvas


# -- backgrounds -------------------------------------------------------------------------------
BACKGROUNDS = ("studio", "wall", "shelves", "window")


def make_background(kind: str, width: int, height: int, seed: int) -> np.ndarray:
    """A deterministic RGB uint8 backdrop.

    ``studio``: a smooth two-colour gradient with a vignette; ``wall``: painted plaster with
    horizontal bands; ``shelves``: dark wood with rows of coloured book spines; ``window``: a
    bright window frame on a pale wall.  Colours vary with the seed.  None of them contains
    anything a face detector could take for a face."""
    if kind not in BACKGROUNDS:
        raise ValueError(f"unknown background {kind!r}; choose from {', '.join(BACKGROUNDS)}")
    rng = np.random.default_rng([seed, BACKGROUNDS.index(kind)])
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = xx / max(width - 1, 1), yy / max(height - 1, 1)
    if kind == "studio":
        c0 = rng.uniform(40, 120, 3)
        c1 = rng.uniform(120, 210, 3)
        t = np.clip(0.6 * v + 0.4 * u, 0.0, 1.0)[..., None]
        img = c0 * (1.0 - t) + c1 * t
        vignette = 1.0 - 0.35 * ((u - 0.5) ** 2 + (v - 0.45) ** 2)[..., None]
        img = img * vignette
    elif kind == "wall":
        base = rng.uniform(150, 220, 3)
        img = np.broadcast_to(base, (height, width, 3)).copy()
        band = rng.uniform(0.05, 0.12) * height
        img *= (1.0 - 0.08 * (np.floor(yy / band) % 2))[..., None]
        texture = cv2.GaussianBlur(rng.standard_normal((height, width)).astype(np.float32), (0, 0), 2.0)
        img += 18.0 * texture[..., None]
        wainscot = v > 0.78
        img[wainscot] = rng.uniform(60, 110, 3)
    elif kind == "shelves":
        img = np.empty((height, width, 3), np.float32)
        img[:] = rng.uniform(50, 80, 3) * np.array([1.0, 0.75, 0.55])
        shelf_h = max(8, height // 4)
        for top in range(shelf_h // 3, height, shelf_h):
            x = 0
            while x < width:
                spine = int(rng.integers(max(3, width // 80), max(5, width // 30)))
                tall = int(rng.uniform(0.55, 0.9) * shelf_h)
                colour = rng.uniform(30, 220, 3)
                img[max(top + shelf_h - tall - 4, 0) : top + shelf_h - 4, x : x + spine] = colour
                x += spine + int(rng.integers(0, 3))
            img[top + shelf_h - 4 : top + shelf_h, :] = (90, 60, 40)
    else:  # window
        img = np.empty((height, width, 3), np.float32)
        img[:] = rng.uniform(180, 225, 3)
        wx0, wx1 = int(0.08 * width), int(0.42 * width)
        wy0, wy1 = int(0.1 * height), int(0.7 * height)
        sky = np.array([150.0, 190.0, 235.0]) + rng.uniform(-15, 15, 3)
        img[wy0:wy1, wx0:wx1] = sky * (1.0 - 0.25 * v[wy0:wy1, wx0:wx1, None])
        frame = max(2, width // 90)
        img[wy0:wy1, wx0 : wx0 + frame] = img[wy0:wy1, wx1 - frame : wx1] = (245, 245, 240)
        img[wy0 : wy0 + frame, wx0:wx1] = img[wy1 - frame : wy1, wx0:wx1] = (245, 245, 240)
        midx = (wx0 + wx1) // 2
        img[wy0:wy1, midx - frame // 2 : midx + frame // 2 + 1] = (245, 245, 240)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)
