"""The training datasets read what the pipeline wrote: raw folder -> clips -> a DataLoader batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from syncvid.config import load_config
from syncvid.data import SyncNetDataset, UNetDataset
from syncvid.data.mel import mel_window_length
from syncvid.media.decode import read_clip


@pytest.fixture(scope="module")
def unet_cfg(repo_root, sample_run, tmp_path_factory):
    cache = tmp_path_factory.mktemp("mel_cache")
    return load_config(repo_root / "configs/unet/stage2.yaml",
                       overrides=[f"data.train_fileslist={sample_run / 'fileslist.txt'}",
                                  f"data.audio_mel_cache_dir={cache}", "data.num_workers=0"])


def test_unet_samples_from_pipeline_output(unet_cfg, sample_run):
    ds = UNetDataset(unet_cfg)
    listed = (sample_run / "fileslist.txt").read_text().splitlines()
    assert len(ds) > 0 and len(ds.clips) + sum(len(v) for v in ds.skipped.values()) == len(listed)
    batch = next(iter(DataLoader(ds, batch_size=2, shuffle=False)))
    f, r = unet_cfg.data.num_frames, unet_cfg.data.resolution
    for key in ("gt_pixel_values", "masked_pixel_values", "ref_pixel_values"):
        assert batch[key].shape == (2, f, 3, r, r) and batch[key].dtype == torch.float32
        assert batch[key].min() >= -1.0 and batch[key].max() <= 1.0
    assert batch["masks"].shape == (2, f, 1, r, r)
    assert batch["mel"].shape[-2:] == (80, mel_window_length(f))
    # LatentSync's jaw mask: hides mouth and chin, keeps the eyes and the forehead
    mask = batch["masks"][0, 0, 0].numpy()
    assert mask[: int(0.37 * r)].min() == 1.0 and mask[int(0.6 * r):int(0.9 * r), r // 2].max() == 0.0
    masked, gt = batch["masked_pixel_values"][0], batch["gt_pixel_values"][0]
    top = int(0.37 * r)
    assert torch.equal(masked[:, :, :top], gt[:, :, :top]) and torch.equal(masked, gt * batch["masks"][0])
    assert masked[:, :, int(0.6 * r):int(0.9 * r), r // 2].abs().max() == 0
    # the target window's pixels are the clip's frames at start_idx (decoded independently)
    frames, _, fps, _ = read_clip(batch["video_path"][0])
    start = int(batch["start_idx"][0])
    expected = torch.from_numpy(frames[start : start + f].astype(np.float32) / 127.5 - 1.0).permute(0, 3, 1, 2)
    assert fps == 25 and torch.allclose(gt, expected, atol=1e-5)
    ref = int(batch["ref_start_idx"][0])
    assert abs(ref - start) >= f  # the reference window never overlaps the target window


def test_syncnet_samples_from_pipeline_output(repo_root, sample_run, tmp_path):
    cfg = load_config(repo_root / "configs/syncnet/pixel.yaml",
                      overrides=[f"data.train_fileslist={sample_run / 'fileslist.txt'}",
                                 f"data.audio_mel_cache_dir={tmp_path}", "data.num_workers=0"])
    ds = SyncNetDataset(cfg)
    sample = ds[0]
    assert sample["frames"].shape == (48, 128, 256)
    assert sample["audio_samples"].shape == (1, 80, 52)
    assert float(sample["y"]) in (0.0, 1.0)
    labels = [float(ds[i]["y"]) for i in range(40)]
    assert 0.2 < np.mean(labels) < 0.8  # positives and negatives both drawn
