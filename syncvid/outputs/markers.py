"""Completion markers: `.syncvid/done/<key>.json`, one per source, written last (atomically) when
the source's clips are all in place.  A resume skips a source whose marker was written under the
same configuration fingerprint and is not waiting for a retry; `filter` and `rescore` rewrite the
rows in place.  This module is the only reader and writer of the format."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from syncvid.atomic import write_json_atomic
from syncvid.outputs.layout import OutputLayout

__all__ = ["DoneMarker", "read_marker", "read_markers"]


@dataclass
class DoneMarker:
    """What a finished source left: its manifest rows and how they were made."""

    source: str
    fingerprint: str
    rows: list[dict] = field(default_factory=list)
    duration_s: float = 0.0
    retry_on_resume: bool = False
    finished: float = 0.0
    path: Path | None = field(default=None, compare=False)

    def current(self, fingerprints: set[str] | frozenset[str]) -> bool:
        """Written under one of these configurations and not waiting for a retry."""
        return self.fingerprint in fingerprints and not self.retry_on_resume

    def to_json(self) -> dict:
        return {"source": self.source, "fingerprint": self.fingerprint, "rows": self.rows,
                "duration_s": self.duration_s, "retry_on_resume": self.retry_on_resume,
                "finished": self.finished or time.time()}

    @classmethod
    def from_json(cls, data: dict, path: Path | None = None) -> DoneMarker:
        return cls(source=str(data.get("source", "")), fingerprint=str(data.get("fingerprint", "")),
                   rows=list(data.get("rows", [])), duration_s=float(data.get("duration_s") or 0.0),
                   retry_on_resume=bool(data.get("retry_on_resume")), finished=float(data.get("finished") or 0.0),
                   path=path)

    def write(self, layout: OutputLayout) -> Path:
        """Write (atomically) under the layout's done folder; returns the path."""
        self.path = self.path or layout.done_marker(self.source)
        write_json_atomic(self.path, self.to_json())
        return self.path


def _read(path: Path) -> DoneMarker | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # absent, being replaced or damaged: the pipeline redoes that source
    return DoneMarker.from_json(data, path) if isinstance(data, dict) else None


def read_marker(layout: OutputLayout, source_rel: str) -> DoneMarker | None:
    """The marker of one source, or None when it has none (or an unreadable one)."""
    return _read(layout.done_marker(source_rel))


def read_markers(layout: OutputLayout) -> list[DoneMarker]:
    """Every readable marker of the output root, in file-name order."""
    if not layout.done_dir.is_dir():
        return []
    return [m for m in (_read(p) for p in sorted(layout.done_dir.glob("*.json"))) if m is not None]
