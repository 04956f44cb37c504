"""Mel-spectrogram features for the training datasets (LatentSync's `configs/audio.yaml`).

16 kHz mono float audio → pre-emphasis → centred STFT magnitude → Slaney mel filterbank →
decibels relative to `ref_level_db` → symmetric normalisation into [-max_abs_value,
max_abs_value].  With the shipped parameters this yields 80 mel bands at 80 frames per
second, i.e. 3.2 mel frames per video frame at 25 fps.

Everything here is pure numpy: no I/O except `load_mel_params`, which reads the audio
config file.  The filterbank and the window are cached per parameter set.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import asdict, dataclass, fields
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from syncvid.config.audio_schema import AudioSection

__all__ = [
    "MelParams",
    "DEFAULT_MEL_PARAMS",
    "load_mel_params",
    "hz_to_mel_slaney",
    "mel_to_hz_slaney",
    "mel_filterbank",
    "preemphasis",
    "hann_window",
    "stft_magnitude",
    "amplitude_to_db",
    "normalize_db",
    "melspectrogram",
    "num_mel_frames",
    "mel_window_length",
    "mel_start_index",
    "crop_mel_window",
    "max_window_start",
]

log = logging.getLogger(__name__)

_REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_AUDIO_CONFIG = Path("configs") / "audio.yaml"


# The defaults are the audio schema's (`syncvid.config.audio_schema.AudioSection`), stated there once.
_SCHEMA = AudioSection()


@dataclass(frozen=True)
class MelParams:
    """Parameters of the mel features (the `audio` section of configs/audio.yaml); the defaults are
    `AudioSection`'s."""

    sample_rate: int = _SCHEMA.sample_rate
    n_fft: int = _SCHEMA.n_fft
    hop_size: int = _SCHEMA.hop_size
    win_size: int = _SCHEMA.win_size
    num_mels: int = _SCHEMA.num_mels
    fmin: float = _SCHEMA.fmin
    fmax: float = _SCHEMA.fmax
    preemphasize: bool = _SCHEMA.preemphasize
    preemphasis: float = _SCHEMA.preemphasis
    min_level_db: float = _SCHEMA.min_level_db
    ref_level_db: float = _SCHEMA.ref_level_db
    signal_normalization: bool = _SCHEMA.signal_normalization
    allow_clipping_in_normalization: bool = _SCHEMA.allow_clipping_in_normalization
    symmetric_mels: bool = _SCHEMA.symmetric_mels
    max_abs_value: float = _SCHEMA.max_abs_value
    # librosa >= 0.10 pads the centred STFT with zeros ("constant"); older releases reflected.
    pad_mode: str = _SCHEMA.pad_mode

    def __post_init__(self) -> None:
        # the schema's own checks, so that a config and MelParams built in code accept the same values
        problems = AudioSection(**asdict(self)).check_values()
        if problems:
            raise ValueError("; ".join(f"audio.{p}" for p in problems))

    @property
    def frames_per_second(self) -> Fraction:
        """Mel frames per second of audio (80 for 16 kHz with a 200-sample hop)."""
        return Fraction(self.sample_rate, self.hop_size)

    def fingerprint(self) -> str:
        """A short stable hash of every parameter (keys mel caches to the parameters)."""
        text = ";".join(f"{k}={v!r}" for k, v in sorted(asdict(self).items()))
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    @classmethod
    def from_section(cls, section: Any) -> "MelParams":
        """Build from an `audio` config section (typed object, OmegaConf node or mapping).

        Keys of the reference file that do not affect the features (rescale, rescaling_max)
        are ignored; `use_lws: true` is rejected because only the STFT path is implemented.
        A null `hop_size` is derived from `frame_shift_ms`, as the reference does.
        """

        def get(key: str, default: Any = None) -> Any:
            if isinstance(section, Mapping) or hasattr(section, "keys"):
                return section[key] if key in section else default
            return getattr(section, key, default)

        if get("use_lws", False):
            raise ValueError("audio.use_lws: true is not supported (the features use the librosa-style STFT)")
        casts = {f.name: type(getattr(DEFAULT_MEL_PARAMS, f.name)) for f in fields(cls)}
        values: dict[str, Any] = {}
        for name, cast in casts.items():
            value = get(name)
            if value is not None:
                values[name] = cast(value)
        if "hop_size" not in values and get("frame_shift_ms") is not None:
            sr = values.get("sample_rate", DEFAULT_MEL_PARAMS.sample_rate)
            values["hop_size"] = int(float(get("frame_shift_ms")) / 1000 * sr)
        if "win_size" not in values and "n_fft" in values:
            values["win_size"] = values["n_fft"]
        return cls(**values)


DEFAULT_MEL_PARAMS = MelParams()


def _resolve_config_path(path: str | Path | None) -> Path | None:
    candidates: list[Path] = []
    if path is None or str(path) == "":
        candidates = [Path.cwd() / DEFAULT_AUDIO_CONFIG, _REPO_ROOT / DEFAULT_AUDIO_CONFIG]
    else:
        p = Path(path).expanduser()
        candidates = [p] if p.is_absolute() else [Path.cwd() / p, _REPO_ROOT / p]
    for c in candidates:
        if c.is_file():
            return c
    if path not in (None, ""):
        raise FileNotFoundError(f"audio config not found: {path} (looked in {', '.join(map(str, candidates))})")
    return None


def load_mel_params(path: str | Path | None = None) -> MelParams:
    """Mel parameters from an audio config file (default: configs/audio.yaml).

    With no path, configs/audio.yaml is looked up in the working directory and the
    repository; when neither exists the built-in defaults (identical to the reference's
    shipped file) are used.  A path that is given but missing raises FileNotFoundError.
    """
    resolved = _resolve_config_path(path)
    if resolved is None:
        log.debug("no configs/audio.yaml found; using the built-in mel parameters")
        return DEFAULT_MEL_PARAMS
    return _load_mel_params_file(str(resolved))


@lru_cache(maxsize=8)
def _load_mel_params_file(path: str) -> MelParams:
    from syncvid.config import load_config

    cfg = load_config(path, family="audio")
    try:
        return MelParams.from_section(cfg.audio)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


# ---------------------------------------------------------------------------------------
# Pure numeric cores
# ---------------------------------------------------------------------------------------

_F_SP = 200.0 / 3  # Slaney: 66.67 Hz per mel below 1 kHz
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP  # 15
_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel_slaney(hz: np.ndarray | float) -> np.ndarray:
    """Slaney's Auditory Toolbox mel scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / _F_SP
    log_region = hz >= _MIN_LOG_HZ
    return np.where(log_region, _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP, mel)


def mel_to_hz_slaney(mel: np.ndarray | float) -> np.ndarray:
    """Inverse of `hz_to_mel_slaney`."""
    mel = np.asarray(mel, dtype=np.float64)
    hz = _F_SP * mel
    log_region = mel >= _MIN_LOG_MEL
    return np.where(log_region, _MIN_LOG_HZ * np.exp(_LOGSTEP * (mel - _MIN_LOG_MEL)), hz)


@lru_cache(maxsize=8)
def _mel_filterbank_cached(sample_rate: int, n_fft: int, num_mels: int, fmin: float, fmax: float) -> np.ndarray:
    fft_freqs = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    mel_points = np.linspace(hz_to_mel_slaney(fmin), hz_to_mel_slaney(fmax), num_mels + 2)
    hz_points = mel_to_hz_slaney(mel_points)
    widths = np.diff(hz_points)
    ramps = hz_points[:, None] - fft_freqs[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    # Slaney normalisation: each triangle has unit area in Hz.
    weights *= (2.0 / (hz_points[2:] - hz_points[:-2]))[:, None]
    weights = weights.astype(np.float32)
    weights.setflags(write=False)
    return weights


def mel_filterbank(
    sample_rate: int = 16000, n_fft: int = 800, num_mels: int = 80, fmin: float = 55.0, fmax: float = 7600.0
) -> np.ndarray:
    """Slaney-normalised triangular mel filterbank, shape [num_mels, n_fft//2 + 1], float32."""
    return _mel_filterbank_cached(int(sample_rate), int(n_fft), int(num_mels), float(fmin), float(fmax))


def preemphasis(x: np.ndarray, coefficient: float) -> np.ndarray:
    """y[0] = x[0], y[n] = x[n] − k·x[n−1] (the FIR filter [1, −k])."""
    x = np.asarray(x, dtype=np.float64)
    y = x.copy()
    if x.size > 1:
        y[1:] -= coefficient * x[:-1]
    return y


@lru_cache(maxsize=8)
def _hann_cached(win_size: int, n_fft: int) -> np.ndarray:
    n = np.arange(win_size)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / win_size)  # periodic Hann (DFT-even)
    left = (n_fft - win_size) // 2
    padded = np.zeros(n_fft)
    padded[left : left + win_size] = window
    padded.setflags(write=False)
    return padded


def hann_window(win_size: int, n_fft: int | None = None) -> np.ndarray:
    """Periodic Hann window of `win_size` samples, zero-padded (centred) to `n_fft`."""
    return _hann_cached(int(win_size), int(n_fft if n_fft is not None else win_size))


def stft_magnitude(
    x: np.ndarray, n_fft: int, hop_size: int, win_size: int | None = None, pad_mode: str = "constant"
) -> np.ndarray:
    """|STFT| of a centred, padded signal: shape [n_fft//2 + 1, 1 + len(x)//hop_size].

    The signal is padded by n_fft//2 on both sides (zeros, or a reflection when
    `pad_mode='reflect'`), so frame t is centred on sample t·hop_size.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected mono audio of shape [N], got {x.shape}")
    window = hann_window(win_size or n_fft, n_fft)
    pad = n_fft // 2
    if pad_mode == "reflect" and x.size > pad:
        padded = np.pad(x, pad, mode="reflect")
    else:
        padded = np.pad(x, pad, mode="constant")
    n_frames = 1 + x.size // hop_size
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[: (n_frames - 1) * hop_size + 1 : hop_size]
    return np.abs(np.fft.rfft(frames * window, axis=1)).T


def amplitude_to_db(x: np.ndarray, min_level_db: float = -100.0) -> np.ndarray:
    """20·log10(max(floor, x)) with floor = 10^(min_level_db/20) (1e-5 for −100 dB)."""
    floor = 10.0 ** (min_level_db / 20.0)
    return 20.0 * np.log10(np.maximum(floor, x))


def normalize_db(s: np.ndarray, params: MelParams = DEFAULT_MEL_PARAMS) -> np.ndarray:
    """Map decibels in [min_level_db, 0] linearly onto the model's feature range."""
    unit = (s - params.min_level_db) / (-params.min_level_db)
    m = params.max_abs_value
    if params.symmetric_mels:
        out = 2.0 * m * unit - m
        lo = -m
    else:
        out = m * unit
        lo = 0.0
    if params.allow_clipping_in_normalization:
        return np.clip(out, lo, m)
    if s.size and (s.max() > 0 or s.min() < params.min_level_db):
        raise ValueError(
            f"decibels outside [{params.min_level_db}, 0] with allow_clipping_in_normalization: false"
        )
    return out


def melspectrogram(audio: np.ndarray, params: MelParams | None = None) -> np.ndarray:
    """Normalised mel spectrogram of mono audio: float32 [num_mels, 1 + len(audio)//hop_size].

    `audio` is float in [-1, 1] at `params.sample_rate`.  Values lie in
    [-max_abs_value, max_abs_value] (±4 by default); silence maps to −4.
    """
    p = params or DEFAULT_MEL_PARAMS
    x = np.asarray(audio)
    if x.ndim == 2 and 1 in x.shape:
        x = x.reshape(-1)
    if p.preemphasize:
        x = preemphasis(x, p.preemphasis)
    magnitude = stft_magnitude(x, p.n_fft, p.hop_size, p.win_size, p.pad_mode)
    mel = mel_filterbank(p.sample_rate, p.n_fft, p.num_mels, p.fmin, p.fmax).astype(np.float64) @ magnitude
    s = amplitude_to_db(mel, p.min_level_db) - p.ref_level_db
    if p.signal_normalization:
        s = normalize_db(s, p)
    return s.astype(np.float32)


# ---------------------------------------------------------------------------------------
# Video frame ↔ mel frame correspondence
# ---------------------------------------------------------------------------------------


def _ratio(video_fps: int | float | Fraction, mel_fps: int | float | Fraction) -> Fraction:
    return Fraction(mel_fps).limit_denominator(10**6) / Fraction(video_fps).limit_denominator(10**6)


def num_mel_frames(num_samples: int, hop_size: int = 200) -> int:
    """Frames of a centred STFT over `num_samples` samples."""
    return 1 + int(num_samples) // int(hop_size)


def mel_window_length(num_frames: int, video_fps: int | float | Fraction = 25, mel_fps: int | float | Fraction = 80) -> int:
    """Mel frames covering `num_frames` video frames: ceil(num_frames·80/25) (52 for 16, 16 for 5)."""
    return math.ceil(num_frames * _ratio(video_fps, mel_fps))


def mel_start_index(start_frame: int, video_fps: int | float | Fraction = 25, mel_fps: int | float | Fraction = 80) -> int:
    """First mel frame of the window for a video window starting at `start_frame`: ⌊80·s/25⌋."""
    return math.floor(start_frame * _ratio(video_fps, mel_fps))


def max_window_start(
    num_video_frames: int,
    num_mel: int,
    num_frames: int,
    video_fps: int | float | Fraction = 25,
    mel_fps: int | float | Fraction = 80,
) -> int:
    """Largest start frame s such that the video window [s, s+num_frames) and its mel window
    both fit (−1 when none does)."""
    length = mel_window_length(num_frames, video_fps, mel_fps)
    s = num_video_frames - num_frames
    while s >= 0 and mel_start_index(s, video_fps, mel_fps) + length > num_mel:
        s -= 1
    return s


def crop_mel_window(
    mel: np.ndarray,
    start_frame: int,
    num_frames: int,
    video_fps: int | float | Fraction = 25,
    mel_fps: int | float | Fraction = 80,
) -> np.ndarray:
    """Mel columns for video frames [start_frame, start_frame+num_frames): [num_mels, L].

    Raises ValueError when the window runs past the end of `mel`.
    """
    start = mel_start_index(start_frame, video_fps, mel_fps)
    length = mel_window_length(num_frames, video_fps, mel_fps)
    if start < 0 or start + length > mel.shape[-1]:
        raise ValueError(
            f"mel window [{start}, {start + length}) for frames [{start_frame}, {start_frame + num_frames}) "
            f"exceeds the {mel.shape[-1]} mel frames available"
        )
    return mel[..., start : start + length]
