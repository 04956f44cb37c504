"""Stage 7 — quality: score the visual quality of aligned clips; drop those below threshold.

Every enabled backend scores a few frames of the clip (see `syncvid.quality`);
the scores go into the clip's measurements as ``quality_<metric>`` together
with ``quality_score`` (one 0-100-style summary, higher is better) and
``quality_backend`` (the enabled backends, comma-separated).  Thresholds are
applied by `judge`, a pure function of the recorded measurements, so that a
run can be re-thresholded later without decoding anything.  The pipeline calls
`score(frames)` then, once sync has measured too, `judge` (through
`syncvid.pipeline.decisions.score_clip` and `decide`).  Scales, defaults
and their reasons: docs/quality.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from syncvid.config.pipeline_schema import QualitySection
from syncvid.quality.backends import QualityBackend, backend_metrics, create_backends
from syncvid.records import Rejected
from syncvid.rows import Reason
from syncvid.stages.base import Stage

PREFIX = "quality_"


@dataclass(frozen=True)
class Check:
    """One threshold: reject with `low_quality:<reason>` when `metric` is below (min) or above (max) `param`."""

    reason: str
    metric: str
    param: str  # name of the threshold in QualitySection
    bound: str  # "min" | "max"


# Order matters: a clip failing several checks is rejected for the first, so causes come before
# their symptoms (an underexposed face also has little contrast and a small Laplacian; a blurred
# one also has less contrast).
CHECKS = (
    Check("dark", "brightness", "min_brightness", "min"),
    Check("bright", "brightness", "max_brightness", "max"),
    Check("blur", "sharpness", "min_sharpness", "min"),
    Check("mouth_blur", "mouth_sharpness", "min_mouth_sharpness", "min"),
    Check("contrast", "contrast", "min_contrast", "min"),
    Check("noise", "noise", "max_noise", "max"),
    Check("blockiness", "blockiness", "max_blockiness", "max"),
    Check("brisque", "brisque", "max_brisque", "max"),
    Check("hyperiqa", "hyperiqa", "min_hyperiqa", "min"),
)


@dataclass(frozen=True)
class QualityScores:
    """What the quality stage measured on one clip: metric name (no prefix) -> value."""

    metrics: dict[str, float]
    backends: tuple[str, ...]

    @property
    def score(self) -> float:
        return summary_score(self.metrics)

    def as_measurements(self) -> dict:
        out: dict = {PREFIX + k: float(v) for k, v in self.metrics.items()}
        out[PREFIX + "score"] = self.score
        out[PREFIX + "backend"] = ",".join(self.backends)
        return out


def summary_score(metrics: dict[str, float]) -> float:
    """One quality number, higher is better.

    HyperIQA's score (0-100, the reference's scale) when measured; otherwise
    100 - BRISQUE clipped to [0, 100]; otherwise the face sharpness (variance
    of the Laplacian, its own scale).  NaN when the chosen metric is NaN.
    """
    if "hyperiqa" in metrics:
        return float(metrics["hyperiqa"])
    if "brisque" in metrics:
        b = float(metrics["brisque"])
        return b if math.isnan(b) else float(np.clip(100.0 - b, 0.0, 100.0))
    if "sharpness" in metrics:
        return float(metrics["sharpness"])
    raise ValueError(f"no metric to summarise among {sorted(metrics)}")


def failed_checks(metrics: dict[str, float], params: QualitySection) -> list[tuple[str, str]]:
    """(reason, explanation) of every check that `metrics` fail, in `CHECKS` order.

    Checks whose metric is absent from `metrics` or whose threshold is None are
    skipped; a NaN metric (not measurable, e.g. a uniform frame) fails its check.
    """
    failures = []
    for check in CHECKS:
        threshold = getattr(params, check.param)
        if threshold is None or check.metric not in metrics:
            continue
        value = float(metrics[check.metric])
        if math.isnan(value):
            failures.append((check.reason, f"{check.metric} not measurable (NaN)"))
        elif check.bound == "min" and value < threshold:
            failures.append((check.reason, f"{check.metric} {value:.4g} < {check.param} {threshold:g}"))
        elif check.bound == "max" and value > threshold:
            failures.append((check.reason, f"{check.metric} {value:.4g} > {check.param} {threshold:g}"))
    return failures


def enabled_metrics(params: QualitySection) -> list[str]:
    """Metric names measured by the configured backends, in backend order."""
    names: list[str] = []
    for backend in dict.fromkeys(params.backends):
        names.extend(m for m in backend_metrics(backend) if m not in names)
    return names


def check_frames(frames: np.ndarray) -> None:
    """Raise ValueError unless `frames` is a non-empty uint8 RGB clip [T, H, W, 3]."""
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        raise ValueError(f"clip frames must be a uint8 numpy array, got {type(frames).__name__} "
                         f"{getattr(frames, 'dtype', '')}")
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.shape[0] == 0:
        raise ValueError(f"clip frames must be [T, r, r, 3] with T >= 1, got shape {frames.shape}")


class QualityStage(Stage):
    """Scores aligned clips with the configured backends and applies the thresholds."""

    name = "quality"
    gpu_backends = frozenset({"hyperiqa"})

    def __init__(self, params: QualitySection):
        self.params = params
        self.metric_names = enabled_metrics(params)  # validates backend names early
        self._backends: list[QualityBackend] | None = None

    def configured_backends(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.params.backends))

    def setup(self) -> None:
        """Create and load the backends (the hyperiqa checkpoint, the BRISQUE model)."""
        self._backends = create_backends(self.params)

    def score(self, frames: np.ndarray) -> QualityScores:
        """Scores of one clip's frames [T, r, r, 3] (uint8 RGB aligned faces); no thresholds."""
        if self._backends is None:
            raise RuntimeError("QualityStage.setup() must run before scoring")
        check_frames(frames)
        metrics: dict[str, float] = {}
        for backend in self._backends:
            metrics.update(backend.score(frames))
        return QualityScores(metrics, tuple(b.name for b in self._backends))

    def judge(self, measurements: dict) -> None:
        """Re-apply the thresholds to recorded measurements; raise Rejected naming the first failed check.

        Only the enabled backends' metrics are considered; one of them missing
        from `measurements` (or None) is an error: that clip must be re-scored.
        """
        metrics = {}
        for name in self.metric_names:
            value = measurements.get(PREFIX + name)
            if value is None:
                raise ValueError(
                    f"measurements lack {PREFIX + name} (backends {','.join(self.params.backends)}): "
                    "re-score the clip instead of re-thresholding"
                )
            metrics[name] = float(value)
        failures = failed_checks(metrics, self.params)
        if failures:
            raise Rejected(
                "quality",
                Reason.low_quality(failures[0][0]),
                "; ".join(f"{reason}: {text}" for reason, text in failures),
                dict(measurements),
            )
