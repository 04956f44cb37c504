"""UNet training on this CPU with the small configs: stage 1 → checkpoint → stage 2 → exact resume,
DDP with two gloo processes, and the start-up errors a user meets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers", reason="UNet training needs the optional diffusers package (VAE)")

from syncvid.config import load_config  # noqa: E402
from syncvid.data.synthetic import talking_clip  # noqa: E402
from syncvid.media.encode import write_clip  # noqa: E402
from syncvid.train.common import TrainingSetupError  # noqa: E402
from syncvid.train.unet import main, train_unet  # noqa: E402
from syncvid.unet.loading import read_unet_checkpoint  # noqa: E402

RES = 64


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """Six synthetic 50-frame talking clips at 64 px and their file list."""
    root = tmp_path_factory.mktemp("unet_clips")
    rng = np.random.default_rng(11)
    paths = []
    for i in range(6):
        frames, audio, _ = talking_clip(50, RES, rng)
        paths.append(root / f"clip_{i}.mp4")
        write_clip(paths[-1], frames, audio)
    listing = root / "fileslist.txt"
    listing.write_text("".join(f"{p}\n" for p in paths))
    return listing


def small(repo_root, clips, out: Path, *extra: str, config: str = "cpu_small.yaml"):
    return load_config(
        repo_root / "configs" / "unet" / config,
        [
            f"data.train_fileslist={clips}",
            f"data.train_output_dir={out}",
            f"data.audio_embeds_cache_dir={clips.parent / 'embeds'}",
            f"data.audio_mel_cache_dir={clips.parent / 'mel'}",
            "data.batch_size=1",
            "data.num_val_samples=1",
            "run.max_train_steps=4",
            "ckpt.save_ckpt_steps=2",
            *extra,
        ],
    )


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def train_losses(run_dir: Path) -> dict[int, float]:
    return {m["step"]: m["recon_loss"] for m in metrics(run_dir) if "recon_loss" in m}


def test_stage1_then_stage2_then_exact_resume(repo_root, clips, tmp_path):
    # stage 1: every parameter trains, LatentSync-format checkpoints, logs
    r1 = train_unet(small(repo_root, clips, tmp_path / "s1"), progress=False)
    assert r1.global_step == 4
    ckpt = r1.run_dir / "checkpoints" / "checkpoint-4.pt"
    payload = torch.load(ckpt, weights_only=True)
    assert set(payload) == {"global_step", "state_dict"} and payload["global_step"] == 4
    assert (r1.run_dir / "checkpoints" / "checkpoint-2.pt").is_file()
    assert (r1.run_dir / "loss.png").is_file() and (r1.run_dir / "config.yaml").is_file()
    lines = metrics(r1.run_dir)
    assert [m["step"] for m in lines if "recon_loss" in m] == [1, 2, 3, 4]
    assert any("val_recon_loss" in m for m in lines)
    assert torch.count_nonzero(payload["state_dict"]["conv_out.weight"]) > 0  # the output layer learned

    # stage 2 from the stage-1 checkpoint: only motion modules and attentions change
    cfg2 = small(repo_root, clips, tmp_path / "s2", f"ckpt.init_from={ckpt}", config="cpu_small_stage2.yaml")
    r2 = train_unet(cfg2, progress=False)
    state2, step2 = read_unet_checkpoint(r2.run_dir / "checkpoints" / "checkpoint-4.pt")
    assert step2 == 4
    assert torch.equal(state2["conv_in.weight"], payload["state_dict"]["conv_in.weight"])  # frozen
    motion = [k for k in state2 if "motion_modules." in k and k.endswith("proj_out.weight")]
    assert motion and any(torch.count_nonzero(state2[k]) > 0 for k in motion)  # motion modules left the identity
    attn = next(k for k in state2 if "attentions." in k and k.endswith("attn1.to_q.weight"))
    assert not torch.equal(state2[attn], payload["state_dict"][attn])

    # resume: 2 steps, then --resume to 4, equals the uninterrupted run
    cfg_a = small(repo_root, clips, tmp_path / "resumed", "run.max_train_steps=2")
    first = train_unet(cfg_a, progress=False)
    cfg_b = small(repo_root, clips, tmp_path / "resumed")
    second = train_unet(cfg_b, progress=False, resume=True)
    assert second.run_dir == first.run_dir and second.start_step == 2 and second.global_step == 4
    straight, resumed = train_losses(r1.run_dir), train_losses(second.run_dir)
    assert sorted(resumed) == [1, 2, 3, 4]
    for step in (3, 4):
        assert resumed[step] == pytest.approx(straight[step], rel=1e-5, abs=1e-6)
    a, _ = read_unet_checkpoint(ckpt)
    b, _ = read_unet_checkpoint(second.run_dir / "checkpoints" / "checkpoint-4.pt")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_two_gloo_processes_equal_one_process_with_the_global_batch(repo_root, clips, tmp_path):
    one = train_unet(small(repo_root, clips, tmp_path / "one", "data.batch_size=2", "run.max_train_steps=2"),
                     progress=False)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(repo_root)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "scripts.train_unet", "--unet_config_path", str(repo_root / "configs/unet/cpu_small.yaml"),
           "--set", f"data.train_fileslist={clips}", "--set", f"data.train_output_dir={tmp_path / 'ddp'}",
           "--set", f"data.audio_embeds_cache_dir={clips.parent / 'embeds'}",
           "--set", f"data.audio_mel_cache_dir={clips.parent / 'mel'}",
           "--set", "data.batch_size=1", "--set", "data.num_val_samples=1",
           "--set", "run.max_train_steps=2", "--set", "ckpt.save_ckpt_steps=2"]
    done = subprocess.run(cmd, cwd=repo_root, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = list((tmp_path / "ddp").glob("train-*"))
    assert len(runs) == 1
    ddp_losses, one_losses = train_losses(runs[0]), train_losses(one.run_dir)
    for step in (1, 2):
        assert ddp_losses[step] == pytest.approx(one_losses[step], rel=1e-5)
    a, _ = read_unet_checkpoint(one.run_dir / "checkpoints" / "checkpoint-2.pt")
    b, _ = read_unet_checkpoint(runs[0] / "checkpoints" / "checkpoint-2.pt")
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst < 1e-5


def test_stage2_without_a_start_is_refused(repo_root, clips, tmp_path, capsys):
    code = main(repo_root / "configs/unet/cpu_small_stage2.yaml",
                [f"data.train_fileslist={clips}", f"data.train_output_dir={tmp_path}"], progress=False)
    err = capsys.readouterr().err
    assert code == 2 and "cannot learn from random weights" in err and "ckpt.init_from" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "extra,keys",
    [
        (["run.perceptual_loss_weight=0.1"], ["ckpt.lpips_vgg_path", "ckpt.lpips_lin_path"]),
        (["run.trepa_loss_weight=10"], ["ckpt.trepa_path"]),
        (["run.use_syncnet=true"], ["ckpt.syncnet_path"]),
        (["model.vae.source=pretrained"], ["ckpt.vae_path"]),
        (["model.audio_encoder.source=pretrained"], ["ckpt.whisper_path"]),
        (["ckpt.init_from=/nowhere/ckpt.pt"], ["ckpt.init_from: no such file"]),
    ],
)
def test_missing_weights_are_named_before_any_work(repo_root, clips, tmp_path, extra, keys):
    cfg = small(repo_root, clips, tmp_path, *extra, config="cpu_small_stage2.yaml")
    with pytest.raises(TrainingSetupError) as info:
        train_unet(cfg, progress=False)
    for key in keys:
        assert key in str(info.value)
    assert not list(tmp_path.glob("train-*"))  # nothing was started


def test_resume_without_a_run_is_a_clear_error(repo_root, clips, tmp_path):
    with pytest.raises(TrainingSetupError, match="no run with a training_state.pt"):
        train_unet(small(repo_root, clips, tmp_path / "empty"), progress=False, resume=True)


def test_validation_video_is_dubbed_and_scored_at_each_checkpoint(repo_root, clips, tmp_path, sample_corpus):
    from syncvid.media.decode import decode_audio

    speech = tmp_path / "speech.mp4"
    audio = decode_audio(sample_corpus / "talk_25fps.mp4", 16000)[0][: int(2.2 * 16000)]
    write_clip(speech, np.zeros((55, 16, 16, 3), np.uint8), audio)
    cfg = small(repo_root, clips, tmp_path / "val", "run.max_train_steps=2", "run.inference_steps=2",
                f"data.val_video_path={sample_corpus / 'short_1.5s.mp4'}", f"data.val_audio_path={speech}")
    result = train_unet(cfg, progress=False)
    assert (result.run_dir / "val_videos" / "val_video_2.mp4").is_file()
    scored = [m for m in metrics(result.run_dir) if "val_sync_conf" in m]
    assert len(scored) == 1 and scored[0]["step"] == 2 and np.isfinite(scored[0]["val_sync_conf"])
    assert (result.run_dir / "sync_conf.png").is_file()


def test_stage2_pixel_losses_with_weights_in_the_published_formats(repo_root, clips, tmp_path, monkeypatch):
    """LPIPS, TREPA and the SyncNet loss all take part when their weights are given (random weights
    saved in the published formats; a tiny ViT stands in for ViT-g through the same code)."""
    from syncvid.sync.stable_syncnet import StableSyncNet
    from syncvid.train import trepa as trepa_module
    from syncvid.train.trepa import TREPAArch, TREPALoss, VideoMAEEncoder

    from .test_lpips import random_lin_state, random_vgg16_state

    torch.save(random_vgg16_state(0), tmp_path / "vgg16.pth")
    torch.save(random_lin_state(1), tmp_path / "vgg.pth")
    tiny = TREPAArch(img_size=28, patch_size=14, embed_dim=32, depth=1, num_heads=2, mlp_ratio=2.0, num_frames=16,
                     num_classes=3)
    torch.save({"model": VideoMAEEncoder(tiny).state_dict()}, tmp_path / "vit.pth")
    real = TREPALoss.from_checkpoint.__func__
    monkeypatch.setattr(trepa_module.TREPALoss, "from_checkpoint",
                        classmethod(lambda cls, path, arch=tiny: real(cls, path, tiny)))
    sync_cfg = load_config(repo_root / "configs/syncnet/cpu_small.yaml")
    torch.save({"state_dict": StableSyncNet(sync_cfg.model).state_dict(), "global_step": 0}, tmp_path / "sync.pt")
    stage1 = train_unet(small(repo_root, clips, tmp_path / "s1", "run.max_train_steps=1", "ckpt.save_ckpt_steps=1"),
                        progress=False)
    cfg = small(repo_root, clips, tmp_path / "s2", "run.max_train_steps=1", "ckpt.save_ckpt_steps=1",
                f"ckpt.init_from={stage1.checkpoints[-1]}", "run.use_syncnet=true",
                f"ckpt.syncnet_path={tmp_path / 'sync.pt'}", "run.perceptual_loss_weight=0.1",
                f"ckpt.lpips_vgg_path={tmp_path / 'vgg16.pth'}", f"ckpt.lpips_lin_path={tmp_path / 'vgg.pth'}",
                "run.trepa_loss_weight=10", f"ckpt.trepa_path={tmp_path / 'vit.pth'}", "data.num_val_samples=0",
                config="cpu_small_stage2.yaml")
    result = train_unet(cfg, progress=False)
    losses = result.losses[-1]
    for name in ("recon_loss", "lpips_loss", "trepa_loss", "sync_loss"):
        assert name in losses and np.isfinite(losses[name])
    expected = (losses["recon_loss"] + 0.05 * losses["sync_loss"] + 0.1 * losses["lpips_loss"]
                + 10 * losses["trepa_loss"])
    assert losses["loss"] == pytest.approx(expected, rel=1e-5)
    assert (result.run_dir / "syncnet_config.yaml").is_file()
