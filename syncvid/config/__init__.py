"""Configuration: typed schemas per family, YAML base chains, flags and ``--set`` overrides.

    cfg = load_config("configs/unet/stage2.yaml", overrides=["optimizer.lr=2e-5"])
    cfg.data.resolution          # typed attribute access; cfg.model is a UNetModelSection

See docs/configuration.md for the rules (precedence, ``extends``, the family rule).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping, Union

import syncvid
from syncvid.config.audio_schema import AudioConfig
from syncvid.config.errors import ConfigError, Problem
from syncvid.config.families import FAMILIES, family_of
from syncvid.config.loader import FAMILY_KEY, compose, decide_family, read_chain
from syncvid.config.pipeline_schema import PipelineConfig
from syncvid.config.syncnet_schema import SyncNetConfig
from syncvid.config.typecheck import to_plain
from syncvid.config.unet_schema import UNetConfig
from syncvid.config.yaml_io import dump_yaml

__all__ = [
    "CONFIG_ROOT",
    "DEFAULT_PIPELINE_CONFIG",
    "FAMILIES",
    "AnyConfig",
    "AudioConfig",
    "ConfigError",
    "PipelineConfig",
    "Problem",
    "SyncNetConfig",
    "UNetConfig",
    "config_to_yaml",
    "family_of",
    "load_config",
    "load_pipeline_config",
    "save_config",
    "shipped_config_path",
]

CONFIG_ROOT = Path(syncvid.__file__).resolve().parents[1] / "configs"
DEFAULT_PIPELINE_CONFIG = CONFIG_ROOT / "data" / "pipeline.yaml"

AnyConfig = Union[PipelineConfig, AudioConfig, SyncNetConfig, UNetConfig]


def load_config(
    path: str | os.PathLike,
    overrides: Iterable[str] | None = None,
    flags: Mapping[str, object] | None = None,
    *,
    family: str | None = None,
) -> AnyConfig:
    """Load, merge and validate a config file into its family's typed dataclasses.

    `flags` maps dotted keys to values of named command-line flags (None: not
    given); `overrides` are ``KEY=VALUE`` strings from ``--set``, applied last.
    `family`, when given, is the family the caller expects.  Raises ConfigError
    listing every problem found.
    """
    layers = read_chain(shipped_config_path(path))
    return compose(layers, decide_family(layers, family), overrides=overrides, flags=flags)


def shipped_config_path(path: str | os.PathLike) -> Path:
    """`path` itself, unless it is a relative `configs/…` path missing from the working folder and
    present among the shipped configs: then that one (so `--config configs/unet/stage2.yaml` and the
    defaults that name shipped configs work from any folder)."""
    p = Path(path)
    if p.is_absolute() or p.exists() or not p.parts or p.parts[0] != CONFIG_ROOT.name:
        return p
    shipped = CONFIG_ROOT.parent / p
    return shipped if shipped.is_file() else p


def load_pipeline_config(
    path: str | os.PathLike | None = None,
    overrides: Iterable[str] | None = None,
    flags: Mapping[str, object] | None = None,
) -> PipelineConfig:
    """The pipeline config: from `path`, else the shipped configs/data/pipeline.yaml,
    else (no configs folder installed) the schema defaults."""
    if path is None:
        if not DEFAULT_PIPELINE_CONFIG.is_file():
            return compose([], "pipeline", overrides=overrides, flags=flags)
        path = DEFAULT_PIPELINE_CONFIG
    return load_config(path, overrides=overrides, flags=flags, family="pipeline")


def config_to_yaml(cfg: AnyConfig) -> str:
    """The resolved config as YAML, led by its ``family:`` key so that it loads back identically."""
    data = {FAMILY_KEY: family_of(cfg), **_escape(to_plain(cfg))}
    return dump_yaml(data)


def save_config(cfg: AnyConfig, path: str | os.PathLike) -> Path:
    """Write the resolved config to `path` atomically (temporary file, then rename)."""
    from syncvid.atomic import write_text_atomic

    text = "# Resolved syncvid configuration: load it with load_config() or --config.\n" + config_to_yaml(cfg)
    return write_text_atomic(path, text, fsync=True)


def _escape(data: object) -> object:
    """Escape literal ``${`` in strings so that a written config does not interpolate on reload."""
    if isinstance(data, str):
        return data.replace("${", "\\${")
    if isinstance(data, dict):
        return {k: _escape(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_escape(v) for v in data]
    return data
