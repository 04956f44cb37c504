"""The package's comments and docstrings point only at documents the repository holds."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = re.compile(r"\bFACTS\b|\bDESIGN\.md\b|\bUNET\.md\b")
DOC = re.compile(r"\bdocs/([\w.-]+\.md)\b")
MEASURED_MS = re.compile(r"\b\d+(?:\.\d+)?(?:[-–]\d+(?:\.\d+)?)? ?ms\b")


def _sources():
    return sorted((ROOT / "syncvid").rglob("*.py"))


def test_no_reference_to_documents_outside_the_repository():
    found = [f"{p.relative_to(ROOT)}:{n}" for p in _sources()
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if OUTSIDE.search(line)]
    assert not found, f"references to documents outside the repository: {found}"


def test_every_named_doc_exists():
    named = {m for p in _sources() for m in DOC.findall(p.read_text(encoding="utf-8"))}
    assert named, "the package names its docs"
    missing = sorted(name for name in named if not (ROOT / "docs" / name).is_file())
    assert not missing, f"docs named in syncvid/ but absent: {missing}"


def test_measured_times_live_in_the_docs_not_in_the_face_modules():
    # docs/face.md carries the predictor's and the detector's measured times
    for name in ("ert.py", "dlib_backend.py"):
        text = (ROOT / "syncvid" / "face" / name).read_text(encoding="utf-8")
        assert not MEASURED_MS.search(text), (name, MEASURED_MS.search(text).group(0))
