"""Fixtures for the dataset tests: small synthetic clips written with the project's encoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from syncvid.config import load_config
from syncvid.data.synthetic import click_clip, talking_clip
from syncvid.media.encode import write_clip

RES = 64
CLICK_FRAMES = {"click_a.mp4": 21, "click_b.mp4": 37}


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> Path:
    """Four 60-frame talking clips, two 60-frame click clips, one 20-frame clip, one 40-frame clip."""
    root = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(7)
    for i in range(4):
        frames, audio, _ = talking_clip(60, RES, rng)
        write_clip(root / f"talk_{i}.mp4", frames, audio)
    for name, frame in CLICK_FRAMES.items():
        frames, audio = click_clip(60, RES, frame)
        write_clip(root / name, frames, audio)
    frames, audio, _ = talking_clip(20, RES, rng)
    write_clip(root / "short_20.mp4", frames, audio)
    frames, audio, _ = talking_clip(40, RES, rng)
    write_clip(root / "medium_40.mp4", frames, audio)
    return root


def write_list(path: Path, clips: list[Path]) -> Path:
    path.write_text("".join(f"{c}\n" for c in clips))
    return path


@pytest.fixture
def syncnet_cfg(repo_root, tmp_path):
    def make(clips: list[Path], *extra: str):
        lst = write_list(tmp_path / "list.txt", clips)
        return load_config(
            repo_root / "configs/syncnet/cpu_small.yaml",
            [f"data.train_fileslist={lst}", f"data.train_output_dir={tmp_path / 'run'}", *extra],
        )

    return make


@pytest.fixture
def unet_cfg(repo_root, tmp_path):
    def make(clips: list[Path], *extra: str):
        lst = write_list(tmp_path / "list.txt", clips)
        return load_config(
            repo_root / "configs/unet/stage1.yaml",
            [
                f"data.train_fileslist={lst}",
                f"data.train_output_dir={tmp_path / 'run'}",
                f"data.audio_mel_cache_dir={tmp_path / 'mel'}",
                f"data.resolution={RES}",
                *extra,
            ],
        )

    return make
