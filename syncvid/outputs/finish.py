"""Finishing a run: the manifest, fileslist.txt, the contact sheet and the report, all from the
completion markers; and removing the hidden temporaries an interrupted run left."""

from __future__ import annotations

import json
import re

from syncvid.atomic import write_json_atomic, write_text_atomic
from syncvid.outputs.layout import OutputLayout
from syncvid.outputs.manifest import write_manifest
from syncvid.outputs.markers import read_marker
from syncvid.records import Source

__all__ = ["collect_rows", "finish_outputs", "read_skipped", "remove_stale_temporaries", "write_skipped"]

# `.<name>.<8 random characters>.part`: the temporaries of `syncvid.atomic` and `ClipWriter`
_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.part$", re.DOTALL)


def write_skipped(layout: OutputLayout, rows: list[dict]) -> None:
    """Record the rows of the input paths a pipeline run found but could not take as sources."""
    write_json_atomic(layout.skipped_file, {"rows": rows})


def read_skipped(layout: OutputLayout) -> list[dict]:
    """The rows `write_skipped` recorded last ([] when none were, or the file is unreadable)."""
    try:
        data = json.loads(layout.skipped_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    rows = data.get("rows") if isinstance(data, dict) else None
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def collect_rows(layout: OutputLayout, sources: list[Source]) -> list[dict]:
    """The manifest rows of every source that has a completion marker, in source order, then the
    rows of the input paths the last pipeline run skipped (special files, bad names, ...)."""
    rows: list[dict] = []
    for source in sources:
        marker = read_marker(layout, source.rel)
        if marker is not None:
            rows.extend(marker.rows)
    rows.extend(read_skipped(layout))
    return rows


def finish_outputs(layout: OutputLayout, sources: list[Source], contact_sheet: bool = True) -> list[dict]:
    """Write manifest.parquet, fileslist.txt, the contact sheet and the report from the completion markers.

    With `contact_sheet` false (`run.contact_sheet`), no contact_sheet.png is written and one
    left by an earlier run is removed, so that the folder holds none that is out of date."""
    from syncvid.outputs.report import write_contact_sheet, write_report

    rows = collect_rows(layout, sources)
    write_manifest(layout.manifest, rows)
    kept = sorted(str((layout.root / r["output"]).resolve()) for r in rows
                  if r.get("row_type") == "clip" and r.get("status") == "kept" and r.get("output"))
    write_text_atomic(layout.fileslist, "".join(p + "\n" for p in kept))
    if contact_sheet:
        write_contact_sheet(layout, rows)
    else:
        layout.contact_sheet.unlink(missing_ok=True)
    write_report(layout, rows)
    return rows


def remove_stale_temporaries(layout: OutputLayout) -> int:
    """Delete hidden temporary files left by an interrupted run (only our own output folders).

    Only names of the temporaries' exact form are removed, so that other hidden files at an output
    root that is also the input folder are left alone."""
    removed = 0
    for folder in layout.all_stage_dirs() + [layout.state_dir, layout.root]:
        if not folder.is_dir():
            continue
        pattern = "**/.*" if folder != layout.root else ".*"
        for path in folder.glob(pattern):
            if _TEMPORARY.match(path.name) and path.is_file() and not path.is_symlink():
                path.unlink(missing_ok=True)
                removed += 1
    return removed
