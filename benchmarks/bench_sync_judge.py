"""Corpus sync judge vs the per-clip landmark estimator on real talking heads (`bench_sync.py --judge`).

Every real video of MEDIA (talk_*.mp4) and MEDIA/real (*.mp4) goes through the pipeline's
decode + face stage (`bench_sync.pipeline_view`); the landmarks are rounded to float16 as the
run stores them for re-judging.  Test clips: windows of 125 frames (5 s, as the pipeline cuts)
and of 250 frames (10 s: only sources that long) every STEP frames, their audio shifted by
k ∈ ±{3,4,5,6,7,8,10} frames (the audio leads by k, so the true offset is k, taking the
sources as in sync), judged
  - with context: the source's audio around the clip (the sync stage's case);
  - without context: the clip's own (shifted) audio only, as a 5 s source file would give.
In-sync clips (k = 0, with context) give the keep rate at the default threshold (conf >= 3,
|offset| <= 6, not on the search border); foreign-voice clips (the face of one source with the
audio of another at the same place) give the rejection rate and the ROC AUC own vs foreign.

Two further views of the same shifted clips, for when a source is not in sync itself:
  - "shift followed": the truth taken as the judge's own offset for the unshifted clip plus k,
    i.e. does the offset move by exactly k when the audio moves by k (precision, whatever the
    source's sync);
  - per source: the median error of its shifted 5 s ctx clips and the share within ±1 of that
    median (a source whose clips all miss by the same amount is judged consistently, and that
    amount is the judge's reading of the source's own offset).

Fits: "corpus" fits on the 5 s segments of all sources (what a run does: fit on its own
candidates, then judge them); "LOSO" fits on the other 14 sources for each source and judges
that one (a speaker the fit never saw).

A SyncNet checkpoint (`--stable-syncnet CKPT --stable-syncnet-config CFG`, e.g. one trained with
`syncvid train-syncnet` on the same videos) is a further judge of the same test clips: the production
`StableSyncNetBackend`, as `sync.backend=stable_syncnet` builds it, scores the aligned crops of the
decode + face stage (resized to the config's `data.resolution` with INTER_AREA, as the backend would,
and cached beside the landmarks as `<stem>.crops<r>.npz`).  `evaluate` hands each judge its `view` of
a clip's face (landmarks by default, crops and landmarks for the SyncNet).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from syncvid.sync import corpus_judge as cj
from syncvid.sync.landmark import landmark_offset

HOP = 640
S = 15
SHIFTS = [-10, -8, -7, -6, -5, -4, -3, 3, 4, 5, 6, 7, 8, 10]


def load_views(media: Path, cache: Path | None) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    """name -> (landmarks float16→float32 [T, 68, 2], 16 kHz audio, decode + face s/frame)."""
    from bench_sync import pipeline_view

    from syncvid.config import DEFAULT_PIPELINE_CONFIG, load_config
    from syncvid.stages.face import FaceStage

    videos = sorted(media.glob("talk_*.mp4")) + sorted((media / "real").glob("*.mp4"))
    if not videos:
        raise SystemExit(f"no talk_*.mp4 or real/*.mp4 in {media}")
    face = None
    out = {}
    for v in videos:
        hit = cache / f"{v.stem}.npz" if cache else None
        if hit is not None and hit.is_file():
            z = np.load(hit)
            lm, audio, pf = z["lm"], z["audio"], float(z["per_frame"])
        else:
            if face is None:
                face = FaceStage(load_config(DEFAULT_PIPELINE_CONFIG).face)
                face.setup()
            _, lm, audio, pf = pipeline_view(v, face)
            if hit is not None:
                hit.parent.mkdir(parents=True, exist_ok=True)
                np.savez(hit, lm=lm, audio=audio, per_frame=pf)
        out[v.stem] = (lm.astype(np.float16).astype(np.float32), np.asarray(audio, np.float32), pf)
    return out


def load_crops(media: Path, cache: Path | None, resolution: int) -> dict[str, np.ndarray]:
    """name -> the aligned face crops [T, r, r, 3] uint8 of `load_views`' frames, resized to `resolution`
    (INTER_AREA, as the stable_syncnet backend resizes them) so that 15 sources fit in memory.

    Cached beside the landmarks as `<stem>.crops<r>.npz`; the landmark cache is left as it is."""
    import cv2
    from bench_sync import pipeline_view

    from syncvid.config import DEFAULT_PIPELINE_CONFIG, load_config
    from syncvid.stages.face import FaceStage

    videos = sorted(media.glob("talk_*.mp4")) + sorted((media / "real").glob("*.mp4"))
    face = None
    out = {}
    for v in videos:
        hit = cache / f"{v.stem}.crops{resolution}.npz" if cache else None
        if hit is not None and hit.is_file():
            out[v.stem] = np.load(hit)["crops"]
            continue
        if face is None:
            face = FaceStage(load_config(DEFAULT_PIPELINE_CONFIG).face)
            face.setup()
        crops, _, _, _ = pipeline_view(v, face)
        if crops.shape[1] != resolution:
            crops = np.stack([cv2.resize(c, (resolution, resolution), interpolation=cv2.INTER_AREA) for c in crops])
        if hit is not None:
            hit.parent.mkdir(parents=True, exist_ok=True)
            np.savez(hit, crops=crops)
        out[v.stem] = crops
    return out


def stable_syncnet_judge(checkpoint: Path, config: Path, crops: dict[str, np.ndarray]):
    """(judge, view, backend): the production `StableSyncNetBackend`, as `sync.backend=stable_syncnet` with
    these `stable_syncnet_checkpoint` / `stable_syncnet_config` builds it in a run, scoring the crops."""
    from dataclasses import replace

    from syncvid.config.pipeline_schema import SyncSection
    from syncvid.sync.backends import StableSyncNetBackend, SyncInput

    params = replace(SyncSection(), backend="stable_syncnet", stable_syncnet_checkpoint=str(checkpoint),
                     stable_syncnet_config=str(config), device="cpu")
    backend = StableSyncNetBackend(params)
    backend.setup()

    def view(data, nm, st, w):
        return crops[nm][st:st + w], data[nm][0][st:st + w]

    def judge(v, au, a0):
        frames, lm = v
        return backend.measure(SyncInput(frames, lm, au, a0), S)[0]

    return judge, view, backend


def corpus_features(data, names, p: cj.FitParams, seg: int = 125) -> list[cj.ClipFeatures]:
    """The 5 s segments a run would cut from each source (a shorter source: one clip)."""
    out = []
    for nm in names:
        lm, au, _ = data[nm]
        n = min(len(lm), len(au) // HOP)
        for st in range(0, max(1, n - seg + 1), seg):
            length = min(seg, n - st)
            if length >= 50:
                out.append(cj.clip_features(lm[st:st + length], au, st * HOP, p.max_shift + p.context, group=nm))
    return out


def roc_auc(pos, neg) -> float:
    pos, neg = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float(np.mean(pos > neg) + 0.5 * np.mean(pos == neg))


class Tally:
    def __init__(self) -> None:
        self.ok = {"ctx125": [], "clip125": [], "ctx250": [], "clip250": []}
        self.own, self.own_off, self.own_edge, self.own_clip = [], [], [], []
        self.foreign, self.cost = [], []
        # |offset(shift k) - offset(same clip, no shift) - k|: does the judge follow a shift,
        # whatever the source's own sync is
        self.track = {"ctx125": [], "clip125": [], "ctx250": [], "clip250": []}
        self.src: dict[str, list[int]] = {}  # source -> offset - k of its shifted 5 s ctx clips

    def extend(self, other: "Tally") -> None:
        for k in self.ok:
            self.ok[k] += other.ok[k]
            self.track[k] += other.track[k]
        for k in ("own", "own_off", "own_edge", "own_clip", "foreign", "cost"):
            getattr(self, k).extend(getattr(other, k))
        for k, v in other.src.items():
            self.src.setdefault(k, []).extend(v)

    def line(self, name: str) -> str:
        own, fo, off = np.array(self.own), np.array(self.foreign), np.array(self.own_off)
        kept = (own >= 3) & (np.abs(off) <= 6) & ~np.array(self.own_edge, bool)
        acc = " ".join(f"{k} {np.mean(v):.0%} ({len(v)})" for k, v in self.ok.items() if v)
        return (f"{name:28s} offset ±1: {acc} | in-sync |off|<=1 {np.mean(np.abs(off) <= 1):.0%}, kept {np.mean(kept):.0%}"
                f" ({len(own)}) | foreign rejected {np.mean(fo < 3):.0%} ({len(fo)}), AUC {roc_auc(own, fo):.3f}"
                f" | {1000 * np.median(self.cost):.1f} ms/clip")

    def track_line(self, name: str) -> str:
        cells = " ".join(f"{k} {np.mean(np.array(v) <= 1):.0%} (exact {np.mean(np.array(v) == 0):.0%})"
                         for k, v in self.track.items() if v)
        return f"{name:28s} shift followed ±1: {cells}"

    def source_line(self) -> str:
        cells = []
        for nm, err in self.src.items():
            e = np.array(err)
            cells.append(f"{nm.split('__')[-1][:16]} {np.median(e):+.0f} ({np.mean(np.abs(e - np.median(e)) <= 1):.0%}, {len(e)})")
        return "  " + "; ".join(cells)


def landmarks_view(data, nm: str, st: int, w: int) -> np.ndarray:
    return data[nm][0][st:st + w]


def evaluate(judge, data, faces, voices, step: int, view=landmarks_view) -> Tally:
    """`judge(view(data, source, start frame, frames), audio, start sample) -> OffsetEstimate` on the test
    clips of `faces`; the default view is the clip's landmarks."""
    t = Tally()
    for nm in faces:
        lm, au, _ = data[nm]
        n = min(len(lm), len(au) // HOP)
        for w in (125, 250):
            for st in range(0, n - w + 1, step if w == 125 else 2 * step):
                face = view(data, nm, st, w)
                base = {"ctx": judge(face, au, st * HOP).offset,
                        "clip": judge(face, au[st * HOP:(st + w) * HOP], 0).offset}
                for k in [0] + SHIFTS:
                    a0 = (st + k) * HOP
                    if st + k - S - 2 >= 0 and st + k + w + S + 2 <= n:  # context on both sides
                        t0 = time.perf_counter()
                        e = judge(face, au, a0)
                        t.cost.append(time.perf_counter() - t0)
                        if k == 0 and w == 125:
                            t.own.append(e.conf), t.own_off.append(e.offset), t.own_edge.append(e.at_edge)
                        elif k:
                            t.ok[f"ctx{w}"].append(abs(e.offset - k) <= 1)
                            t.track[f"ctx{w}"].append(abs(e.offset - base["ctx"] - k))
                            if w == 125:
                                t.src.setdefault(nm, []).append(e.offset - k)
                    if k and st + k >= 0 and st + k + w <= n:
                        e = judge(face, au[a0:a0 + w * HOP], 0)
                        t.ok[f"clip{w}"].append(abs(e.offset - k) <= 1)
                        t.track[f"clip{w}"].append(abs(e.offset - base["clip"] - k))
            if w != 125:
                continue
            for st in range(0, n - w + 1, step):
                for other in voices:
                    au2 = data[other][1]
                    if other != nm and len(au2) // HOP >= st + w + S + 2:
                        t.foreign.append(judge(view(data, nm, st, w), au2, st * HOP).conf)
    return t


def histogram(values, edges, label: str) -> str:
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1] - 1e-9), edges)
    cells = " ".join(f"{e:g}:{c}" for e, c in zip(edges[:-1], counts))
    return f"  {label:34s} {cells}"


JUDGES = ("landmark", "corpus", "loso", "stable_syncnet")


def judge_benchmark(media: Path, cache: Path | None, step: int = 10, stable_syncnet: Path | None = None,
                    stable_syncnet_config: Path | None = None, stable_syncnet_step: int | None = None,
                    judges: tuple[str, ...] = JUDGES) -> None:
    t0 = time.perf_counter()
    data = load_views(media, cache)
    names = list(data)
    face_s = float(np.mean([pf for _, _, pf in data.values()]))
    print(f"{len(names)} real videos, {sum(len(v[0]) for v in data.values())} frames at 25 fps; decode + face "
          f"{1000 * face_s:.1f} ms/frame ({time.perf_counter() - t0:.0f} s)")
    p = cj.FitParams()

    def landmark(lm, au, a0):
        return landmark_offset(lm, au, a0, S)

    tallies = {}
    if "landmark" in judges:
        tallies["landmark (per clip)"] = evaluate(landmark, data, names, names, step)
    fit_s = None
    if "corpus" in judges:
        t0 = time.perf_counter()
        model, report = cj.fit_judge(corpus_features(data, names, p), p)
        fit_s = time.perf_counter() - t0
        print(f"corpus fit: {report.clips} clips, {report.frames} frames, refits on {report.clips_per_iteration} clips, "
              f"canonical correlations {np.round(report.canonical_correlations, 2).tolist()}, conf scale "
              f"{model.conf_scale:.2f}; {fit_s:.1f} s")

        def corpus(lm, au, a0, m=model):
            return cj.judge_clip(m, lm, au, a0, S)

        tallies["corpus (fit on the run)"] = evaluate(corpus, data, names, names, step)
    if "loso" in judges:
        loso = Tally()
        t0 = time.perf_counter()
        for nm in names:
            m, _ = cj.fit_judge(corpus_features(data, [n for n in names if n != nm], p), p)
            loso.extend(evaluate(lambda lm, au, a0, m=m: cj.judge_clip(m, lm, au, a0, S), data, [nm], names, step))
        tallies["corpus (leave speaker out)"] = loso
        print(f"(15 leave-one-speaker-out fits and their scoring: {time.perf_counter() - t0:.0f} s)")
    if stable_syncnet is not None and "stable_syncnet" in judges:
        from syncvid.config import load_config

        res = int(load_config(stable_syncnet_config).data.resolution)
        t0 = time.perf_counter()
        crops = load_crops(media, cache, res)
        print(f"aligned crops at {res}x{res}: {time.perf_counter() - t0:.0f} s")
        judge, view, backend = stable_syncnet_judge(stable_syncnet, stable_syncnet_config, crops)
        sstep = stable_syncnet_step or step
        t0 = time.perf_counter()
        tallies["stable_syncnet (train-syncnet)"] = evaluate(judge, data, names, names, sstep, view=view)
        print(f"stable_syncnet {stable_syncnet} ({stable_syncnet_config}, {res}x{res}, "
              f"{backend.model.num_frames}-frame windows), clips every {sstep} frames: scored in "
              f"{time.perf_counter() - t0:.0f} s")
        if sstep != step:  # the other judges on the same, sparser clips
            if "landmark" in judges:
                tallies[f"landmark, clips every {sstep}"] = evaluate(landmark, data, names, names, sstep)
            if "corpus" in judges:
                tallies[f"corpus (run), clips every {sstep}"] = evaluate(corpus, data, names, names, sstep)
    print(f"\nclips: 5 s (125 frames) every {step} frames and 10 s (250) every {2 * step}; shifts {SHIFTS}; "
          "ctx = source audio around the clip, clip = its own audio only")
    for name, t in tallies.items():
        print(t.line(name))
    print("\nthe same shifted clips against the judge's offset of the unshifted clip (truth = that offset + k):")
    for name, t in tallies.items():
        print(t.track_line(name))
    print("\nper source: median offset error of its shifted 5 s ctx clips (share within ±1 of that median, clips):")
    for name, t in tallies.items():
        print(f" {name}")
        print(t.source_line())
    fit = f"; corpus fit {fit_s:.1f} s for {report.frames} frames" if fit_s is not None else ""
    print(f"decode + face per 5 s clip: {125 * face_s:.2f} s{fit}")
    print("\nhistograms of in-sync 5 s clips (offset) and of own / foreign confidence:")
    for name, t in tallies.items():
        print(f" {name}")
        print(histogram(t.own_off, np.arange(-6, 8), "offset (k = 0)"))
        print(histogram(t.own, np.arange(0, 13), "conf own voice"))
        print(histogram(t.foreign, np.arange(0, 13), "conf foreign voice"))
