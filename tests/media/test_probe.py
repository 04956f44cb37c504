"""probe(): real files, synthetic files, and every rejection with its message."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from syncvid.media import probe, write_clip
from syncvid.records import Rejected

REAL = [
    # file, fps, size, has_audio, audio rate, channels
    ("talk_22fps_700.mp4", Fraction(1350, 61), (700, 700), True, 44100, 2),
    ("talk_25fps_844.mp4", Fraction(25), (844, 844), True, 44100, 2),
    ("talk_30fps_700.mp4", Fraction(30), (700, 700), True, 44100, 2),
    ("anime_noaudio_25fps.mp4", Fraction(25), (704, 1216), False, 0, 0),
]


@pytest.mark.real_media
@pytest.mark.parametrize("name,fps,size,has_audio,rate,channels", REAL, ids=[r[0] for r in REAL])
def test_probe_real(shared_media, name, fps, size, has_audio, rate, channels):
    info = probe(shared_media / name)
    assert info.fps == fps
    assert (info.width, info.height) == size
    assert info.has_audio is has_audio
    assert info.audio_rate == rate and info.audio_channels == channels
    assert info.audio_codec == ("aac" if has_audio else "")
    assert info.video_codec == "h264"
    assert info.rotation == 0
    assert 4.9 < info.duration_s < 11.0


def _reject(path) -> Rejected:
    with pytest.raises(Rejected) as caught:
        probe(path)
    err = caught.value
    assert err.stage == "broken"
    assert "\n" not in err.message
    assert path.name in err.message
    return err


def test_probe_synthetic(tmp_path, synth):
    path = synth.make_video(tmp_path / "clip.mp4", [k / 25 for k in range(10)],
                            audio=np.zeros(6400, np.float32))
    info = probe(path)
    assert (info.width, info.height, info.fps, info.rotation) == (64, 48, 25, 0)
    assert info.has_audio and info.audio_rate == 16000 and info.audio_channels == 1
    assert info.duration_s == pytest.approx(0.4)


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_probe_rotation_swaps_display_size(tmp_path, synth, rotation):
    path = synth.make_video(tmp_path / "rot.mp4", [0, 0.04], rotation=rotation)
    info = probe(path)
    assert info.rotation == rotation
    # frames are stored turned (48x64 for a quarter turn); the display size is the upright one
    with av.open(str(path)) as container:
        stored = container.streams.video[0].codec_context
        assert (stored.width, stored.height) == ((48, 64) if rotation in (90, 270) else (64, 48))
    assert (info.width, info.height) == (64, 48)


def test_probe_missing_file(tmp_path):
    err = _reject(tmp_path / "nothing here.mp4")
    assert err.reason == "not_found"
    assert err.message == "nothing here.mp4: no such file"


def test_probe_directory(tmp_path):
    folder = tmp_path / "looks_like.mp4"
    folder.mkdir()
    assert _reject(folder).reason == "not_found"


def test_probe_empty_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    err = _reject(path)
    assert err.reason == "empty_file"
    assert err.message == "empty.mp4: file is empty (0 bytes)"


def test_probe_garbage_bytes(tmp_path):
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    err = _reject(path)
    assert err.reason == "decode_error"
    assert err.message.startswith("noise.mp4: FFmpeg cannot open it: ")
    assert "Invalid data" in err.message


def test_probe_text_file_with_mp4_name(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("these are not the frames you are looking for\n" * 20)
    err = _reject(path)
    assert err.reason == "decode_error"
    assert "FFmpeg cannot open it" in err.message


def test_probe_audio_only(tmp_path):
    path = tmp_path / "voice.m4a"
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=16000)
        stream.layout = "mono"
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate = 16000
            frame.pts = i * 1024
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    err = _reject(path)
    assert err.reason == "no_video"
    assert err.message == "voice.m4a: no video stream (streams: audio)"


def test_probe_truncated_index_at_end(tmp_path):
    """A recording cut off before its index was written (the MP4 index goes last by default)."""
    full = tmp_path / "full.mp4"
    write_clip(full, np.zeros((50, 48, 64, 3), np.uint8), np.zeros(32000, np.float32))
    half = tmp_path / "half.mp4"
    data = full.read_bytes()
    half.write_bytes(data[: len(data) // 2])
    err = _reject(half)
    assert err.reason == "truncated"
    assert err.message.startswith(f"half.mp4: cut-off MP4/MOV file ({len(data) // 2} bytes); FFmpeg cannot open it: ")


@pytest.mark.parametrize("name", ["with space.mp4", "quote'd \"name\".mp4", "ünïcödé 名前.mp4", "-leading-dash.mp4"])
def test_probe_odd_names(tmp_path, synth, name):
    path = synth.make_video(tmp_path / name, [0, 0.04, 0.08])
    assert probe(path).fps == 25
    assert probe(str(path)).width == 64
