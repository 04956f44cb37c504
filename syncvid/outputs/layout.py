"""The output root's folders and files (docs/outputs.md, "The output root"), in one place."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

STATE_DIR = ".syncvid"


@dataclass(frozen=True)
class OutputLayout:
    root: Path

    @property
    def final_dir(self) -> Path:
        return self.root / "high_visual_quality"

    @property
    def candidates_dir(self) -> Path:
        return self.root / "affine_transformed"

    def intermediate_dir(self, name: str) -> Path:
        return self.root / name

    @property
    def fileslist(self) -> Path:
        return self.root / "fileslist.txt"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.parquet"

    @property
    def run_yaml(self) -> Path:
        return self.root / "run.yaml"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    @property
    def contact_sheet(self) -> Path:
        return self.root / "contact_sheet.png"

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def done_dir(self) -> Path:
        return self.state_dir / "done"

    @property
    def skipped_file(self) -> Path:
        """Manifest rows of the input paths the last pipeline run could not take as sources."""
        return self.state_dir / "skipped.json"

    @property
    def lock_file(self) -> Path:
        return self.state_dir / "run.lock"

    @property
    def pool_dir(self) -> Path:
        """Corrected clips dropped by a sync or quality threshold (`syncvid filter` may restore them)."""
        return self.state_dir / "pool"

    @property
    def landmarks_dir(self) -> Path:
        return self.state_dir / "landmarks"

    def done_marker(self, source_rel: str) -> Path:
        return self.done_dir / f"{source_key(source_rel)}.json"

    def all_stage_dirs(self) -> list[Path]:
        names = ["high_visual_quality", "affine_transformed", "resampled", "shot", "segmented"]
        found = [self.root / n for n in names]
        found += sorted(self.root.glob("av_synced_*"))
        return found


def source_key(source_rel: str) -> str:
    """A file-name-safe, unique key for a source's relative path."""
    digest = hashlib.sha1(source_rel.encode("utf-8")).hexdigest()[:12]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(source_rel).stem)[:40].lstrip("-.") or "source"
    return f"{stem}-{digest}"
