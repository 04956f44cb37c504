"""Fit the corpus sync judge on a finished run's candidates and re-judge the run with it.

A run measures every candidate in pass one (aligned clips in affine_transformed/, their
landmarks in .syncvid/landmarks/<clip>.npy).  This module reads them back without decoding a
single video frame: the landmarks from their .npy files, the audio from the source (audio
stream only; the candidate's own audio when the source is gone or changed), fits
`syncvid.sync.corpus_judge` on them, saves the model in the output root (`MODEL_NAME`) and,
in `judge_output_root`, re-judges the run with it through `syncvid rescore --stages sync`.

    fit_output_root(out)          # -> CorpusFitOutcome (model saved, or why not)
    judge_output_root(out)        # fit, then rescore sync with sync.landmark_model=<model>

A later run reuses the model with `--set sync.landmark_model=<out>/sync_model.npz`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np

from syncvid.sync.corpus_judge import ClipFeatures, FitParams, FitReport, clip_features, fit_judge, save_model

__all__ = ["MODEL_NAME", "CorpusFitOutcome", "collect_features", "fit_output_root", "judge_output_root"]

MODEL_NAME = "sync_model.npz"
_AUDIO_MATCH_TOLERANCE = 0.3  # relative RMS: a source whose audio differs more was replaced


@dataclass(frozen=True)
class CorpusFitOutcome:
    """What `fit_output_root` did: `model_path` is None when nothing was fitted (`message` says why)."""

    model_path: Path | None
    clips: int
    frames: int
    message: str
    report: FitReport | None = None


def _markers(root: Path) -> list[dict]:
    out = []
    for path in sorted((root / ".syncvid" / "done").glob("*.json")):
        try:
            out.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue  # a marker being replaced or damaged: its source is left out
    return out


def _source_audio(input_dir: str, source_row: dict, rate: int) -> np.ndarray | None:
    """The source's audio from output frame 0 on, as the run held it (None: source gone)."""
    from syncvid.media.decode import decode_audio

    if not input_dir or source_row.get("start_s") is None:
        return None
    path = Path(input_dir) / source_row["source"]
    if not path.is_file():
        return None
    try:
        samples, start, _ = decode_audio(path, rate)
    except Exception:
        return None
    skip = round((Fraction(source_row["start_s"]) - start) * rate)
    return samples[skip:] if 0 <= skip < len(samples) else None


def _matches(candidate: np.ndarray, reference: np.ndarray) -> bool:
    n = min(len(candidate), len(reference))
    if n == 0:
        return False
    a, b = candidate[:n].astype(np.float64), reference[:n].astype(np.float64)
    scale = max(float(np.sqrt(np.mean(b * b))), 1e-3)
    return float(np.sqrt(np.mean((a - b) ** 2))) <= _AUDIO_MATCH_TOLERANCE * scale


def collect_features(output_dir, reach: int, *, input_dir: str | None = None, sample_rate: int = 16000,
                     fps: int = 25) -> list[ClipFeatures]:
    """`ClipFeatures` of every candidate of a run that has landmarks (one group per source)."""
    from syncvid.media.decode import decode_audio

    root = Path(output_dir)
    if input_dir is None:
        input_dir = _run_input_dir(root)
    spf = sample_rate // fps
    out: list[ClipFeatures] = []
    for marker in _markers(root):
        rows = marker.get("rows", [])
        clips = [r for r in rows if r.get("row_type") == "clip" and r.get("candidate")]
        if not clips:
            continue
        source_row = next((r for r in rows if r.get("row_type") == "source"), {})
        context = _source_audio(input_dir or "", source_row, sample_rate)
        for row in clips:
            lm_path = root / ".syncvid" / "landmarks" / (Path(row["candidate"]).relative_to("affine_transformed")
                                                          .as_posix()[:-4] + ".npy")
            cand = root / row["candidate"]
            if not lm_path.is_file() or not cand.is_file():
                continue
            landmarks = np.load(lm_path).astype(np.float32)
            n = len(landmarks) * spf
            a0 = int(row["start_frame"]) * spf
            try:
                own = decode_audio(cand, sample_rate)[0]
            except Exception:
                continue  # a damaged candidate is left out of the corpus
            if context is not None and _matches(own, context[a0:a0 + n]):
                audio, start = context, a0
            else:
                audio, start = own, 0
            out.append(clip_features(landmarks, audio, start, reach, sample_rate=sample_rate,
                                     group=str(row.get("source", ""))))
    return out


def _run_input_dir(root: Path) -> str:
    from syncvid.config import load_config

    run_yaml = root / "run.yaml"
    if not run_yaml.is_file():
        raise FileNotFoundError(f"not a syncvid output root (no run.yaml): {root}")
    return str(load_config(run_yaml, family="pipeline").run.input_dir or "")


def fit_output_root(output_dir, params: FitParams = FitParams(), model_path=None) -> CorpusFitOutcome:
    """Fit the corpus judge on a run's candidates and save it (default `<output_dir>/sync_model.npz`).

    Too few usable frames (`params.min_frames`): nothing is saved and the outcome's message says
    that the per-clip landmark estimator stays.
    """
    t0 = time.perf_counter()
    root = Path(output_dir).expanduser().resolve()
    feats = collect_features(root, params.max_shift + params.context)
    frames = int(sum(np.isfinite(f.mouth).all(axis=1).sum() for f in feats))
    try:
        model, report = fit_judge(feats, params)
    except ValueError as exc:
        return CorpusFitOutcome(None, len(feats), frames,
                                f"corpus sync judge not fitted: {exc}; the per-clip landmark estimator stays")
    path = Path(model_path) if model_path is not None else root / MODEL_NAME
    save_model(model, path)
    return CorpusFitOutcome(path, len(feats), report.frames,
                            f"corpus sync judge fitted on {len(feats)} candidates ({report.frames} frames, "
                            f"{len(set(f.group for f in feats))} sources) in {time.perf_counter() - t0:.1f} s: {path}",
                            report)


def judge_output_root(output_dir, overrides: Sequence[str] = (), total_num_workers: int | None = None,
                      params: FitParams = FitParams()) -> int:
    """measure → fit → re-judge: fit on the run's candidates, then rescore sync with the model.

    The run must use the landmark backend.  Without enough clips nothing changes (the message
    says so) and 0 is returned.
    """
    import sys

    from syncvid.config import load_config

    root = Path(output_dir).expanduser().resolve()
    if not (root / "run.yaml").is_file():
        raise FileNotFoundError(f"not a syncvid output root (no run.yaml): {root}")
    cfg = load_config(root / "run.yaml", overrides=list(overrides), family="pipeline")
    if cfg.sync.backend != "landmark":
        print(f"syncvid: judge-sync: sync.backend is {cfg.sync.backend}; the corpus judge serves the landmark "
              "backend only: nothing changed", file=sys.stderr)
        return 0
    params = FitParams(**{**params.__dict__, "max_shift": int(cfg.sync.search_frames),
                          "threshold": float(cfg.sync.conf_threshold)})
    outcome = fit_output_root(root, params)
    print(f"syncvid: judge-sync: {outcome.message}")
    if outcome.model_path is None:
        return 0
    from syncvid.pipeline.refilter import rescore_main

    return rescore_main(root, ["sync"], [*overrides, f"sync.landmark_model={outcome.model_path}"],
                        total_num_workers)
