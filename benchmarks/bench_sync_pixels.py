"""A second visual reading of each real source's own sync: the corpus judge's fit with the mouth
region's pixels in place of the landmarks.

The corpus judge reads four of the 15 real talking heads as about 2 frames out of sync (docs/sync.md).
Its visual signal is dlib's mouth landmarks; if those lagged or led the picture on some speakers,
those sources would look shifted while being in sync.  This benchmark changes only the visual side:
the mouth region of the aligned face (rows 36–59, columns 12–51 of the 64×64 crop, grey, averaged
2×2 to 12×20), projected on its first --components principal components over all sources,
centred per clip, with velocities.  The audio features, the contrastive CCA, the refits and the
calibration are `syncvid.sync.corpus_judge`'s own.  For each source it prints the median offset and
confidence of its unshifted 5 s windows (every 10 frames, source audio as context), fitted on all
sources ("run") and on the other 14 ("leave speaker out", a speaker the fit never saw), beside the
landmark judge's readings.

    python benchmarks/bench_sync_pixels.py --cache /tmp/judgecache [--components 30]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from syncvid.sync import corpus_judge as cj

HOP = 640
S = 15
SEG = 125


def mouth_pixels(crops: np.ndarray) -> np.ndarray:
    """[T, 240]: the mouth region of 64×64 aligned faces, grey, averaged 2×2."""
    grey = crops[..., :3].astype(np.float32).mean(axis=-1)[:, 36:60, 12:52]
    return grey.reshape(len(grey), 12, 2, 20, 2).mean(axis=(2, 4)).reshape(len(grey), -1)


class PixelFeatures:
    """`ClipFeatures` whose mouth part is the principal components of the mouth pixels (+ velocities)."""

    def __init__(self, data: dict, crops: dict, components: int) -> None:
        self.data = data
        self.pixels = {nm: mouth_pixels(crops[nm]) for nm in data}
        stacked = np.concatenate(list(self.pixels.values()))
        self.mean = stacked.mean(axis=0)
        self.basis = np.linalg.svd(stacked - self.mean, full_matrices=False)[2][:components].T

    def clip(self, nm: str, st: int, n: int, reach: int) -> cj.ClipFeatures:
        lm, au, _ = self.data[nm]
        x = (self.pixels[nm][st:st + n] - self.mean) @ self.basis
        x = x - x.mean(axis=0)
        mouth = np.concatenate([x, np.gradient(x, axis=0)], axis=1).astype(np.float32)
        audio = cj.clip_features(lm[st:st + n], au, st * HOP, reach, group=nm).audio
        return cj.ClipFeatures(mouth, audio, reach, nm)

    def corpus(self, names, p: cj.FitParams) -> list[cj.ClipFeatures]:
        out = []
        for nm in names:
            lm, au, _ = self.data[nm]
            n = min(len(lm), len(au) // HOP)
            for st in range(0, max(1, n - SEG + 1), SEG):
                if min(SEG, n - st) >= 50:
                    out.append(self.clip(nm, st, min(SEG, n - st), p.max_shift + p.context))
        return out


def readings(score, data, nm: str, step: int = 10) -> tuple[list[int], list[float]]:
    """Offsets and confidences of a source's unshifted 5 s windows with context audio on both sides."""
    lm, au, _ = data[nm]
    n = min(len(lm), len(au) // HOP)
    offs, confs = [], []
    for st in range(S + 2, n - SEG - S - 2 + 1, step):
        e = score(nm, st)
        offs.append(e.offset)
        confs.append(e.conf)
    return offs, confs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--media", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "media")
    ap.add_argument("--cache", type=Path, default=None, help="folder of cached landmarks, audio and crops")
    ap.add_argument("--components", type=int, default=30)
    args = ap.parse_args()
    from bench_sync_judge import corpus_features, load_crops, load_views

    data = load_views(args.media, args.cache)
    names = list(data)
    pix = PixelFeatures(data, load_crops(args.media, args.cache, 64), args.components)
    p = cj.FitParams()
    reach = p.max_shift + p.context

    def fits(features):
        yield "run", cj.fit_judge(features(names), p)[0], names
        for nm in names:
            yield "loso", cj.fit_judge(features([x for x in names if x != nm]), p)[0], [nm]

    table: dict[tuple[str, str, str], tuple[float, float, int]] = {}
    for kind, features, clip in (
            ("landmarks", lambda ns: corpus_features(data, ns, p),
             lambda nm, st: cj.clip_features(data[nm][0][st:st + SEG], data[nm][1], st * HOP, reach, group=nm)),
            ("pixels", lambda ns: pix.corpus(ns, p), lambda nm, st: pix.clip(nm, st, SEG, reach))):
        for fit, model, judged in fits(features):
            for nm in judged:
                offs, confs = readings(lambda n_, st: cj.score_features(model, clip(n_, st), S), data, nm)
                if offs:
                    table[(kind, fit, nm)] = (float(np.median(offs)), float(np.median(confs)), len(offs))
    print(f"median offset (median conf) of each source's unshifted 5 s windows; pixels: {args.components} components")
    print(f"{'source':32s} {'landmarks, run':>16s} {'landmarks, LOSO':>16s} {'pixels, run':>16s} {'pixels, LOSO':>16s}  windows")
    for nm in names:
        cells = [table.get((k, f, nm)) for k in ("landmarks", "pixels") for f in ("run", "loso")]
        if all(c is None for c in cells):
            continue
        text = " ".join(f"{'-':>16s}" if c is None else f"{c[0]:+10.0f} ({c[1]:3.1f})" for c in cells)
        print(f"{nm.split('__')[-1][:32]:32s} {text}  {next(c[2] for c in cells if c)}")


if __name__ == "__main__":
    main()
