"""Stage 1 — broken: open a source for its single decode, or reject it with a reason.

A source that cannot be probed or decoded (not media, empty, truncated before its first
frame), has no video stream, or has no audio stream is rejected with
``Rejected("broken", reason)`` (`decode_error`, `empty_file`, `truncated`, `zero_frames`,
`no_video`, `no_audio`, ...).  Inputs are only ever opened for reading: nothing here
modifies, moves or deletes them.
"""

from __future__ import annotations

from pathlib import Path

from syncvid.config.pipeline_schema import MediaSection
from syncvid.media.decode import SourceReader


def open_source(path: Path, params: MediaSection) -> SourceReader:
    """The source opened once (probe + audio decoded; video ready to stream at params.fps)."""
    return SourceReader(path, fps=params.fps, sample_rate=params.sample_rate, threads=params.decode_threads,
                        require_audio=True)
