"""What an install of syncvid puts beside it."""

from __future__ import annotations

import importlib.metadata as md
from pathlib import Path

import pytest

GUI_OPENCV = ("opencv-python", "opencv-contrib-python")


def _installed(name: str) -> bool:
    try:
        md.distribution(name)
    except md.PackageNotFoundError:
        return False
    return True


@pytest.mark.parametrize("name", GUI_OPENCV)
def test_no_gui_opencv_build_is_installed(name):
    # A GUI OpenCV wheel next to opencv-python-headless wins the `cv2` import and
    # needs libGL.so.1, which headless machines do not have.
    assert _installed("opencv-python-headless")
    assert not _installed(name), (
        f"{name} is installed beside opencv-python-headless; "
        "uninstall it (it comes with the plain 'scenedetect' distribution)")


def test_dependencies_name_only_headless_builds():
    tomllib = pytest.importorskip("tomllib")

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    project = tomllib.loads(pyproject.read_text())["project"]
    names = [d.split(";")[0].split("[")[0] for d in project["dependencies"]]
    names = [n.split(">")[0].split("<")[0].split("=")[0].strip().lower() for n in names]
    assert "scenedetect-headless" in names
    assert "scenedetect" not in names
    assert not set(GUI_OPENCV) & set(names)
