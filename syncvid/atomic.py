"""Files that appear complete or not at all: write to a hidden temporary name beside the target, then rename.

Every output of syncvid goes through here (or through `syncvid.media.encode.ClipWriter`, which
follows the same rule), so a crash never leaves a partial file under a final name.  Temporary
names start with '.' and contain '.part', so an interrupted run's leftovers are recognisable.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in `path`'s folder; on success it is renamed onto `path`, on error removed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.fchmod(fd, 0o666 & ~_UMASK)  # the permissions of an ordinary new file, not mkstemp's 0600
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes, fsync: bool = False) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str, fsync: bool = False) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"), fsync=fsync)


def write_json_atomic(path: str | os.PathLike, data, fsync: bool = True) -> Path:
    """JSON (UTF-8, indented); flushed to disk by default, as completion markers must survive a crash."""
    return write_text_atomic(path, json.dumps(data, ensure_ascii=False, indent=1, default=str), fsync=fsync)
