"""ClipWriter / write_clip: atomic writes, odd names, the write -> read round trip and its alignment."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from syncvid.media import ClipWriter, SourceReader, read_clip, write_clip
from syncvid.media.encode import replace_audio

FLASHES = (10, 37, 60)


def flash_and_click(frames: int = 75, width: int = 64, height: int = 48, rate: int = 16000, fps: int = 25,
                    channels: int = 1):
    """Black frames, white at FLASHES; a click at exactly each flash frame's first audio sample."""
    video = np.zeros((frames, height, width, 3), np.uint8)
    flashes = [k for k in FLASHES if k < frames]
    video[flashes] = 255
    per_frame = Fraction(rate, fps)
    audio = np.zeros((int(frames * per_frame), channels) if channels > 1 else int(frames * per_frame), np.float32)
    for k in flashes:
        audio[int(k * per_frame)] = 0.9
    return video, audio


def flash_frames(video: np.ndarray) -> list[int]:
    return [int(i) for i in np.nonzero(video.reshape(len(video), -1).mean(axis=1) > 127)[0]]


def click_positions(audio: np.ndarray, expected: list[int], radius: int = 200) -> list[int]:
    out = []
    for e in expected:
        lo = max(0, e - radius)
        out.append(lo + int(np.argmax(np.abs(audio[lo : e + radius]))))
    return out


def test_round_trip_alignment_within_16_samples(tmp_path):
    video, audio = flash_and_click()
    path = tmp_path / "clip.mp4"
    write_clip(path, video, audio)
    frames, back, fps, rate = read_clip(path)
    assert (fps, rate) == (25, 16000)
    assert frames.shape == video.shape and frames.dtype == np.uint8
    assert back.dtype == np.float32 and len(back) == len(audio)  # AAC padding trimmed
    assert flash_frames(frames) == list(FLASHES)
    expected = [k * 640 for k in FLASHES]
    got = click_positions(back, expected)
    assert np.max(np.abs(np.subtract(got, expected))) <= 16, (got, expected)
    assert np.abs(frames.astype(int) - video).max() <= 3  # crf 13 keeps flat frames near exact


def test_round_trip_through_source_reader(tmp_path):
    video, audio = flash_and_click()
    path = tmp_path / "clip.mp4"
    write_clip(path, video, audio)
    with SourceReader(path) as reader:
        frames = np.stack(list(reader.frames()))
        assert reader.t0 == 0
        assert len(reader.audio) == len(audio)
        got = click_positions(reader.audio, [k * 640 for k in FLASHES])
    assert len(frames) == 75
    assert flash_frames(frames) == list(FLASHES)
    assert np.max(np.abs(np.subtract(got, [k * 640 for k in FLASHES]))) <= 16


@pytest.mark.parametrize("rate", [44100, 48000])
def test_stereo_source_rates_read_back_at_16k(tmp_path, rate):
    video, audio = flash_and_click(rate=rate, channels=2)
    path = tmp_path / f"stereo_{rate}.mp4"
    write_clip(path, video, audio, sample_rate=rate, audio_bitrate=128000)
    with av.open(str(path)) as container:
        stream = container.streams.audio[0].codec_context
        assert (stream.sample_rate, stream.channels) == (rate, 2)
    with SourceReader(path) as reader:
        frames = np.stack(list(reader.frames()))
        got = click_positions(reader.audio, [k * 640 for k in FLASHES])
        assert abs(len(reader.audio) - 75 * 640) <= 2
    assert flash_frames(frames) == list(FLASHES)
    assert np.max(np.abs(np.subtract(got, [k * 640 for k in FLASHES]))) <= 16, got


def test_written_file_is_h264_yuv420p_aac_mono(tmp_path):
    video, audio = flash_and_click(frames=10)
    path = tmp_path / "c.mp4"
    write_clip(path, video, audio)
    with av.open(str(path)) as container:
        v, a = container.streams.video[0], container.streams.audio[0]
        assert v.codec_context.name == "h264" and v.codec_context.pix_fmt == "yuv420p"
        assert v.average_rate == 25
        assert a.codec_context.name == "aac" and a.codec_context.sample_rate == 16000
        assert a.codec_context.channels == 1


def test_clip_without_audio(tmp_path):
    video, _ = flash_and_click(frames=10)
    path = tmp_path / "silent.mp4"
    write_clip(path, video, None)
    frames, audio, fps, rate = read_clip(path)
    assert len(frames) == 10 and len(audio) == 0 and rate == 0 and fps == 25


def test_non_integer_rate_round_trip(tmp_path):
    video, _ = flash_and_click(frames=12)
    path = tmp_path / "ntsc.mp4"
    write_clip(path, video, None, fps=Fraction(30000, 1001))
    frames, _, fps, _ = read_clip(path)
    assert fps == Fraction(30000, 1001)
    with av.open(str(path)) as container:
        times = [f.pts * f.time_base for f in container.decode(video=0)]
    assert times == [Fraction(1001 * k, 30000) for k in range(12)]


def _hidden_temps(folder):
    return [p for p in folder.iterdir() if p.name.startswith(".")]


def test_atomic_write_hides_partial_file(tmp_path):
    path = tmp_path / "out.mp4"
    writer = ClipWriter(path, 64, 48)
    writer.write_frame(np.zeros((48, 64, 3), np.uint8))
    assert not path.exists()
    temps = _hidden_temps(tmp_path)
    assert len(temps) == 1 and temps[0] == writer.tmp_path
    assert temps[0].name.startswith(".out.mp4.") and temps[0].parent == tmp_path
    writer.write_audio(np.zeros(640, np.float32))
    writer.close()
    assert path.is_file() and not _hidden_temps(tmp_path)
    writer.close()  # closing twice is harmless


def test_existing_clip_replaced_only_on_close(tmp_path):
    path = tmp_path / "out.mp4"
    path.write_bytes(b"old")
    with ClipWriter(path, 64, 48) as writer:
        writer.write_frame(np.zeros((48, 64, 3), np.uint8))
        assert path.read_bytes() == b"old"
    assert path.read_bytes() != b"old" and read_clip(path)[0].shape == (1, 48, 64, 3)


def test_abort_and_exception_leave_nothing(tmp_path):
    path = tmp_path / "out.mp4"
    writer = ClipWriter(path, 64, 48)
    writer.write_frame(np.zeros((48, 64, 3), np.uint8))
    writer.abort()
    assert not path.exists() and not _hidden_temps(tmp_path)
    with pytest.raises(RuntimeError, match="boom"):
        with ClipWriter(path, 64, 48) as writer:
            writer.write_frame(np.zeros((48, 64, 3), np.uint8))
            raise RuntimeError("boom")
    assert not path.exists() and not _hidden_temps(tmp_path)


def test_close_without_frames_is_an_error(tmp_path):
    path = tmp_path / "none.mp4"
    writer = ClipWriter(path, 64, 48)
    with pytest.raises(ValueError, match="none.mp4: no video frame was written"):
        writer.close()
    assert not path.exists() and not _hidden_temps(tmp_path)
    with pytest.raises(ValueError, match="no frames to write"):
        write_clip(path, [], None)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(width=63, height=48), "positive even frame size"),
        (dict(width=64, height=0), "positive even frame size"),
        (dict(width=64, height=48, rotation=45), "rotation must be"),
        (dict(width=64, height=48, fps=0), "fps must be positive"),
        (dict(width=64, height=48, channels=6), "channels must be"),
        (dict(width=64, height=48, audio_start_s=-1), "audio_start_s"),
    ],
)
def test_writer_argument_errors(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ClipWriter(tmp_path / "x.mp4", **kwargs)
    assert not list(tmp_path.iterdir())


def test_write_errors_name_the_clip(tmp_path):
    with ClipWriter(tmp_path / "x.mp4", 64, 48) as writer:
        with pytest.raises(ValueError, match=r"x.mp4: expected uint8 \(48, 64, 3\)"):
            writer.write_frame(np.zeros((48, 64, 3), np.float32))
        with pytest.raises(ValueError, match=r"x.mp4: audio must be \[n\] or \[n, 1\]"):
            writer.write_audio(np.zeros((10, 2), np.float32))
        writer.write_frame(np.zeros((48, 64, 3), np.uint8), pts_s=0.5)
        with pytest.raises(ValueError, match="does not increase"):
            writer.write_frame(np.zeros((48, 64, 3), np.uint8), pts_s=0.5)


@pytest.mark.parametrize(
    "name", ["with space.mp4", "quote'd \"name\".mp4", "ünïcödé 名前.mp4", "-leading-dash.mp4", "--.mp4"]
)
def test_odd_file_names(tmp_path, name):
    video, audio = flash_and_click(frames=5)
    path = tmp_path / "sub dir" / name
    write_clip(path, video, audio)
    assert path.is_file()
    frames, back, _, _ = read_clip(path)
    assert len(frames) == 5 and len(back) == 5 * 640


def test_frames_from_iterator(tmp_path):
    video, audio = flash_and_click(frames=8)
    path = tmp_path / "it.mp4"
    write_clip(path, (f for f in video), audio)
    assert flash_frames(read_clip(path)[0]) == []  # no flash among the first 8 frames
    assert len(read_clip(path)[0]) == 8


def test_read_clip_places_late_audio_by_timestamp(tmp_path):
    video, _ = flash_and_click(frames=25)
    audio = np.zeros(8000, np.float32)
    audio[1600] = 0.9  # 0.1 s into the audio, which starts at 0.2 s: 0.3 s on the clip's timeline
    path = tmp_path / "late.mp4"
    write_clip(path, video, audio, audio_start_s=0.2)
    _, back, _, _ = read_clip(path)
    assert np.abs(back[:3000]).max() < 0.01  # silence before the audio starts
    got = click_positions(back, [4800])[0]
    assert abs(got - 4800) <= 16


def test_replace_audio_copies_the_video_and_keeps_alignment(tmp_path):
    rng = np.random.default_rng(0)
    video, audio = flash_and_click()
    video = np.clip(video.astype(int) + rng.integers(0, 40, video.shape), 0, 255).astype(np.uint8)
    shifted = np.roll(audio, 3 * 640)  # the correction delays the audio by 3 frames
    write_clip(tmp_path / "candidate.mp4", video, audio)
    write_clip(tmp_path / "encoded.mp4", video, shifted)
    replace_audio(tmp_path / "candidate.mp4", tmp_path / "remuxed.mp4", shifted)
    assert _hidden_temps(tmp_path) == []

    def packets(path):
        with av.open(str(path)) as c:
            return [(bytes(p), p.pts, p.dts) for p in c.demux(video=0) if p.dts is not None]

    assert packets(tmp_path / "remuxed.mp4") == packets(tmp_path / "encoded.mp4")  # same H.264 stream
    frames, back, fps, rate = read_clip(tmp_path / "remuxed.mp4")
    ref_frames, ref_back, _, _ = read_clip(tmp_path / "encoded.mp4")
    assert (fps, rate) == (25, 16000) and np.array_equal(frames, ref_frames)
    assert len(back) == len(shifted) and np.array_equal(back, ref_back)
    expected = [(k + 3) * 640 for k in FLASHES]
    got = click_positions(back, expected)
    assert np.max(np.abs(np.subtract(got, expected))) <= 16, (got, expected)


def test_replace_audio_failure_leaves_nothing(tmp_path):
    video, audio = flash_and_click()
    write_clip(tmp_path / "candidate.mp4", video, audio)
    with pytest.raises(ValueError, match="audio must be"):
        replace_audio(tmp_path / "candidate.mp4", tmp_path / "out.mp4", np.zeros((10, 3), np.float32))
    assert not (tmp_path / "out.mp4").exists() and _hidden_temps(tmp_path) == []


def test_pipeline_encoder_settings_reach_x264_and_keep_alignment(tmp_path):
    """The configured preset and extra x264 options are what x264 records in its stream header."""
    from syncvid.config.pipeline_schema import EncodeSection

    enc = EncodeSection()
    video, audio = flash_and_click()
    path = tmp_path / "clip.mp4"
    write_clip(path, video, audio, **enc.writer_options())
    header = path.read_bytes()
    assert b"rc_lookahead=10" in header and b"mbtree=1" in header and b"subme=1" in header  # superfast + mbtree
    frames, back, _, _ = read_clip(path)
    assert flash_frames(frames) == list(FLASHES)
    got = click_positions(back, [k * 640 for k in FLASHES])
    assert np.max(np.abs(np.subtract(got, [k * 640 for k in FLASHES]))) <= 16  # the fast AAC coder keeps alignment
    plain = tmp_path / "plain.mp4"
    write_clip(plain, video, audio, preset="veryfast")
    assert b"mbtree=1" in plain.read_bytes() and b"subme=2" in plain.read_bytes()


def test_clip_with_a_250_character_name(tmp_path):
    # the clip's hidden temporary fits the name limit although `.<name>.<random>.part` would not
    path = tmp_path / ("c" * 246 + ".mp4")
    write_clip(path, np.zeros((3, 48, 64, 3), np.uint8), np.zeros(3 * 640, np.float32))
    assert path.is_file() and not _hidden_temps(tmp_path)


def test_settings_left_out_are_the_encode_sections(tmp_path):
    from syncvid.config.pipeline_schema import EncodeSection

    path = tmp_path / "defaults.mp4"
    with ClipWriter(path, 64, 48) as writer:
        assert writer.settings == EncodeSection().writer_options()
        for _ in range(5):
            writer.write_frame(np.zeros((48, 64, 3), np.uint8))
    data = path.read_bytes()  # x264 writes its settings into the stream
    assert b"subme=1" in data and b"rc_lookahead=10" in data and b"mbtree=1" in data  # superfast + x264_params
    with ClipWriter(tmp_path / "chosen.mp4", 64, 48, preset="veryfast", aac_coder="twoloop", x264_params="") as w:
        assert w.settings == {**EncodeSection().writer_options(), "preset": "veryfast", "aac_coder": "twoloop",
                              "x264_params": ""}
        w.write_frame(np.zeros((48, 64, 3), np.uint8))
    assert b"subme=2" in (tmp_path / "chosen.mp4").read_bytes()  # veryfast
