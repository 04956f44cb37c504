"""A weight-free sync judge learnt from the run's own candidates (numpy only, no I/O but save/load).

The per-clip `landmark` estimator regresses one number (the mouth opening) on 16 band energies
inside each clip, so it must learn the lip-sound relation afresh from 5 s of speech.  This
module learns it once from the whole corpus being processed and then judges every clip with it:

1. **Features.**  Mouth: the 20 mouth points of the dlib-68 order in a face frame (origin
   between the eyes, x along the eye line, unit = inter-ocular distance), so head position,
   roll and size cancel; 40 coordinates per frame, centred per clip (the speaker's rest shape
   cancels), plus their frame-to-frame velocities.  Audio: log-mel energies (`NUM_MELS` bands,
   80 Hz-7.6 kHz) of the `SUB_STEPS` 10 ms steps of each video frame's 640 samples, centred per
   clip; a window of ±`context` video frames around each frame.
2. **Model.**  A contrastive canonical correlation analysis: linear maps A (audio window → k
   dims) and B (mouth → k dims) whose outputs correlate at the true alignment *and not at
   shifted ones*: the SVD of the whitened cross-covariance at lag 0 minus the mean
   cross-covariance at lags ±3…±12 (the shifted-audio negatives).  Closed form: one pass of
   second-order statistics, a few small eigen-decompositions.
3. **Iteration.**  Raw talking videos are near sync but not all of them: after a fit every
   clip is scored, the clips judged confidently are re-aligned by their estimated offset, the
   others are left out, and the model is refitted (`FitParams.iterations`).
4. **Scoring.**  For every offset o in ±max_shift: the weighted mean over components of the
   Pearson correlation between B·mouth[i] and A·audio[i − o] over the clip.  offset = argmax;
   conf = scale × (peak − median) / null, null = the RMS score of the clip's own audio rotated
   by more than max_shift frames (the chance level of this clip).  `scale` is calibrated at fit
   time on mismatched pairs (a clip's face with another source's voice) so that threshold 3
   rejects `FitParams.foreign_quantile` of them.

Sign convention as everywhere in syncvid (syncnet_python's): offset o means video frame i
matches audio frame i − o; positive = the audio leads the video.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from syncvid.sync.offset import OffsetEstimate

__all__ = [
    "FORMAT_VERSION",
    "SAMPLES_PER_FRAME",
    "NUM_MELS",
    "SUB_STEPS",
    "MOUTH",
    "ModelFileError",
    "mouth_shape",
    "mouth_features",
    "audio_frame_features",
    "ClipFeatures",
    "clip_features",
    "FitParams",
    "JudgeModel",
    "FitReport",
    "fit_judge",
    "score_features",
    "judge_clip",
    "save_model",
    "load_model",
]

FORMAT_VERSION = 1
SAMPLES_PER_FRAME = 640  # 16 kHz / 25 fps
SUB_STEPS = 4  # 10 ms audio steps per video frame
NUM_MELS = 20
MOUTH = slice(48, 68)  # the 20 mouth points of the dlib-68 order
_LEFT_EYE, _RIGHT_EYE = slice(36, 42), slice(42, 48)
_MODEL_KIND = "syncvid-corpus-sync-judge"


class ModelFileError(ValueError):
    """A corpus judge model file that cannot be used (its message names the file)."""


# ----------------------------------------------------------------------------- features
def mouth_shape(landmarks: np.ndarray) -> np.ndarray:
    """[T, 68, 2] landmarks → [T, 40]: the 20 mouth points in the face frame of each frame.

    Origin: the midpoint of the eye centres; x axis: from the left to the right eye centre;
    unit: the inter-ocular distance.  Frames with missing or degenerate landmarks are NaN.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 3 or lm.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must be [T, 68, 2], got {lm.shape}")
    le, re = lm[:, _LEFT_EYE].mean(1), lm[:, _RIGHT_EYE].mean(1)
    axis = re - le
    dist = np.linalg.norm(axis, axis=1)
    ok = np.isfinite(dist) & (dist > 1e-6)
    safe = np.where(ok, dist, 1.0)
    ex = axis / safe[:, None]
    ey = np.stack([-ex[:, 1], ex[:, 0]], axis=1)
    rel = lm[:, MOUTH] - ((le + re) / 2)[:, None, :]
    out = np.stack([(rel * ex[:, None]).sum(-1), (rel * ey[:, None]).sum(-1)], axis=-1) / safe[:, None, None]
    out = out.reshape(len(lm), -1)
    out[~ok | ~np.isfinite(out).all(axis=1)] = np.nan
    return out


def mouth_features(landmarks: np.ndarray) -> np.ndarray:
    """[T, 80]: `mouth_shape` centred over the clip's valid frames, and its velocity (centred
    differences; one-sided at the ends and next to missing frames).  Missing frames stay NaN."""
    shape = mouth_shape(landmarks)
    valid = np.isfinite(shape).all(axis=1)
    if valid.sum() == 0:
        return np.full((len(shape), 2 * shape.shape[1]), np.nan)
    shape = shape - shape[valid].mean(axis=0)
    vel = np.full_like(shape, np.nan)
    if len(shape) >= 2:
        nxt = np.vstack([shape[1:], shape[-1:]])
        prv = np.vstack([shape[:1], shape[:-1]])
        fwd = nxt - shape
        bwd = shape - prv
        both = 0.5 * (nxt - prv)
        vel = np.where(np.isfinite(both), both, np.where(np.isfinite(fwd), fwd, bwd))
        vel[0] = fwd[0]
        vel[-1] = bwd[-1]
    else:
        vel = np.zeros_like(shape)
    vel[~valid] = np.nan
    return np.concatenate([shape, vel], axis=1)


@lru_cache(maxsize=4)
def _mel_bank(sample_rate: int, nfft: int, num_mels: int, low_hz: float, high_hz: float) -> np.ndarray:
    from syncvid.sync.mfcc import hz_to_mel, mel_to_hz

    freqs = np.fft.rfftfreq(nfft, 1.0 / sample_rate)
    edges = mel_to_hz(np.linspace(hz_to_mel(low_hz), hz_to_mel(high_hz), num_mels + 2))
    bank = np.zeros((num_mels, len(freqs)))
    for m in range(num_mels):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        bank[m] = np.clip(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), 0.0, None)
    bank.flags.writeable = False
    return bank


def audio_frame_features(
    audio: np.ndarray, start: int, num_frames: int, sample_rate: int = 16000
) -> np.ndarray:
    """[num_frames, SUB_STEPS·NUM_MELS] log-mel energies per video frame.

    Frame k covers samples [start + k·hop, start + (k+1)·hop) (hop = sample_rate/25), split
    into SUB_STEPS equal steps; each step's 25 ms Hann window is centred on its samples.
    Rows whose frame lies partly outside `audio` are NaN (no audio there).
    """
    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    hop = sample_rate // 25
    step = hop // SUB_STEPS
    win = int(round(0.025 * sample_rate))
    out = np.full((max(0, int(num_frames)), SUB_STEPS * NUM_MELS), np.nan)
    if num_frames <= 0:
        return out
    k = np.arange(num_frames)
    have = (start + k * hop >= 0) & (start + (k + 1) * hop <= len(x))
    if not have.any():
        return out
    ks = k[have]
    centres = start + ks[:, None] * hop + np.arange(SUB_STEPS)[None, :] * step + step // 2  # [n, S]
    first = centres.reshape(-1) - win // 2
    pad_l = max(0, -int(first.min()))
    pad_r = max(0, int(first.max()) + win - len(x))
    xp = np.pad(x, (pad_l, pad_r))
    idx = (first + pad_l)[:, None] + np.arange(win)[None, :]
    nfft = 1 << (win - 1).bit_length()
    spec = np.abs(np.fft.rfft(xp[idx] * np.hanning(win)[None, :], n=nfft, axis=1)) ** 2
    mel = spec @ _mel_bank(sample_rate, nfft, NUM_MELS, 80.0, min(7600.0, sample_rate / 2)).T
    logmel = np.log(mel + 1e-8)
    out[have] = logmel.reshape(len(ks), SUB_STEPS * NUM_MELS)
    return out


@dataclass(frozen=True)
class ClipFeatures:
    """One clip, ready for the judge.

    mouth: [T, Dm] `mouth_features` (NaN rows: no face).
    audio: [T + 2·reach, Da] `audio_frame_features` of clip frames −reach … T+reach−1 (NaN rows:
    no audio there), centred over the clip's own frames that have audio.
    group: the source the clip comes from (mismatched pairs are drawn across groups).
    """

    mouth: np.ndarray
    audio: np.ndarray
    reach: int
    group: str = ""

    @property
    def num_frames(self) -> int:
        return int(self.mouth.shape[0])


def clip_features(
    landmarks: np.ndarray,
    source_audio: np.ndarray,
    audio_start_sample: int,
    reach: int,
    *,
    sample_rate: int = 16000,
    group: str = "",
) -> ClipFeatures:
    """`ClipFeatures` of a clip from its landmarks and the source's audio around it
    (`audio_start_sample` = the source sample of the clip's first frame)."""
    mouth = mouth_features(landmarks)
    t = len(mouth)
    hop = sample_rate // 25
    audio = audio_frame_features(source_audio, int(audio_start_sample) - reach * hop, t + 2 * reach, sample_rate)
    own = audio[reach : reach + t]
    ok = np.isfinite(own).all(axis=1)
    if not ok.any():
        ok_all = np.isfinite(audio).all(axis=1)
        centre = audio[ok_all].mean(axis=0) if ok_all.any() else np.zeros(audio.shape[1])
    else:
        centre = own[ok].mean(axis=0)
    # float32 halves what a corpus of thousands of clips holds; the fit sums in float64
    return ClipFeatures(mouth.astype(np.float32), (audio - centre).astype(np.float32), int(reach), str(group))


# ----------------------------------------------------------------------------- model
@dataclass(frozen=True)
class FitParams:
    """How the judge is fitted (defaults chosen on the real-video benchmark, docs/sync.md)."""

    context: int = 2  # audio window: ±context video frames around each frame
    components: int = 6  # canonical components used for scoring
    ridge: float = 1.0  # covariance regularisation, relative to the mean variance
    negative_lags: tuple[int, ...] = tuple(range(3, 13))  # |lags| of the shifted-audio negatives
    negative_weight: float = 1.0
    iterations: int = 2  # refits on the confidently judged, re-aligned clips
    keep_conf: float = 3.0  # conf a clip needs to take part in a refit
    max_shift: int = 15
    foreign_quantile: float = 0.97  # share of mismatched pairs below threshold 3
    foreign_pairs: int = 600  # mismatched pairs drawn for the calibration
    threshold: float = 3.0  # the confidence threshold the calibration aims at
    min_frames: int = 1500  # fewer usable frames: no fit (the caller keeps the landmark estimator)
    max_clips: int = 5000  # a larger corpus is fitted on this many clips, drawn evenly over its sources
    seed: int = 0


@dataclass(frozen=True)
class JudgeModel:
    """A fitted judge: feature scales, projections and the confidence scale."""

    audio_scale: np.ndarray  # [Da] divides the per-clip-centred audio features
    mouth_scale: np.ndarray  # [Dm]
    audio_proj: np.ndarray  # [(2·context+1)·Da, k]
    mouth_proj: np.ndarray  # [Dm, k]
    weights: np.ndarray  # [k] component weights (canonical correlations)
    context: int
    conf_scale: float
    info: dict = field(default_factory=dict)

    @property
    def components(self) -> int:
        return int(self.weights.shape[0])


@dataclass
class FitReport:
    """What a fit did (for logs and the run's report)."""

    clips: int = 0  # clips fitted on
    frames: int = 0
    corpus_clips: int = 0  # clips offered (more than `clips` past FitParams.max_clips)
    clips_per_iteration: list = field(default_factory=list)
    canonical_correlations: list = field(default_factory=list)
    foreign_conf_raw_quantile: float = float("nan")
    seconds: float = 0.0


def _valid_rows(f: ClipFeatures, offset: int, context: int) -> tuple[np.ndarray, np.ndarray]:
    """Clip frames i usable at `offset` and their centre audio rows j = i − offset + reach."""
    t = f.num_frames
    i = np.arange(t)
    j = i - offset + f.reach
    ok = (j - context >= 0) & (j + context < len(f.audio)) & np.isfinite(f.mouth).all(axis=1)
    ok[ok] &= np.isfinite(f.audio[j[ok]]).all(axis=1)
    return i[ok], j[ok]


def _stack(audio: np.ndarray, rows: np.ndarray, context: int) -> np.ndarray:
    """Audio windows around `rows`: [n, (2c+1)·Da]; NaN neighbours count as the clip mean (0)."""
    a = np.nan_to_num(audio, nan=0.0)
    n = len(a)
    parts = []
    for d in range(-context, context + 1):
        r = rows + d
        inside = (r >= 0) & (r < n)
        block = np.zeros((len(rows), a.shape[1]), dtype=a.dtype)
        block[inside] = a[r[inside]]
        parts.append(block)
    return np.concatenate(parts, axis=1)


def _inv_sqrt(c: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((c + c.T) / 2)
    w = np.maximum(w, 1e-12)
    return (v / np.sqrt(w)) @ v.T


def _column_std(blocks) -> np.ndarray:
    """Standard deviation of each column over the rows of all `blocks`, summed block by block in float64."""
    n, total, squares = 0, 0.0, 0.0
    for b in blocks:
        b = np.asarray(b, dtype=np.float64)
        n += len(b)
        total = total + b.sum(axis=0)
        squares = squares + (b * b).sum(axis=0)
    mean = total / n
    return np.sqrt(np.maximum(squares / n - mean * mean, 0.0))


def choose_clips(groups: Sequence[str], max_clips: int, seed: int = 0) -> list[int]:
    """Indices of at most `max_clips` items, drawn evenly over their groups (the sources): one
    clip of every source in turn, each source's clips in a seeded random order.  All when they fit."""
    if len(groups) <= max_clips:
        return list(range(len(groups)))
    rng = np.random.default_rng(seed)
    by_group: dict[str, list[int]] = {}
    for k, g in enumerate(groups):
        by_group.setdefault(g, []).append(k)
    queues = [list(rng.permutation(v)) for _, v in sorted(by_group.items())]
    chosen: list[int] = []
    while len(chosen) < max_clips:
        for q in queues:
            if q and len(chosen) < max_clips:
                chosen.append(int(q.pop()))
    return sorted(chosen)


def _fit_projections(clips: Sequence[ClipFeatures], offsets: Sequence[int], p: FitParams):
    """Contrastive CCA on the clips aligned by `offsets` → (audio_scale, mouth_scale, A, B, rho, frames)."""
    c = p.context
    xs, ys = [], []
    for f, o in zip(clips, offsets):
        i, j = _valid_rows(f, o, c)
        if len(i):
            xs.append((f, i, j))
    if not xs:
        raise ValueError("no usable frames to fit the corpus judge")
    da = clips[0].audio.shape[1]
    a_scale = np.maximum(_column_std([f.audio[j] for f, _, j in xs]), 1e-6)
    m_scale = np.maximum(_column_std([f.mouth[i] for f, i, _ in xs]), 1e-9)
    dx = (2 * c + 1) * da
    dm = clips[0].mouth.shape[1]
    cxx = np.zeros((dx, dx))
    cyy = np.zeros((dm, dm))
    cxy = np.zeros((dx, dm))
    neg = np.zeros((dx, dm))
    nneg = 0
    frames = 0
    for f, i, j in xs:
        a = f.audio / a_scale
        y = f.mouth / m_scale
        x = _stack(a, j, c)
        yi = y[i]
        cxx += x.T @ x
        cyy += yi.T @ yi
        cxy += x.T @ yi
        frames += len(i)
        # shifted-audio negatives: mouth frame i against audio row j ± lag of the same clip
        for lag in p.negative_lags:
            for s in (lag, -lag):
                jj = j + s
                ok = (jj - c >= 0) & (jj + c < len(a))
                if not ok.any():
                    continue
                ok[ok] &= np.isfinite(a[jj[ok]]).all(axis=1)
                if ok.sum() == 0:
                    continue
                neg += _stack(a, jj[ok], c).T @ yi[ok]
                nneg += int(ok.sum())
    cxx /= frames
    cyy /= frames
    cxy /= frames
    if nneg:
        cxy = cxy - p.negative_weight * neg / nneg
    cxx += p.ridge * np.trace(cxx) / dx * np.eye(dx)
    cyy += p.ridge * np.trace(cyy) / dm * np.eye(dm)
    wx, wy = _inv_sqrt(cxx), _inv_sqrt(cyy)
    u, s, vt = np.linalg.svd(wx @ cxy @ wy)
    k = min(p.components, len(s))
    a_proj = wx @ u[:, :k]
    m_proj = wy @ vt[:k].T
    return a_scale, m_scale, a_proj, m_proj, np.maximum(s[:k], 0.0), frames


def _projections(model: JudgeModel, f: ClipFeatures) -> tuple[np.ndarray, np.ndarray]:
    """(mouth projections [T, k], audio projections [len(audio), k]; NaN where missing)."""
    c = model.context
    a = f.audio / model.audio_scale
    rows = np.arange(len(a))
    u = _stack(a, rows, c) @ model.audio_proj
    u[~np.isfinite(a).all(axis=1)] = np.nan
    v = (np.nan_to_num(f.mouth / model.mouth_scale, nan=0.0)) @ model.mouth_proj
    v[~np.isfinite(f.mouth).all(axis=1)] = np.nan
    return v, u


def _weighted_corr(v: np.ndarray, u: np.ndarray, w: np.ndarray) -> float:
    """Weighted mean over components of the Pearson correlation of the columns of v and u."""
    v = v - v.mean(axis=0)
    u = u - u.mean(axis=0)
    den = np.sqrt((v * v).sum(axis=0) * (u * u).sum(axis=0))
    r = np.where(den > 1e-12, (v * u).sum(axis=0) / np.where(den > 1e-12, den, 1.0), 0.0)
    return float((r * w).sum() / max(w.sum(), 1e-12))


def _curve(v: np.ndarray, u: np.ndarray, w: np.ndarray, reach: int, max_shift: int, min_overlap: int) -> np.ndarray:
    t = len(v)
    idx = np.arange(t)
    fin_v = np.isfinite(v).all(axis=1)
    fin_u = np.isfinite(u).all(axis=1)
    curve = np.full(2 * max_shift + 1, np.nan)
    for k, o in enumerate(range(-max_shift, max_shift + 1)):
        rows = idx - o + reach
        ok = fin_v & (rows >= 0) & (rows < len(u))
        ok[ok] &= fin_u[rows[ok]]
        if ok.sum() >= min_overlap:
            curve[k] = _weighted_corr(v[ok], u[rows[ok]], w)
    return curve


def _null(v: np.ndarray, u_in_place: np.ndarray, w: np.ndarray, separation: int, step: int = 2) -> float:
    ok = np.isfinite(v).all(axis=1) & np.isfinite(u_in_place).all(axis=1)
    v, u = v[ok], u_in_place[ok]
    t = len(v)
    scores = [_weighted_corr(v, np.roll(u, s, axis=0), w) for s in range(separation, t - separation + 1, step)]
    return float(np.sqrt(np.mean(np.square(scores)))) if scores else float("nan")


def _raw_estimate(model: JudgeModel, f: ClipFeatures, max_shift: int, min_overlap: int = 25,
                  null_floor: float = 0.02) -> tuple[int, float, np.ndarray, float]:
    """(offset, unscaled conf, curve, null) of one clip."""
    if max_shift > f.reach:
        raise ValueError(f"max_shift {max_shift} exceeds the features' reach {f.reach}")
    v, u = _projections(model, f)
    t = len(v)
    min_overlap = min(min_overlap, max(8, t // 2))
    curve = _curve(v, u, model.weights, f.reach, max_shift, min_overlap)
    if not np.isfinite(curve).any():
        return 0, 0.0, curve, float("nan")
    k = int(np.nanargmax(curve))
    in_place = u[f.reach : f.reach + t]
    usable = int((np.isfinite(v).all(axis=1) & np.isfinite(in_place).all(axis=1)).sum())
    sep = min(max_shift + 1, max(2, usable // 3))
    null = _null(v, in_place, model.weights, sep)
    if not np.isfinite(null):
        return k - max_shift, 0.0, curve, null
    raw = (curve[k] - np.nanmedian(curve)) / max(null, null_floor)
    return k - max_shift, float(raw), curve, null


def score_features(model: JudgeModel, f: ClipFeatures, max_shift: int) -> OffsetEstimate:
    """Offset and confidence of one clip (`OffsetEstimate`, curve = score per offset)."""
    off, raw, curve, _ = _raw_estimate(model, f, max_shift)
    conf = model.conf_scale * raw
    return OffsetEstimate(int(off), float(conf), curve, int(max_shift), abs(off) == max_shift)


def judge_clip(
    model: JudgeModel,
    landmarks: np.ndarray,
    source_audio: np.ndarray,
    audio_start_sample: int,
    max_shift: int,
    *,
    sample_rate: int = 16000,
) -> OffsetEstimate:
    """`score_features` straight from a clip's landmarks and the source's audio around it."""
    f = clip_features(landmarks, source_audio, audio_start_sample, max_shift + model.context,
                      sample_rate=sample_rate)
    return score_features(model, f, max_shift)


def _foreign(face: ClipFeatures, voice: ClipFeatures) -> ClipFeatures:
    """`face`'s mouth with `voice`'s audio (cut or padded with NaN to the face's length)."""
    need = len(face.audio)
    a = voice.audio[:need]
    if len(a) < need:
        a = np.vstack([a, np.full((need - len(a), a.shape[1]), np.nan)])
    return ClipFeatures(face.mouth, a, face.reach, face.group)


def fit_judge(clips: Sequence[ClipFeatures], params: FitParams = FitParams()) -> tuple[JudgeModel, FitReport]:
    """Fit the judge on a corpus of clips (mostly in sync) and calibrate its confidence.

    Raises ValueError when the clips hold fewer than `params.min_frames` usable frames.
    """
    import time

    t0 = time.perf_counter()
    p = params
    clips = [f for f in clips if f.num_frames > 0]
    corpus = len(clips)
    clips = [clips[k] for k in choose_clips([f.group for f in clips], p.max_clips, p.seed)]
    if any(f.reach < p.max_shift + p.context for f in clips):
        raise ValueError(f"clip features need reach >= max_shift + context = {p.max_shift + p.context}")
    usable = sum(len(_valid_rows(f, 0, p.context)[0]) for f in clips)
    if usable < p.min_frames:
        raise ValueError(f"{usable} usable frames in {len(clips)} clips; the corpus judge needs at least "
                         f"{p.min_frames}")
    report = FitReport(clips=len(clips), corpus_clips=corpus)
    offsets = [0] * len(clips)
    chosen = list(range(len(clips)))
    model = None
    for it in range(p.iterations + 1):
        a_s, m_s, a_p, m_p, rho, frames = _fit_projections([clips[i] for i in chosen], [offsets[i] for i in chosen], p)
        model = JudgeModel(a_s, m_s, a_p, m_p, rho, p.context, 1.0)
        report.clips_per_iteration.append(len(chosen))
        report.frames = frames
        if it == p.iterations:
            break
        # keep the clips this model judges confidently, re-aligned by their estimated offset
        est = [_raw_estimate(model, f, p.max_shift) for f in clips]
        scale = _calibrate(model, clips, p)[0]
        keep = [i for i, (o, raw, _, _) in enumerate(est) if scale * raw >= p.keep_conf and abs(o) < p.max_shift]
        if sum(len(_valid_rows(clips[i], est[i][0], p.context)[0]) for i in keep) < p.min_frames // 2:
            break  # too few confident clips: keep the previous alignment
        chosen = keep
        offsets = [e[0] for e in est]
    scale, q = _calibrate(model, clips, p)
    report.foreign_conf_raw_quantile = q
    report.canonical_correlations = [float(r) for r in model.weights]
    report.seconds = time.perf_counter() - t0
    info = {"clips": report.clips, "corpus_clips": report.corpus_clips, "frames": report.frames,
            "clips_per_iteration": report.clips_per_iteration,
            "foreign_quantile": p.foreign_quantile, "foreign_conf_raw_quantile": q, "params": _params_dict(p)}
    model = JudgeModel(a_s, m_s, a_p, m_p, rho, p.context, scale, info)
    return model, report


def _params_dict(p: FitParams) -> dict:
    d = asdict(p)
    d["negative_lags"] = list(p.negative_lags)
    return d


def _calibrate(model: JudgeModel, clips: Sequence[ClipFeatures], p: FitParams) -> tuple[float, float]:
    """conf scale putting `p.threshold` at the `p.foreign_quantile` of mismatched pairs' raw conf.

    Pairs: a clip's face with the audio of a clip of another group (another source); when all
    clips share one group, with the audio of another clip.
    """
    rng = np.random.default_rng(p.seed)
    n = len(clips)
    raws = []
    if n >= 2:
        groups = np.array([f.group for f in clips])
        for _ in range(p.foreign_pairs):
            a = int(rng.integers(n))
            others = np.flatnonzero(groups != groups[a])
            if len(others) == 0:
                others = np.array([i for i in range(n) if i != a])
            b = int(rng.choice(others))
            raws.append(_raw_estimate(model, _foreign(clips[a], clips[b]), p.max_shift)[1])
    raws = np.asarray([r for r in raws if np.isfinite(r)])
    if len(raws) < 20:
        return 1.0, float("nan")
    q = float(np.quantile(raws, p.foreign_quantile))
    return (p.threshold / q if q > 1e-6 else 1.0), q


# ----------------------------------------------------------------------------- save / load
_ARRAYS = ("audio_scale", "mouth_scale", "audio_proj", "mouth_proj", "weights")


def save_model(model: JudgeModel, path) -> Path:
    """Write the model as a small .npz (atomically: temporary name, then rename)."""
    import os
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"kind": _MODEL_KIND, "format_version": FORMAT_VERSION, "context": model.context,
            "conf_scale": model.conf_scale, "num_mels": NUM_MELS, "sub_steps": SUB_STEPS,
            "mouth_dims": int(model.mouth_proj.shape[0]), "info": model.info}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, meta=np.array(json.dumps(meta)), **{k: getattr(model, k) for k in _ARRAYS})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_model(path) -> JudgeModel:
    """Read a model written by `save_model`; any other file raises `ModelFileError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such corpus sync model file")
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            arrays = {k: np.asarray(z[k], dtype=np.float64) for k in _ARRAYS}
    except Exception as exc:  # not an npz, or one without our arrays
        raise ModelFileError(f"{path}: not a corpus sync model file ({type(exc).__name__})") from None
    if not isinstance(meta, dict) or meta.get("kind") != _MODEL_KIND:
        raise ModelFileError(f"{path}: not a corpus sync model file")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: corpus sync model format {meta.get('format_version')!r}, this syncvid reads "
                             f"{FORMAT_VERSION}")
    c = int(meta["context"])
    da = NUM_MELS * SUB_STEPS
    k = arrays["weights"].shape[0]
    if (meta.get("num_mels"), meta.get("sub_steps")) != (NUM_MELS, SUB_STEPS) or arrays["audio_scale"].shape != (da,) \
            or arrays["audio_proj"].shape != ((2 * c + 1) * da, k) \
            or arrays["mouth_proj"].shape != (arrays["mouth_scale"].shape[0], k):
        raise ModelFileError(f"{path}: corpus sync model arrays have inconsistent shapes")
    return JudgeModel(arrays["audio_scale"], arrays["mouth_scale"], arrays["audio_proj"], arrays["mouth_proj"],
                      arrays["weights"], c, float(meta["conf_scale"]), dict(meta.get("info") or {}))
