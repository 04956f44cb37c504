"""Shared fixtures: the real media folder beside the repository, when present."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_MEDIA = REPO_ROOT.parent / "shared" / "media"


@pytest.fixture(scope="session")
def shared_media() -> Path:
    """The folder of real talking-head videos; skips the test when it is absent."""
    if not (SHARED_MEDIA / "talk_25fps_844.mp4").is_file():
        pytest.skip(f"real test media not found at {SHARED_MEDIA} (a clone without ../shared)")
    return SHARED_MEDIA


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
