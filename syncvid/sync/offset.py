"""Pure offset/confidence math shared by the sync backends (numpy only, no I/O).

Sign convention (syncnet_python's): an offset ``o`` means video frame ``i`` matches audio
frame ``i - o``.  Positive = the audio leads the video; the correction delays the audio
by ``o`` frames (new audio frame ``i`` = old audio frame ``i - o``).

Curves returned here are indexed by offset in ascending order: ``curve[k]`` belongs to
offset ``k - max_shift`` (``shifts = arange(-max_shift, max_shift + 1)``).

Audio context arrays (`estimate_offset`) hold one row per frame for clip frames
``-max_shift .. T + max_shift - 1``: row ``j`` is clip frame ``j - max_shift``; rows where the
source has no audio are NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "OffsetEstimate",
    "syncnet_distances",
    "offset_from_mean_dists",
    "offset_from_similarity",
    "normalized_xcorr",
    "shifted_scores",
    "null_spread",
    "estimate_offset",
    "LANDMARK_CONF_SCALE",
]

# Scale of the landmark backend's confidence (see `estimate_offset` and docs/sync.md):
# conf = LANDMARK_CONF_SCALE * (peak - median) / null_rms, where null_rms is the typical
# score of a wrong alignment of the same clip.  The scale puts the reference's default
# threshold 3 at about the 95th percentile of mismatched face/voice pairs of real 4 s clips
# (benchmarks/bench_sync.py with the pipeline's face stage: foreign voices 1.23 median /
# 1.96 p95 unscaled, own voice 1.65 median), so 3 means "better than a wrong voice almost
# ever manages"; it does not mean the offset is right to a frame.
LANDMARK_CONF_SCALE = 1.6


@dataclass(frozen=True)
class OffsetEstimate:
    """Result of an offset search.

    offset: frames, syncnet_python's sign (positive = audio leads).
    conf: backend-defined confidence (higher is better; threshold in config).
    curve: score per shift, ascending offsets (higher = better match).
    at_edge: the best offset lies on the border of the search range, so the true
    offset may lie beyond it; callers treat such estimates as unreliable.
    """

    offset: int
    conf: float
    curve: np.ndarray
    max_shift: int
    at_edge: bool

    @property
    def shifts(self) -> np.ndarray:
        return np.arange(-self.max_shift, self.max_shift + 1)


def syncnet_distances(video_emb: np.ndarray, audio_emb: np.ndarray, vshift: int = 15) -> np.ndarray:
    """The reference's distance table: dists[i, j] = ||video_i - audio_{i - vshift + j}||.

    Audio embeddings outside the clip are zero rows (the reference pads with zeros).
    Returns [N, 2*vshift+1] with column j belonging to offset ``vshift - j``.
    """
    v = np.asarray(video_emb, dtype=np.float64)
    a = np.asarray(audio_emb, dtype=np.float64)
    if v.ndim != 2 or a.ndim != 2 or v.shape[1] != a.shape[1]:
        raise ValueError(f"embeddings must be [N, D] with equal D, got {v.shape} and {a.shape}")
    n = v.shape[0]
    padded = np.zeros((a.shape[0] + 2 * vshift, a.shape[1]))
    padded[vshift : vshift + a.shape[0]] = a
    win = 2 * vshift + 1
    out = np.empty((n, win))
    for i in range(n):
        diff = padded[i : i + win] - v[i][None, :]
        # torch's pairwise_distance adds eps=1e-6 to the difference before the norm
        out[i] = np.sqrt(((diff + 1e-6) ** 2).sum(axis=1))
    return out


def offset_from_mean_dists(mean_dists: np.ndarray, vshift: int = 15) -> OffsetEstimate:
    """offset = vshift - argmin, conf = median - min (the reference's rule).

    `mean_dists` is in the reference's column order (column j ↔ offset vshift - j); the
    returned curve is re-ordered to ascending offsets and negated (higher = better).
    """
    md = np.asarray(mean_dists, dtype=np.float64)
    if md.shape != (2 * vshift + 1,):
        raise ValueError(f"mean_dists must have {2 * vshift + 1} entries, got {md.shape}")
    j = int(np.argmin(md))
    offset = vshift - j
    conf = float(np.median(md) - md[j])
    curve = -md[::-1].copy()
    return OffsetEstimate(offset, conf, curve, vshift, abs(offset) == vshift)


def offset_from_similarity(similarity: np.ndarray, max_shift: int, scale: float = 10.0) -> OffsetEstimate:
    """Best of a similarity curve (ascending offsets); conf = scale * (max - median)."""
    s = np.asarray(similarity, dtype=np.float64)
    if s.shape != (2 * max_shift + 1,):
        raise ValueError(f"similarity must have {2 * max_shift + 1} entries, got {s.shape}")
    if not np.isfinite(s).any():
        return OffsetEstimate(0, 0.0, s, max_shift, False)
    k = int(np.nanargmax(s))
    conf = float(scale * (s[k] - np.nanmedian(s)))
    return OffsetEstimate(k - max_shift, conf, s, max_shift, k in (0, 2 * max_shift))


def normalized_xcorr(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two equal-length 1-D signals; 0.0 when either is constant."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    x = x - x.mean()
    y = y - y.mean()
    den = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / den) if den > 1e-12 else 0.0


def _standardize(a: np.ndarray) -> np.ndarray:
    sd = a.std(axis=0)
    return (a - a.mean(axis=0)) / np.where(sd > 1e-9, sd, 1.0)


def _cv_ridge_corr(y: np.ndarray, x: np.ndarray, ridge: float, fold_frames: int) -> float:
    """Correlation between `y` and its 2-fold cross-validated ridge prediction from `x`.

    Folds are alternating blocks of `fold_frames` frames, so a fit never sees the frames
    it predicts; the score therefore does not grow with the number of audio features.
    """
    n = len(y)
    ys = _standardize(y[:, None])[:, 0]
    xs = _standardize(x)
    fold = (np.arange(n) // max(1, fold_frames)) % 2
    if fold.min() == fold.max():  # too short for two folds: in-sample fit
        fold = np.arange(n) % 2
    pred = np.zeros(n)
    eye = np.eye(xs.shape[1])
    for f in (0, 1):
        train, test = fold != f, fold == f
        a = xs[train]
        w = np.linalg.solve(a.T @ a + ridge * max(1, len(a)) * eye, a.T @ ys[train])
        pred[test] = xs[test] @ w
    return normalized_xcorr(pred, ys)


def _score(y: np.ndarray, x: np.ndarray, ridge: float, fold_frames: int) -> float:
    if x.ndim == 1:
        return normalized_xcorr(y, x)
    return _cv_ridge_corr(y, x, ridge, fold_frames)


def shifted_scores(
    video: np.ndarray,
    audio_ctx: np.ndarray,
    max_shift: int,
    *,
    min_overlap: int = 25,
    ridge: float = 1.0,
    fold_frames: int = 25,
) -> np.ndarray:
    """Score of every offset: how well `video[i]` is explained by audio frame `i - o`.

    `audio_ctx` has T + 2*max_shift rows (see the module docstring), 1-D (a single audio
    signal: Pearson correlation) or 2-D (several audio features: cross-validated ridge
    correlation).  Frames whose audio row is NaN are left out; offsets with fewer than
    `min_overlap` usable frames score NaN.
    """
    v = np.asarray(video, dtype=np.float64)
    a = np.asarray(audio_ctx, dtype=np.float64)
    t = v.shape[0]
    if a.shape[0] != t + 2 * max_shift:
        raise ValueError(f"audio context must have T + 2*max_shift = {t + 2 * max_shift} rows, got {a.shape[0]}")
    finite_v = np.isfinite(v)
    finite_a = np.isfinite(a) if a.ndim == 1 else np.isfinite(a).all(axis=1)
    curve = np.full(2 * max_shift + 1, np.nan)
    idx = np.arange(t)
    for k, o in enumerate(range(-max_shift, max_shift + 1)):
        rows = idx - o + max_shift
        ok = finite_v & finite_a[rows]
        if ok.sum() < min_overlap:
            continue
        curve[k] = _score(v[ok], a[rows[ok]], ridge, fold_frames)
    return curve


def null_spread(
    video: np.ndarray,
    audio: np.ndarray,
    min_separation: int,
    *,
    step: int = 2,
    ridge: float = 1.0,
    fold_frames: int = 25,
) -> float:
    """RMS score of deliberately wrong alignments: circular shifts of the clip's own audio
    by at least `min_separation` frames.  This is the score one gets by chance on this clip
    (same signals, same autocorrelation), used as the confidence's unit.  NaN if the clip
    is too short to have such shifts."""
    v = np.asarray(video, dtype=np.float64)
    a = np.asarray(audio, dtype=np.float64)
    t = v.shape[0]
    scores = []
    for c in range(min_separation, t - min_separation + 1, max(1, step)):
        scores.append(_score(v, np.roll(a, c, axis=0), ridge, fold_frames))
    if not scores:
        return float("nan")
    return float(np.sqrt(np.mean(np.square(scores))))


def estimate_offset(
    video: np.ndarray,
    audio_ctx: np.ndarray,
    max_shift: int,
    *,
    min_overlap: int = 25,
    ridge: float = 1.0,
    fold_frames: int = 25,
    null_separation: int | None = None,
    conf_scale: float = LANDMARK_CONF_SCALE,
    null_floor: float = 0.05,
) -> OffsetEstimate:
    """Offset and confidence of a per-frame visual signal against an audio context.

    offset = argmax of `shifted_scores`; conf = conf_scale * (peak - median(curve)) / null,
    where null = `null_spread` of the clip's own in-place audio (floored at `null_floor`).
    A peak that is no better than the typical chance alignment gives conf ≈ 0-2; a clear,
    isolated peak gives conf well above 3.  Constant or missing signals give conf 0.
    """
    v = np.asarray(video, dtype=np.float64)
    a = np.asarray(audio_ctx, dtype=np.float64)
    t = v.shape[0]
    curve = shifted_scores(v, a, max_shift, min_overlap=min_overlap, ridge=ridge, fold_frames=fold_frames)
    if not np.isfinite(curve).any() or np.nanstd(v) < 1e-12:
        return OffsetEstimate(0, 0.0, curve, max_shift, False)
    k = int(np.nanargmax(curve))
    in_place = a[max_shift : max_shift + t]
    usable = np.isfinite(v) & (np.isfinite(in_place) if a.ndim == 1 else np.isfinite(in_place).all(axis=1))
    sep = null_separation if null_separation is not None else max_shift + 1
    sep = min(sep, max(2, int(usable.sum()) // 3))
    null = null_spread(v[usable], in_place[usable], sep, ridge=ridge, fold_frames=fold_frames)
    if not np.isfinite(null):
        return OffsetEstimate(k - max_shift, 0.0, curve, max_shift, k in (0, 2 * max_shift))
    conf = conf_scale * (curve[k] - np.nanmedian(curve)) / max(null, null_floor)
    return OffsetEstimate(k - max_shift, float(conf), curve, max_shift, k in (0, 2 * max_shift))
