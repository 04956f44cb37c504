"""Shared fixtures: the real media folder beside the repository, when present."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_MEDIA = REPO_ROOT.parent / "shared" / "media"
_OWN_CACHE: list[str] = []


def pytest_configure(config):
    """Derived model files (the face detector's saved form) go to a folder of the session's own,
    not the user's cache; worker processes inherit it through the environment."""
    if "SYNCVID_CACHE_DIR" not in os.environ:
        _OWN_CACHE.append(tempfile.mkdtemp(prefix="syncvid-test-cache-"))
        os.environ["SYNCVID_CACHE_DIR"] = _OWN_CACHE[0]


def pytest_unconfigure(config):
    for folder in _OWN_CACHE:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def shared_media() -> Path:
    """The folder of real talking-head videos; skips the test when it is absent."""
    if not (SHARED_MEDIA / "talk_25fps_844.mp4").is_file():
        pytest.skip(f"real test media not found at {SHARED_MEDIA} (a clone without ../shared)")
    return SHARED_MEDIA


@pytest.fixture
def media_or_none(request) -> Path | None:
    """The real videos' folder, or None when absent (for tests that also run on synthetic media)."""
    try:
        return request.getfixturevalue("shared_media")
    except pytest.skip.Exception:
        return None


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def sample_corpus(tmp_path_factory) -> Path:
    """The small sample corpus with ground truth (generated once per test session)."""
    from syncvid.sample import make_sample

    root = tmp_path_factory.mktemp("sample") / "raw"
    make_sample(root, size="small")
    return root


@pytest.fixture(scope="session")
def sample_run(sample_corpus, tmp_path_factory) -> Path:
    """Output root of one pipeline run (2 local worker processes) over the sample corpus."""
    from syncvid.config import load_pipeline_config
    from syncvid.pipeline.run import run_pipeline

    out = tmp_path_factory.mktemp("sample_out")
    flags = {"run.input_dir": str(sample_corpus), "run.output_dir": str(out), "run.total_num_workers": 2,
             "run.progress": False}
    run_pipeline(load_pipeline_config(None, flags=flags))
    return out
