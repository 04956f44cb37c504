"""What the commands on a finished output root share: opening it, the new configuration, its sources."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterable

from syncvid.config.pipeline_schema import PipelineConfig
from syncvid.errors import UsageError
from syncvid.outputs.layout import OutputLayout
from syncvid.outputs.markers import DoneMarker
from syncvid.records import Source

__all__ = ["changed_keys", "format_changes", "load_new", "open_root", "run_sources", "save_run_yaml"]


def changed_keys(old: PipelineConfig, new: PipelineConfig, sections: Iterable[str] | None = None) -> list[str]:
    """Dotted keys whose values differ between two configs (all sections unless `sections` names some)."""
    names = list(sections) if sections is not None else [f.name for f in dataclasses.fields(old)]
    out = []
    for name in names:
        a, b = dataclasses.asdict(getattr(old, name)), dataclasses.asdict(getattr(new, name))
        out.extend(f"{name}.{k}" for k in a if a[k] != b.get(k))
    return out


def run_sources(cfg: PipelineConfig, layout: OutputLayout, markers: list[DoneMarker]) -> list[Source]:
    """The sources of the run, as `syncvid pipeline` sees them (the input folder when it is still there,
    else every source with a marker: an output root copied elsewhere can still be filtered)."""
    from syncvid.pipeline.discovery import discover_inputs

    input_dir = Path(cfg.run.input_dir) if cfg.run.input_dir else None
    if input_dir is not None and input_dir.is_dir():
        return discover_inputs(input_dir, cfg.run.extensions, layout, cfg.run.keep_intermediate).sources
    base = input_dir or layout.root
    return [Source(base / m.source, m.source) for m in markers if m.source]


def open_root(output_dir) -> tuple[OutputLayout, PipelineConfig]:
    root = Path(output_dir).expanduser().resolve()
    layout = OutputLayout(root)
    if not layout.run_yaml.is_file() or not layout.done_dir.is_dir():
        raise UsageError(f"not a syncvid output root (no run.yaml or no completed source): {root}")
    from syncvid.config import load_config

    return layout, load_config(layout.run_yaml, family="pipeline")


def load_new(layout: OutputLayout, overrides, flags: dict) -> PipelineConfig:
    from syncvid.config import load_config

    return load_config(layout.run_yaml, overrides=list(overrides or []), flags=flags, family="pipeline")


def save_run_yaml(layout: OutputLayout, old: PipelineConfig, new: PipelineConfig) -> None:
    """run.yaml with `new`'s stage settings; the run section (folders, workers) stays the recorded one."""
    from syncvid.config import save_config

    save_config(dataclasses.replace(new, run=old.run), layout.run_yaml)


def format_changes(old: PipelineConfig, new: PipelineConfig, keys: list[str]) -> str:
    def value(cfg, key):
        section, name = key.split(".", 1)
        return getattr(getattr(cfg, section), name)

    return ", ".join(f"{k} {value(old, k)!r} -> {value(new, k)!r}" for k in keys) or "no threshold changed"
