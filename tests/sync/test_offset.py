"""Offset/confidence math: the reference's distance rule, similarity curves, the estimator."""

from __future__ import annotations

import numpy as np
import pytest

from syncvid.sync.offset import (
    estimate_offset,
    normalized_xcorr,
    offset_from_mean_dists,
    offset_from_similarity,
    shifted_scores,
    syncnet_distances,
)


def test_syncnet_distances_match_hand_computed_table():
    # 1-d embeddings, vshift 1: dists[i, j] = |v_i - a_{i-1+j}| with zero padding (+1e-6 eps)
    v = np.array([[1.0], [2.0], [4.0]])
    a = np.array([[1.0], [3.0], [4.0]])
    expected = np.array(
        [
            [1.0, 0.0, 2.0],  # v0=1 vs pad 0, a0=1, a1=3
            [1.0, 1.0, 2.0],  # v1=2 vs a0=1, a1=3, a2=4
            [1.0, 0.0, 4.0],  # v2=4 vs a1=3, a2=4, pad 0
        ]
    )
    np.testing.assert_allclose(syncnet_distances(v, a, vshift=1), expected, atol=1e-5)


@pytest.mark.parametrize(
    "mean_dists, vshift, offset, conf",
    [
        ([3.0, 1.0, 2.0], 1, 0, 1.0),  # min in the middle column → offset 0, conf median-min
        ([1.0, 2.0, 3.0], 1, 1, 1.0),  # column 0 ↔ offset +vshift
        ([3.0, 2.0, 1.0], 1, -1, 1.0),
        ([5.0, 5.0, 4.0, 2.0, 5.0], 2, -1, 3.0),
        ([2.0, 2.0, 2.0], 1, 1, 0.0),  # ties: the first column wins, no confidence
    ],
)
def test_offset_from_mean_dists(mean_dists, vshift, offset, conf):
    est = offset_from_mean_dists(np.array(mean_dists), vshift)
    assert est.offset == offset
    assert est.conf == pytest.approx(conf)
    assert est.at_edge == (abs(offset) == vshift)
    # curve is ascending offsets, higher = better
    assert est.curve[offset + vshift] == pytest.approx(max(est.curve))


@pytest.mark.parametrize("k", [-6, -2, 0, 3, 6])
def test_reference_sign_convention_audio_leading_gives_positive_offset(k):
    rng = np.random.default_rng(1)
    n, vshift = 40, 8
    audio_track = rng.normal(size=(n + 20, 16))
    # audio leads by k: the sound of video frame i sits at audio frame i - k
    audio = audio_track[10 : 10 + n]
    video = audio_track[10 - k : 10 - k + n]
    est = offset_from_mean_dists(syncnet_distances(video, audio, vshift).mean(0), vshift)
    assert est.offset == k


@pytest.mark.parametrize(
    "sim, offset, conf, edge",
    [
        ([0.1, 0.2, 0.9, 0.2, 0.1], 0, 10 * (0.9 - 0.2), False),
        ([0.8, 0.2, 0.1, 0.2, 0.1], -2, 10 * (0.8 - 0.2), True),
        ([0.1, 0.1, 0.1, 0.3, 0.5], 2, 10 * (0.5 - 0.1), True),
        ([np.nan, 0.5, 0.4, 0.3, np.nan], -1, 10 * (0.5 - 0.4), False),
    ],
)
def test_offset_from_similarity(sim, offset, conf, edge):
    est = offset_from_similarity(np.array(sim), 2)
    assert (est.offset, est.at_edge) == (offset, edge)
    assert est.conf == pytest.approx(conf)


def test_offset_from_similarity_all_missing_is_zero_confidence():
    est = offset_from_similarity(np.full(5, np.nan), 2)
    assert est.conf == 0.0


@pytest.mark.parametrize(
    "x, y, r",
    [([1, 2, 3], [2, 4, 6], 1.0), ([1, 2, 3], [3, 2, 1], -1.0), ([1, 1, 1], [1, 2, 3], 0.0), ([1, 0, 1, 0], [0, 0, 1, 1], 0.0)],
)
def test_normalized_xcorr(x, y, r):
    assert normalized_xcorr(np.array(x, float), np.array(y, float)) == pytest.approx(r)


def _pair(t, s, k, seed, noise=0.3):
    """Visual signal and a 1-d audio context where audio leads by k."""
    rng = np.random.default_rng(seed)
    latent = np.convolve(rng.normal(size=t + 2 * s + 80), np.ones(3) / 3, mode="same")
    base = 40
    video = latent[base : base + t] + noise * rng.normal(size=t)
    # context row j ↔ clip frame j - s; audio frame f carries the sound of video frame f + k
    ctx = latent[base - s + k : base - s + k + t + 2 * s]
    return video, ctx


def test_estimate_offset_recovers_known_offsets_1d():
    hits = 0
    cases = [(k, seed) for k in range(-10, 11) for seed in (0, 1)]
    for k, seed in cases:
        video, ctx = _pair(100, 15, k, seed)
        est = estimate_offset(video, ctx, 15)
        hits += abs(est.offset - k) <= 1
        assert est.conf > 3.0
    assert hits / len(cases) >= 0.9


def test_estimate_offset_unrelated_signals_have_low_confidence():
    rng = np.random.default_rng(5)
    confs = []
    for _ in range(10):
        video = np.convolve(rng.normal(size=100), np.ones(3) / 3, mode="same")
        ctx = np.convolve(rng.normal(size=130), np.ones(3) / 3, mode="same")
        confs.append(estimate_offset(video, ctx, 15).conf)
    assert np.median(confs) < 3.0


def test_estimate_offset_constant_video_gives_zero_confidence():
    est = estimate_offset(np.ones(60), np.random.default_rng(0).normal(size=90), 15)
    assert est.conf == 0.0


def test_shifted_scores_leaves_out_missing_audio_and_short_overlaps():
    video, ctx = _pair(60, 5, 0, 3)
    ctx = ctx.copy()
    ctx[:30] = np.nan  # only clip frames >= 25 have audio
    curve = shifted_scores(video, ctx, 5, min_overlap=30)
    # offset o uses context rows i - o + 5; with rows >= 30 valid, overlap = 60 - (25 + o)
    valid = np.isfinite(curve)
    assert valid[np.arange(11) - 5 <= 5].all()
    curve2 = shifted_scores(video, ctx, 5, min_overlap=33)
    assert np.isnan(curve2[-1]) and np.isnan(curve2[-2]) and np.isfinite(curve2[0])


def test_shifted_scores_rejects_wrong_context_length():
    with pytest.raises(ValueError, match="T \\+ 2\\*max_shift"):
        shifted_scores(np.zeros(10), np.zeros(12), 2)
