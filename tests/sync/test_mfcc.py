"""MFCC as the original SyncNet's evaluation computes it (python_speech_features defaults)."""

from __future__ import annotations

import numpy as np
import pytest

from syncvid.sync.mfcc import dct2_ortho, float_to_int16_scale, frame_signal, mel_filterbank, mfcc


@pytest.mark.parametrize("num_samples, frames", [(16000, 99), (80000, 499), (400, 1), (10, 1), (401, 2), (560, 2), (561, 3)])
def test_frame_count_is_100_per_second_with_padded_tail(num_samples, frames):
    out = mfcc(np.ones(num_samples))
    assert out.shape == (13, frames)


def test_frame_signal_zero_pads_the_last_frame():
    frames = frame_signal(np.arange(1, 451, dtype=float), 400, 160)
    assert frames.shape == (2, 400)
    assert frames[1, 0] == 161 and frames[1, 289] == 450 and frames[1, 290] == 0


def test_energy_column_is_log_of_preemphasised_power():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1000, 400)
    pre = np.append(x[0], x[1:] - 0.97 * x[:-1])
    energy = (np.abs(np.fft.rfft(pre, 512)) ** 2 / 512).sum()
    assert mfcc(x)[0, 0] == pytest.approx(np.log(energy))


def test_without_preemphasis_and_energy_a_dc_signal_has_only_c0_and_lifter():
    feat = mfcc(np.full(400, 100.0), preemph=0.0, append_energy=False, ceplifter=0)
    # DC energy falls in the lowest filters only; the ortho DCT of a log spectrum is finite
    assert np.isfinite(feat).all()
    assert feat.shape == (13, 1)


def test_filterbank_is_26_triangles_over_257_bins():
    fb = mel_filterbank()
    assert fb.shape == (26, 257)
    assert fb.max() == pytest.approx(1.0)
    assert (fb >= 0).all() and (fb.sum(1) > 0).all()


def test_float_to_int16_scale_rounds_and_clips():
    np.testing.assert_array_equal(float_to_int16_scale(np.array([0.0, 0.5, -1.0, 1.0, 2.0])), [0, 16384, -32768, 32767, 32767])


@pytest.mark.parametrize("n", [400, 1234, 16000])
def test_matches_python_speech_features_oracle(n):
    psf = pytest.importorskip("python_speech_features", reason="oracle python_speech_features not installed")
    x = (np.random.default_rng(n).normal(0, 3000, n)).astype(np.int16)
    np.testing.assert_allclose(mfcc(x), psf.mfcc(x, 16000).T, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("n, k", [(26, 13), (26, 26), (8, 3), (1, 1)])
def test_dct2_ortho_is_scipys_orthonormal_dct(n, k):
    from scipy.fft import dct

    x = np.random.default_rng(n).normal(size=(7, n))
    np.testing.assert_allclose(dct2_ortho(x, k), dct(x, type=2, axis=1, norm="ortho")[:, :k], atol=1e-12)
