"""MFCC features exactly as the original SyncNet's evaluation computes them.

These are python_speech_features' `mfcc()` defaults: 25 ms rectangular frames every 10 ms
(400/160 samples at 16 kHz, last frame zero-padded), pre-emphasis 0.97, 512-point power
spectrum divided by NFFT, 26 triangular mel filters from 0 Hz to Nyquist with FFT bins
floor((NFFT+1)·f/sr), natural log, orthonormal DCT-II, 13 coefficients, sinusoidal lifter
22, and coefficient 0 replaced by the log frame energy.  Input values are on the int16
scale (SyncNet was trained on raw PCM values, not on [-1, 1] floats).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

__all__ = ["hz_to_mel", "mel_to_hz", "mel_filterbank", "frame_signal", "dct2_ortho", "mfcc", "float_to_int16_scale"]

_EPS = np.finfo(float).eps


def hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


@lru_cache(maxsize=8)
def _dct2_matrix(n: int, k: int) -> np.ndarray:
    """[n, k] matrix of the first k orthonormal DCT-II basis vectors of length n."""
    i = np.arange(n)[:, None]
    j = np.arange(k)[None, :]
    basis = np.cos(np.pi * j * (2 * i + 1) / (2 * n)) * math.sqrt(2.0 / n)
    basis[:, 0] = math.sqrt(1.0 / n)
    basis.flags.writeable = False
    return basis


def dct2_ortho(x: np.ndarray, k: int | None = None) -> np.ndarray:
    """The first `k` coefficients of the orthonormal DCT-II along the last axis (scipy's
    `dct(x, type=2, norm="ortho")[..., :k]`, as a matrix product: 26 filters need no FFT)."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[-1]
    return x @ _dct2_matrix(n, n if k is None else min(int(k), n))


@lru_cache(maxsize=8)
def _filterbank(nfilt: int, nfft: int, sample_rate: int, low_hz: float, high_hz: float) -> np.ndarray:
    mels = np.linspace(hz_to_mel(low_hz), hz_to_mel(high_hz), nfilt + 2)
    bins = np.floor((nfft + 1) * mel_to_hz(mels) / sample_rate).astype(int)
    fb = np.zeros((nfilt, nfft // 2 + 1))
    for j in range(nfilt):
        lo, mid, hi = bins[j], bins[j + 1], bins[j + 2]
        for i in range(lo, mid):
            fb[j, i] = (i - lo) / (mid - lo)
        for i in range(mid, hi):
            fb[j, i] = (hi - i) / (hi - mid)
    fb.setflags(write=False)
    return fb


def mel_filterbank(
    nfilt: int = 26, nfft: int = 512, sample_rate: int = 16000, low_hz: float = 0.0, high_hz: float | None = None
) -> np.ndarray:
    """Triangular mel filters, [nfilt, nfft//2 + 1] (read-only)."""
    return _filterbank(nfilt, nfft, sample_rate, float(low_hz), float(high_hz or sample_rate / 2))


def frame_signal(signal: np.ndarray, frame_len: int, frame_step: int) -> np.ndarray:
    """Frames of `frame_len` every `frame_step` samples; the tail is zero-padded to a full frame."""
    n = len(signal)
    if n <= frame_len:
        num = 1
    else:
        num = 1 + int(math.ceil((n - frame_len) / frame_step))
    padded = np.zeros((num - 1) * frame_step + frame_len)
    padded[:n] = signal
    idx = np.arange(frame_len)[None, :] + frame_step * np.arange(num)[:, None]
    return padded[idx]


def float_to_int16_scale(audio: np.ndarray) -> np.ndarray:
    """[-1, 1] float audio → int16 PCM values (as float64), as a 16-bit WAV would hold them."""
    return np.clip(np.round(np.asarray(audio, dtype=np.float64) * 32768.0), -32768, 32767)


def mfcc(
    signal: np.ndarray,
    sample_rate: int = 16000,
    *,
    win_len: float = 0.025,
    win_step: float = 0.01,
    numcep: int = 13,
    nfilt: int = 26,
    nfft: int = 512,
    low_hz: float = 0.0,
    high_hz: float | None = None,
    preemph: float = 0.97,
    ceplifter: int = 22,
    append_energy: bool = True,
) -> np.ndarray:
    """MFCC matrix [numcep, num_frames] (coefficient-major, as SyncNet consumes it).

    `signal` is 1-D on the int16 scale; 100 frames per second at the defaults.
    """
    x = np.asarray(signal, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError("mfcc of an empty signal")
    x = np.append(x[0], x[1:] - preemph * x[:-1])
    frames = frame_signal(x, int(round(win_len * sample_rate)), int(round(win_step * sample_rate)))
    power = np.abs(np.fft.rfft(frames, nfft)) ** 2 / nfft
    energy = power.sum(axis=1)
    energy = np.where(energy == 0, _EPS, energy)
    feat = power @ mel_filterbank(nfilt, nfft, sample_rate, low_hz, high_hz).T
    feat = np.where(feat == 0, _EPS, feat)
    cep = dct2_ortho(np.log(feat), numcep)
    if ceplifter > 0:
        n = np.arange(cep.shape[1])
        cep = cep * (1.0 + (ceplifter / 2.0) * np.sin(np.pi * n / ceplifter))
    if append_energy:
        cep[:, 0] = np.log(energy)
    return cep.T.copy()
