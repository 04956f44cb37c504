"""Synthetic speech-like audio with the mouth-opening curve that goes with it.

A *plan* is a sequence of syllables grouped into phrases: each syllable has a start, an end, a
vowel (which sets its formants and how wide the mouth opens), a pitch glide and an optional
consonant onset.  From one plan we derive both

* the audio: a voiced harmonic source shaped by the vowel's formant resonances and by the
  syllable's amplitude envelope, plus short noise bursts for consonants and a faint noise floor;
* the mouth opening at any instant: the vowel's openness times the same envelope.

Video frames and audio samples made from one plan are therefore in sync by construction; an
audio track rendered with ``audio_lead_s > 0`` plays every syllable that much *before* the mouth
shows it (syncnet_python's convention: a positive offset means the audio leads the video).

Everything is deterministic given the seed: the plan comes from ``numpy.random.default_rng(seed)``
and each syllable's noise from a generator seeded by ``(seed, syllable index)``, so rendering any
window of a plan gives the same samples as rendering the whole plan and cutting.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy import signal

__all__ = [
    "VOWELS",
    "Syllable",
    "Speech",
    "plan_syllables",
    "syllable_envelope",
    "mouth_opening",
    "mouth_curve",
    "render_audio",
    "synthesize_speech",
]

# Vowel -> (first three formant frequencies in Hz, relative mouth openness in [0, 1]).
# Formants are textbook adult averages; openness follows jaw opening (/a/ widest, /i/ /u/ least).
VOWELS: dict[str, tuple[tuple[float, float, float], float]] = {
    "a": ((730.0, 1090.0, 2440.0), 1.00),
    "o": ((570.0, 840.0, 2410.0), 0.80),
    "e": ((530.0, 1840.0, 2480.0), 0.70),
    "u": ((300.0, 870.0, 2240.0), 0.50),
    "i": ((270.0, 2290.0, 3010.0), 0.45),
}
_FORMANT_BANDWIDTHS = (90.0, 110.0, 170.0)
_FORMANT_WEIGHTS = (1.0, 0.55, 0.25)
_ATTACK = 0.25  # fraction of a syllable spent opening
_RELEASE = 0.35  # fraction spent closing
_ONSET_S = 0.035  # length of a consonant burst, ending where the vowel starts
_HARMONIC_CEILING_HZ = 5000.0
_NOISE_FLOOR = 0.0015
_PEAK = 0.5
_PERIOD_TABLE = 2048  # samples per tabulated pitch period


@dataclass(frozen=True)
class Syllable:
    """One voiced syllable: the vowel sounds (and the mouth opens) on [start_s, end_s)."""

    start_s: float
    end_s: float
    vowel: str
    f0_start_hz: float
    f0_end_hz: float
    loudness: float  # peak amplitude factor in (0, 1]
    onset: str  # "" (vowel onset), "fricative" (hiss) or "stop" (short click)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def openness(self) -> float:
        return VOWELS[self.vowel][1]


@dataclass(frozen=True)
class Speech:
    """A rendered stretch of speech: audio samples and the per-frame mouth opening."""

    syllables: tuple[Syllable, ...]
    audio: np.ndarray  # float32 [n] (mono) or [n, channels]
    sample_rate: int
    mouth: np.ndarray  # float32 [num_frames], opening in [0, 1] at frame k's time k / fps
    fps: Fraction
    audio_lead_s: float

    @property
    def duration_s(self) -> float:
        return len(self.mouth) / float(self.fps)


def plan_syllables(
    start_s: float,
    end_s: float,
    seed: int,
    *,
    rate_range: tuple[float, float] = (3.0, 7.0),
    phrase_syllables: tuple[int, int] = (3, 9),
    pause_range_s: tuple[float, float] = (0.25, 0.7),
    lead_in_s: tuple[float, float] = (0.15, 0.4),
) -> tuple[Syllable, ...]:
    """Syllables covering [start_s, end_s): phrases of 3-9 syllables at 3-7 syllables/s, each
    syllable's length jittered, separated by pauses.  Syllables are sorted and never overlap;
    the last one may run past `end_s` (a renderer cuts it)."""
    if end_s <= start_s:
        raise ValueError(f"empty time range [{start_s}, {end_s})")
    lo_rate, hi_rate = rate_range
    if not 0 < lo_rate <= hi_rate:
        raise ValueError(f"bad syllable rate range {rate_range}")
    rng = np.random.default_rng(seed)
    vowels = sorted(VOWELS)
    syllables: list[Syllable] = []
    t = start_s + rng.uniform(*lead_in_s)
    f0_base = rng.uniform(110.0, 210.0)  # one speaker, one register
    while t < end_s:
        rate = rng.uniform(lo_rate, hi_rate)
        count = int(rng.integers(phrase_syllables[0], phrase_syllables[1] + 1))
        # Phrase intonation: pitch drifts down over the phrase (declination).
        phrase_f0 = f0_base * rng.uniform(0.92, 1.12)
        for i in range(count):
            period = rng.uniform(0.75, 1.25) / rate
            voiced = period * rng.uniform(0.6, 0.85)
            f0_a = phrase_f0 * (1.0 - 0.12 * i / count)
            f0_b = f0_a * rng.uniform(0.93, 1.07)
            syllables.append(
                Syllable(
                    start_s=float(t),
                    end_s=float(t + voiced),
                    vowel=vowels[int(rng.integers(len(vowels)))],
                    f0_start_hz=float(f0_a),
                    f0_end_hz=float(f0_b),
                    loudness=float(rng.uniform(0.8, 1.0)),
                    onset=("", "fricative", "stop")[int(rng.integers(3))],
                )
            )
            t += period
            if t >= end_s:
                break
        t += rng.uniform(*pause_range_s)
    return tuple(syllables)


def syllable_envelope(phase: np.ndarray) -> np.ndarray:
    """Amplitude envelope over a syllable, `phase` in [0, 1] (0 outside): a raised-cosine rise
    over the first quarter, a plateau, a raised-cosine fall over the last 35 %."""
    phase = np.asarray(phase, dtype=np.float64)
    env = np.ones_like(phase)
    rise = phase < _ATTACK
    env[rise] = 0.5 - 0.5 * np.cos(np.pi * phase[rise] / _ATTACK)
    fall = phase > 1.0 - _RELEASE
    env[fall] = 0.5 - 0.5 * np.cos(np.pi * (1.0 - phase[fall]) / _RELEASE)
    env[(phase <= 0.0) | (phase >= 1.0)] = 0.0
    return env


def _syllable_index(syllables: tuple[Syllable, ...], times: np.ndarray) -> np.ndarray:
    """Index of the syllable sounding at each time, or -1 between syllables."""
    starts = np.array([s.start_s for s in syllables])
    ends = np.array([s.end_s for s in syllables])
    idx = np.searchsorted(starts, times, side="right") - 1
    inside = (idx >= 0) & (times < ends[np.clip(idx, 0, None)])
    return np.where(inside, idx, -1)


def mouth_opening(syllables: tuple[Syllable, ...], times_s: np.ndarray) -> np.ndarray:
    """Mouth opening in [0, 1] at each time: the sounding syllable's openness times its
    envelope, 0 between syllables."""
    times = np.asarray(times_s, dtype=np.float64)
    out = np.zeros(times.shape, np.float64)
    if not syllables:
        return out.astype(np.float32)
    idx = _syllable_index(syllables, times)
    for i in np.unique(idx[idx >= 0]):
        syl = syllables[i]
        sel = idx == i
        phase = (times[sel] - syl.start_s) / syl.duration_s
        out[sel] = syl.openness * syllable_envelope(phase)
    return out.astype(np.float32)


def mouth_curve(
    syllables: tuple[Syllable, ...], fps: int | Fraction, num_frames: int, start_s: float = 0.0
) -> np.ndarray:
    """Mouth opening of each frame of a constant-rate clip.

    Frame k is displayed on [k / fps, (k + 1) / fps) (plus `start_s`) and is paired with the
    audio of that interval (SyncNet's and the segmenter's pairing), so it shows the opening at
    the middle of the interval, ``start_s + (k + 0.5) / fps``: the pairing is then unbiased.
    """
    times = start_s + (np.arange(num_frames, dtype=np.float64) + 0.5) / float(Fraction(fps))
    return mouth_opening(syllables, times)


def _formant_gain(freqs: np.ndarray, formants: tuple[float, float, float]) -> np.ndarray:
    gain = np.zeros_like(freqs)
    for centre, bandwidth, weight in zip(formants, _FORMANT_BANDWIDTHS, _FORMANT_WEIGHTS):
        gain += weight / (1.0 + ((freqs - centre) / (0.5 * bandwidth)) ** 2)
    return gain


@functools.lru_cache(maxsize=16)
def _bandpass(low: float, high: float, sample_rate: int) -> np.ndarray:
    return signal.butter(4, [low, high], btype="bandpass", fs=sample_rate, output="sos")


def _render_syllable(syl: Syllable, t: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Samples of one syllable at the absolute times `t` (all inside its extended span)."""
    out = np.zeros(t.shape, np.float64)
    phase = (t - syl.start_s) / syl.duration_s
    voiced = (phase > 0.0) & (phase < 1.0)
    if voiced.any():
        tv = t[voiced]
        frac = phase[voiced]
        # Linear pitch glide; instantaneous phase integrated analytically from the syllable
        # start so that any window of the syllable renders the same samples.
        tau = tv - syl.start_s
        slope = (syl.f0_end_hz - syl.f0_start_hz) / syl.duration_s
        cycles = syl.f0_start_hz * tau + 0.5 * slope * tau**2
        f0_mean = 0.5 * (syl.f0_start_hz + syl.f0_end_hz)
        ceiling = min(_HARMONIC_CEILING_HZ, 0.45 * sample_rate)
        harmonics = np.arange(1, int(ceiling / max(syl.f0_start_hz, syl.f0_end_hz)) + 1)
        formants = VOWELS[syl.vowel][0]
        amps = _formant_gain(harmonics * f0_mean, formants) / harmonics**0.5
        amps /= amps.sum()
        # One period of the harmonic sum, tabulated finely and read at each sample's phase:
        # the same waveform as summing the harmonics per sample, at a fraction of the cost.
        grid = np.arange(_PERIOD_TABLE + 1) / _PERIOD_TABLE
        period = amps @ np.sin(2.0 * np.pi * np.outer(harmonics, grid))
        wave = np.interp(cycles - np.floor(cycles), grid, period)
        # Open vowels are louder: the amplitude follows the mouth opening.
        out[voiced] = wave * syllable_envelope(frac) * syl.loudness * (0.35 + 0.65 * syl.openness)
    if syl.onset:
        burst = (t >= syl.start_s - _ONSET_S) & (t < syl.start_s + 0.25 * _ONSET_S)
        n_burst = int(burst.sum())
        if n_burst:
            # The burst's noise is generated for the whole burst span and indexed by sample
            # position, so a window that cuts the burst gets the matching part of it.
            first = math.ceil((syl.start_s - _ONSET_S) * sample_rate)
            n_full = int(1.25 * _ONSET_S * sample_rate) + 2
            noise = rng.standard_normal(n_full)
            if syl.onset == "fricative":
                low, high, level = 2500.0, min(7000.0, 0.45 * sample_rate), 0.25
            else:
                low, high, level = 300.0, min(4000.0, 0.45 * sample_rate), 0.35
            sos = _bandpass(low, high, sample_rate)
            noise = signal.sosfilt(sos, noise)
            noise /= np.max(np.abs(noise)) + 1e-12
            pos = np.round(t[burst] * sample_rate).astype(np.int64) - first
            pos = np.clip(pos, 0, n_full - 1)
            local = (t[burst] - (syl.start_s - _ONSET_S)) / (1.25 * _ONSET_S)
            shape = np.sin(np.pi * np.clip(local, 0.0, 1.0)) ** 2
            out[burst] += level * syl.loudness * noise[pos] * shape
    return out


def render_audio(
    syllables: tuple[Syllable, ...],
    sample_rate: int,
    start_s: float,
    duration_s: float,
    seed: int,
) -> np.ndarray:
    """Mono float32 samples of the plan on [start_s, start_s + duration_s): sample i is the
    sound at time start_s + i / sample_rate.  Peak amplitude is about 0.5."""
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    n = int(round(duration_s * sample_rate))
    t = start_s + np.arange(n, dtype=np.float64) / sample_rate
    out = np.zeros(n, np.float64)
    for i, syl in enumerate(syllables):
        lo = syl.start_s - _ONSET_S
        hi = syl.end_s
        if hi <= start_s or lo >= start_s + duration_s:
            continue
        a = max(0, int(math.floor((lo - start_s) * sample_rate)))
        b = min(n, int(math.ceil((hi - start_s) * sample_rate)) + 1)
        if b <= a:
            continue
        rng = np.random.default_rng([seed, i])
        out[a:b] += _render_syllable(syl, t[a:b], sample_rate, rng)
    out *= _PEAK
    # A faint noise floor, so that pauses are not digital silence; seeded per absolute sample
    # block so that it, too, does not depend on the window.
    block = sample_rate  # one-second blocks
    first_block = math.floor(start_s)
    last_block = math.floor(start_s + duration_s) + 1
    pos0 = round(start_s * sample_rate) - first_block * block
    floor = np.concatenate(
        [
            np.random.default_rng([seed, 1_000_003, b + 1_000]).standard_normal(block)
            for b in range(first_block, last_block + 1)
        ]
    )
    out += _NOISE_FLOOR * floor[pos0 : pos0 + n]
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def synthesize_speech(
    duration_s: float,
    *,
    sample_rate: int,
    fps: int | Fraction,
    seed: int,
    channels: int = 1,
    audio_lead_s: float = 0.0,
    num_frames: int | None = None,
) -> Speech:
    """Audio and mouth curve for a clip of `duration_s` seconds.

    The mouth curve has one value per video frame (``num_frames``, default
    ``round(duration_s * fps)``), see `mouth_curve`.  The audio has
    ``round(duration_s * sample_rate)`` samples; with ``audio_lead_s = d`` audio sample i plays
    what the mouth shows at ``i / sample_rate + d``, i.e. the audio leads the video by d seconds.
    With ``channels = 2`` the right channel is the left one, slightly quieter.
    """
    fps = Fraction(fps)
    if num_frames is None:
        num_frames = int(round(duration_s * fps))
    margin = abs(audio_lead_s) + 0.5
    syllables = plan_syllables(-margin, duration_s + margin, seed)
    mouth = mouth_curve(syllables, fps, num_frames)
    mono = render_audio(syllables, sample_rate, audio_lead_s, duration_s, seed)
    if channels == 1:
        audio = mono
    elif channels == 2:
        audio = np.stack([mono, 0.85 * mono], axis=1).astype(np.float32)
    else:
        raise ValueError(f"channels must be 1 or 2, got {channels}")
    return Speech(
        syllables=syllables,
        audio=audio,
        sample_rate=int(sample_rate),
        mouth=mouth,
        fps=fps,
        audio_lead_s=float(audio_lead_s),
    )
