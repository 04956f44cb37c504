"""Stage 6 (sync): decisions, audio correction with source context, trimming, real media."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest

from syncvid.config.pipeline_schema import SyncSection
from syncvid.pipeline.decisions import score_clip
from syncvid.records import Clip, Rejected, Segment
from syncvid.stages.sync import SyncStage, correction_plan
from syncvid.sync.synthetic import synthetic_clip

HOP = 640


def _clip(frames, audio, landmarks, source=None, start=0):
    t = len(frames)
    seg = Segment("a/b.mp4", 0, 0, 100, 100 + t, Fraction(25))
    clip = Clip(seg, frames, np.asarray(audio, np.float32), landmarks)
    clip.source_audio = source
    clip.audio_start_sample = start
    return clip


def run_sync(stage, clip):
    """The pipeline's path for one candidate: measure and correct (`score_clip`), then judge the recorded row."""
    row = {}
    out = score_clip(clip, row, stage, None, stages=("sync",))
    stage.judge(row)
    return out


def _synthetic(t, k, seed, margin=40):
    s = synthetic_clip(t, k, seed=seed, margin=margin, size=64)
    return s, _clip(s.frames, s.audio, s.landmarks, s.source_audio, s.audio_start_sample)


@pytest.fixture(scope="module")
def stage():
    st = SyncStage(SyncSection())
    st.setup()
    return st


@pytest.mark.parametrize("k, seed", [(-5, 1), (0, 2), (4, 3), (6, 4)])
def test_measures_and_removes_a_known_offset(stage, k, seed):
    s, clip = _synthetic(100, k, seed)
    out = run_sync(stage, clip)
    m = out.measurements
    assert abs(m["sync_offset_frames"] - k) <= 1
    assert m["sync_conf"] >= 3.0 and m["sync_backend"] == "landmark" and m["sync_trimmed_frames"] == 0
    off = m["sync_offset_frames"]
    new_start = s.audio_start_sample - off * HOP
    np.testing.assert_array_equal(out.audio, s.source_audio[new_start : new_start + 100 * HOP])
    assert out.audio_start_sample == new_start and len(out.frames) == 100
    # measuring the corrected clip again finds it in sync
    again = stage.measure(out)
    assert abs(again.offset_frames) <= 1


def test_low_confidence_is_rejected_with_measurements(stage):
    s, clip = _synthetic(100, 0, 7)
    rng = np.random.default_rng(0)
    clip.source_audio = (0.1 * rng.standard_normal(len(s.source_audio))).astype(np.float32)  # no speech rhythm
    clip.audio = clip.source_audio[clip.audio_start_sample : clip.audio_start_sample + 100 * HOP]
    with pytest.raises(Rejected) as err:
        run_sync(stage, clip)
    assert err.value.stage == "sync" and err.value.reason == "low_sync_conf"
    assert err.value.measurements["sync_conf"] < 3.0 and "sync_offset_frames" in err.value.measurements
    assert "< 3" in err.value.message


def test_offset_beyond_the_limit_is_rejected(stage):
    _, clip = _synthetic(100, 10, 5)
    with pytest.raises(Rejected) as err:
        run_sync(stage, clip)
    assert err.value.reason == "offset_too_large"
    assert abs(err.value.measurements["sync_offset_frames"]) > 6
    assert "> 6 frames" in err.value.message


def test_offset_on_the_search_border_is_unreliable():
    params = replace(SyncSection(), search_frames=4, max_offset_frames=15)
    stage = SyncStage(params)
    _, clip = _synthetic(100, 9, 6)  # true offset beyond the ±4 search
    with pytest.raises(Rejected) as err:
        run_sync(stage, clip)
    assert err.value.reason in ("offset_too_large", "low_sync_conf")
    if err.value.reason == "offset_too_large":
        assert err.value.measurements["sync_at_search_edge"] and "border" in err.value.message


@pytest.mark.parametrize(
    "source_len, start, t, offset, plan",
    [
        (100 * HOP, 10 * HOP, 50, 0, (10 * HOP, 0, 0)),
        (100 * HOP, 10 * HOP, 50, 3, (7 * HOP, 0, 0)),  # audio leads 3 → take it from 3 frames earlier
        (100 * HOP, 2 * HOP, 50, 5, (-3 * HOP, 3, 0)),  # 3 frames would need audio before the source
        (100 * HOP, 48 * HOP, 50, -4, (52 * HOP, 0, 2)),  # 2 frames would need audio after its end
        (60 * HOP, 5 * HOP + 100, 50, 1, (4 * HOP + 100, 0, 0)),
        (60 * HOP, 100, 50, 1, (100 - HOP, 1, 0)),  # a partial frame counts as missing
    ],
)
def test_correction_plan(source_len, start, t, offset, plan):
    assert correction_plan(source_len, start, t, offset) == plan


def test_frames_without_audio_are_trimmed_and_recorded(stage):
    s = synthetic_clip(100, 0, seed=8, margin=40, size=64)
    # the source starts 2 frames before the clip while the audio leads by 4
    src = s.source_audio[38 * HOP + 4 * HOP :]
    clip = _clip(s.frames, src[2 * HOP : 102 * HOP], s.landmarks, src, 2 * HOP)
    out = run_sync(stage, clip)
    off = out.measurements["sync_offset_frames"]
    assert 3 <= off <= 5
    head = off - 2
    assert out.measurements["sync_trimmed_frames"] == head and len(out.frames) == 100 - head
    assert out.landmarks.shape[0] == len(out.frames) and len(out.audio) == len(out.frames) * HOP
    assert (out.segment.start_frame, out.segment.end_frame) == (100 + head, 200)
    np.testing.assert_array_equal(out.audio, src[:len(out.audio)])


def test_without_source_context_the_clip_audio_is_used(stage):
    s, clip = _synthetic(100, 3, 9)
    clip.source_audio = None
    out = run_sync(stage, clip)
    off = out.measurements["sync_offset_frames"]
    assert 2 <= off <= 4
    assert out.measurements["sync_trimmed_frames"] == off and len(out.frames) == 100 - off
    np.testing.assert_array_equal(out.audio, s.audio[: len(out.audio)])


def test_too_few_frames_are_rejected(stage):
    s, clip = _synthetic(12, 0, 10)
    with pytest.raises(Rejected) as err:
        run_sync(stage, clip)
    assert err.value.reason == "too_short" and "needs at least 25" in err.value.message


# --------------------------------------------------------------------------- real media


def _decode_25fps(path, max_frames):
    """Frames at 25 fps (last frame at or before each tick) and 16 kHz mono float audio."""
    av = pytest.importorskip("av")
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        frames, times = [], []
        for f in c.decode(vs):
            frames.append(f.to_ndarray(format="rgb24"))
            times.append(float(f.pts * vs.time_base))
            if times[-1] - times[0] > (max_frames + 1) / 25:
                break
    with av.open(str(path)) as c:
        rs = av.AudioResampler(format="flt", layout="mono", rate=16000)
        chunks = [g.to_ndarray().reshape(-1) for f in c.decode(c.streams.audio[0]) for g in rs.resample(f)]
        chunks += [g.to_ndarray().reshape(-1) for g in rs.resample(None)]
    t0 = times[0]
    out, j = [], 0
    for i in range(max_frames):
        while j + 1 < len(times) and times[j + 1] - t0 <= i / 25 + 1e-6:
            j += 1
        out.append(frames[j])
    return np.stack(out), np.concatenate(chunks).astype(np.float32)


@pytest.mark.real_media
def test_real_clip_shifted_audio_changes_the_offset_by_the_shift(shared_media):
    from syncvid.sync.landmark import DlibLandmarker

    first, t = 25, 80  # 15 frames of audio context before the clip, even when shifted by -5
    frames, audio = _decode_25fps(shared_media / "talk_25fps_844.mp4", first + t)
    lm = DlibLandmarker(detect_width=320, redetect_every=10)(frames[first:])
    stage = SyncStage(replace(SyncSection(), conf_threshold=0.0, max_offset_frames=15))
    offsets = {}
    for k in (0, -5, 5):
        start = (first + k) * HOP  # audio leads by k
        clip = _clip(frames[first:], audio[start : start + t * HOP], lm, audio, start)
        offsets[k] = stage.measure(clip).offset_frames
    assert abs(offsets[5] - offsets[0] - 5) <= 1 and abs(offsets[-5] - offsets[0] + 5) <= 1, offsets
    assert abs(offsets[0]) <= 3, offsets
