"""`syncvid lipsync` with tiny random models: output geometry, timing, audio, determinism,
untouched background, guidance, ping-pong and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers", reason="lip-sync inference needs the optional diffusers package (VAE)")

from syncvid.cli import main as cli_main  # noqa: E402
from syncvid.config import load_config  # noqa: E402
from syncvid.lipsync.dub import LipsyncError, LipsyncModels, _generate_chunk, lipsync  # noqa: E402
from syncvid.media.decode import SourceReader, decode_audio, read_clip  # noqa: E402
from syncvid.media.encode import write_clip  # noqa: E402


@pytest.fixture(scope="module")
def small_cfg(repo_root):
    return load_config(repo_root / "configs/unet/cpu_small_stage2.yaml", ["run.inference_steps=3"])


@pytest.fixture(scope="module")
def checkpoint(small_cfg, tmp_path_factory):
    """A stage-2 UNet of the small config with random weights, in LatentSync's checkpoint format."""
    from syncvid.unet import UNet3DConditionModel

    torch.manual_seed(0)
    model = UNet3DConditionModel.from_config(small_cfg.model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    path = tmp_path_factory.mktemp("ckpt") / "unet.pt"
    torch.save({"global_step": 1, "state_dict": model.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def models(small_cfg, checkpoint):
    torch.set_num_threads(1)
    return LipsyncModels.load(small_cfg, checkpoint)


@pytest.fixture(scope="module")
def face_video(sample_corpus):
    return sample_corpus / "short_1.5s.mp4"


@pytest.fixture(scope="module")
def speech(sample_corpus, tmp_path_factory):
    """2.6 s of the sample's speech (longer than the 1.8 s face video, so the video is looped)."""
    audio = decode_audio(sample_corpus / "talk_25fps.mp4", 16000)[0][: int(2.6 * 16000)]
    path = tmp_path_factory.mktemp("speech") / "speech.mp4"
    write_clip(path, np.zeros((65, 16, 16, 3), np.uint8), audio)
    return path


def test_output_geometry_timing_audio_and_background(models, face_video, speech, tmp_path):
    out = tmp_path / "dubbed.mp4"
    result = lipsync(models, face_video, speech, out, progress=False)
    with SourceReader(face_video, fps=25, require_audio=False, contiguous=True) as reader:
        src_frames = np.stack([f.copy() for f in reader.frames()])  # the source at 25 fps (it is 30 fps)
    frames, audio, fps, rate = read_clip(out)
    driving = decode_audio(speech, 16000)[0]
    assert frames.shape[1:] == src_frames.shape[1:]
    assert fps == 25 and rate == 16000
    assert len(frames) == result.num_frames == len(driving) // 640
    assert len(frames) > len(src_frames)  # the audio is longer: the video was looped
    assert abs(len(audio) / 16000 - len(frames) / 25) < 0.05
    assert result.frames_without_face == 0 and not list(tmp_path.glob(".*"))
    # far from the face (the top rows) the picture is the source's, within encoding noise
    order = np.concatenate([np.arange(len(src_frames)), np.arange(len(src_frames))[::-1]])
    for k in (0, 5, len(src_frames) + 3):
        top = np.abs(frames[k, :20].astype(int) - src_frames[order[k], :20].astype(int))
        assert top.mean() < 3.0
    # the face region did change
    assert np.abs(frames[5].astype(int) - src_frames[5].astype(int)).max() > 40


def test_same_seed_same_video_other_seed_other_video(models, face_video, speech, tmp_path):
    a = lipsync(models, face_video, speech, tmp_path / "a.mp4", seed=3, progress=False)
    b = lipsync(models, face_video, speech, tmp_path / "b.mp4", seed=3, progress=False)
    c = lipsync(models, face_video, speech, tmp_path / "c.mp4", seed=4, progress=False)
    fa, fb, fc = (read_clip(r.output)[0] for r in (a, b, c))
    assert np.array_equal(fa, fb)
    assert not np.array_equal(fa, fc)


def test_guidance_one_is_the_plain_conditional_pass(models):
    rng = np.random.default_rng(0)
    r = int(models.cfg.data.resolution)
    faces = rng.integers(0, 255, (4, r, r, 3), dtype=np.uint8)
    feats = torch.randn(4, 10 * (models.audio_encoder.num_layers + 1), models.audio_encoder.width)
    mask = torch.ones(1, r, r)
    mask[:, r // 2:] = 0
    noise = torch.randn(1, 4, 1, r // 4, r // 4)

    def run(g):
        return _generate_chunk(models, faces, feats, mask, noise, 3, g, torch.Generator().manual_seed(1),
                               torch.device("cpu"))

    plain = run(1.0)
    guided = run(1.0 + 1e-7)  # takes the two-branch path; uncond + (1 + 1e-7)(cond - uncond) = cond
    assert np.abs(plain.astype(int) - guided.astype(int)).max() <= 1
    assert not np.array_equal(plain, run(3.0))
    # outside the mask the reference is kept exactly
    assert np.array_equal(plain[:, : r // 2], faces[:, : r // 2])


def test_clear_errors(models, face_video, speech, tmp_path, repo_root, capsys):
    blank = tmp_path / "blank.mp4"
    write_clip(blank, np.full((30, 64, 64, 3), 90, np.uint8), np.zeros(30 * 640, np.float32))
    with pytest.raises(LipsyncError, match="no face found in any frame"):
        lipsync(models, blank, speech, tmp_path / "x.mp4", progress=False)
    with pytest.raises(LipsyncError, match="--audio: no such file"):
        lipsync(models, face_video, tmp_path / "none.wav", tmp_path / "x.mp4", progress=False)
    code = cli_main(["lipsync", "--config", str(repo_root / "configs/unet/cpu_small_stage2.yaml"),
                     "--video", str(face_video), "--audio", str(speech), "--output", str(tmp_path / "y.mp4"),
                     "--unet_checkpoint", str(tmp_path / "missing.pt")])
    err = capsys.readouterr().err
    assert code == 2 and "--unet_checkpoint: no such file" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.mp4").exists() and not (tmp_path / "y.mp4").exists()
