"""Contact sheets: a labelled grid of images a person can look at, written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from syncvid.atomic import write_bytes_atomic

_PAD = 4
_LABEL_H = 18
_BACKGROUND = 32


def _as_rgb(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image)
    if a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ValueError(f"expected an H×W×3 image, got shape {a.shape}")
    return a[:, :, :3]


def make_contact_sheet(images: list[np.ndarray], labels: list[str] | None = None, columns: int = 8) -> np.ndarray:
    """uint8 RGB grid of `images` (each fitted into the largest cell size), `columns` per row.

    Each cell gets its label written underneath when `labels` is given.
    """
    if not images:
        raise ValueError("make_contact_sheet needs at least one image")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{len(labels)} labels for {len(images)} images")
    if columns < 1:
        raise ValueError(f"columns must be at least 1, got {columns}")
    tiles = [_as_rgb(im) for im in images]
    cell_h = max(t.shape[0] for t in tiles)
    cell_w = max(t.shape[1] for t in tiles)
    label_h = _LABEL_H if labels is not None else 0
    cols = min(columns, len(tiles))
    rows = (len(tiles) + cols - 1) // cols
    sheet_h = rows * (cell_h + label_h + _PAD) + _PAD
    sheet_w = cols * (cell_w + _PAD) + _PAD
    sheet = np.full((sheet_h, sheet_w, 3), _BACKGROUND, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        y = _PAD + r * (cell_h + label_h + _PAD)
        x = _PAD + c * (cell_w + _PAD)
        th, tw = tile.shape[:2]
        oy, ox = (cell_h - th) // 2, (cell_w - tw) // 2
        sheet[y + oy : y + oy + th, x + ox : x + ox + tw] = tile
        if labels is not None and labels[i]:
            scale = 0.4
            text = str(labels[i])
            # Shorten the text until it fits the cell.
            while len(text) > 1 and cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] > cell_w:
                text = text[:-1]
            cv2.putText(
                sheet, text, (x + 2, y + cell_h + label_h - 5), cv2.FONT_HERSHEY_SIMPLEX, scale, (230, 230, 230), 1,
                cv2.LINE_AA,
            )
    return sheet


def save_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an RGB image as PNG: to a temporary file in the same folder, then renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(".png", cv2.cvtColor(_as_rgb(image), cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"cannot encode PNG for {path}")
    return write_bytes_atomic(path, data.tobytes())
