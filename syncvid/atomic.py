"""Files that appear complete or not at all: write to a hidden temporary name beside the target, then rename.

Every output of syncvid goes through here (or through `syncvid.media.encode.ClipWriter`, which
follows the same rule), so a crash never leaves a partial file under a final name.  Temporary
names start with '.' and end with '.part', so an interrupted run's leftovers are recognisable;
they fit the 255-byte name limit whatever the target's name (see `temp_name`).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

NAME_MAX = 255  # bytes in one file name on the usual file systems (ext4, xfs, btrfs, APFS, NTFS in UTF-16 units)


def temp_name(name: str) -> str:
    """A fresh hidden temporary name for a file called `name`: `.<name>.<8 hex>.part`.

    When that would exceed NAME_MAX bytes, `name` is shortened to its start plus `~` and 8 hex
    digits of its SHA-1, so a temporary can be made beside any valid name.
    """
    tail = f".{secrets.token_hex(4)}.part"
    budget = NAME_MAX - 1 - len(tail)
    data = name.encode("utf-8", "surrogateescape")
    if len(data) > budget:
        digest = hashlib.sha1(data).hexdigest()[:8]
        name = data[: budget - len(digest) - 1].decode("utf-8", "ignore") + "~" + digest
    return f".{name}{tail}"


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in `path`'s folder; on success it is renamed onto `path`, on error removed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = target.parent / temp_name(target.name)
        try:  # created empty and exclusively, with the permissions of an ordinary new file
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
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
