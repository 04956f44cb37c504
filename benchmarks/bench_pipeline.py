"""The whole seven-stage pipeline against decode-only, per resolution class, one worker process.

    .venv/bin/python benchmarks/bench_pipeline.py [FOLDER ...] [--long-minutes 10 | --no-long]
                                                   [--repeat N] [--cache DIR] [--classes sample,720p,...]

Corpus (without FOLDER), generated once into the cache folder:
  sample     the "small" sample corpus (`syncvid.sample.make_sample`: synthetic faces, cuts, broken files)
  700-844px  ../shared/media beside the repository, when present (real talking heads, 22/25/30 fps)
  720p       two >= 20 s talking-head sources built from ../shared/media/talk_25fps_844.mp4 and
  1080p      talk_30fps_700.mp4: the 25 fps output frames looped, fitted onto a 1280x720 / 1920x1080
             canvas over a heavily blurred copy of themselves, 48 kHz AAC, H.264 crf 20 preset veryfast
  long       one 10-minute 720p source built the same way (both videos alternating), alone in its
             own process, to show that a worker's peak memory does not depend on the source's length
With FOLDER arguments, every folder is one class of its own.

For every class, each in a fresh process (so that peak memory is that process's own):
  pipeline     `run_pipeline` with the default configuration, sequential executor (one worker,
               one process); per stage: the runner's CPU timers (`cpu_<stage>_s` in the manifest's
               source rows, summed over sources); `run` is the whole process's CPU time for the call
               (model set-up, discovery, manifest and report included)
  decode-only  PyAV, one decoding thread, every video frame of every source of the class decoded
               and converted to RGB (`frame.reformat(format="rgb24", threads=1)`: one scaler
               thread, which costs less CPU time than FFmpeg's default of several); no audio, no
               frame-rate conversion, no rotation; sources without a video stream or that fail
               are skipped.  Also printed: the bare decode without the RGB conversion.
CPU time is user + system time of the process (`getrusage`), i.e. all its threads.  Figures:
CPU-seconds per second of video (the 25 fps output duration the pipeline reports), the realtime
factor per core (= 1 / that), the ratio to decode-only, and peak RSS.  With --repeat N each
measurement is repeated and the median reported (the load average is printed for context).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED_MEDIA = REPO.parent / "shared" / "media"
STAGES = ("decode", "scene", "face", "sync", "quality", "encode")
VIDEO_EXT = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# ------------------------------------------------------------------------------- corpus
def _talk_frames(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """25 fps RGB frames and 16 kHz audio (exactly 640 samples per frame) of a real video."""
    from syncvid.media.decode import SourceReader

    with SourceReader(path, contiguous=True) as reader:
        frames = [f.copy() for f in reader.frames()]
        audio = reader.audio
    n = len(frames)
    audio = np.concatenate([audio, np.zeros(max(0, n * 640 - len(audio)), np.float32)])[: n * 640]
    return frames, audio


def _on_canvas(frame: np.ndarray, width: int, height: int, scale: float, x_frac: float) -> np.ndarray:
    """`frame` scaled to `scale`·height, placed at `x_frac` of the free width, over a blurred fill."""
    import cv2

    h, w = frame.shape[:2]
    s = max(width / w, height / h)
    tiny = cv2.resize(frame, (max(1, round(w * s / 24)), max(1, round(h * s / 24))), interpolation=cv2.INTER_AREA)
    bg = cv2.resize(tiny, (round(w * s), round(h * s)), interpolation=cv2.INTER_LINEAR)
    y0, x0 = (bg.shape[0] - height) // 2, (bg.shape[1] - width) // 2
    out = np.ascontiguousarray(bg[y0 : y0 + height, x0 : x0 + width])
    fh = int(round(height * scale)) // 2 * 2
    fw = int(round(w * fh / h)) // 2 * 2
    fg = cv2.resize(frame, (fw, fh), interpolation=cv2.INTER_AREA if fh < h else cv2.INTER_CUBIC)
    x = int((width - fw) * x_frac)
    y = (height - fh) // 2
    out[y : y + fh, x : x + fw] = fg
    return out


def build_talking_head(path: Path, parts: list[Path], width: int, height: int, seconds: float,
                       scale: float = 0.9, x_frac: float = 0.5, preset: str = "veryfast") -> None:
    """Loop the real videos `parts` (in turn) onto a width×height canvas for `seconds` at 25 fps."""
    from scipy.signal import resample_poly

    from syncvid.media.encode import ClipWriter

    clips = [_talk_frames(p) for p in parts]
    total = int(round(seconds * 25))
    path.parent.mkdir(parents=True, exist_ok=True)
    with ClipWriter(path, width, height, fps=25, sample_rate=48000, crf=20, preset=preset,
                    audio_bitrate=128000) as writer:
        written, i = 0, 0
        while written < total:
            frames, audio = clips[i % len(clips)]
            take = min(len(frames), total - written)
            writer.write_audio(resample_poly(audio[: take * 640], 3, 1).astype(np.float32).clip(-1, 1))
            for f in frames[:take]:
                writer.write_frame(_on_canvas(f, width, height, scale, x_frac))
            written += take
            i += 1


def prepare_corpus(cache: Path, long_minutes: float) -> dict[str, list[Path]]:
    """{class name: source paths}, generating what is missing in `cache`."""
    classes: dict[str, list[Path]] = {}
    sample = cache / "sample_small"
    if not (sample / "ground_truth.json").is_file():
        from syncvid.sample import make_sample

        print("generating the small sample corpus ...", flush=True)
        make_sample(sample, size="small")
    classes["sample"] = sorted(p for p in sample.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXT)
    a, b = SHARED_MEDIA / "talk_25fps_844.mp4", SHARED_MEDIA / "talk_30fps_700.mp4"
    if SHARED_MEDIA.is_dir():
        classes["700-844px"] = sorted(SHARED_MEDIA.glob("*.mp4"))
    if a.is_file() and b.is_file():
        for name, (w, h) in {"720p": (1280, 720), "1080p": (1920, 1080)}.items():
            paths = [cache / f"talk844_{name}_20s.mp4", cache / f"talk700_{name}_21s.mp4"]
            specs = [([a], 20.0, 0.9, 0.5), ([b], 21.0, 0.75, 0.3)]
            for path, (parts, seconds, scale, x_frac) in zip(paths, specs):
                if not path.is_file():
                    print(f"generating {path.name} ...", flush=True)
                    build_talking_head(path, parts, w, h, seconds, scale, x_frac)
            classes[name] = paths
        if long_minutes > 0:
            path = cache / f"talk_720p_{long_minutes:g}min.mp4"
            if not path.is_file():
                print(f"generating {path.name} (once; a few minutes) ...", flush=True)
                build_talking_head(path, [a, b], 1280, 720, long_minutes * 60, 0.85, 0.5)
            classes[f"long {long_minutes:g} min 720p"] = [path]
    else:
        print("../shared/media not found: no real-video classes (sample corpus only)", flush=True)
    return classes


# ------------------------------------------------------------------------------ children
def _decode_only(paths: list[str], to_rgb: bool = True) -> dict:
    import av

    start = _cpu()
    frames = 0
    for path in paths:
        try:
            with av.open(path) as container:
                if not container.streams.video:
                    continue
                stream = container.streams.video[0]
                stream.codec_context.thread_count = 1
                for frame in container.decode(stream):
                    if to_rgb:  # one scaler thread: the cheapest conversion in CPU time
                        frame.reformat(format="rgb24", threads=1).to_ndarray()
                    frames += 1
        except av.FFmpegError:
            continue  # a broken sample file: the pipeline rejects it too
    return {"cpu_s": _cpu() - start, "frames": frames}


def _decode_yuv_only(paths: list[str]) -> dict:
    return _decode_only(paths, to_rgb=False)


def _pipeline(paths: list[str]) -> dict:
    from syncvid.config.pipeline_schema import PipelineConfig
    from syncvid.outputs.manifest import read_manifest
    from syncvid.pipeline.run import run_pipeline

    with tempfile.TemporaryDirectory(prefix="syncvid-bench-") as tmp:
        inp = Path(tmp) / "in"
        inp.mkdir()
        for i, p in enumerate(paths):
            (inp / f"{i:02d}_{Path(p).name}").symlink_to(Path(p).resolve())
        cfg = PipelineConfig()
        cfg.run.input_dir, cfg.run.output_dir = str(inp), str(Path(tmp) / "out")
        cfg.run.executor, cfg.run.progress = "sequential", False
        start = _cpu()
        summary = run_pipeline(cfg, notice=lambda msg: None)
        run_cpu = _cpu() - start
        rows = read_manifest(Path(summary.output_dir) / "manifest.parquet")
    src = [r for r in rows if r["row_type"] == "source"]
    stages = {s: sum(float(r.get(f"cpu_{s}_s") or 0.0) for r in src) for s in STAGES}
    return {
        "run_cpu_s": run_cpu,
        "stages": stages,
        "duration_s": sum(float(r.get("num_frames") or 0) for r in src) / 25.0,
        "kept": summary.kept_clips,
        "dropped": summary.dropped_clips,
        "rejected_sources": summary.rejected_sources,
    }


def _child(fn, paths, queue):
    try:
        result = fn(paths)
    except Exception as exc:  # reported by the parent
        queue.put({"error": f"{type(exc).__name__}: {exc}"})
        return
    result["peak_rss_mb"] = _peak_rss_mb()
    queue.put(result)


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited across fork+exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(fn, paths: list[Path]) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, [str(p) for p in paths], queue))
    proc.start()
    result = queue.get()
    proc.join()
    if "error" in result:
        raise RuntimeError(result["error"])
    return result


def _median_of(results: list[dict]) -> dict:
    out = dict(results[0])
    for key in ("cpu_s", "run_cpu_s", "peak_rss_mb"):
        if key in out:
            out[key] = statistics.median(r[key] for r in results)
    if "stages" in out:
        out["stages"] = {s: statistics.median(r["stages"][s] for r in results) for s in STAGES}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="*", help="folders of sources, one class each (default: the generated corpus)")
    ap.add_argument("--cache", default=str(REPO / ".bench_cache"))
    ap.add_argument("--long-minutes", type=float, default=10.0)
    ap.add_argument("--no-long", action="store_true", help="skip the long source")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--classes", default="", help="comma-separated class names to run (default: all)")
    ap.add_argument("--json", default="", help="also write the results to this JSON file")
    args = ap.parse_args()
    if args.folders:
        classes = {Path(f).name: sorted(p for p in Path(f).rglob("*") if p.suffix.lower() in VIDEO_EXT)
                   for f in args.folders}
    else:
        classes = prepare_corpus(Path(args.cache), 0.0 if args.no_long else args.long_minutes)
    if args.classes:
        wanted = {c.strip() for c in args.classes.split(",")}
        classes = {k: v for k, v in classes.items() if k in wanted or k.split()[0] in wanted}
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}  ({os.cpu_count()} CPUs)")
    results = {}
    for name, paths in classes.items():
        dec, yuv, pipe = [], [], []
        for _ in range(max(1, args.repeat)):
            dec.append(measure(_decode_only, paths))
            yuv.append(measure(_decode_yuv_only, paths))
            pipe.append(measure(_pipeline, paths))
        results[name] = {"decode_only": _median_of(dec), "decode_yuv": _median_of(yuv), "pipeline": _median_of(pipe),
                         "sources": len(paths)}
        _print_class(name, results[name])
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


def _print_class(name: str, r: dict) -> None:
    p, d = r["pipeline"], r["decode_only"]
    dur = p["duration_s"]
    if dur <= 0:
        print(f"\n== {name}: no frames processed")
        return
    stage_sum = sum(p["stages"].values())
    print(f"\n== {name}: {r['sources']} sources, {dur:.1f} s of 25 fps video, clips kept {p['kept']} "
          f"dropped {p['dropped']}, sources rejected {p['rejected_sources']}")
    print(f"   {'':18s} {'CPU s':>8s} {'CPU s/s':>8s} {'x rt/core':>9s} {'/decode':>8s}")

    def line(label: str, cpu: float) -> None:
        rt = dur / cpu if cpu > 0 else float("inf")
        print(f"   {label:18s} {cpu:8.2f} {cpu / dur:8.4f} {rt:9.1f} {cpu / d['cpu_s']:8.2f}")

    line("pipeline (run)", p["run_cpu_s"])
    line("stages (sum)", stage_sum)
    for s in STAGES:
        line(f"  {s}", p["stages"][s])
    line("decode-only", d["cpu_s"])
    line("  without RGB", r["decode_yuv"]["cpu_s"])
    print(f"   peak RSS: pipeline worker {p['peak_rss_mb']:.0f} MB, decode-only {d['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
