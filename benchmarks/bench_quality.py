"""Quality stage benchmark: per-clip cost of each backend and the scores of real, blurred and darkened clips.

    python benchmarks/bench_quality.py [--media DIR] [--frames 125] [--hyperiqa-checkpoint PATH]

Real talking-head videos are aligned with the 3-point template (dlib landmarks)
into 256x256 clips; each clip is scored as is, Gaussian-blurred (sigma 8) and
darkened (x0.25).  Without a HyperIQA checkpoint the hyperiqa backend is timed
with random weights (its scores are then meaningless and not printed).
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from syncvid.config.pipeline_schema import QualitySection
from syncvid.quality.backends import create_backend
from syncvid.records import Clip, Rejected, Segment
from syncvid.stages.quality import QualityStage

REPO = Path(__file__).resolve().parents[1]
VIDEOS = ("talk_25fps_844.mp4", "talk_30fps_700.mp4", "talk_22fps_700.mp4")


def aligned_clip(path: Path, num_frames: int, resolution: int = 256) -> np.ndarray:
    """The first `num_frames` frames of a video aligned to the 3-point template (face found on frame 0)."""
    import av
    import dlib

    spec = importlib.util.find_spec("face_recognition_models")
    model = Path(list(spec.submodule_search_locations)[0]) / "models" / "shape_predictor_68_face_landmarks.dat"
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(num_frames), container.decode(video=0))]
    scale = 320.0 / frames[0].shape[1]
    small = cv2.resize(frames[0], None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    f = max(dlib.get_frontal_face_detector()(small, 1), key=lambda r: r.area())
    box = dlib.rectangle(*(int(v / scale) for v in (f.left(), f.top(), f.right(), f.bottom())))
    predictor = dlib.shape_predictor(str(model))
    ratio = resolution / 256 * 2.8
    template = np.array([[17, 20], [58, 20], [37.5, 40]], np.float32) * ratio
    size = (int(75 * ratio), int(100 * ratio))
    out = []
    for frame in frames:
        pts = np.array([[p.x, p.y] for p in predictor(frame, box).parts()], np.float32)
        anchors = np.stack([pts[17:22].mean(0), pts[22:27].mean(0), pts[27:36].mean(0)])
        matrix, _ = cv2.estimateAffinePartial2D(anchors, template)
        crop = cv2.warpAffine(frame, matrix, size, flags=cv2.INTER_LINEAR, borderValue=(127, 127, 127))
        out.append(cv2.resize(crop, (resolution, resolution), interpolation=cv2.INTER_LANCZOS4))
    return np.stack(out)


def variants(clip: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "original": clip,
        "blur_s8": np.stack([cv2.GaussianBlur(f, (0, 0), 8.0) for f in clip]),
        "dark_x0.25": np.round(clip.astype(np.float32) * 0.25).astype(np.uint8),
    }


def time_backend(backend, clip: np.ndarray, repeat: int) -> float:
    backend.score(clip)  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeat):
        backend.score(clip)
    return (time.perf_counter() - t0) / repeat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--media", type=Path, default=REPO.parent / "shared" / "media")
    ap.add_argument("--frames", type=int, default=125, help="frames per clip (125 = one 5 s segment)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--hyperiqa-checkpoint", default=None)
    args = ap.parse_args()

    params = QualitySection()
    clips = {}
    for name in VIDEOS:
        if (args.media / name).is_file():
            clips[name] = aligned_clip(args.media / name, args.frames, args.resolution)
    if not clips:
        raise SystemExit(f"no test videos found in {args.media}")
    first = next(iter(clips.values()))

    print(f"per-clip cost ({first.shape[0]} frames of {args.resolution}x{args.resolution}, "
          f"{params.num_frames} frames scored by classic/brisque, 3 by hyperiqa; mean of {args.repeat})")
    names = ["classic", "brisque"]
    hyper_real = False
    try:
        import torch

        from syncvid.quality import hyperiqa

        checkpoint = args.hyperiqa_checkpoint
        if checkpoint:
            hyper_real = True
        else:  # random weights in the published format, for timing only
            checkpoint = str(Path(tempfile.mkdtemp()) / "koniq_random.pkl")
            torch.save(hyperiqa.HyperNet().state_dict(), checkpoint)
        hyper = create_backend("hyperiqa", replace(params, hyperiqa_checkpoint=checkpoint))
        hyper.setup()
        print(f"  torch threads: {torch.get_num_threads()}")
    except ImportError:
        hyper = None
    for name in names:
        backend = create_backend(name, params)
        backend.setup()
        cost = time_backend(backend, first, args.repeat)
        print(f"  {name:9s} {cost * 1e3:8.1f} ms/clip  {cost * 1e3 / params.num_frames:6.1f} ms/frame scored")
    if hyper is not None:
        cost = time_backend(hyper, first, max(1, args.repeat // 2))
        label = "" if hyper_real else "  (random weights)"
        print(f"  hyperiqa  {cost * 1e3:8.1f} ms/clip  {cost * 1e3 / 3:6.1f} ms/frame scored{label}")

    backends = names + (["hyperiqa"] if hyper_real else [])
    stage = QualityStage(replace(params, backends=backends,
                                 hyperiqa_checkpoint=args.hyperiqa_checkpoint or params.hyperiqa_checkpoint))
    stage.setup()
    keys = ["sharpness", "mouth_sharpness", "brightness", "contrast", "noise", "blockiness", "brisque"]
    keys += ["hyperiqa"] if hyper_real else []
    print("\nscores (thresholds: " + ", ".join(
        f"{c}={getattr(params, c)}" for c in ("min_sharpness", "min_mouth_sharpness", "min_brightness",
                                              "max_brightness", "min_contrast", "max_noise", "max_blockiness",
                                              "max_brisque")) + ")")
    print(f"  {'clip':28s}" + "".join(f"{k[:10]:>11s}" for k in keys) + "  decision")
    for name, clip in clips.items():
        for tag, frames in variants(clip).items():
            c = Clip(Segment(name, 0, 0, 0, len(frames)), frames, np.zeros(len(frames) * 640, np.float32))
            try:
                stage.process(c)
                decision, m = "kept", c.measurements
            except Rejected as exc:
                decision, m = exc.reason, exc.measurements
            print(f"  {name[:17] + ' ' + tag:28s}" + "".join(f"{m['quality_' + k]:11.2f}" for k in keys)
                  + f"  {decision}")


if __name__ == "__main__":
    main()
