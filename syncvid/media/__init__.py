"""Media I/O: probe sources, decode them once at a constant rate, encode clips atomically."""

from .decode import NearestFrameSelector, SourceReader, decode_audio, read_clip, rotate_upright, select_source_frames
from .encode import ClipWriter, write_clip
from .probe import probe, rotation_from_display_angle

__all__ = [
    "ClipWriter",
    "NearestFrameSelector",
    "SourceReader",
    "decode_audio",
    "probe",
    "read_clip",
    "rotate_upright",
    "rotation_from_display_angle",
    "select_source_frames",
    "write_clip",
]
