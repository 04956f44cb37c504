"""The configuration families, their schemas, and how a file's family is decided.

Rule, first match wins:
1. an explicit top-level ``family:`` key in the file, or else in a file of its base chain;
2. the file's location: named ``audio.yaml`` -> audio; in a folder named ``data`` ->
   pipeline, ``syncnet`` -> syncnet, ``unet`` -> unet (then the same test on its bases);
3. the one family whose schema knows every key the file states;
4. when no family knows them all: the one family that knows most of them, a key one typo
   away from a known key counting half (and followed into that key's section), provided it
   knows more than half of them; its schema then names the typo ("did you mean ...").
A caller that expects a family (the pipeline command expects ``pipeline``) uses it
when rules 1-2 say nothing, and refuses a file they assign to another family.
"""

from __future__ import annotations

from pathlib import Path

from syncvid.config.audio_schema import AudioConfig
from syncvid.config.pipeline_schema import PipelineConfig
from syncvid.config.syncnet_schema import SyncNetConfig
from syncvid.config.unet_schema import UNetConfig

FAMILIES: dict[str, type] = {
    "pipeline": PipelineConfig,
    "audio": AudioConfig,
    "syncnet": SyncNetConfig,
    "unet": UNetConfig,
}

FOLDER_FAMILIES: dict[str, str] = {"data": "pipeline", "syncnet": "syncnet", "unet": "unet"}
FILE_FAMILIES: dict[str, str] = {"audio.yaml": "audio", "audio.yml": "audio"}


# Keys a family no longer has, with why.  A file, flag or --set that still states one is
# accepted: the key is dropped, with a one-line notice when its value is not null.
RETIRED_KEYS: dict[str, dict[str, str]] = {
    "pipeline": {
        "run.temp_dir": "partial files are written, hidden, beside their final names and renamed when complete",
    },
}


def family_from_path(path: Path) -> tuple[str, str] | None:
    """(family, reason) from a file's name or folder, or None."""
    if path.name in FILE_FAMILIES:
        return FILE_FAMILIES[path.name], f"file name {path.name}"
    folder = path.parent.name
    if folder in FOLDER_FAMILIES:
        return FOLDER_FAMILIES[folder], f"folder {folder}/"
    return None


def family_of(cfg: object) -> str:
    """The family name of a typed configuration object."""
    for name, schema in FAMILIES.items():
        if type(cfg) is schema:
            return name
    known = ", ".join(s.__name__ for s in FAMILIES.values())
    raise TypeError(f"not a configuration object: {type(cfg).__name__} (expected one of {known})")
