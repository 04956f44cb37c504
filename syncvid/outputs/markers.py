"""Completion markers: `.syncvid/done/<key>.json`, one per source, written last (atomically) when
the source's clips are all in place.  A resume skips a source whose marker was written under the
same configuration fingerprint, is not waiting for a retry, was made from the same input file
(`input`: its size, mtime and a digest of its first and last MiB) and whose files are all still
there at their recorded sizes (`files`); `filter` and `rescore` rewrite the rows in place.  Markers
of earlier versions have neither `input` nor `files`: they are trusted to be of the same input, and
only the existence of their files is checked.  This module is the only reader and writer of the
format."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from syncvid.atomic import write_json_atomic
from syncvid.outputs.layout import OutputLayout

__all__ = ["DoneMarker", "read_marker", "read_markers", "source_identity"]

_EDGE_BYTES = 1 << 20  # the digest covers the first and the last MiB of a source


def _edge_digest(path: Path, size: int) -> str:
    """SHA-1 of the first and last MiB of a file (the whole file when it is at most 2 MiB)."""
    digest = hashlib.sha1()
    with open(path, "rb") as fh:
        digest.update(fh.read(_EDGE_BYTES))
        if size > 2 * _EDGE_BYTES:
            fh.seek(size - _EDGE_BYTES)
        digest.update(fh.read(_EDGE_BYTES))
    return digest.hexdigest()


def source_identity(path: str | os.PathLike) -> dict:
    """What tells an input file's content apart cheaply: size, mtime (ns) and the edge digest.
    Empty when the file cannot be read (the pipeline then records why)."""
    try:
        st = os.stat(path)
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "edge_sha1": _edge_digest(Path(path), st.st_size)}
    except OSError:
        return {}


@dataclass
class DoneMarker:
    """What a finished source left: its manifest rows and how they were made."""

    source: str
    fingerprint: str
    rows: list[dict] = field(default_factory=list)
    duration_s: float = 0.0
    retry_on_resume: bool = False
    finished: float = 0.0
    # `source_identity` of the input when it was processed ({} in markers of earlier versions).
    input: dict = field(default_factory=dict)
    # Bytes of each clip's files when they were written: {clip id: {"clip": n, "candidate": n}}
    # ("clip" is the corrected clip, in high_visual_quality/ or the pool; {} in earlier versions).
    files: dict = field(default_factory=dict)
    path: Path | None = field(default=None, compare=False)

    def current(self, fingerprints: set[str] | frozenset[str]) -> bool:
        """Written under one of these configurations and not waiting for a retry."""
        return self.fingerprint in fingerprints and not self.retry_on_resume

    def input_changed(self, source_path: str | os.PathLike) -> bool:
        """True when the input file is no longer the one this marker was made from.

        Same size and mtime: unchanged (nothing is read).  Same size, other mtime (a copy, `touch`):
        unchanged when the first and last MiB are the same.  A marker without an identity (earlier
        versions) is taken as unchanged."""
        if not self.input:
            return False
        try:
            st = os.stat(source_path)
        except OSError:
            return True
        if st.st_size != self.input.get("size"):
            return True
        if st.st_mtime_ns == self.input.get("mtime_ns"):
            return False
        try:
            return _edge_digest(Path(source_path), st.st_size) != self.input.get("edge_sha1")
        except OSError:
            return True

    def record_files(self, root: Path) -> None:
        """Note the size of every file the rows name (call right after writing them)."""
        self.files = {}
        for row in self.rows:
            if row.get("row_type") != "clip" or not row.get("clip"):
                continue
            sizes = {}
            for kind, rel in (("clip", row.get("output") or row.get("pooled")), ("candidate", row.get("candidate"))):
                if rel:
                    try:
                        sizes[kind] = (root / rel).stat().st_size
                    except OSError:
                        pass
            if sizes:
                self.files[row["clip"]] = sizes

    def set_file_size(self, clip: str, kind: str, size: int) -> None:
        """Record the new size of a clip's file that was written again (`rescore`)."""
        self.files.setdefault(clip, {})[kind] = size

    def missing_output(self, layout: OutputLayout) -> str | None:
        """Why the files this marker records are not all in place (one line), or None when they are.

        The corrected clip may be in high_visual_quality/ or the pool (an interrupted `filter` moved
        it and had not yet rewritten the marker); the candidate in affine_transformed/ is checked
        when the row names one.  A file of another size than recorded is damaged (cut short)."""
        for row in self.rows:
            if row.get("row_type") != "clip":
                continue
            sizes = self.files.get(row.get("clip") or "", {})
            for kind, rel in (("clip", row.get("output") or row.get("pooled")), ("candidate", row.get("candidate"))):
                if not rel:
                    continue
                places = _clip_places(layout, rel) if kind == "clip" else [layout.root / rel]
                found = next((p for p in places if p.is_file()), None)
                if found is None:
                    return f"{rel} is missing"
                expected = sizes.get(kind)
                if expected is not None:
                    actual = found.stat().st_size
                    if actual != expected:
                        shown = found.relative_to(layout.root).as_posix()
                        return f"{shown} has {actual} bytes, {expected} when it was written"
        return None

    def to_json(self) -> dict:
        return {"source": self.source, "fingerprint": self.fingerprint, "rows": self.rows,
                "duration_s": self.duration_s, "retry_on_resume": self.retry_on_resume,
                "finished": self.finished or time.time(), "input": self.input, "files": self.files}

    @classmethod
    def from_json(cls, data: dict, path: Path | None = None) -> DoneMarker:
        identity = data.get("input")
        files = data.get("files")
        return cls(source=str(data.get("source", "")), fingerprint=str(data.get("fingerprint", "")),
                   rows=list(data.get("rows", [])), duration_s=float(data.get("duration_s") or 0.0),
                   retry_on_resume=bool(data.get("retry_on_resume")), finished=float(data.get("finished") or 0.0),
                   input=dict(identity) if isinstance(identity, dict) else {},
                   files=dict(files) if isinstance(files, dict) else {}, path=path)

    def write(self, layout: OutputLayout) -> Path:
        """Write (atomically) under the layout's done folder; returns the path."""
        self.path = self.path or layout.done_marker(self.source)
        write_json_atomic(self.path, self.to_json())
        return self.path


def _clip_places(layout: OutputLayout, rel: str) -> list[Path]:
    """A corrected clip's recorded place, then the same name in the other of final folder and pool."""
    path = layout.root / rel
    for here, there in ((layout.final_dir, layout.pool_dir), (layout.pool_dir, layout.final_dir)):
        if path.is_relative_to(here):
            return [path, there / path.relative_to(here)]
    return [path]


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
