"""Stage 1 — broken: reject sources that cannot be probed, have no video, or no audio.

Inputs are only ever opened for reading: nothing here modifies, moves or deletes them.
"""

from __future__ import annotations

from pathlib import Path

from syncvid.media.probe import probe
from syncvid.records import MediaInfo, Rejected


def check_source(path: Path, require_audio: bool = True) -> MediaInfo:
    """Probe a source; raise `Rejected("broken", ...)` when it cannot become training clips."""
    info = probe(path)
    if require_audio and not info.has_audio:
        raise Rejected("broken", "no_audio", f"{path.name}: no audio stream (clips need speech)")
    return info
