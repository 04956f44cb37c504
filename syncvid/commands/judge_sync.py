"""Fit the corpus sync judge on a finished run's candidates and re-judge the run with it.

A run measures every candidate in pass one (aligned clips in affine_transformed/, their
landmarks in .syncvid/landmarks/<clip>.npy).  This module reads them back without decoding a
single video frame: the landmarks from their .npy files, the audio from the source (audio
stream only; the candidate's own audio when the source is gone or changed), fits
`syncvid.sync.corpus_judge` on them, saves the model in the output root (`MODEL_NAME`) and,
in `judge_output_root`, re-judges the run with it through `syncvid rescore --stages sync`.
`syncvid judge-sync OUT` runs it on a finished run; `sync.corpus_judge: true` runs it at the end
of every `syncvid pipeline`.

    fit_output_root(out)          # -> CorpusFitOutcome (model saved, or why not)
    judge_output_root(out)        # fit, then rescore sync with the model (rescore_main(corpus_judge=True))

A later run reuses the model with `--set sync.landmark_model=<out>/sync_model.npz`.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from syncvid.commands.common import load_new, open_root
from syncvid.commands.rescore import audio_matches, rescore_main, source_audio_context
from syncvid.config.pipeline_schema import PipelineConfig
from syncvid.outputs.markers import read_markers
from syncvid.sync.corpus_judge import (ClipFeatures, FitParams, FitReport, choose_clips, clip_features, fit_judge,
                                       save_model)

__all__ = ["MODEL_NAME", "Candidate", "CorpusFitOutcome", "collect_features", "find_candidates", "fit_for_config",
           "fit_output_root", "judge_output_root", "uses_corpus_judge"]

MODEL_NAME = "sync_model.npz"


@dataclass(frozen=True)
class CorpusFitOutcome:
    """What `fit_output_root` did: `model_path` is None when nothing was fitted (`message` says why)."""

    model_path: Path | None
    clips: int
    frames: int
    message: str
    report: FitReport | None = None


@dataclass(frozen=True)
class Candidate:
    """A candidate clip of a run that the corpus judge can read: its rows, landmarks and video file."""

    source_row: dict
    row: dict
    landmarks: Path
    video: Path

    @property
    def source(self) -> str:
        return str(self.row.get("source", ""))


def find_candidates(output_dir) -> list[Candidate]:
    """Every candidate of a run with its landmarks and video on disk, source after source."""
    layout, _ = open_root(output_dir)
    found = []
    for marker in read_markers(layout):
        source_row = next((r for r in marker.rows if r.get("row_type") == "source"), {})
        for row in marker.rows:
            if row.get("row_type") != "clip" or not row.get("candidate"):
                continue
            lm_path = layout.landmarks_dir / (Path(row["candidate"]).relative_to(layout.candidates_dir.name)
                                              .as_posix()[:-4] + ".npy")
            video = layout.root / row["candidate"]
            if lm_path.is_file() and video.is_file():
                found.append(Candidate(source_row, row, lm_path, video))
    return found


def collect_features(output_dir, reach: int, candidates: Sequence[Candidate] | None = None) -> list[ClipFeatures]:
    """`ClipFeatures` of `candidates` (default: every candidate of the run, `find_candidates`), one
    group per source.  Each source's audio stream is decoded once; a candidate whose source is gone
    or changed uses its own audio."""
    from syncvid.media.decode import decode_audio

    _, cfg = open_root(output_dir)
    sample_rate = cfg.media.sample_rate
    spf = sample_rate // cfg.media.fps
    found = find_candidates(output_dir) if candidates is None else candidates
    out: list[ClipFeatures] = []
    current, context = None, None  # the source whose audio is decoded (its clips come one after another)
    for c in found:
        source_row, row = c.source_row, c.row
        if source_row is not current:
            current = source_row
            try:
                context = source_audio_context(cfg, source_row)
            except Exception:  # an unreadable source: each candidate's own audio is used
                context = None
        landmarks = np.load(c.landmarks).astype(np.float32)
        n = len(landmarks) * spf
        a0 = int(row["start_frame"]) * spf
        try:
            own = decode_audio(c.video, sample_rate)[0]
        except Exception:
            continue  # a damaged candidate is left out of the corpus
        if context is not None and audio_matches(own, context[a0:a0 + n]):
            audio, start = context, a0
        else:
            audio, start = own, 0
        out.append(clip_features(landmarks, audio, start, reach, sample_rate=sample_rate,
                                 group=c.source))
    return out


def fit_output_root(output_dir, params: FitParams = FitParams(), model_path=None) -> CorpusFitOutcome:
    """Fit the corpus judge on a run's candidates and save it (default `<output_dir>/sync_model.npz`).

    Too few usable frames (`params.min_frames`): nothing is saved and the outcome's message says
    that the per-clip landmark estimator stays.
    """
    t0 = time.perf_counter()
    root = Path(output_dir).expanduser().resolve()
    found = find_candidates(root)
    candidates = len(found)
    chosen = [found[k] for k in choose_clips([c.source for c in found], params.max_clips, params.seed)]
    feats = collect_features(root, params.max_shift + params.context, chosen)
    frames = int(sum(np.isfinite(f.mouth).all(axis=1).sum() for f in feats))
    try:
        model, report = fit_judge(feats, params)
    except ValueError as exc:
        return CorpusFitOutcome(None, len(feats), frames,
                                f"corpus sync judge not fitted: {exc}; the per-clip landmark estimator stays")
    path = Path(model_path) if model_path is not None else root / MODEL_NAME
    save_model(model, path)
    return CorpusFitOutcome(path, len(feats), report.frames,
                            f"corpus sync judge fitted on {len(feats)} candidates"
                            f"{f' (drawn from {candidates})' if candidates > len(feats) else ''} ({report.frames} frames, "
                            f"{len(set(f.group for f in feats))} sources) in {time.perf_counter() - t0:.1f} s: {path}",
                            report)


def uses_corpus_judge(cfg: PipelineConfig) -> bool:
    """Whether sync is judged by a corpus judge fitted on the run (`sync.corpus_judge`, the default)."""
    return cfg.sync.corpus_judge and cfg.sync.backend == "landmark" and not cfg.sync.landmark_model


def fit_for_config(output_dir, cfg: PipelineConfig, params: FitParams = FitParams()) -> Path | None:
    """Fit the judge on a run's candidates with `cfg`'s search range and threshold, say what was
    done in one line, and return the saved model (None: not fitted, the per-clip estimator stays)."""
    params = dataclasses.replace(params, max_shift=int(cfg.sync.search_frames),
                                 threshold=float(cfg.sync.conf_threshold))
    outcome = fit_output_root(output_dir, params)
    print(f"syncvid: judge-sync: {outcome.message}")
    return outcome.model_path


def judge_output_root(output_dir, overrides: Sequence[str] = (), total_num_workers: int | None = None,
                      keep_config: bool = False, params: FitParams = FitParams()) -> int:
    """measure → fit → re-judge: fit on the run's candidates, then rescore sync with the model
    (`rescore_main` with `corpus_judge=True`).

    The run must use the landmark backend.  Without enough clips nothing changes (the message
    says so) and 0 is returned.
    """
    layout, _ = open_root(output_dir)
    cfg = load_new(layout, overrides, {})
    if cfg.sync.backend != "landmark":
        print(f"syncvid: judge-sync: sync.backend is {cfg.sync.backend}; the corpus judge serves the landmark "
              "backend only: nothing changed", file=sys.stderr)
        return 0
    return rescore_main(layout.root, ["sync"], list(overrides), total_num_workers, keep_config=keep_config,
                        corpus_judge=True, fit_params=params)
