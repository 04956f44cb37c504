"""Mel features: numeric cores, the video↔mel window arithmetic, and librosa as an oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest

from syncvid.data.mel import (
    DEFAULT_MEL_PARAMS,
    MelParams,
    amplitude_to_db,
    crop_mel_window,
    hann_window,
    hz_to_mel_slaney,
    load_mel_params,
    max_window_start,
    mel_filterbank,
    mel_start_index,
    mel_to_hz_slaney,
    mel_window_length,
    melspectrogram,
    normalize_db,
    num_mel_frames,
    preemphasis,
    stft_magnitude,
)


@pytest.mark.parametrize(
    "num_frames, expected",
    [(16, 52), (5, 16), (1, 4), (10, 32), (25, 80), (24, 77)],
)
def test_mel_window_length(num_frames, expected):
    assert mel_window_length(num_frames) == expected
    assert mel_window_length(num_frames) == math.ceil(num_frames / 5 * 16)


@pytest.mark.parametrize("start, expected", [(0, 0), (1, 3), (2, 6), (3, 9), (4, 12), (5, 16), (25, 80), (109, 348)])
def test_mel_start_index_table(start, expected):
    assert mel_start_index(start) == expected


def test_mel_start_index_matches_the_reference_float_formula():
    for s in range(0, 20000):
        assert mel_start_index(s) == int(80.0 * (s / float(25)))


@pytest.mark.parametrize(
    "num_samples, hop, expected", [(0, 200, 1), (199, 200, 1), (200, 200, 2), (80000, 200, 401), (16000, 160, 101)]
)
def test_num_mel_frames(num_samples, hop, expected):
    assert num_mel_frames(num_samples, hop) == expected


@pytest.mark.parametrize(
    "video, mel, num_frames, expected",
    [
        (125, 401, 16, 109),  # a 5 s clip: every window fits
        (125, 390, 16, 105),  # audio short by 11 mel frames: int(3.2 s) + 52 <= 390 -> s <= 105
        (32, 103, 16, 16),
        (16, 52, 16, 0),
        (16, 51, 16, -1),  # the only window lacks one mel frame
        (10, 401, 16, -6),  # fewer frames than a window
    ],
)
def test_max_window_start(video, mel, num_frames, expected):
    assert max_window_start(video, mel, num_frames) == expected


def test_crop_mel_window_and_its_bounds():
    mel = np.arange(80 * 401, dtype=np.float32).reshape(80, 401)
    w = crop_mel_window(mel, 5, 16)
    assert w.shape == (80, 52)
    np.testing.assert_array_equal(w, mel[:, 16:68])
    with pytest.raises(ValueError, match="exceeds the 401 mel frames"):
        crop_mel_window(mel, 110, 16)


@pytest.mark.parametrize(
    "x, k, expected",
    [
        ([1.0, 1.0, 1.0], 0.97, [1.0, 0.03, 0.03]),
        ([0.0, 2.0, -1.0], 0.5, [0.0, 2.0, -2.0]),
        ([3.0], 0.97, [3.0]),
    ],
)
def test_preemphasis(x, k, expected):
    np.testing.assert_allclose(preemphasis(np.array(x), k), expected, atol=1e-12)


def test_hann_window_is_periodic_and_padded():
    w = hann_window(8)
    np.testing.assert_allclose(w, 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(8) / 8))
    padded = hann_window(4, 8)
    np.testing.assert_allclose(padded, [0, 0, 0, 0.5, 1, 0.5, 0, 0])


def test_stft_of_a_sinusoid_peaks_at_its_bin():
    sr, n_fft = 16000, 800
    t = np.arange(sr) / sr
    x = np.sin(2 * np.pi * 1000 * t)  # bin spacing 20 Hz -> bin 50
    mag = stft_magnitude(x, n_fft, 200, 800)
    assert mag.shape == (401, 81)
    assert set(np.argmax(mag[:, 2:-2], axis=0)) == {50}
    # a full-scale sinusoid under a Hann window: |X| = N/4 at its bin
    assert mag[50, 40] == pytest.approx(n_fft / 4, rel=1e-3)


@pytest.mark.parametrize("hz", [0.0, 55.0, 500.0, 1000.0, 2000.0, 7600.0])
def test_slaney_mel_scale_round_trip(hz):
    assert float(mel_to_hz_slaney(hz_to_mel_slaney(hz))) == pytest.approx(hz, abs=1e-9)


@pytest.mark.parametrize("hz, mel", [(0.0, 0.0), (1000.0, 15.0), (200.0, 3.0), (6400.0, 42.0)])
def test_slaney_mel_scale_table(hz, mel):
    assert float(hz_to_mel_slaney(hz)) == pytest.approx(mel)


def test_mel_filterbank_properties():
    fb = mel_filterbank(16000, 800, 80, 55.0, 7600.0)
    assert fb.shape == (80, 401) and fb.dtype == np.float32
    assert (fb >= 0).all()
    assert (fb.max(axis=1) > 0).all()  # no empty filter
    peaks = np.argmax(fb, axis=1)
    assert (np.diff(peaks) >= 0).all()  # ordered by frequency
    freqs = np.linspace(0, 8000, 401)
    assert fb[:, freqs < 55.0 - 20].sum() == 0 and fb[:, freqs > 7600.0 + 20].sum() == 0
    # Slaney normalisation: each triangle's area in Hz is ~1
    areas = fb.sum(axis=1) * 20.0
    assert np.median(areas) == pytest.approx(1.0, rel=0.05)


@pytest.mark.parametrize(
    "db, expected",
    [(-100.0, -4.0), (0.0, 4.0), (-50.0, 0.0), (-120.0, -4.0), (10.0, 4.0), (-75.0, -2.0)],
)
def test_normalize_db_table(db, expected):
    assert float(normalize_db(np.array(db))) == pytest.approx(expected)


def test_normalize_db_without_clipping_rejects_out_of_range():
    p = MelParams(allow_clipping_in_normalization=False)
    with pytest.raises(ValueError, match="outside"):
        normalize_db(np.array([-120.0]), p)


def test_amplitude_floor_is_minus_100_db():
    assert float(amplitude_to_db(np.array(0.0))) == pytest.approx(-100.0)
    assert float(amplitude_to_db(np.array(1.0))) == pytest.approx(0.0)


def test_melspectrogram_shape_range_and_silence():
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(16000 * 2)).astype(np.float32)
    m = melspectrogram(x)
    assert m.shape == (80, 161) and m.dtype == np.float32
    assert m.min() >= -4.0 and m.max() <= 4.0
    assert (melspectrogram(np.zeros(16000, np.float32)) == -4.0).all()
    # 80 mel frames per second of audio
    assert melspectrogram(np.zeros(16000 * 5, np.float32)).shape[1] == 401


def test_melspectrogram_is_louder_where_the_signal_is():
    x = np.zeros(16000, np.float32)
    x[8000:9600] = 0.5 * np.sin(2 * np.pi * 440 * np.arange(1600) / 16000)
    energy = melspectrogram(x).mean(axis=0)
    assert 40 <= int(np.argmax(energy)) <= 48  # samples 8000-9600 -> frames 40-48
    assert energy[:35].max() == pytest.approx(-4.0)


def test_params_from_the_shipped_audio_config_equal_the_defaults(repo_root):
    assert load_mel_params(repo_root / "configs" / "audio.yaml") == DEFAULT_MEL_PARAMS
    assert DEFAULT_MEL_PARAMS.frames_per_second == 80


def test_params_reject_lws_and_derive_hop_from_frame_shift():
    with pytest.raises(ValueError, match="use_lws"):
        MelParams.from_section({"use_lws": True})
    p = MelParams.from_section({"hop_size": None, "frame_shift_ms": 10.0})
    assert p.hop_size == 160
    with pytest.raises(ValueError, match="win_size"):
        MelParams(win_size=1024, n_fft=800)
    with pytest.raises(FileNotFoundError, match="audio config not found"):
        load_mel_params("no/such/audio.yaml")


def test_fingerprint_changes_with_any_parameter():
    assert MelParams().fingerprint() == MelParams().fingerprint()
    assert MelParams().fingerprint() != MelParams(fmin=60.0).fingerprint()


# ---- librosa as an oracle (skipped when it is not installed) ---------------------------


def _reference_mel(wav: np.ndarray) -> np.ndarray:
    librosa = pytest.importorskip("librosa")
    from scipy import signal

    d = librosa.stft(y=signal.lfilter([1, -0.97], [1], wav), n_fft=800, hop_length=200, win_length=800)
    basis = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    s = 20 * np.log10(np.maximum(1e-5, basis @ np.abs(d))) - 20
    return np.clip(8 * (s + 100) / 100 - 4, -4, 4)


def test_filterbank_matches_librosa():
    librosa = pytest.importorskip("librosa")
    ref = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    np.testing.assert_allclose(mel_filterbank(), ref, atol=1e-7)


@pytest.mark.filterwarnings("ignore:n_fft=")
@pytest.mark.parametrize("n", [1, 199, 200, 201, 800, 3333, 16000 * 3])
def test_melspectrogram_matches_librosa(n):
    rng = np.random.default_rng(n)
    t = np.arange(n) / 16000
    wav = (0.2 * np.sin(2 * np.pi * 300 * t) + 0.05 * rng.standard_normal(n)).astype(np.float32)
    ref = _reference_mel(wav)
    ours = melspectrogram(wav)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def test_defaults_are_the_audio_schemas():
    import dataclasses

    from syncvid.config.audio_schema import AudioSection

    schema = AudioSection()
    for f in dataclasses.fields(MelParams):
        assert getattr(MelParams(), f.name) == getattr(schema, f.name), f.name
    assert MelParams.from_section(schema) == MelParams() == DEFAULT_MEL_PARAMS
