"""Small helpers for files that must appear complete or not at all."""

from __future__ import annotations

import json
import os
from pathlib import Path


def temp_name(path: Path) -> Path:
    """Hidden temporary name beside `path` (same folder, so the final rename is atomic)."""
    return path.with_name(f".{path.name}.part-{os.getpid()}")


def write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: Path, data) -> None:
    write_text_atomic(path, json.dumps(data, ensure_ascii=False, indent=1, default=str))
