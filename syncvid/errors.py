"""Errors every layer may raise and the command line turns into one line and an exit code."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

__all__ = ["OutputWriteError", "RunStopped", "UsageError", "free_space", "format_bytes"]

# errno values that mean "no room left": the disk is full or the user's quota is used up.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


class UsageError(ValueError):
    """The user asked for something that cannot be done as asked (bad flag, wrong folder, a
    missing optional package): the command line prints the message on one line and exits 2."""


class RunStopped(RuntimeError):
    """The run cannot go on (the output disk is full): what was done is recorded; the command line
    prints the message on one line and exits 1; rerunning the same command resumes."""


class OutputWriteError(OSError):
    """Writing one of syncvid's own output files failed: `path` is the file, `stage` the pipeline
    stage whose output it is, `reason` `disk_full` (ENOSPC, EDQUOT) or `write_error` (any other)."""

    def __init__(self, stage: str, path: str | Path, cause: OSError):
        super().__init__(cause.errno, cause.strerror or str(cause), str(path))
        self.stage = stage
        self.path = Path(path)

    @property
    def reason(self) -> str:
        return "disk_full" if self.errno in DISK_FULL_ERRNOS else "write_error"

    def describe(self) -> str:
        """One line: the file, the system's words and, for a full disk, the space left."""
        line = f"cannot write {self.path}: {self.strerror}"
        if self.reason == "disk_full":
            free = free_space(self.path)
            line += f" ({format_bytes(free)} free there)" if free is not None else ""
        return line

    def __str__(self) -> str:
        return self.describe()


def free_space(path: str | Path) -> int | None:
    """Bytes free on the file system holding `path` (or its nearest existing folder), None if unknown."""
    folder = Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def format_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"
