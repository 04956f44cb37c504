"""SourceReader: 25 fps by timestamps, rotation, common-span trimming, truncation, real files."""

from __future__ import annotations

from fractions import Fraction as F

import av
import numpy as np
import pytest

from syncvid.media import SourceReader, write_clip
from syncvid.records import Rejected


def read_all(path, **kw):
    with SourceReader(path, **kw) as reader:
        frames = list(reader.frames())
        return reader, frames


def shown(frames, synth) -> list[int]:
    return [synth.read_index(f) for f in frames]


def expected_nearest(synth, times, video_end, t0=F(0), end=None):
    limit = video_end if end is None else min(video_end, end)
    return synth.nearest_oracle(times, [t0 + F(k, 25) for k in range(400)], limit)


@pytest.mark.parametrize(
    "rate,count,expected_frames",
    [
        (F(30), 60, 50),  # 2 s
        (F(1350, 61), 45, 51),  # 2.033 s -> outputs at 0 .. 2.00
        (F(24000, 1001), 48, 51),  # 2.002 s -> outputs at 0 .. 2.00
        (F(60), 120, 50),  # 2 s, decimation
        (F(25), 50, 50),  # identity
    ],
    ids=["30", "1350/61", "24000/1001", "60", "25"],
)
def test_constant_rate_to_25(tmp_path, synth, rate, count, expected_frames):
    # indices wrap at 64 so they fit the code; each frame still has a distinct neighbourhood
    times = [i / rate for i in range(count)]
    path = synth.make_video(tmp_path / "src.mp4", times, indices=[i % 64 for i in range(count)], fps=rate)
    reader, frames = read_all(path, require_audio=False)
    assert len(frames) == expected_frames == reader.num_frames
    assert frames[0].shape == (48, 64, 3) and frames[0].dtype == np.uint8
    expected = [i % 64 for i in expected_nearest(synth, times, count / rate)]
    assert shown(frames, synth) == expected
    if rate == 25:
        assert shown(frames, synth) == list(range(50))
    assert reader.info.fps == rate
    assert not reader.truncated


def test_variable_rate_source(tmp_path, synth):
    steps = [F(1, 60), F(1, 30), F(1, 15), F(1, 24), F(1, 10)]
    times = [F(0)]
    for i in range(39):
        times.append(times[-1] + steps[i % len(steps)])
    path = synth.make_video(tmp_path / "vfr.mp4", times)
    reader, frames = read_all(path, require_audio=False)
    # the last frame of a variable-rate file lasts as long as the interval before it
    video_end = times[-1] + (times[-1] - times[-2])
    assert shown(frames, synth) == expected_nearest(synth, times, video_end)


def test_edit_list_drops_frames_before_zero(tmp_path, synth):
    """Frames stamped before 0 are cut by the MP4 edit list: output frame 0 is source frame 5."""
    times = [F(k - 5, 25) for k in range(20)]
    path = synth.make_video(tmp_path / "edit.mp4", times)
    reader, frames = read_all(path, require_audio=False)
    assert reader.t0 == 0
    assert shown(frames, synth) == list(range(5, 20))


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_frames_upright(tmp_path, synth, rotation):
    path = synth.make_video(tmp_path / "rot.mp4", [F(k, 25) for k in range(5)], rotation=rotation)
    with av.open(str(path)) as container:
        stored = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert synth.read_index(stored) != 3 or rotation == 180  # stored turned: not readable as is
    reader, frames = read_all(path, require_audio=False)
    assert reader.info.rotation == rotation
    assert frames[0].shape == (48, 64, 3) and frames[0].flags.c_contiguous
    assert shown(frames, synth) == [0, 1, 2, 3, 4]


def test_audio_starts_late(tmp_path, synth):
    """Audio 0.3 s after the video: t0 is the audio's first timestamp, earlier frames are skipped."""
    times = [F(k, 25) for k in range(50)]
    audio = synth.click_track(16000, [8000])  # click 0.5 s into the audio = 0.8 s source time
    path = synth.make_video(tmp_path / "alate.mp4", times, audio=audio, audio_start_s=0.3)
    with av.open(str(path)) as container:
        first_audio = next(container.decode(audio=0))
        audio_start = first_audio.pts * first_audio.time_base
    # FFmpeg presents the AAC priming frame before the delayed track as silence: the track starts
    # up to one AAC frame (1024 samples) early, with the content still at 0.3 s
    assert F(3, 10) - F(1024, 16000) <= audio_start <= F(3, 10)
    reader, frames = read_all(path)
    assert reader.t0 == audio_start
    click_s = reader.t0 + F(synth.click_position(reader.audio, round((F(8, 10) - reader.t0) * 16000), 400), 16000)
    assert abs(click_s - F(8, 10)) <= F(1, 1000)
    assert abs(reader.audio_end_s - F(13, 10)) <= F(1, 1000)  # the audio lasts 1 s from 0.3 s
    assert shown(frames, synth) == expected_nearest(synth, times, F(2), t0=reader.t0, end=reader.audio_end_s)
    assert len(frames) == len([k for k in range(100) if reader.t0 + F(k, 25) < reader.audio_end_s])


def test_video_starts_late(tmp_path, synth):
    """Video 0.4 s after the audio: the first 0.4 s of audio are cut off."""
    times = [F(2, 5) + F(k, 25) for k in range(40)]
    audio = synth.click_track(32000, [16000])  # click at 1.0 s
    path = synth.make_video(tmp_path / "vlate.mp4", times, audio=audio)
    reader, frames = read_all(path)
    assert reader.t0 == F(2, 5)
    assert shown(frames, synth)[:3] == [0, 1, 2]
    assert len(frames) == 40
    pos = synth.click_position(reader.audio, 9600, 400)
    assert abs(pos - 9600) <= 16
    assert abs(len(reader.audio) - (32000 - 6400)) <= 2


def test_audio_shorter_than_video(tmp_path, synth):
    times = [F(k, 25) for k in range(50)]
    path = synth.make_video(tmp_path / "short.mp4", times, audio=np.zeros(16000, np.float32))
    reader, frames = read_all(path)
    assert len(reader.audio) == 16000
    assert shown(frames, synth) == list(range(25))


def test_video_shorter_than_audio(tmp_path, synth):
    times = [F(k, 25) for k in range(20)]
    path = synth.make_video(tmp_path / "long_audio.mp4", times, audio=np.zeros(32000, np.float32))
    reader, frames = read_all(path)
    assert shown(frames, synth) == list(range(20))
    assert len(reader.audio) == 32000  # the audio is kept whole; consumers cut by frame count


def test_no_audio_rejected_when_required(tmp_path, synth):
    path = synth.make_video(tmp_path / "mute.mp4", [0, 0.04])
    with pytest.raises(Rejected) as caught:
        SourceReader(path)
    assert (caught.value.stage, caught.value.reason) == ("broken", "no_audio")
    assert caught.value.message == "mute.mp4: no audio stream"
    reader, frames = read_all(path, require_audio=False)
    assert len(frames) == 2 and len(reader.audio) == 0 and not reader.info.has_audio


def test_truncated_file_with_index_first_yields_its_frames(tmp_path, synth):
    times = [F(k, 25) for k in range(75)]
    rng = np.random.default_rng(1)
    full = synth.make_video(tmp_path / "full.mp4", times, faststart=True,
                            audio=(rng.standard_normal(48000) * 0.1).astype(np.float32))
    data = full.read_bytes()
    half = tmp_path / "half.mp4"
    half.write_bytes(data[: len(data) * 2 // 3])
    reader, frames = read_all(half)
    assert reader.truncated
    assert 5 < len(frames) < 75
    assert shown(frames, synth) == list(range(len(frames)))


def test_truncated_file_without_index_rejected(tmp_path):
    full = tmp_path / "full.mp4"
    write_clip(full, np.zeros((25, 48, 64, 3), np.uint8), np.zeros(16000, np.float32))
    half = tmp_path / "half.mp4"
    half.write_bytes(full.read_bytes()[:2000])
    with pytest.raises(Rejected) as caught:
        SourceReader(half)
    assert caught.value.reason == "truncated"


def test_frames_are_read_only_and_iterated_once(tmp_path, synth):
    path = synth.make_video(tmp_path / "ro.mp4", [F(k, 30) for k in range(6)], fps=30)
    with SourceReader(path, require_audio=False) as reader:
        frames = list(reader.frames())
        assert not frames[0].flags.writeable
        with pytest.raises(RuntimeError, match="only once"):
            next(reader.frames())


def test_threads_give_the_same_frames(tmp_path, synth):
    times = [F(k, 30) for k in range(30)]
    path = synth.make_video(tmp_path / "t.mp4", times, fps=30)
    _, one = read_all(path, require_audio=False)
    _, two = read_all(path, require_audio=False, threads=2, contiguous=True)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(one, two)) and len(one) == len(two)
    assert all(f.flags.c_contiguous for f in two)


REAL = [
    # file, output frames, expected t0
    ("talk_22fps_700.mp4", 152, F(507, 15360)),
    ("talk_25fps_844.mp4", 125, F(0)),
    ("talk_30fps_700.mp4", 165, F(0)),
]


@pytest.mark.real_media
@pytest.mark.parametrize("name,count,t0", REAL, ids=[r[0] for r in REAL])
def test_real_sources(shared_media, name, count, t0):
    with SourceReader(shared_media / name) as reader:
        n = 0
        for frame in reader.frames():
            n += 1
        assert frame.shape == (reader.info.height, reader.info.width, 3)
        assert reader.t0 == t0
        assert reader.audio.dtype == np.float32 and 0.01 < np.abs(reader.audio).max() <= 1.0
        # frames stop at the end of the common span
        span = min(len(reader.audio) / 16000, reader.info.duration_s)
        assert n == count
        assert (n - 1) / 25 < span <= n / 25 + 1e-9


@pytest.mark.real_media
def test_real_source_without_audio(shared_media):
    with pytest.raises(Rejected, match="no audio stream"):
        SourceReader(shared_media / "anime_noaudio_25fps.mp4")


def _corrupt_packet(path, out, kind: str, index: int) -> float:
    """Overwrite packet `index` of the first `kind` stream with noise; returns its time."""
    with av.open(str(path)) as container:
        packets = [p for p in container.demux(**{kind: 0}) if p.size]
    target = packets[index]
    data = bytearray(path.read_bytes())
    noise = np.random.default_rng(3).integers(0, 256, target.size, dtype=np.uint8).tobytes()
    data[target.pos : target.pos + target.size] = noise
    out.write_bytes(bytes(data))
    return float(target.pts * target.time_base)


@pytest.fixture()
def noisy_clip(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "noisy.mp4"
    write_clip(path, rng.integers(0, 255, (50, 48, 64, 3), dtype=np.uint8),
               (rng.standard_normal(32000) * 0.1).astype(np.float32))
    return path


def test_corrupt_video_packet(noisy_clip, tmp_path):
    bad = tmp_path / "bad video.mp4"
    when = _corrupt_packet(noisy_clip, bad, "video", 20)
    with pytest.raises(Rejected) as caught:
        with SourceReader(bad) as reader:
            for _ in reader.frames():
                pass
    assert caught.value.reason == "decode_error"
    assert caught.value.message.startswith(f"bad video.mp4: video fails to decode near {when:.3f} s: ")
    # allowed to skip it: the neighbouring frame fills its slot and decoding goes on
    with SourceReader(bad, max_decode_errors=3) as reader:
        frames = list(reader.frames())
        assert reader.decode_errors >= 1 and len(frames) == 50


def test_corrupt_audio_packet(noisy_clip, tmp_path):
    bad = tmp_path / "bad audio.mp4"
    when = _corrupt_packet(noisy_clip, bad, "audio", 10)
    with pytest.raises(Rejected) as caught:
        SourceReader(bad)
    assert caught.value.reason == "decode_error"
    assert caught.value.message.startswith(f"bad audio.mp4: audio fails to decode near {when:.3f} s: ")
    with SourceReader(bad, max_decode_errors=1) as reader:
        assert abs(len(reader.audio) - 32000) <= 2  # the skipped packet became silence in place
        assert len(list(reader.frames())) == 50


def test_audio_after_video_end_has_no_common_span(tmp_path, synth):
    path = synth.make_video(tmp_path / "apart.mp4", [F(k, 25) for k in range(10)],
                            audio=np.zeros(8000, np.float32), audio_start_s=1.0)
    with SourceReader(path) as reader:
        with pytest.raises(Rejected) as caught:
            list(reader.frames())
    assert caught.value.reason == "no_common_span"
    assert caught.value.message.startswith("apart.mp4: the video (0.000-0.400 s) ends before the audio starts (0.9")


def test_video_after_audio_end_has_no_common_span(tmp_path, synth):
    path = synth.make_video(tmp_path / "apart.mp4", [F(1) + F(k, 25) for k in range(10)],
                            audio=np.zeros(8000, np.float32))
    with pytest.raises(Rejected) as caught:
        SourceReader(path)
    assert caught.value.reason == "no_common_span"
    assert caught.value.message == "apart.mp4: audio (0.000-0.500 s) ends before the video starts (1.000 s)"


@pytest.mark.parametrize("rotation", [0, 90])
def test_small_bgr_matches_downscaled_frame(tmp_path, rotation):
    import cv2

    from syncvid.media import ClipWriter

    base = np.zeros((360, 640, 3), np.uint8)
    base[:, :320] = (200, 40, 90)
    base[:180, :, 1] = 50
    path = tmp_path / "src.mp4"
    with ClipWriter(path, 640, 360, rotation=rotation) as w:
        w.write_audio(np.zeros(16000, np.float32))
        for _ in range(10):
            w.write_frame(base)
    with SourceReader(path) as reader:
        for picture in reader.pictures():
            small = picture.small_bgr(160)
            assert picture.small_bgr(160) is small and not small.flags.writeable
            frame = picture.rgb()
            h, w = frame.shape[:2]
            ref = cv2.cvtColor(cv2.resize(frame, (160, round(h * 160 / w)), interpolation=cv2.INTER_AREA),
                               cv2.COLOR_RGB2BGR)
            assert small.shape == ref.shape
            assert np.abs(small.astype(int) - ref).mean() < 2.0
        assert picture.small_bgr(10000).shape == frame.shape  # never enlarged
