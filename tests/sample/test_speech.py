"""The synthetic speech: syllable plans, envelopes, audio and the matching mouth curve."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from syncvid.sample.speech import (
    VOWELS,
    mouth_curve,
    mouth_opening,
    plan_syllables,
    render_audio,
    syllable_envelope,
    synthesize_speech,
)


def frame_rms(audio: np.ndarray, sample_rate: int, fps: Fraction, num_frames: int) -> np.ndarray:
    """RMS of the audio over each frame's interval [k / fps, (k + 1) / fps)."""
    edges = np.round(np.arange(num_frames + 1) * sample_rate / float(fps)).astype(int)
    return np.array([np.sqrt(np.mean(audio[a:b].astype(np.float64) ** 2)) for a, b in zip(edges[:-1], edges[1:])])


def lagged_corr(mouth: np.ndarray, rms: np.ndarray, lead: int) -> float:
    """Correlation of mouth[k] with rms[k - lead] (audio leading the video by `lead` frames)."""
    if lead >= 0:
        return float(np.corrcoef(mouth[lead:], rms[: len(rms) - lead])[0, 1])
    return float(np.corrcoef(mouth[:lead], rms[-lead:])[0, 1])


def test_plan_is_deterministic_and_depends_on_seed():
    assert plan_syllables(0.0, 8.0, seed=5) == plan_syllables(0.0, 8.0, seed=5)
    assert plan_syllables(0.0, 8.0, seed=5) != plan_syllables(0.0, 8.0, seed=6)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_plan_rates_durations_and_pauses(seed):
    syl = plan_syllables(0.0, 20.0, seed)
    starts = np.array([s.start_s for s in syl])
    ends = np.array([s.end_s for s in syl])
    assert np.all(ends > starts)
    assert np.all(starts[1:] >= ends[:-1]), "syllables overlap"
    assert starts[0] > 0.0 and starts[-1] < 20.0
    onsets = np.diff(starts)
    # 3-7 syllables/s with +-25 % jitter on each period; a pause adds 0.25-0.7 s.
    assert onsets.min() >= 0.75 / 7.0 - 1e-9
    assert onsets.max() <= 1.25 / 3.0 + 0.7 + 1e-9
    assert 3.0 <= 1.0 / np.median(onsets) <= 7.0
    gaps = starts[1:] - ends[:-1]
    assert (gaps >= 0.25).sum() >= 2, "a 20 s plan must contain pauses between phrases"
    durations = ends - starts
    assert len(np.unique(np.round(durations, 4))) > len(syl) // 2, "durations are not random"
    assert {s.vowel for s in syl} <= set(VOWELS)
    assert {s.onset for s in syl} <= {"", "fricative", "stop"}


@pytest.mark.parametrize(
    "phase, expected",
    [
        (-0.1, 0.0), (0.0, 0.0), (0.125, 0.5), (0.25, 1.0), (0.5, 1.0),
        (0.65, 1.0), (0.825, 0.5), (1.0, 0.0), (1.2, 0.0),
    ],
)
def test_syllable_envelope_values(phase, expected):
    assert syllable_envelope(np.array([phase]))[0] == pytest.approx(expected, abs=1e-9)


def test_syllable_envelope_rises_then_falls():
    phase = np.linspace(0.0, 1.0, 1001)
    env = syllable_envelope(phase)
    peak = int(np.argmax(env))
    assert np.all(np.diff(env[: peak + 1]) >= 0.0)
    assert np.all(np.diff(env[peak:]) <= 0.0)
    assert env.min() >= 0.0 and env.max() == pytest.approx(1.0)


def test_mouth_opening_is_zero_between_syllables_and_bounded():
    syl = plan_syllables(0.0, 10.0, seed=3)
    times = np.linspace(0.0, 10.0, 5001)
    opening = mouth_opening(syl, times)
    assert opening.dtype == np.float32
    assert opening.min() >= 0.0 and opening.max() <= 1.0
    silent = np.ones_like(times, dtype=bool)
    for s in syl:
        silent &= ~((times >= s.start_s) & (times < s.end_s))
    assert np.all(opening[silent] == 0.0)
    # Each syllable's plateau reaches the vowel's openness.
    s = syl[2]
    mid = np.array([0.5 * (s.start_s + s.end_s)])
    assert mouth_opening(syl, mid)[0] == pytest.approx(VOWELS[s.vowel][1], abs=1e-6)


def test_mouth_curve_samples_the_middle_of_each_frame():
    syl = plan_syllables(0.0, 4.0, seed=1)
    curve = mouth_curve(syl, 25, 100)
    expected = mouth_opening(syl, (np.arange(100) + 0.5) / 25.0)
    np.testing.assert_array_equal(curve, expected)


@pytest.mark.parametrize(
    "sample_rate, fps",
    [(16000, Fraction(25)), (44100, Fraction(25)), (48000, Fraction(30)), (16000, Fraction(24000, 1001))],
)
def test_audio_envelope_follows_the_mouth(sample_rate, fps):
    speech = synthesize_speech(8.0, sample_rate=sample_rate, fps=fps, seed=11)
    n = len(speech.mouth)
    assert n == round(8.0 * fps)
    assert speech.audio.dtype == np.float32 and speech.audio.shape == (round(8.0 * sample_rate),)
    assert 0.2 < np.abs(speech.audio).max() <= 1.0
    rms = frame_rms(speech.audio, sample_rate, fps, n)
    corr = {lead: lagged_corr(speech.mouth, rms, lead) for lead in range(-3, 4)}
    assert corr[0] > 0.85
    assert max(corr, key=corr.get) == 0


@pytest.mark.parametrize("lead_frames", [3, -4])
def test_audio_lead_shifts_the_audio_by_whole_frames(lead_frames):
    fps = Fraction(25)
    speech = synthesize_speech(10.0, sample_rate=16000, fps=fps, seed=2, audio_lead_s=lead_frames / 25.0)
    rms = frame_rms(speech.audio, 16000, fps, len(speech.mouth))
    corr = {lead: lagged_corr(speech.mouth, rms, lead) for lead in range(-8, 9)}
    assert max(corr, key=corr.get) == lead_frames
    assert corr[lead_frames] > 0.85


def test_rendering_a_window_equals_cutting_the_whole():
    syl = plan_syllables(-0.5, 5.0, seed=4)
    whole = render_audio(syl, 16000, 0.0, 4.0, seed=4)
    part = render_audio(syl, 16000, 1.5, 2.0, seed=4)
    np.testing.assert_array_equal(whole[24000:56000], part)


def test_stereo_and_determinism():
    a = synthesize_speech(2.0, sample_rate=44100, fps=25, seed=9, channels=2)
    b = synthesize_speech(2.0, sample_rate=44100, fps=25, seed=9, channels=2)
    assert a.audio.shape == (88200, 2)
    np.testing.assert_array_equal(a.audio, b.audio)
    np.testing.assert_allclose(a.audio[:, 1], 0.85 * a.audio[:, 0], atol=1e-7)
    c = synthesize_speech(2.0, sample_rate=44100, fps=25, seed=10, channels=2)
    assert not np.array_equal(a.audio, c.audio)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: plan_syllables(2.0, 1.0, 0), "empty time range"),
        (lambda: plan_syllables(0.0, 1.0, 0, rate_range=(0.0, 2.0)), "bad syllable rate range"),
        (lambda: render_audio((), 0, 0.0, 1.0, 0), "sample_rate must be positive"),
        (lambda: synthesize_speech(1.0, sample_rate=16000, fps=25, seed=0, channels=3), "channels must be 1 or 2"),
    ],
)
def test_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
