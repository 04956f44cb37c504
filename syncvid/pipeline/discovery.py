"""Find source videos under an input folder: recursive, case-insensitive extensions, loop-safe."""

from __future__ import annotations

import os
from pathlib import Path

from syncvid.records import Source


def discover_sources(input_dir: Path, extensions: list[str], exclude: list[Path] = ()) -> list[Source]:
    """Every file under `input_dir` whose extension is in `extensions`, sorted by relative path.

    Symbolic links to folders outside the input root are followed (each real folder is
    visited once, so link loops end); links to folders inside the root are skipped, as
    those folders are found at their real place; hidden files and folders (names starting with '.') are
    ignored; folders in `exclude` (such as an output root inside the input) are skipped.
    """
    root = Path(input_dir).resolve()
    wanted = {e.lower() if e.startswith(".") else "." + e.lower() for e in extensions}
    excluded = {Path(p).resolve() for p in exclude}
    seen_dirs: set[str] = set()
    found: dict[str, Source] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen_dirs or Path(real) in excluded:
            dirnames[:] = []
            continue
        seen_dirs.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not _link_inside(Path(dirpath) / d, root))
        for name in filenames:
            if name.startswith(".") or Path(name).suffix.lower() not in wanted:
                continue
            path = Path(dirpath) / name
            if not path.is_file():
                continue
            rel = path.relative_to(root).as_posix()
            found.setdefault(rel, Source(path=path, rel=rel))
    return [found[k] for k in sorted(found)]


def _link_inside(path: Path, root: Path) -> bool:
    return path.is_symlink() and Path(os.path.realpath(path)).is_relative_to(root)
