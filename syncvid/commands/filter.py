"""`syncvid filter OUT`: re-apply the sync and quality thresholds to the scores recorded in the
completion markers.  Nothing is decoded; clips move between high_visual_quality/ and the hidden pool
with atomic renames; the markers, manifest.parquet, fileslist.txt, the contact sheet, report.html
and run.yaml are rewritten."""

from __future__ import annotations

import sys
import time

from syncvid.commands.common import changed_keys, format_changes, load_new, open_root, run_sources, save_run_yaml
from syncvid.errors import UsageError
from syncvid.outputs.finish import finish_outputs
from syncvid.outputs.markers import read_markers
from syncvid.pipeline.decisions import THRESHOLD_KEYS
from syncvid.pipeline.lock import RunLock
from syncvid.pipeline.rejudge import apply_thresholds

__all__ = ["filter_main"]


def filter_main(output_dir, sync_conf_threshold: float | None, overrides: list[str] | None) -> int:
    """`syncvid filter`: new thresholds from the recorded scores (nothing decoded)."""
    layout, old = open_root(output_dir)
    flags = {"sync.conf_threshold": sync_conf_threshold} if sync_conf_threshold is not None else {}
    with RunLock(layout.lock_file):
        layout, old = open_root(output_dir)  # re-read under the lock
        new = load_new(layout, overrides, flags)
        keys = changed_keys(old, new)
        others = [k for k in keys if k not in THRESHOLD_KEYS]
        if others:
            raise UsageError(
                "filter changes thresholds only (sync.conf_threshold, sync.max_offset_frames, quality.min_*, "
                f"quality.max_*); {', '.join(others)} "
                "changes what is measured: use `syncvid rescore` (sync, quality) or rerun `syncvid pipeline`")
        started = time.time()
        result = apply_thresholds(layout, new, previous=old)
        save_run_yaml(layout, old, new)
        finish_outputs(layout, run_sources(new, layout, read_markers(layout)), contact_sheet=new.run.contact_sheet)
    print(f"syncvid: filter: {result.kept_before} -> {result.kept_after} clips kept "
          f"({result.restored} restored from the pool, {result.pooled} moved to it; "
          f"{format_changes(old, new, keys)}; {time.time() - started:.2f} s)")
    for source, why in result.incomplete:
        print(f"syncvid: filter: {source} is incomplete ({why}) and was left as it is; "
              "`syncvid pipeline` redoes it", file=sys.stderr)
    if result.stale_sources:
        print(f"syncvid: filter: {result.stale_sources} source(s) done under another configuration were left "
              "as they are; `syncvid pipeline` redoes them", file=sys.stderr)
    return 0
