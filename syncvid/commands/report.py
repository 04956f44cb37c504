"""`syncvid report OUT`: rewrite report.html and the contact sheet from the completion markers."""

from __future__ import annotations

from syncvid.commands.common import open_root, run_sources
from syncvid.outputs.finish import collect_rows
from syncvid.outputs.markers import read_markers
from syncvid.outputs.report import write_contact_sheet, write_report

__all__ = ["report_main"]


def report_main(output_dir) -> int:
    """`syncvid report`: rewrite report.html and the contact sheet from the completion markers."""
    layout, cfg = open_root(output_dir)
    rows = collect_rows(layout, run_sources(cfg, layout, read_markers(layout)))
    if cfg.run.contact_sheet:
        write_contact_sheet(layout, rows)
    else:
        layout.contact_sheet.unlink(missing_ok=True)
    path = write_report(layout, rows)
    print(f"syncvid: report: {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0
