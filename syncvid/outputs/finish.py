"""Finishing a run: the manifest, fileslist.txt, the contact sheet and the report, all from the
completion markers; and removing the hidden temporaries an interrupted run left."""

from __future__ import annotations

from syncvid.atomic import write_text_atomic
from syncvid.outputs.layout import OutputLayout
from syncvid.outputs.manifest import write_manifest
from syncvid.outputs.markers import read_marker
from syncvid.records import Source

__all__ = ["collect_rows", "finish_outputs", "remove_stale_temporaries"]


def collect_rows(layout: OutputLayout, sources: list[Source]) -> list[dict]:
    """The manifest rows of every source that has a completion marker, in source order."""
    rows: list[dict] = []
    for source in sources:
        marker = read_marker(layout, source.rel)
        if marker is not None:
            rows.extend(marker.rows)
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
    """Delete hidden temporary files left by an interrupted run (only our own output folders)."""
    removed = 0
    for folder in layout.all_stage_dirs() + [layout.state_dir, layout.root]:
        if not folder.is_dir():
            continue
        pattern = "**/.*" if folder != layout.root else ".*"
        for path in folder.glob(pattern):
            if path.is_file() and (".part" in path.name or ".tmp" in path.name):
                path.unlink(missing_ok=True)
                removed += 1
    return removed
