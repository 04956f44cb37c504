"""Sync stage benchmark on the real talking-head videos of ../shared/media.

For every `talk_*.mp4`: decode at 25 fps / 16 kHz (PyAV), 68-point landmarks with dlib,
then cut sub-clips of --frames frames and shift their audio by k ∈ {±3..±8} frames
(audio leading by k).  Reports, for the landmark backend:
  - change accuracy: |estimate(shifted) - estimate(unshifted) - k| <= 1, with the source
    audio as context (the stage's normal case) and with the clip's own audio only;
  - the absolute offset of unshifted clips (the sources are close to in sync);
  - confidence of own voice vs a foreign voice (face of one video, audio of another);
  - per-clip cost.
The syncnet / stable_syncnet backends run with random weights for cost only.

    python benchmarks/bench_sync.py [--media DIR] [--frames 100] [--models]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from syncvid.config.pipeline_schema import SyncSection
from syncvid.sync.backends import LandmarkBackend, SyncInput
from syncvid.sync.landmark import DlibLandmarker

HOP = 640
SHIFTS = [-8, -7, -6, -5, -4, -3, 3, 4, 5, 6, 7, 8]


def decode_25fps(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import av

    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        frames, times = [], []
        for f in c.decode(vs):
            frames.append(f.to_ndarray(format="rgb24"))
            times.append(float(f.pts * vs.time_base))
        a_start = c.streams.audio[0].start_time or 0
        a_tb = float(c.streams.audio[0].time_base)
    with av.open(str(path)) as c:
        rs = av.AudioResampler(format="flt", layout="mono", rate=16000)
        chunks = [g.to_ndarray().reshape(-1) for f in c.decode(c.streams.audio[0]) for g in rs.resample(f)]
        chunks += [g.to_ndarray().reshape(-1) for g in rs.resample(None)]
    audio = np.concatenate(chunks).astype(np.float32)
    # put audio sample 0 at the first video frame's time
    lead = int(round((times[0] - a_start * a_tb) * 16000))
    audio = audio[lead:] if lead > 0 else np.concatenate([np.zeros(-lead, np.float32), audio])
    t0 = times[0]
    n = int(min(times[-1] - t0 + 0.04, len(audio) / 16000) * 25)
    out, j = [], 0
    for i in range(n):
        while j + 1 < len(times) and times[j + 1] - t0 <= i / 25 + 1e-6:
            j += 1
        out.append(frames[j])
    return np.stack(out), audio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--media", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "media")
    ap.add_argument("--frames", type=int, default=100, help="sub-clip length in frames")
    ap.add_argument("--step", type=int, default=6, help="frames between sub-clip starts")
    ap.add_argument("--models", action="store_true", help="also time syncnet/stable_syncnet (random weights)")
    args = ap.parse_args()

    videos = sorted(args.media.glob("talk_*.mp4"))
    if not videos:
        raise SystemExit(f"no talk_*.mp4 in {args.media}")
    backend = LandmarkBackend(SyncSection())
    s = 15
    data = {}
    for v in videos:
        t0 = time.perf_counter()
        frames, audio = decode_25fps(v)
        t1 = time.perf_counter()
        lm = DlibLandmarker(detect_width=320, redetect_every=10)(frames)
        t2 = time.perf_counter()
        data[v.name] = (frames, audio, lm)
        print(f"{v.name}: {len(frames)} frames, decode {t1 - t0:.2f}s, dlib landmarks {1000 * (t2 - t1) / len(frames):.1f} ms/frame")

    w = args.frames
    print(f"\nlandmark backend, {w}-frame sub-clips every {args.step} frames, shifts {SHIFTS}")
    print(f"{'video':22s} {'clips':>5s} {'abs@0':>14s} {'conf@0 med':>10s} {'Δ ok (ctx)':>11s} {'Δ ok (clip)':>11s}")
    all_ctx, all_clip, all_abs, own_conf, cost = [], [], [], [], []
    for name, (frames, audio, lm) in data.items():
        n_frames = len(frames)
        starts = list(range(8, n_frames - w - 8 + 1, args.step))
        ctx_ok, clip_ok, abs0, confs = [], [], [], []
        for st in starts:
            base = {}
            for mode in ("ctx", "clip"):
                for k in [0] + SHIFTS:
                    a0 = (st + k) * HOP
                    seg = audio[a0 : a0 + w * HOP]
                    if mode == "ctx":
                        inp = SyncInput(frames[st : st + w], lm[st : st + w], audio, a0)
                    else:
                        inp = SyncInput(frames[st : st + w], lm[st : st + w], seg, 0)
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
            f"{name:22s} {len(starts):5d} {str(sorted(abs0)):>14s} {np.median(confs):10.2f} "
            f"{np.mean(ctx_ok):10.0%} {np.mean(clip_ok):10.0%}"
        )
    abs_arr = np.array(all_abs)
    print(f"{'all':22s} {len(all_abs):5d} {'':>14s} {np.median(own_conf):10.2f} {np.mean(all_ctx):10.0%} {np.mean(all_clip):10.0%}")
    print(f"unshifted clips with |offset| <= 1: {np.mean(np.abs(abs_arr) <= 1):.0%}, <= 2: {np.mean(np.abs(abs_arr) <= 2):.0%}")

    foreign = []
    names = list(data)
    for a in names:
        for b in names:
            if a == b:
                continue
            fa, _, la = data[a]
            _, ab, _ = data[b]
            for st in range(8, min(len(fa), len(ab) // HOP) - w - 8 + 1, args.step):
                est, _ = backend.measure(SyncInput(fa[st : st + w], la[st : st + w], ab, st * HOP), s)
                foreign.append(est.conf)
    own, foreign = np.array(own_conf), np.array(foreign)
    print(
        f"conf own voice: median {np.median(own):.2f}, >=3: {np.mean(own >= 3):.0%} (n={len(own)});"
        f" foreign voice: median {np.median(foreign):.2f}, >=3: {np.mean(foreign >= 3):.0%} (n={len(foreign)})"
    )
    q = [10, 25, 50, 75, 90, 95]
    print(f"conf percentiles {q}: own {np.round(np.percentile(own, q), 2).tolist()}; foreign {np.round(np.percentile(foreign, q), 2).tolist()}")
    print(f"landmark backend cost per {w}-frame clip (landmarks given): {1000 * np.median(cost):.1f} ms")

    if args.models:
        _time_models(data, w)


def _time_models(data, w: int) -> None:
    import tempfile

    import torch

    from syncvid.sync.backends import StableSyncNetBackend, SyncNetBackend
    from syncvid.sync.stable_syncnet import StableSyncNet, save_stable_syncnet
    from syncvid.sync.syncnet_model import SyncNetV2, save_syncnet_v2

    torch.set_num_threads(max(1, torch.get_num_threads()))
    frames, audio, lm = next(iter(data.values()))
    st = 10
    clip_frames = frames[st : st + w]
    import cv2

    aligned = np.stack([cv2.resize(f, (256, 256), interpolation=cv2.INTER_AREA) for f in clip_frames])
    scale = 256.0 / frames.shape[1]
    inp = SyncInput(aligned, lm[st : st + w] * scale, audio, st * HOP)
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
