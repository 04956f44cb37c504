"""The parity fixtures: tensors produced by LatentSync's own code (see docs/training.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "latentsync_parity"


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    if not (FIXTURES / "manifest.json").is_file():
        pytest.skip(f"LatentSync parity fixtures not found at {FIXTURES} (a clone without ../shared)")
    return FIXTURES


def load_fixture(parity_dir: Path, name: str):
    return torch.load(parity_dir / name, map_location="cpu", weights_only=True)


def fixture_model_section(parity_dir: Path, stage: str) -> dict:
    return yaml.safe_load((parity_dir / f"unet_{stage}.yaml").read_text())["model"]
