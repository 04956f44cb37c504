"""manifest.parquet: one row per source and one per candidate segment (docs/outputs.md, "manifest.parquet")."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from syncvid.atomic import atomic_path

# Fixed columns, in order, with their types; stages may add more measurement columns.
COLUMNS: dict[str, pa.DataType] = {
    "source": pa.string(),
    "clip": pa.string(),
    "row_type": pa.string(),  # "source" | "clip"
    "status": pa.string(),  # "kept" | "dropped"
    "stage": pa.string(),
    "reason": pa.string(),
    "message": pa.string(),
    "start_s": pa.float64(),
    "end_s": pa.float64(),
    "num_frames": pa.int64(),
    "output": pa.string(),
    "candidate": pa.string(),
    "duration_s": pa.float64(),
    "src_fps": pa.string(),
    "src_width": pa.int64(),
    "src_height": pa.int64(),
    "src_audio_rate": pa.int64(),
    "face_size_px": pa.float64(),
    "face_detect_rate": pa.float64(),
    "face_jitter": pa.float64(),
    "face_backend": pa.string(),
    "sync_offset_frames": pa.int64(),
    "sync_conf": pa.float64(),
    "sync_backend": pa.string(),
    "quality_score": pa.float64(),
    "quality_backend": pa.string(),
}

DESCRIPTIONS = {
    "sync_offset_frames": "audio-video offset in frames at 25 fps, syncnet_python convention: positive = the audio "
    "leads the video; the final clip's audio was delayed by this many frames to correct it",
}


def _normalise(value):
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()  # numpy scalars
    return value


def rows_to_table(rows: list[dict]) -> pa.Table:
    rows = [{k: _normalise(v) for k, v in r.items()} for r in rows]
    extra: list[str] = []
    for r in rows:
        for k in r:
            if k not in COLUMNS and k not in extra:
                extra.append(k)
    arrays, fields = [], []
    for name, typ in COLUMNS.items():
        arrays.append(pa.array([r.get(name) for r in rows], type=typ))
        fields.append(pa.field(name, typ))
    for name in sorted(extra):
        values = [r.get(name) for r in rows]
        try:
            arr = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arr = pa.array([None if v is None else str(v) for v in values], type=pa.string())
        if pa.types.is_null(arr.type):
            arr = arr.cast(pa.string())
        arrays.append(arr)
        fields.append(pa.field(name, arr.type))
    meta = {b"syncvid.description." + k.encode(): v.encode() for k, v in DESCRIPTIONS.items()}
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=meta))


def write_manifest(path: Path, rows: list[dict]) -> None:
    """Write rows (sorted by source, then clip) to `path` atomically."""
    rows = sorted(rows, key=lambda r: (r.get("source") or "", r.get("row_type") != "source", r.get("clip") or ""))
    table = rows_to_table(rows)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_manifest(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()
