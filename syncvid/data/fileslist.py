"""Which clips a dataset reads: a file list, or a pipeline output folder.

A file list is a text file with one clip path per line (absolute paths, as the pipeline's
`fileslist.txt` writes them; a relative line is taken relative to the list's folder).
Lines end at '\n' only (a trailing '\r' of a CRLF list is removed with the surrounding blanks).
Blank lines and lines starting with `#` are ignored.

A data folder is searched in this order: its `fileslist.txt`; every .mp4 under its
`high_visual_quality/` folder (the pipeline's final clips); every .mp4 under the folder.
Hidden files and folders (temporary `.part` files, bookkeeping) are never listed.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["FILESLIST_NAME", "FINAL_CLIPS_DIR", "read_fileslist", "discover_clips", "resolve_clip_paths"]

FILESLIST_NAME = "fileslist.txt"
FINAL_CLIPS_DIR = "high_visual_quality"


def read_fileslist(path: str | os.PathLike) -> list[str]:
    """Clip paths listed in `path`, in file order, duplicates removed (first kept)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"file list not found: {path}")
    base = path.resolve().parent
    seen: set[str] = set()
    out: list[str] = []
    with open(path, encoding="utf-8", newline="\n") as fh:  # lines end at '\n' only (a '\r' may be in a name)
        for line in fh:
            entry = line.strip()
            if not entry or entry.startswith("#"):
                continue
            p = Path(entry).expanduser()
            resolved = str(p if p.is_absolute() else base / p)
            if resolved not in seen:
                seen.add(resolved)
                out.append(resolved)
    return out


def _mp4s_under(root: Path) -> list[str]:
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.lower().endswith(".mp4") and not name.startswith("."):
                found.append(str(Path(dirpath) / name))
    return found


def discover_clips(data_dir: str | os.PathLike) -> list[str]:
    """Clip paths of a pipeline output folder (or any folder of .mp4 clips)."""
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data folder not found: {root}")
    listed = root / FILESLIST_NAME
    if listed.is_file():
        return read_fileslist(listed)
    final = root / FINAL_CLIPS_DIR
    if final.is_dir():
        return _mp4s_under(final)
    return _mp4s_under(root)


def resolve_clip_paths(
    fileslist: str | os.PathLike | None,
    data_dir: str | os.PathLike | None,
    keys: tuple[str, str] = ("data.train_fileslist", "data.train_data_dir"),
) -> list[str]:
    """Clip paths from a file list when one is named, else from a data folder.

    Raises ValueError when both are empty, naming the config `keys` to set.
    """
    if fileslist not in (None, ""):
        return read_fileslist(fileslist)
    if data_dir not in (None, ""):
        return discover_clips(data_dir)
    raise ValueError(f"no clips to read: set {keys[0]} or {keys[1]}")
