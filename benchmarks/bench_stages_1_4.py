"""Stages 1–4 (broken, resample, scene, segment) against decode-only, per source, one thread.

    .venv/bin/python benchmarks/bench_stages_1_4.py [FOLDER ...] [--long-minutes 10]

For every source it measures, each in a fresh process (so peak memory is that work's own):
  decode-only   PyAV decoding every video frame to an RGB array, one thread (what any tool pays)
  stages 1-4    probe + decode at 25 fps with 16 kHz audio + scene detection + segment bookkeeping
  interim enc.  encoding the segments at source resolution (what the pipeline did before faces)
and prints CPU-seconds per second of video, the realtime factor and peak memory (RSS).
Without FOLDER it uses ../shared/media when present and a generated long 720p source
(`--long-minutes`, default 10; 0 to skip) to show that memory does not grow with duration.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _decode_only(path: str) -> dict:
    import av

    start = _cpu()
    n = 0
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "SLICE"
        stream.codec_context.thread_count = 1
        for frame in container.decode(stream):
            frame.to_ndarray(format="rgb24")
            n += 1
    return {"cpu_s": _cpu() - start, "frames": n}


def _stages_1_4(path: str) -> dict:
    from syncvid.config.pipeline_schema import PipelineConfig
    from syncvid.stages.broken import open_source
    from syncvid.stages.scene import SceneDetector
    from syncvid.stages.segment import segment_frames, shots_from_cuts, split_shot

    from syncvid.media.decode import tune_allocator

    tune_allocator()  # as a pipeline worker does
    cfg = PipelineConfig()
    start = _cpu()
    scene = SceneDetector(cfg.scene, cfg.media.fps)
    cuts: list[int] = []
    n = 0
    with open_source(Path(path), cfg.media) as reader:
        for k, frame in enumerate(reader.frames()):
            cuts.extend(scene.push(k, frame))
            n = k + 1
        cuts.extend(scene.finish())
        length, minimum = segment_frames(cfg.segment, cfg.media.fps)
        segments = [p for i, (a, b) in enumerate(shots_from_cuts(cuts, n)) for p in split_shot(i, a, b, length, minimum)]
        duration = n / cfg.media.fps
    return {"cpu_s": _cpu() - start, "frames": n, "duration_s": duration, "shots": len(set(cuts)) + 1,
            "segments": len(segments)}


def _interim_encode(path: str) -> dict:
    """Encode every 125-frame segment at source resolution (decode cost subtracted by the caller)."""
    from syncvid.media.decode import SourceReader
    from syncvid.media.encode import ClipWriter
    import tempfile

    enc_cpu = 0.0
    with tempfile.TemporaryDirectory() as tmp, SourceReader(path, threads=1) as reader:
        writer = None
        for k, frame in enumerate(reader.frames()):
            t = _cpu()
            if k % 125 == 0:
                if writer is not None:
                    writer.close()
                h, w = frame.shape[:2]
                writer = ClipWriter(Path(tmp) / f"seg{k}.mp4", w - w % 2, h - h % 2, crf=13, preset="veryfast")
                writer.write_audio(reader.audio[k * 640:(k + 125) * 640])
            writer.write_frame(frame[: h - h % 2, : w - w % 2])
            enc_cpu += _cpu() - t
        if writer is not None:
            t = _cpu()
            writer.close()
            enc_cpu += _cpu() - t
    return {"cpu_s": enc_cpu}


def _child(fn, path, queue):
    try:
        result = fn(path)
    except Exception as exc:
        queue.put({"error": f"{type(exc).__name__}: {exc}"})
        return
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(result)


def measure(fn, path: Path) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, str(path), queue))
    proc.start()
    result = queue.get()
    proc.join()
    if "error" in result:
        raise RuntimeError(result["error"])
    return result


def make_long_source(path: Path, minutes: float) -> None:
    """A 1280x720 25 fps source with moving content, a cut every 20 s and a 440 Hz tone."""
    from syncvid.media.encode import ClipWriter

    n = int(minutes * 60 * 25)
    yy, xx = np.mgrid[0:720, 0:1280]
    base = ((xx // 40 + yy // 40) % 2 * 60 + 60).astype(np.uint8)
    with ClipWriter(path, 1280, 720, fps=25, sample_rate=16000, crf=28, preset="ultrafast") as w:
        t = np.arange(n * 640) / 16000
        w.write_audio((0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
        for k in range(n):
            frame = np.repeat(np.roll(base, k * 3, axis=1)[:, :, None], 3, axis=2)
            frame[:, :, (k // 500) % 3] //= 2  # colour change every 20 s: a scene cut
            w.write_frame(frame)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="*")
    ap.add_argument("--long-minutes", type=float, default=10.0)
    ap.add_argument("--cache", default=str(REPO / ".bench_cache"))
    args = ap.parse_args()
    paths: list[Path] = []
    folders = [Path(f) for f in args.folders] or [p for p in [REPO.parent / "shared" / "media"] if p.is_dir()]
    for folder in folders:
        paths += sorted(p for p in folder.rglob("*.mp4"))
    if args.long_minutes > 0:
        long_path = Path(args.cache) / f"long_720p_{args.long_minutes:g}min.mp4"
        if not long_path.exists():
            long_path.parent.mkdir(parents=True, exist_ok=True)
            print(f"generating {long_path.name} ...", flush=True)
            make_long_source(long_path, args.long_minutes)
        paths.append(long_path)
    print(f"{'source':32s} {'video s':>8s} {'decode cpu/s':>12s} {'st1-4 cpu/s':>12s} {'ratio':>6s} "
          f"{'x realtime':>10s} {'enc cpu/s':>10s} {'peak MB dec/st/enc':>20s}")
    tot = {"dur": 0.0, "dec": 0.0, "st": 0.0, "enc": 0.0}
    for path in paths:
        try:
            st = measure(_stages_1_4, path)
        except Exception as exc:  # a rejected source (e.g. no audio) is reported, not benchmarked
            print(f"{path.name[:32]:32s} skipped: {exc}")
            continue
        dec = measure(_decode_only, path)
        enc = measure(_interim_encode, path)
        d = st["duration_s"]
        if d <= 0:
            print(f"{path.name[:32]:32s} skipped: no frames")
            continue
        tot["dur"] += d
        tot["dec"] += dec["cpu_s"]
        tot["st"] += st["cpu_s"]
        tot["enc"] += enc["cpu_s"]
        print(f"{path.name[:32]:32s} {d:8.1f} {dec['cpu_s'] / d:12.4f} {st['cpu_s'] / d:12.4f} "
              f"{st['cpu_s'] / dec['cpu_s']:6.2f} {d / st['cpu_s']:10.1f} {enc['cpu_s'] / d:10.4f} "
              f"{dec['peak_rss_mb']:6.0f}/{st['peak_rss_mb']:5.0f}/{enc['peak_rss_mb']:5.0f}")
    if tot["dur"]:
        print(f"{'TOTAL':32s} {tot['dur']:8.1f} {tot['dec'] / tot['dur']:12.4f} {tot['st'] / tot['dur']:12.4f} "
              f"{tot['st'] / tot['dec']:6.2f} {tot['dur'] / tot['st']:10.1f} {tot['enc'] / tot['dur']:10.4f}")
        print("ratio = stages 1-4 CPU / decode-only CPU (target <= 2); enc = interim source-resolution encoding, "
              "reported separately")


if __name__ == "__main__":
    main()
