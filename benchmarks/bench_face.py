"""Face stage throughput: detection + tracking + landmarks + alignment, one thread.

    python benchmarks/bench_face.py [--frames 125] [--source PATH] [--backend dlib]

Frames are a real talking-head video (default: ../shared/media/talk_25fps_844.mp4
beside the repository) scaled onto 1280×720 and 1920×1080 canvases, or the
astronaut photograph when that file is absent.  Prepared frames are held in
memory first, so the figures exclude decoding.  Prints CPU ms/frame (process time, so that
other load on the machine inflates it less than wall time) for the whole
per-frame work and its parts.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from syncvid.config.pipeline_schema import FaceSection
from syncvid.face import synthetic
from syncvid.stages.face import FaceStage

DEFAULT_SOURCE = Path(__file__).resolve().parents[1].parent / "shared" / "media" / "talk_25fps_844.mp4"


def source_frames(path: Path, n: int) -> list[np.ndarray]:
    if path.is_file():
        import av

        with av.open(str(path)) as c:
            frames = []
            for f in c.decode(video=0):
                frames.append(f.to_ndarray(format="rgb24"))
                if len(frames) == n:
                    break
        return frames
    # No video: the astronaut moving slowly across a 16:9 canvas.
    return [synthetic.face_frame(1280, 720, (560 + 2 * t, 360), 260) for t in range(n)]


def fit_canvas(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    h, w = frame.shape[:2]
    s = min(width / w, height / h)
    nw, nh = int(round(w * s)), int(round(h * s))
    out = synthetic.canvas(width, height)
    x, y = (width - nw) // 2, (height - nh) // 2
    out[y : y + nh, x : x + nw] = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_CUBIC)
    return out


def run(frames: list[np.ndarray], params: FaceSection) -> dict:
    stage = FaceStage(params)
    stage.setup()
    aligner = stage.new_aligner()
    stage.track(frames[0], True)  # warm-up (first-call allocations)
    stage.reset()
    t_track = t_warp = 0.0
    for i, img in enumerate(frames):
        t0 = time.process_time()
        ff = stage.track(img, i == 0)
        t1 = time.process_time()
        aligner.warp(img, ff)
        t2 = time.process_time()
        t_track += t1 - t0
        t_warp += t2 - t1
    n = len(frames)
    tr = stage.tracker
    return {
        "total": 1e3 * (t_track + t_warp) / n,
        "track": 1e3 * t_track / n,
        "warp": 1e3 * t_warp / n,
        "detections": tr.num_detections,
        "verifications": tr.num_verifications,
        "recoveries": tr.num_recoveries,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=125)
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    ap.add_argument("--backend", default="dlib")
    ap.add_argument("--repeat", type=int, default=3, help="report the best of this many runs (machine noise)")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    base = source_frames(args.source, args.frames)
    label = args.source.name if args.source.is_file() else "astronaut"
    print(f"source: {label}, {len(base)} frames, backend {args.backend}, 1 thread")
    for width, height in ((1280, 720), (1920, 1080)):
        frames = [fit_canvas(f, width, height) for f in base]
        best = min((run(frames, FaceSection(backend=args.backend)) for _ in range(args.repeat)), key=lambda r: r["total"])
        print(
            f"{height}p: {best['total']:.2f} ms/frame (track {best['track']:.2f}, warp {best['warp']:.2f}); "
            f"detections {best['detections']}, verifications {best['verifications']}, recoveries {best['recoveries']}"
        )


if __name__ == "__main__":
    main()
