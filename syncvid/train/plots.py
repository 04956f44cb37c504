"""Line charts of training curves as PNG files, drawn with OpenCV (no plotting library needed)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np

from syncvid.atomic import atomic_path

__all__ = ["plot_curves"]

_COLOURS = [(180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148), (75, 86, 140)]  # BGR
_W, _H, _LEFT, _RIGHT, _TOP, _BOTTOM = 900, 520, 80, 170, 40, 50


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw), default=raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def plot_curves(
    path: str | os.PathLike,
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    title: str = "",
    log_y: bool = False,
) -> Path:
    """Draw each named (steps, values) series as a line, with axes and a legend; write
    the PNG atomically.  Non-finite values are skipped; `log_y` plots log10 of positive
    values."""
    canvas = np.full((_H, _W, 3), 255, np.uint8)
    cleaned: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, (xs, ys) in series.items():
        x = np.asarray(xs, np.float64)
        y = np.asarray(ys, np.float64)
        keep = np.isfinite(x) & np.isfinite(y) & ((y > 0) if log_y else True)
        if keep.any():
            cleaned[name] = (x[keep], np.log10(y[keep]) if log_y else y[keep])
    x0, x1 = _LEFT, _W - _RIGHT
    y0, y1 = _TOP, _H - _BOTTOM
    cv2.rectangle(canvas, (x0, y0), (x1, y1), (0, 0, 0), 1)
    if title:
        cv2.putText(canvas, title, (x0, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    if cleaned:
        all_x = np.concatenate([x for x, _ in cleaned.values()])
        all_y = np.concatenate([y for _, y in cleaned.values()])
        xmin, xmax = float(all_x.min()), float(all_x.max())
        ymin, ymax = float(all_y.min()), float(all_y.max())
        if xmax == xmin:
            xmax = xmin + 1.0
        if ymax == ymin:
            ymin, ymax = ymin - 0.5, ymax + 0.5
        pad = 0.05 * (ymax - ymin)
        ymin, ymax = ymin - pad, ymax + pad

        def to_px(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            px = x0 + (x - xmin) / (xmax - xmin) * (x1 - x0)
            py = y1 - (y - ymin) / (ymax - ymin) * (y1 - y0)
            return np.stack([px, py], axis=1).round().astype(np.int32)

        for t in _ticks(ymin, ymax):
            py = int(round(y1 - (t - ymin) / (ymax - ymin) * (y1 - y0)))
            cv2.line(canvas, (x0, py), (x1, py), (225, 225, 225), 1)
            label = f"1e{t:.1f}" if log_y else f"{t:.4g}"
            cv2.putText(canvas, label, (5, py + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (60, 60, 60), 1, cv2.LINE_AA)
        for t in _ticks(xmin, xmax):
            px = int(round(x0 + (t - xmin) / (xmax - xmin) * (x1 - x0)))
            cv2.putText(canvas, f"{t:g}", (px - 10, y1 + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (60, 60, 60), 1, cv2.LINE_AA)
        cv2.putText(canvas, "step", ((x0 + x1) // 2, _H - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        for i, (name, (x, y)) in enumerate(cleaned.items()):
            colour = _COLOURS[i % len(_COLOURS)]
            points = to_px(x, y)
            if len(points) == 1:
                cv2.circle(canvas, tuple(int(v) for v in points[0]), 3, colour, -1, cv2.LINE_AA)
            else:
                cv2.polylines(canvas, [points.reshape(-1, 1, 2)], False, colour, 1, cv2.LINE_AA)
            ly = y0 + 15 + 20 * i
            cv2.line(canvas, (x1 + 10, ly - 4), (x1 + 30, ly - 4), colour, 2)
            cv2.putText(canvas, name, (x1 + 35, ly), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    ok, encoded = cv2.imencode(".png", canvas)
    if not ok:
        raise OSError(f"cannot encode the chart {path}")
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(encoded.tobytes())
    return Path(path)
