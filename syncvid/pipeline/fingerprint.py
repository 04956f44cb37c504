"""The configuration fingerprint a completed source is recorded under."""

from __future__ import annotations

import dataclasses
import hashlib
import json

from syncvid.config.pipeline_schema import PipelineConfig

__all__ = ["FINGERPRINT_SECTIONS", "POST_PASS_KEYS", "config_fingerprint"]

FINGERPRINT_SECTIONS = ("media", "scene", "segment", "face", "sync", "quality", "encode")
# Keys of what happens after every source is done (they re-decide, never change what a source produces).
POST_PASS_KEYS = ("sync.corpus_judge",)


def config_fingerprint(cfg: PipelineConfig) -> str:
    """What a source's results depend on; thresholds are left out: they only decide, and a run with
    other thresholds re-decides completed sources from their recorded scores (as `syncvid filter`)."""
    from syncvid.pipeline.decisions import THRESHOLD_KEYS

    data = {name: dataclasses.asdict(getattr(cfg, name)) for name in FINGERPRINT_SECTIONS}
    for key in (*THRESHOLD_KEYS, *POST_PASS_KEYS):
        section, name = key.split(".")
        data[section].pop(name)
    data["outputs"] = [cfg.run.keep_candidates, cfg.run.keep_intermediate]
    return hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]
