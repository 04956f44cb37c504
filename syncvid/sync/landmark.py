"""Weight-free audio-video sync from lip landmarks (the default `landmark` backend).

Visual signal: mouth opening per frame = inner-lip gap + outer-lip gap (mean vertical
distance of the upper and lower lip points, dlib 68-point order), divided by the
inter-ocular distance so that face size and zoom cancel.

Audio signal: per 25 fps frame k (samples [k·640, (k+1)·640)), the log energies of 8
log-spaced bands between 100 Hz and 6 kHz in a Hann window centred on that span,
plus their temporal derivatives (16 features).  Speech energy is
spread differently over the bands for open and closed vowels, bilabial closures and
fricatives, so a per-clip linear map from these features to the mouth opening follows the
lips much better than one broadband envelope does; the map is fitted by ridge regression
with 2-fold cross-validation (`syncvid.sync.offset.estimate_offset`), so that more
features do not buy a higher score by chance.

numpy/scipy only (no torch).  `DlibLandmarker` (68-point landmarks from dlib with the
predictor shipped in `face_recognition_models`) serves clips that come without landmarks.
"""

from __future__ import annotations

import numpy as np

from syncvid.sync.offset import OffsetEstimate, estimate_offset

__all__ = [
    "SAMPLES_PER_FRAME",
    "AUDIO_WINDOW",
    "mouth_opening",
    "band_log_energies",
    "audio_features",
    "context_window",
    "landmark_offset",
    "DlibLandmarker",
]

SAMPLES_PER_FRAME = 640  # 16 kHz / 25 fps
# Analysis window of the audio features, centred on each frame's 640 samples.  An 80 ms
# window (2 frames) was measured too (docs/sync.md): steadier offsets from the clip's own
# audio, but foreign voices reached the confidence threshold far more often.
AUDIO_WINDOW = SAMPLES_PER_FRAME
_INNER_UPPER, _INNER_LOWER = [61, 62, 63], [67, 66, 65]
_OUTER_UPPER, _OUTER_LOWER = [50, 51, 52], [58, 57, 56]
_LEFT_EYE, _RIGHT_EYE = slice(36, 42), slice(42, 48)


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
    """[T, 68, 2] landmarks → [T] mouth opening in inter-ocular units (NaN for invalid frames)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 3 or lm.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must be [T, 68, 2], got {lm.shape}")
    inner = np.linalg.norm(lm[:, _INNER_LOWER].mean(1) - lm[:, _INNER_UPPER].mean(1), axis=1)
    outer = np.linalg.norm(lm[:, _OUTER_LOWER].mean(1) - lm[:, _OUTER_UPPER].mean(1), axis=1)
    eyes = np.linalg.norm(lm[:, _LEFT_EYE].mean(1) - lm[:, _RIGHT_EYE].mean(1), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (inner + outer) / eyes
    out[~np.isfinite(out) | (eyes < 1e-6)] = np.nan
    return out


def band_log_energies(
    audio: np.ndarray,
    sample_rate: int = 16000,
    hop: int = SAMPLES_PER_FRAME,
    num_bands: int = 8,
    low_hz: float = 100.0,
    high_hz: float = 6000.0,
    *,
    window: int | None = None,
    start: int = 0,
    num_frames: int | None = None,
) -> np.ndarray:
    """[N, num_bands] log band energies, one row per `hop`-sample frame.

    Frame k covers samples [start + k·hop, start + (k+1)·hop) of `audio`; its Hann window of
    `window` samples is centred on that span (so it reaches (window - hop)/2 samples into
    each neighbour), and samples outside `audio` count as silence.  N = `num_frames`, or
    as many whole frames as `audio` holds after `start`.  `window` defaults to
    `AUDIO_WINDOW` scaled to `hop`.
    """
    window = hop * AUDIO_WINDOW // SAMPLES_PER_FRAME if window is None else int(window)
    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    n = (len(x) - start) // hop if num_frames is None else int(num_frames)
    if n <= 0:
        return np.zeros((0, num_bands))
    left = start + (hop - window) // 2  # first sample of frame 0's window (may be < 0)
    pad_l = max(0, -left)
    pad_r = max(0, left + (n - 1) * hop + window - len(x))
    xp = np.pad(x, (pad_l, pad_r))
    first = left + pad_l
    idx = first + np.arange(n)[:, None] * hop + np.arange(window)[None, :]
    power = np.abs(np.fft.rfft(xp[idx] * np.hanning(window)[None, :], axis=1)) ** 2
    freqs = np.fft.rfftfreq(window, 1.0 / sample_rate)
    edges = np.geomspace(low_hz, high_hz, num_bands + 1)
    bands = np.stack(
        [power[:, (freqs >= edges[b]) & (freqs < edges[b + 1])].sum(axis=1) for b in range(num_bands)], axis=1
    )
    return np.log(bands + 1e-10 * window)


def audio_features(
    audio: np.ndarray,
    sample_rate: int = 16000,
    hop: int = SAMPLES_PER_FRAME,
    *,
    window: int | None = None,
    start: int = 0,
    num_frames: int | None = None,
) -> np.ndarray:
    """[N, 16]: band log energies (`band_log_energies`) and their frame-to-frame derivatives."""
    e = band_log_energies(audio, sample_rate, hop, window=window, start=start, num_frames=num_frames)
    if len(e) < 2:
        return np.concatenate([e, np.zeros_like(e)], axis=1)
    return np.concatenate([e, np.gradient(e, axis=0)], axis=1)


def context_window(source_len: int, start: int, num_frames: int, max_shift: int, hop: int = SAMPLES_PER_FRAME):
    """Which context frames have audio: clip frames -max_shift .. num_frames+max_shift-1.

    Context frame j (clip frame j - max_shift) covers samples start + (j - max_shift)·hop
    onwards, hop samples long.  Returns (j_first, j_last_exclusive, sample_of_j_first);
    frames outside [j_first, j_last) would need samples before 0 or past the source's end.
    """
    total = num_frames + 2 * max_shift
    first_sample = start - max_shift * hop
    j_first = -(first_sample // hop) if first_sample < 0 else 0  # ceil(-first_sample / hop)
    j_last = min(total, (source_len - first_sample) // hop)
    j_last = max(j_last, j_first)
    return j_first, j_last, first_sample + j_first * hop


def landmark_offset(
    landmarks: np.ndarray,
    source_audio: np.ndarray,
    audio_start_sample: int,
    max_shift: int,
    *,
    sample_rate: int = 16000,
    min_overlap: int = 25,
) -> OffsetEstimate:
    """Offset/confidence of a clip from its landmarks and the source's audio around it."""
    mouth = mouth_opening(landmarks)
    t = len(mouth)
    hop = sample_rate // 25
    j0, j1, s0 = context_window(len(source_audio), audio_start_sample, t, max_shift, hop)
    ctx = np.full((t + 2 * max_shift, 16), np.nan)
    if j1 > j0:
        # windows reach into the source's audio around the context where it has some
        window = AUDIO_WINDOW * hop // SAMPLES_PER_FRAME
        lo = max(0, s0 - window)
        src = np.asarray(source_audio[lo : s0 + (j1 - j0) * hop + window], dtype=np.float32)
        feats = audio_features(src, sample_rate, hop, window=window, start=s0 - lo, num_frames=j1 - j0)
        ctx[j0 : j0 + len(feats)] = feats
    return estimate_offset(mouth, ctx, max_shift, min_overlap=min(min_overlap, max(8, t // 2)))


class DlibLandmarker:
    """68-point landmarks for a sequence of RGB frames with one face.

    The face is detected on a frame downscaled to `detect_width` every `redetect_every`
    frames (and whenever no box is known); the predictor runs on the full frame.  Frames
    before the first detection reuse the first box found; no face at all gives NaNs.
    """

    def __init__(self, detect_width: int = 320, redetect_every: int = 10) -> None:
        import dlib  # local imports: only clips without landmarks need dlib here

        from syncvid.face.dlib_backend import load_face_detector, load_shape_predictor

        self._dlib = dlib
        self._detector = load_face_detector()
        self._predictor = load_shape_predictor()
        self.detect_width = detect_width
        self.redetect_every = max(1, redetect_every)

    def _detect(self, frame: np.ndarray):
        import cv2

        h, w = frame.shape[:2]
        scale = min(1.0, self.detect_width / float(w))
        small = cv2.resize(frame, (max(1, int(w * scale)), max(1, int(h * scale)))) if scale < 1 else frame
        found = self._detector(np.ascontiguousarray(small), 1 if min(small.shape[:2]) < 200 else 0)
        if len(found) == 0:
            return None
        best = max(found, key=lambda r: r.area())
        return self._dlib.rectangle(
            int(best.left() / scale), int(best.top() / scale), int(best.right() / scale), int(best.bottom() / scale)
        )

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames)
        out = np.full((len(frames), 68, 2), np.nan, dtype=np.float32)
        boxes = [None] * len(frames)
        box = None
        for i, frame in enumerate(frames):
            if i % self.redetect_every == 0 or box is None:
                found = self._detect(frame)
                box = found if found is not None else box
            boxes[i] = box
        first = next((b for b in boxes if b is not None), None)
        for i, frame in enumerate(frames):
            b = boxes[i] if boxes[i] is not None else first
            if b is None:
                continue
            out[i] = self._predictor(frame, (b.left(), b.top(), b.right(), b.bottom()))
        return out
