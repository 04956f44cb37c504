"""Cost of fitting the corpus sync judge as a run grows (`syncvid.sync.corpus_judge.fit_judge`).

A run of N candidates is imitated by N windows of 125 frames (5 s, as the pipeline cuts) drawn at
random places of the real talking heads of --media and --media/real (their landmarks and audio as
the pipeline's decode + face stage gives them, cached by `bench_sync.py --judge --cache DIR`):
the same frames recur, so the figures are about cost, not accuracy.  For each N it prints the
seconds of one core and the peak memory of
  - features: `clip_features` of the candidates the fit uses (at most `FitParams.max_clips`, drawn
    evenly over the sources as `syncvid judge-sync` draws them; log-mel of the audio, mouth shape);
  - fit: `fit_judge` (the three fits, the two re-judgings of its clips and the calibration);
  - re-judging: features + `score_features` per candidate (measured on 1,000), times N: what the
    re-judging after the fit costs, spread over the run's workers.

    python benchmarks/bench_sync_fit.py --cache /tmp/judgecache --clips 1000 10000

`--small-runs K` instead checks the smallest runs that are fitted: K random sets of whole sources
with just over 2,000 frames (their 5 s segments hold about the 1,500 usable frames a fit needs),
each fitted on its own segments and judged on its own test clips as `bench_sync.py --judge` does
(in-sync clips kept at threshold 3, foreign voices of the same set rejected, ROC AUC, and whether
the offset of a clip with its own audio follows a shift to the frame).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import numpy as np

from syncvid.sync import corpus_judge as cj

HOP = 640
SEG = 125


def draw_windows(data: dict, n: int, seed: int = 0) -> list[tuple[str, int]]:
    """n (source, first frame) pairs of 125-frame windows, spread over the sources in turn."""
    rng = np.random.default_rng(seed)
    names = [nm for nm, (lm, au, _) in data.items() if min(len(lm), len(au) // HOP) >= SEG]
    out = []
    for k in range(n):
        nm = names[k % len(names)]
        lm, au, _ = data[nm]
        out.append((nm, int(rng.integers(0, min(len(lm), len(au) // HOP) - SEG + 1))))
    return out


def features(data: dict, windows, p: cj.FitParams) -> list[cj.ClipFeatures]:
    out = []
    for k, (nm, st) in enumerate(windows):
        lm, au, _ = data[nm]
        # one "source" per (video, k mod 40): a run of many sources, each with several clips
        out.append(cj.clip_features(lm[st:st + SEG], au, st * HOP, p.max_shift + p.context, group=f"{nm}#{k % 40}"))
    return out


def small_runs(data: dict, runs: int, frames: int = 2050, seed: int = 1) -> None:
    from bench_sync_judge import corpus_features, evaluate, roc_auc

    p = cj.FitParams()
    names = list(data)
    rng = np.random.default_rng(seed)
    for _ in range(runs):
        chosen, total = [], 0
        for nm in rng.permutation(names):
            if total >= frames:
                break
            chosen.append(str(nm))
            total += len(data[nm][0])
        try:
            model, report = cj.fit_judge(corpus_features(data, chosen, p), p)
        except ValueError as exc:
            print(f"{len(chosen)} sources, {total} frames: not fitted ({exc})")
            continue
        t = evaluate(lambda lm, au, a0, m=model: cj.judge_clip(m, lm, au, a0, p.max_shift), data, chosen, chosen, 10)
        own, foreign, off = np.array(t.own), np.array(t.foreign), np.array(t.own_off)
        kept = (own >= 3) & (np.abs(off) <= 6) & ~np.array(t.own_edge, bool)
        print(f"{len(chosen):2d} sources, {total} frames ({report.frames} fitted): in-sync kept {kept.mean():.0%} "
              f"({len(own)}), foreign rejected {np.mean(foreign < 3):.0%} ({len(foreign)}), AUC "
              f"{roc_auc(own, foreign):.3f}, own-audio shift followed exactly {np.mean(np.array(t.track['clip125']) == 0):.0%}",
              flush=True)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--media", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "media")
    ap.add_argument("--cache", type=Path, default=None, help="folder of cached landmarks + audio (bench_sync.py)")
    ap.add_argument("--clips", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--small-runs", type=int, default=0, metavar="K", help="instead: K smallest fitted runs")
    args = ap.parse_args()
    from bench_sync_judge import load_views

    data = load_views(args.media, args.cache)
    if args.small_runs:
        small_runs(data, args.small_runs)
        return
    p = cj.FitParams()
    print(f"{len(data)} real sources; one process, OMP/BLAS threads: {os.environ.get('OMP_NUM_THREADS', 'default')}")
    for n in args.clips:
        windows = draw_windows(data, n)
        groups = [f"{nm}#{k % 40}" for k, (nm, _) in enumerate(windows)]
        chosen = [windows[k] for k in cj.choose_clips(groups, p.max_clips, p.seed)]
        t0 = time.process_time()
        feats = features(data, chosen, p)
        t_feat = time.process_time() - t0
        t0 = time.process_time()
        model, report = cj.fit_judge(feats, p)
        t_fit = time.process_time() - t0
        t0 = time.process_time()
        for f in features(data, windows[:1000], p):
            cj.score_features(model, f, p.max_shift)
        per_clip = (time.process_time() - t0) / min(n, 1000)
        print(f"{n:6d} clips ({n * SEG / 25 / 3600:.1f} h of candidates): fitted on {len(chosen)}; features "
              f"{t_feat:5.1f} s, fit {t_fit:6.1f} s ({report.frames} frames, refits on "
              f"{report.clips_per_iteration} clips); re-judging every candidate {per_clip * 1000:.1f} ms/clip "
              f"(features + score) = {per_clip * n:.0f} s of one core; peak RSS {peak_rss_mb():.0f} MB", flush=True)

if __name__ == "__main__":
    main()
