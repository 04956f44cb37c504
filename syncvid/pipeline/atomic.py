"""Atomic file writes for the pipeline's outputs (see `syncvid.atomic`)."""

from syncvid.atomic import atomic_path, write_bytes_atomic, write_json_atomic, write_text_atomic

__all__ = ["atomic_path", "write_bytes_atomic", "write_json_atomic", "write_text_atomic"]
