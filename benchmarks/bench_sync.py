"""Sync stage benchmark on the real talking-head videos of ../shared/media.

Every `talk_*.mp4` goes through the pipeline's own path: `SourceReader` (25 fps, 16 kHz,
audio sample 0 at output frame 0) and the face stage (`FaceStage` tracking + its aligner),
so the landmark backend sees what it sees in a run: landmarks in aligned-crop pixels and
the source's audio around each clip.  Sub-clips of --frames frames start every --step
frames; their audio is shifted by k ∈ {±3..±8} frames (audio leading by k).  Reports:
  - change accuracy: |estimate(shifted) - estimate(unshifted) - k| <= 1, with the source
    audio as context (the stage's normal case) and with the clip's own audio only;
  - the absolute offset of unshifted clips, per video;
  - confidence of own voice vs a foreign voice (face of one video, audio of another, same
    place), its percentiles, the ROC AUC between the two, and the pass rates at 3;
  - per-clip cost of the backend against the pipeline's decode + face time for a clip.
The syncnet / stable_syncnet backends run with random weights for cost only (--models).

    python benchmarks/bench_sync.py [--media DIR] [--frames 100] [--step 3] [--models]

`--judge` instead measures the corpus judge (`syncvid.sync.corpus_judge`) against the per-clip
landmark estimator on every real talking head of --media and --media/real (15 speakers), see
`judge_benchmark`:

    python benchmarks/bench_sync.py --judge [--cache DIR]

With `--stable-syncnet CKPT --stable-syncnet-config CFG` a SyncNet checkpoint (e.g. one trained with
`syncvid train-syncnet` on the same videos) is a further judge on the same test clips, scored by the
production `StableSyncNetBackend` on the aligned crops (kept in --cache at the config's resolution):

    python benchmarks/bench_sync.py --judge --cache DIR --stable-syncnet CKPT --stable-syncnet-config CFG
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from syncvid.config import DEFAULT_PIPELINE_CONFIG, load_config
from syncvid.config.pipeline_schema import SyncSection
from syncvid.media.decode import SourceReader
from syncvid.stages.face import FaceStage
from syncvid.sync.backends import LandmarkBackend, SyncInput

HOP = 640
SHIFTS = [-8, -7, -6, -5, -4, -3, 3, 4, 5, 6, 7, 8]


def pipeline_view(path: Path, face: FaceStage) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(aligned crops, crop landmarks [T, 68, 2], 16 kHz audio, seconds per frame) as the runner makes them."""
    t0 = time.perf_counter()
    reader = SourceReader(path, 25, 16000)
    face.reset()
    aligner = face.new_aligner()
    crops, lms = [], []
    for k, frame in enumerate(reader.frames()):
        found = face.track(frame, new_shot=(k == 0))
        if found.landmarks is None:
            crops.append(np.full((face.params.resolution,) * 2 + (3,), 127, np.uint8))
            lms.append(np.full((68, 2), np.nan, np.float32))
            continue
        crop, lm = aligner.warp(frame, found)
        crops.append(crop)
        lms.append(lm)
    per_frame = (time.perf_counter() - t0) / max(1, len(lms))
    return np.stack(crops), np.stack(lms).astype(np.float32), np.asarray(reader.audio, np.float32), per_frame


def roc_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counted half."""
    pos, neg = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float(np.mean(pos > neg) + 0.5 * np.mean(pos == neg))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--media", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "media")
    ap.add_argument("--frames", type=int, default=100, help="sub-clip length in frames")
    ap.add_argument("--step", type=int, default=3, help="frames between sub-clip starts")
    ap.add_argument("--margin", type=int, default=8, help="frames kept free at both ends of a video")
    ap.add_argument("--models", action="store_true", help="also time syncnet/stable_syncnet (random weights)")
    ap.add_argument("--judge", action="store_true", help="corpus judge vs per-clip estimator on all real videos")
    ap.add_argument("--cache", type=Path, default=None, help="--judge: keep the decode + face results here")
    ap.add_argument("--stable-syncnet", type=Path, default=None, metavar="CKPT",
                    help="--judge: also score the test clips with this stable_syncnet checkpoint (e.g. from train-syncnet)")
    ap.add_argument("--stable-syncnet-config", type=Path, default=Path("configs/syncnet/cpu_small.yaml"), metavar="CFG",
                    help="--judge: the checkpoint's model config (its data.resolution sizes the cached crops)")
    ap.add_argument("--stable-syncnet-step", type=int, default=None,
                    help="--judge: frames between test clips for the stable_syncnet judge only (default: as the others, 10)")
    ap.add_argument("--judges", default=",".join(("landmark", "corpus", "loso", "stable_syncnet")),
                    help="--judge: which of landmark,corpus,loso,stable_syncnet to run (default all)")
    args = ap.parse_args()
    if args.judge:
        from bench_sync_judge import judge_benchmark

        judge_benchmark(args.media, args.cache, stable_syncnet=args.stable_syncnet,
                        stable_syncnet_config=args.stable_syncnet_config, stable_syncnet_step=args.stable_syncnet_step,
                        judges=tuple(j.strip() for j in args.judges.split(",") if j.strip()))
        return

    videos = sorted(args.media.glob("talk_*.mp4"))
    if not videos:
        raise SystemExit(f"no talk_*.mp4 in {args.media}")
    cfg = load_config(DEFAULT_PIPELINE_CONFIG)
    face = FaceStage(cfg.face)
    face.setup()
    backend = LandmarkBackend(SyncSection())
    backend.setup()
    s = int(cfg.sync.search_frames)
    data, face_cost = {}, []
    for v in videos:
        crops, lm, audio, per_frame = pipeline_view(v, face)
        data[v.name] = (crops, lm, audio)
        face_cost.append(per_frame)
        print(f"{v.name}: {len(lm)} frames, decode + face stage {1000 * per_frame:.1f} ms/frame")

    w, m = args.frames, args.margin
    print(f"\nlandmark backend, {w}-frame sub-clips every {args.step} frames, shifts {SHIFTS}")
    print(f"{'video':22s} {'clips':>5s} {'Δ ok (ctx)':>11s} {'Δ ok (clip)':>11s} {'conf@0 med':>10s}  offsets of unshifted clips")
    all_ctx, all_clip, all_abs, own_conf, cost = [], [], [], [], []
    for name, (crops, lm, audio) in data.items():
        starts = list(range(m, len(lm) - w - m + 1, args.step))
        ctx_ok, clip_ok, abs0, confs = [], [], [], []
        for st in starts:
            base = {}
            for mode in ("ctx", "clip"):
                for k in [0] + SHIFTS:
                    a0 = (st + k) * HOP
                    if mode == "ctx":
                        inp = SyncInput(crops[st : st + w], lm[st : st + w], audio, a0)
                    else:
                        inp = SyncInput(crops[st : st + w], lm[st : st + w], audio[a0 : a0 + w * HOP], 0)
                    t0 = time.perf_counter()
                    est, _ = backend.measure(inp, s)
                    cost.append(time.perf_counter() - t0)
                    if k == 0:
                        base[mode] = est.offset
                        if mode == "ctx":
                            abs0.append(est.offset)
                            confs.append(est.conf)
                        continue
                    ok = abs(est.offset - base[mode] - k) <= 1
                    (ctx_ok if mode == "ctx" else clip_ok).append(ok)
        all_ctx += ctx_ok
        all_clip += clip_ok
        all_abs += abs0
        own_conf += confs
        print(
            f"{name:22s} {len(starts):5d} {np.mean(ctx_ok):10.0%} {np.mean(clip_ok):10.0%} "
            f"{np.median(confs):10.2f}  {sorted(abs0)}"
        )
    abs_arr = np.array(all_abs)
    print(f"{'all':22s} {len(all_abs):5d} {np.mean(all_ctx):10.0%} {np.mean(all_clip):10.0%} {np.median(own_conf):10.2f}")
    print(f"unshifted clips with |offset| <= 1: {np.mean(np.abs(abs_arr) <= 1):.0%}, <= 2: {np.mean(np.abs(abs_arr) <= 2):.0%}")

    foreign = []
    names = list(data)
    for a in names:
        for b in names:
            if a == b:
                continue
            ca, la, _ = data[a]
            ab = data[b][2]
            for st in range(m, min(len(la), len(ab) // HOP) - w - m + 1, args.step):
                est, _ = backend.measure(SyncInput(ca[st : st + w], la[st : st + w], ab, st * HOP), s)
                foreign.append(est.conf)
    own, foreign = np.array(own_conf), np.array(foreign)
    print(
        f"conf own voice: median {np.median(own):.2f}, >=3: {np.mean(own >= 3):.0%} (n={len(own)});"
        f" foreign voice: median {np.median(foreign):.2f}, >=3: {np.mean(foreign >= 3):.0%} (n={len(foreign)});"
        f" ROC AUC own vs foreign {roc_auc(own, foreign):.2f}"
    )
    q = [10, 25, 50, 75, 90, 95]
    print(f"conf percentiles {q}: own {np.round(np.percentile(own, q), 2).tolist()}; foreign {np.round(np.percentile(foreign, q), 2).tolist()}")
    per_clip_face = np.mean(face_cost) * w
    print(
        f"landmark backend cost per {w}-frame clip (landmarks given): {1000 * np.median(cost):.1f} ms median "
        f"= {100 * np.median(cost) / per_clip_face:.1f}% of the decode + face time of such a clip ({per_clip_face:.2f} s)"
    )

    if args.models:
        _time_models(data, w)


def _time_models(data, w: int) -> None:
    import tempfile

    import torch

    from syncvid.sync.backends import StableSyncNetBackend, SyncNetBackend
    from syncvid.sync.stable_syncnet import StableSyncNet, save_stable_syncnet
    from syncvid.sync.syncnet_model import SyncNetV2, save_syncnet_v2

    torch.set_num_threads(max(1, torch.get_num_threads()))
    crops, lm, audio = next(iter(data.values()))
    st = 10
    inp = SyncInput(crops[st : st + w], lm[st : st + w], audio, st * HOP)
    pixel = {
        "audio_encoder": {"in_channels": 1, "block_out_channels": [32, 64, 128, 256, 512, 1024, 2048],
                          "downsample_factors": [[2, 1], 2, 2, 1, 2, 2, [2, 3]], "attn_blocks": [0] * 7, "dropout": 0.0},
        "visual_encoder": {"in_channels": 48, "block_out_channels": [64, 128, 256, 256, 512, 1024, 2048, 2048],
                           "downsample_factors": [[1, 2], 2, 2, 2, 2, 2, 2, 2], "attn_blocks": [0] * 8, "dropout": 0.0},
    }
    with tempfile.TemporaryDirectory() as tmp:
        p1 = save_syncnet_v2(SyncNetV2(), Path(tmp) / "syncnet_v2.model")
        b1 = SyncNetBackend(replace(SyncSection(), backend="syncnet", syncnet_checkpoint=str(p1), device="cpu"))
        b1.setup()
        t0 = time.perf_counter()
        est, _ = b1.measure(inp, 15)
        print(f"syncnet (random weights): {time.perf_counter() - t0:.1f} s per {w}-frame clip, conf {est.conf:.3f}")
        p2 = save_stable_syncnet(StableSyncNet(pixel), Path(tmp) / "stable_syncnet.pt")
        b2 = StableSyncNetBackend(
            replace(SyncSection(), backend="stable_syncnet", stable_syncnet_checkpoint=str(p2), device="cpu"), model_cfg=pixel
        )
        b2.setup()
        t0 = time.perf_counter()
        est, _ = b2.measure(inp, 15)
        print(f"stable_syncnet (random weights, pixel config): {time.perf_counter() - t0:.1f} s per {w}-frame clip, conf {est.conf:.3f}")


if __name__ == "__main__":
    main()
