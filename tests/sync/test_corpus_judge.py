"""The corpus-level sync judge on synthetic talking heads of known offset."""

from __future__ import annotations

import numpy as np
import pytest

from syncvid.sync import corpus_judge as cj
from syncvid.sync.synthetic import HOP, synthetic_clip

S = 15
PARAMS = cj.FitParams(min_frames=1000, foreign_pairs=150, iterations=1)


def _features(clip, group):
    return cj.clip_features(clip.landmarks, clip.source_audio, clip.audio_start_sample, S + PARAMS.context,
                            group=group)


@pytest.fixture(scope="module")
def fitted():
    corpus = [_features(synthetic_clip(125, 0, seed=100 + i), f"src{i}") for i in range(12)]
    return cj.fit_judge(corpus, PARAMS)


def _similar(a, b):
    """b = a rotated by 30°, scaled by 1.7 and moved: a similarity transform of a face."""
    th = np.deg2rad(30)
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    return 1.7 * (a @ rot.T) + np.array([13.0, -40.0])


def test_mouth_shape_ignores_position_roll_and_size():
    lm = synthetic_clip(30, 0, seed=1).landmarks.astype(np.float64)
    a = cj.mouth_shape(lm)
    b = cj.mouth_shape(_similar(lm, None))
    assert a.shape == (30, 40)
    np.testing.assert_allclose(a, b, atol=1e-9)
    # the lips part along +y of the face frame: lower lip (57) minus upper lip (51) follows the opening
    gap = a[:, 2 * (57 - 48) + 1] - a[:, 2 * (51 - 48) + 1]
    from syncvid.sync.landmark import mouth_opening

    assert np.corrcoef(gap, mouth_opening(lm))[0, 1] > 0.95


def test_mouth_features_centred_with_velocity_and_missing_frames():
    lm = synthetic_clip(20, 0, seed=2).landmarks.astype(np.float64)
    lm[5] = np.nan
    f = cj.mouth_features(lm)
    assert f.shape == (20, 80)
    assert np.isnan(f[5]).all() and np.isfinite(np.delete(f, 5, axis=0)).all()
    np.testing.assert_allclose(np.nanmean(f[:, :40], axis=0), 0.0, atol=1e-12)
    shape = cj.mouth_shape(lm)
    np.testing.assert_allclose(f[10, 40:], (shape[11] - shape[9]) / 2, atol=1e-12)
    np.testing.assert_allclose(f[6, 40:], shape[7] - shape[6], atol=1e-12)  # next to a missing frame


def test_mouth_shape_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"\[T, 68, 2\]"):
        cj.mouth_shape(np.zeros((4, 5, 2)))


def test_audio_frame_features_put_a_burst_in_its_frame_and_nan_outside():
    audio = np.zeros(10 * HOP, np.float32)
    rng = np.random.default_rng(0)
    audio[4 * HOP : 5 * HOP] = rng.standard_normal(HOP)
    f = cj.audio_frame_features(audio, -2 * HOP, 14)  # frames -2 .. 11 of the audio
    assert f.shape == (14, cj.SUB_STEPS * cj.NUM_MELS)
    assert np.isnan(f[:2]).all() and np.isnan(f[12:]).all()  # no audio before 0 or after the end
    energy = np.where(np.isfinite(f).all(axis=1), np.nan_to_num(f).mean(axis=1), -np.inf)
    assert int(np.argmax(energy)) == 2 + 4
    assert energy[2 + 4] > energy[2 + 2] + 10  # two frames away the burst is far below


@pytest.mark.parametrize("offset", [-9, -4, 0, 3, 7])
def test_fitted_judge_finds_known_offsets(fitted, offset):
    model, _ = fitted
    for seed in (500, 501):
        c = synthetic_clip(125, offset, seed=seed)
        est = cj.judge_clip(model, c.landmarks, c.source_audio, c.audio_start_sample, S)
        assert abs(est.offset - offset) <= 1, (seed, est.offset)
        assert est.conf >= 3.0


def test_fitted_judge_without_context_audio(fitted):
    model, _ = fitted
    c = synthetic_clip(125, 6, seed=510)
    est = cj.judge_clip(model, c.landmarks, c.audio, 0, S)  # the clip's own audio only
    assert abs(est.offset - 6) <= 1 and est.conf >= 3.0


def test_own_audio_shift_is_followed_to_the_frame(fitted):
    """Cutting a clip's own audio k frames later moves the offset by exactly k (the precision the
    benchmark's "shift followed" line measures on real clips)."""
    model, _ = fitted
    c = synthetic_clip(125, 0, seed=530)
    a0, au = c.audio_start_sample, c.source_audio
    base = cj.judge_clip(model, c.landmarks, au[a0:a0 + 125 * HOP], 0, S).offset
    for k in (-6, -3, 2, 5, 8):
        est = cj.judge_clip(model, c.landmarks, au[a0 + k * HOP:a0 + (k + 125) * HOP], 0, S)
        assert est.offset - base == k, (k, est.offset, base)


def test_foreign_voices_stay_below_threshold(fitted):
    model, report = fitted
    confs = []
    for i in range(12):
        face, voice = synthetic_clip(125, 0, seed=600 + i), synthetic_clip(125, 0, seed=700 + i)
        confs.append(cj.judge_clip(model, face.landmarks, voice.source_audio, voice.audio_start_sample, S).conf)
    assert np.mean(np.array(confs) < 3.0) >= 0.9
    assert report.clips == 12 and report.frames >= 1000 and report.clips_per_iteration[0] == 12


def test_refit_leaves_out_shifted_clips_of_the_corpus():
    clean = [_features(synthetic_clip(125, 0, seed=200 + i), f"a{i}") for i in range(12)]
    shifted = [_features(synthetic_clip(125, 8 if i % 2 else -8, seed=300 + i), f"b{i}") for i in range(4)]
    model, report = cj.fit_judge(clean + shifted, PARAMS)
    assert report.clips_per_iteration[0] == 16
    c = synthetic_clip(125, 5, seed=520)
    est = cj.judge_clip(model, c.landmarks, c.source_audio, c.audio_start_sample, S)
    assert abs(est.offset - 5) <= 1 and est.conf >= 3.0


def test_too_small_corpus_is_refused():
    few = [_features(synthetic_clip(125, 0, seed=i), "x") for i in range(3)]
    with pytest.raises(ValueError, match="usable frames in 3 clips; the corpus judge needs at least 1000"):
        cj.fit_judge(few, PARAMS)


def test_save_load_round_trip(fitted, tmp_path):
    model, _ = fitted
    path = cj.save_model(model, tmp_path / "m" / "judge.npz")
    back = cj.load_model(path)
    assert back.context == model.context and back.conf_scale == model.conf_scale
    c = synthetic_clip(125, 4, seed=530)
    a = cj.judge_clip(model, c.landmarks, c.source_audio, c.audio_start_sample, S)
    b = cj.judge_clip(back, c.landmarks, c.source_audio, c.audio_start_sample, S)
    assert (a.offset, a.conf) == (b.offset, b.conf)
    assert back.info["clips"] == 12
    assert [p.name for p in path.parent.iterdir()] == ["judge.npz"]


def test_load_errors_name_the_file(fitted, tmp_path):
    bad = tmp_path / "weights.npz"
    bad.write_bytes(b"not a model")
    with pytest.raises(cj.ModelFileError, match=r"^.*weights\.npz: not a corpus sync model file"):
        cj.load_model(bad)
    with pytest.raises(cj.ModelFileError, match=r"missing\.npz: no such corpus sync model file"):
        cj.load_model(tmp_path / "missing.npz")
    other = tmp_path / "other.npz"
    np.savez(other, meta=np.array('{"kind": "something else"}'))
    with pytest.raises(cj.ModelFileError, match="other.npz: not a corpus sync model file"):
        cj.load_model(other)
    model, _ = fitted
    path = cj.save_model(model, tmp_path / "v.npz")
    import json

    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    meta["format_version"] = 99
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "v99.npz", **arrays)
    with pytest.raises(cj.ModelFileError, match=r"v99\.npz: corpus sync model format 99, this syncvid reads 1"):
        cj.load_model(tmp_path / "v99.npz")
    for err in (cj.ModelFileError,):
        assert "\n" not in str(err("x"))


def test_choose_clips_draws_evenly_over_sources_and_keeps_small_corpora_whole():
    groups = ["a"] * 50 + ["b"] * 5 + ["c"] * 20
    assert cj.choose_clips(groups, 100) == list(range(75))
    chosen = cj.choose_clips(groups, 30, seed=1)
    assert chosen == sorted(set(chosen)) and len(chosen) == 30
    picked = [groups[k] for k in chosen]
    # every clip of the small source, the rest shared between the two large ones
    assert picked.count("b") == 5 and picked.count("a") in (12, 13) and picked.count("c") in (12, 13)
    assert cj.choose_clips(groups, 30, seed=1) == chosen  # deterministic


def test_a_large_corpus_is_fitted_on_max_clips_of_it():
    corpus = [_features(synthetic_clip(125, 0, seed=600 + i), f"src{i % 4}") for i in range(14)]
    model, report = cj.fit_judge(corpus, cj.FitParams(min_frames=1000, foreign_pairs=60, iterations=0, max_clips=10))
    assert report.corpus_clips == 14 and report.clips == 10 and report.clips_per_iteration == [10]
    assert model.info["corpus_clips"] == 14
    c = synthetic_clip(125, 4, seed=700)
    assert abs(cj.judge_clip(model, c.landmarks, c.source_audio, c.audio_start_sample, S).offset - 4) <= 1


def test_features_are_float32_and_the_column_std_matches_numpy():
    f = _features(synthetic_clip(100, 0, seed=5), "x")
    assert f.mouth.dtype == np.float32 and f.audio.dtype == np.float32
    rng = np.random.default_rng(0)
    blocks = [rng.normal(3.0, 2.0, (n, 4)).astype(np.float32) for n in (7, 1, 30)]
    np.testing.assert_allclose(cj._column_std(blocks), np.concatenate(blocks).astype(np.float64).std(axis=0),
                               rtol=1e-9)
