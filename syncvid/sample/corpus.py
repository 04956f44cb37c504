"""The sample corpus: a folder of small talking-face videos with their ground truth.

`make_sample` writes every file of `corpus_specs` and ``ground_truth.json`` beside them.  Each
talking source is built from the puppet of `face_puppet` driven by the mouth curve of a speech
plan from `speech`, so the video and the audio are in sync by construction; the specs then vary
what the pipeline must cope with: frame rates, sample rates, channel counts, scene cuts with new
backgrounds and framings, audio shifted by a known number of frames, several faces, a tiny face,
a face that leaves the frame, odd file names, sources too short to give a clip, and files that are
not video at all.

Ground truth conventions (also written into the file under ``conventions``):

* ``sync_offset_frames`` follows syncnet_python: positive means the audio leads the video (the
  sound of a syllable comes that many frames before the mouth shows it); delaying the audio by
  that many frames re-synchronises it.
* ``segments`` and ``expected_clips`` assume the default segmenting (5 s = 125 frames at 25 fps,
  tails under 2.0 s dropped as ``segment/too_short``), cuts at ``round(cut_s * 25)`` and a 25 fps
  output timeline of ``floor(duration_s * 25)`` frames starting at time 0.
* face boxes are dlib frontal-detector boxes (x, y, w, h) of the puppet, averaged over a scene,
  in display pixels.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from syncvid.atomic import write_text_atomic
from syncvid.media.encode import ClipWriter
from syncvid.sample.face_puppet import (
    Placement,
    face_box_on_canvas,
    load_face_model,
    make_background,
    render_frame,
)
from syncvid.sample.speech import mouth_opening, plan_syllables, synthesize_speech

__all__ = [
    "GENERATOR_VERSION",
    "SIZES",
    "Framing",
    "Scene",
    "SourceSpec",
    "corpus_specs",
    "expected_segments",
    "make_sample",
    "load_ground_truth",
    "write_source",
]

GENERATOR_VERSION = 1
SIZES = ("small", "full")
GROUND_TRUTH_NAME = "ground_truth.json"
OUTPUT_FPS = 25
SEGMENT_FRAMES = 125
MIN_SEGMENT_FRAMES = 50
SOURCE_CRF = 21


@dataclass(frozen=True)
class Framing:
    """Where the speaking head sits, relative to the canvas: centre of the face box as fractions
    of width and height, and the face box width as a fraction of the canvas height."""

    cx: float = 0.5
    cy: float = 0.52
    face: float = 0.42


@dataclass(frozen=True)
class Scene:
    """One shot: from `start_s` to the next scene's start, on its own background and framing."""

    start_s: float
    background: str
    framing: Framing = Framing()


@dataclass(frozen=True)
class SourceSpec:
    """One file of the corpus and everything needed to generate it and its ground truth."""

    rel: str
    kind: str  # talk | two_faces | tiny_face | face_leaves | garbage | empty | text | truncated
    description: str
    width: int = 320
    height: int = 240
    fps: Fraction = Fraction(25)
    num_frames: int = 125
    sample_rate: int = 16000  # 0: no audio stream
    channels: int = 1
    scenes: tuple[Scene, ...] = (Scene(0.0, "studio"),)
    audio_lead_frames: int = 0  # syncnet_python convention: positive = audio leads the video
    rotation: int = 0  # degrees clockwise a player turns the stored frames
    vfr: bool = False
    motion: float = 1.0  # scale of the slow head drift (0: still)
    expected: tuple[str, str] | None = None  # (stage, reason) for the whole source
    segment_expected: tuple[str, str] | None = None  # (stage, reason) for every full-length segment
    extra: dict = field(default_factory=dict)

    @property
    def is_media(self) -> bool:
        return self.kind in ("talk", "two_faces", "tiny_face", "face_leaves")


def _talk(rel: str, description: str, **kw) -> SourceSpec:
    return SourceSpec(rel=rel, kind="talk", description=description, **kw)


def corpus_specs(size: str = "small") -> list[SourceSpec]:
    """The files of the corpus, in generation order."""
    if size not in SIZES:
        raise ValueError(f"unknown sample size {size!r}; choose from {', '.join(SIZES)}")
    ntsc = Fraction(24000, 1001)
    specs = [
        _talk(
            "talk_25fps.mp4",
            "one face, in sync, 25 fps, 44.1 kHz stereo: two 5 s clips and a 1 s tail",
            num_frames=275,
            sample_rate=44100,
            channels=2,
        ),
        _talk(
            "talk_30fps_cuts.mp4",
            "30 fps, 48 kHz, two hard cuts to a new background and framing",
            fps=Fraction(30),
            num_frames=300,
            sample_rate=48000,
            scenes=(
                Scene(0.0, "studio", Framing(0.5, 0.52, 0.42)),
                Scene(3.6, "shelves", Framing(0.40, 0.55, 0.50)),
                Scene(7.2, "window", Framing(0.62, 0.50, 0.37)),
            ),
        ),
        _talk(
            "talk_23.976fps.mp4",
            "NTSC film rate 24000/1001, 16 kHz mono, CIF canvas",
            width=352,
            height=288,
            fps=ntsc,
            num_frames=192,
            sample_rate=16000,
            scenes=(Scene(0.0, "wall", Framing(0.5, 0.52, 0.40)),),
        ),
        _talk(
            "shifted/talk_audio_leads_3.mp4",
            "audio leads the video by 3 frames (the sound comes 0.12 s before the mouth)",
            num_frames=200,
            audio_lead_frames=3,
            scenes=(Scene(0.0, "shelves"),),
        ),
        _talk(
            "shifted/talk_audio_lags_4.mp4",
            "audio lags the video by 4 frames (the sound comes 0.16 s after the mouth)",
            num_frames=200,
            audio_lead_frames=-4,
            scenes=(Scene(0.0, "window"),),
        ),
        _talk(
            "no_audio.mp4",
            "a talking face without an audio stream",
            num_frames=100,
            sample_rate=0,
            channels=0,
            expected=("broken", "no_audio"),
        ),
        SourceSpec(
            "broken.mp4", "garbage", "random bytes with a video extension", expected=("broken", "decode_error")
        ),
        SourceSpec("empty.mp4", "empty", "a 0-byte file", expected=("broken", "empty_file")),
        SourceSpec(
            "notes.txt.mp4", "text", "a text file with a video extension", expected=("broken", "decode_error")
        ),
        SourceSpec(
            "truncated.mp4",
            "truncated",
            "the first 55 % of a valid MP4 whose index (moov) was at the end",
            expected=("broken", "truncated"),
        ),
        SourceSpec(
            "faces/two_faces.mp4",
            "two_faces",
            "two faces of similar size side by side",
            width=480,
            height=240,
            segment_expected=("face", "multiple_faces"),
        ),
        SourceSpec(
            "faces/tiny_face.mp4",
            "tiny_face",
            "a face about 44 px wide on a 480x360 canvas",
            width=480,
            height=360,
            scenes=(Scene(0.0, "wall", Framing(0.5, 0.76, 44 / 360)),),
            segment_expected=("face", "face_too_small"),
        ),
        SourceSpec(
            "faces/face_leaves.mp4",
            "face_leaves",
            "the head starts sliding out to the right at 2.0 s and has left the frame by 3.2 s",
            segment_expected=("face", "face_lost"),
            extra={"exit_start_s": 2.0, "exit_end_s": 3.2},
        ),
        _talk(
            "odd names/it's a \"talk\" — ünï.mp4",
            "a file name with a space, quotes, an apostrophe, a dash and non-ASCII letters",
            num_frames=150,
            scenes=(Scene(0.0, "studio", Framing(0.48, 0.52, 0.44)),),
        ),
        _talk(
            "-leading-dash.mp4",
            "a file name that starts with a dash (looks like an option on a command line)",
            num_frames=125,
            sample_rate=22050,
            scenes=(Scene(0.0, "wall", Framing(0.53, 0.52, 0.42)),),
        ),
        _talk(
            "short_4.9s.mp4",
            "123 frames at 25 fps (4.92 s): exactly one clip of 123 frames",
            num_frames=123,
            scenes=(Scene(0.0, "window", Framing(0.55, 0.52, 0.42)),),
        ),
        _talk(
            "short_1.5s.mp4",
            "45 frames at 30 fps (1.5 s): its only segment is under the 2.0 s minimum",
            fps=Fraction(30),
            num_frames=45,
            scenes=(Scene(0.0, "shelves"),),
            expected=("segment", "too_short"),
        ),
    ]
    if size == "full":
        specs += [
            _talk(
                "full/talk_60fps.mp4",
                "60 fps, 48 kHz stereo, 640x360",
                width=640,
                height=360,
                fps=Fraction(60),
                num_frames=480,
                sample_rate=48000,
                channels=2,
                scenes=(Scene(0.0, "studio"),),
            ),
            _talk(
                "full/talk_vfr.mp4",
                "variable frame rate: frame intervals of 1/60, 1/30 and 1/20 s at random",
                width=480,
                height=360,
                fps=Fraction(30),
                num_frames=300,
                vfr=True,
                scenes=(Scene(0.0, "wall"),),
            ),
            _talk(
                "full/talk_rotated_90.mp4",
                "a portrait phone video: frames stored sideways with a 90 degree display rotation",
                width=360,
                height=480,
                num_frames=200,
                rotation=90,
                scenes=(Scene(0.0, "window", Framing(0.5, 0.42, 0.28)),),
            ),
            _talk(
                "full/talk_long_30s.mp4",
                "30 s at 25 fps with three cuts",
                width=640,
                height=360,
                num_frames=750,
                sample_rate=48000,
                scenes=(
                    Scene(0.0, "studio"),
                    Scene(8.0, "shelves", Framing(0.38, 0.55, 0.5)),
                    Scene(17.2, "window", Framing(0.6, 0.5, 0.36)),
                    Scene(24.0, "wall", Framing(0.5, 0.52, 0.45)),
                ),
            ),
            _talk(
                "full/talk_720p.mp4",
                "1280x720 at 25 fps, 44.1 kHz stereo",
                width=1280,
                height=720,
                num_frames=250,
                sample_rate=44100,
                channels=2,
                scenes=(Scene(0.0, "shelves", Framing(0.5, 0.5, 0.36)),),
            ),
        ]
    return specs


# -- timing and motion ---------------------------------------------------------------------------
def _frame_times(spec: SourceSpec, seed: int) -> tuple[np.ndarray, float]:
    """Presentation time of each frame and the clip's duration.  Constant-rate clips put frame k
    at k / fps; a variable-rate clip draws each interval from {1, 2, 3} ticks of 1/60 s."""
    if not spec.vfr:
        times = np.arange(spec.num_frames, dtype=np.float64) / float(spec.fps)
        return times, spec.num_frames / float(spec.fps)
    rng = np.random.default_rng([seed, 77])
    ticks = rng.choice([1, 2, 3], size=spec.num_frames, p=[0.25, 0.5, 0.25])
    # A container does not store how long the last frame lasts (MP4 muxing repeats the interval
    # before it): the last two intervals are both 1/30 s, so the clip's duration is unambiguous.
    ticks[-2:] = 2
    edges = np.concatenate([[0], np.cumsum(ticks)])
    return edges[:-1] / 60.0, edges[-1] / 60.0


def _scene_index(spec: SourceSpec, t: float) -> int:
    starts = [s.start_s for s in spec.scenes]
    return max(i for i, s in enumerate(starts) if s <= t + 1e-9)


def _placement(spec: SourceSpec, framing: Framing, t: float, phase: np.ndarray) -> Placement:
    """Head pose at time t: the scene's framing plus a slow drift (a few pixels of sway, a 3 %
    zoom breathing and a 2.5 degree tilt), so alignment has something to do."""
    w, h = spec.width, spec.height
    size = framing.face * h
    m = spec.motion
    two_pi_t = 2.0 * math.pi * t
    return Placement(
        center_x=framing.cx * w + m * 0.05 * size * math.sin(two_pi_t / 3.7 + phase[0]),
        center_y=framing.cy * h + m * 0.03 * size * math.sin(two_pi_t / 2.9 + phase[1]),
        face_width=size * (1.0 + m * 0.03 * math.sin(two_pi_t / 4.3 + phase[2])),
        angle_deg=m * 2.5 * math.sin(two_pi_t / 5.1 + phase[3]),
    )


def _heads(
    spec: SourceSpec, t: float, opening: float, other: float, phase: np.ndarray
) -> list[tuple[Placement, float]]:
    """The heads to draw at time t (placement, mouth opening)."""
    scene = spec.scenes[_scene_index(spec, t)]
    if spec.kind == "two_faces":
        left = Framing(0.27, 0.54, 0.40)
        right = Framing(0.73, 0.52, 0.38)
        return [
            (_placement(spec, left, t, phase), opening),
            (_placement(spec, right, t, phase[::-1]), other),
        ]
    place = _placement(spec, scene.framing, t, phase)
    if spec.kind == "face_leaves":
        t0, t1 = spec.extra["exit_start_s"], spec.extra["exit_end_s"]
        if t > t0:
            # Slide right at a constant speed so that the whole head (about two face widths
            # wide) is past the right edge at t1.
            travel = (1.0 - scene.framing.cx) * spec.width + 1.2 * place.face_width
            frac = (t - t0) / (t1 - t0)
            place = Placement(place.center_x + travel * frac, place.center_y, place.face_width, place.angle_deg)
    return [(place, opening)]


# -- ground truth helpers --------------------------------------------------------------------------
def expected_segments(spec: SourceSpec, duration_s: float) -> list[dict]:
    """Segments the default segmenting makes of a source, each with its expected outcome."""
    if not spec.is_media or (spec.expected is not None and spec.expected[0] == "broken"):
        return []
    n = int(math.floor(duration_s * OUTPUT_FPS + 1e-9))
    cuts = sorted({round(s.start_s * OUTPUT_FPS) for s in spec.scenes} - {0})
    bounds = [0] + [c for c in cuts if 0 < c < n] + [n]
    out = []
    for shot, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        for seg, start in enumerate(range(a, b, SEGMENT_FRAMES)):
            stop = min(start + SEGMENT_FRAMES, b)
            if stop - start < MIN_SEGMENT_FRAMES:
                expected = {"stage": "segment", "reason": "too_short"}
            elif spec.segment_expected is not None:
                expected = {"stage": spec.segment_expected[0], "reason": spec.segment_expected[1]}
            else:
                expected = None
            out.append(
                {
                    "shot": shot,
                    "index": seg,
                    "start_frame": start,
                    "end_frame": stop,
                    "num_frames": stop - start,
                    "start_s": start / OUTPUT_FPS,
                    "end_s": stop / OUTPUT_FPS,
                    "expected": expected,
                }
            )
    return out


def _fraction_str(value: Fraction) -> str:
    return str(Fraction(value))


# -- writing -----------------------------------------------------------------------------------
def write_source(spec: SourceSpec, root: Path, seed: int) -> dict:
    """Write one file of the corpus under `root`; returns its ground-truth entry."""
    path = root / spec.rel
    path.parent.mkdir(parents=True, exist_ok=True)
    entry: dict = {"kind": spec.kind, "description": spec.description}
    rng = np.random.default_rng([seed, 5])
    if spec.kind == "empty":
        path.write_bytes(b"")
    elif spec.kind == "garbage":
        path.write_bytes(rng.integers(0, 256, 6000, dtype=np.uint8).tobytes())
    elif spec.kind == "text":
        path.write_text(
            "Meeting notes\n\n- record the interview in the small studio\n- keep the raw takes\n"
            "- this file only has a video extension; it is not a video\n",
            encoding="utf-8",
        )
    elif spec.kind == "truncated":
        whole = path.with_name(f".{path.name}.whole.mp4")
        inner = SourceSpec("", "talk", "", num_frames=50, scenes=(Scene(0.0, "studio"),))
        try:
            _write_media(inner, whole, seed)
            data = whole.read_bytes()
        finally:
            whole.unlink(missing_ok=True)
        path.write_bytes(data[: int(0.55 * len(data))])
    if not spec.is_media:
        entry.update(_no_media_fields())
        entry["size_bytes"] = path.stat().st_size
        entry["expected"] = _expected(spec.expected)
        entry["segments"] = []
        entry["expected_clips"] = 0
        return entry
    entry.update(_write_media(spec, path, seed))
    entry["size_bytes"] = path.stat().st_size
    entry["expected"] = _expected(spec.expected)
    segments = expected_segments(spec, entry["duration_s"])
    entry["segments"] = segments
    entry["expected_clips"] = sum(1 for s in segments if s["expected"] is None) if spec.expected is None else 0
    return entry


def _expected(pair: tuple[str, str] | None) -> dict | None:
    return None if pair is None else {"stage": pair[0], "reason": pair[1]}


def _no_media_fields() -> dict:
    return {
        "width": None,
        "height": None,
        "fps": None,
        "vfr": False,
        "num_frames": 0,
        "duration_s": 0.0,
        "rotation": 0,
        "has_audio": False,
        "sample_rate": 0,
        "channels": 0,
        "audio_duration_s": 0.0,
        "cut_times_s": [],
        "sync_offset_frames": None,
        "num_faces": 0,
        "scenes": [],
    }


def _write_media(spec: SourceSpec, path: Path, seed: int) -> dict:
    """Render and encode one talking-face source; returns its ground-truth fields."""
    face = load_face_model()
    times, duration = _frame_times(spec, seed)
    fps = spec.fps
    rng = np.random.default_rng([seed, 11])
    phase = rng.uniform(0.0, 2.0 * math.pi, 4)
    # The mouth shows the speech at the middle of each frame's display interval.
    intervals = np.diff(np.concatenate([times, [duration]]))
    centres = times + 0.5 * intervals
    lead_s = spec.audio_lead_frames / float(fps)
    has_audio = spec.sample_rate > 0
    if has_audio:
        speech = synthesize_speech(
            duration,
            sample_rate=spec.sample_rate,
            fps=fps,
            seed=seed,
            channels=spec.channels,
            audio_lead_s=lead_s,
            num_frames=spec.num_frames,
        )
        syllables = speech.syllables
        audio = speech.audio
    else:
        syllables = plan_syllables(-0.5, duration + 0.5, seed)
        audio = None
    mouth = mouth_opening(syllables, centres)
    other = mouth_opening(plan_syllables(-0.5, duration + 0.5, seed + 7919), centres)
    backgrounds = [
        make_background(s.background, spec.width, spec.height, seed + i) for i, s in enumerate(spec.scenes)
    ]

    display_w, display_h = spec.width, spec.height
    store_w, store_h = (display_h, display_w) if spec.rotation in (90, 270) else (display_w, display_h)
    boxes: list[list[list[float]]] = [[] for _ in spec.scenes]
    per_frame_boxes: list[list[float]] = []
    writer = ClipWriter(
        path,
        store_w,
        store_h,
        fps=fps,
        sample_rate=spec.sample_rate,
        channels=spec.channels if has_audio else 0,
        crf=SOURCE_CRF,
        preset="veryfast",
        x264_params="",
        aac_coder="twoloop",
        threads=1,
        rotation=spec.rotation,
    )
    with writer:
        done = 0
        for k, t in enumerate(times):
            t = float(t)
            scene = _scene_index(spec, t)
            heads = _heads(spec, t, float(mouth[k]), float(other[k]), phase)
            frame = render_frame(backgrounds[scene], heads)
            boxes[scene].append([c for p, _ in heads for c in face_box_on_canvas(face, p)])
            per_frame_boxes.append(list(face_box_on_canvas(face, heads[0][0])))
            if spec.rotation:
                # Stored frames are the upright picture turned counter-clockwise; a player turns
                # them `rotation` degrees clockwise to show them upright.
                frame = np.ascontiguousarray(np.rot90(frame, k=spec.rotation // 90))
            writer.write_frame(frame, pts_s=t if spec.vfr else None)
            if audio is not None:
                upto = min(len(audio), int(round((t + intervals[k]) * spec.sample_rate)))
                if upto > done:
                    writer.write_audio(audio[done:upto])
                    done = upto
        if audio is not None and done < len(audio):
            writer.write_audio(audio[done:])

    num_faces = 2 if spec.kind == "two_faces" else 1
    scenes = []
    for i, s in enumerate(spec.scenes):
        end = spec.scenes[i + 1].start_s if i + 1 < len(spec.scenes) else duration
        arr = np.array(boxes[i], dtype=np.float64).reshape(-1, num_faces, 4)
        # Average over the frames where every face box lies inside the canvas (a face that
        # leaves the frame is described where it still is whole).
        inside = (
            (arr[..., 0] >= 0)
            & (arr[..., 1] >= 0)
            & (arr[..., 0] + arr[..., 2] <= display_w)
            & (arr[..., 1] + arr[..., 3] <= display_h)
        ).all(axis=1)
        arr = (arr[inside] if inside.any() else arr).mean(axis=0)
        scenes.append(
            {
                "start_s": round(s.start_s, 6),
                "end_s": round(end, 6),
                "background": s.background,
                "face_boxes": [[round(v, 1) for v in box] for box in arr.tolist()],
            }
        )
    fields = {
        "width": display_w,
        "height": display_h,
        # A variable-rate clip reports its average rate (frames / duration), as containers do.
        "fps": _fraction_str(Fraction(spec.num_frames) / Fraction(round(duration * 60), 60) if spec.vfr else fps),
        "vfr": spec.vfr,
        "num_frames": spec.num_frames,
        "duration_s": round(duration, 6),
        "rotation": spec.rotation,
        "has_audio": has_audio,
        "sample_rate": spec.sample_rate if has_audio else 0,
        "channels": spec.channels if has_audio else 0,
        "audio_duration_s": round(len(audio) / spec.sample_rate, 6) if has_audio else 0.0,
        "cut_times_s": [round(s.start_s, 6) for s in spec.scenes[1:]],
        "sync_offset_frames": spec.audio_lead_frames,
        "num_faces": num_faces,
        "scenes": scenes,
        "mouth_opening": [round(float(v), 3) for v in mouth],
    }
    if spec.vfr:
        fields["frame_times_s"] = [round(float(t), 6) for t in times]
    if spec.kind == "face_leaves":
        widths = np.array(per_frame_boxes)
        # First frame whose face box crosses the right edge, and first with it entirely outside.
        crossing = np.nonzero(widths[:, 0] + widths[:, 2] > spec.width)[0]
        outside = np.nonzero(widths[:, 0] >= spec.width)[0]
        fields["face_partly_out_from_s"] = round(float(times[crossing[0]]), 6) if len(crossing) else None
        fields["face_gone_from_s"] = round(float(times[outside[0]]), 6) if len(outside) else None
    return fields


def make_sample(out_dir: str | os.PathLike, *, size: str = "small", seed: int = 0) -> Path:
    """Write the sample corpus into `out_dir` and return the path of its ``ground_truth.json``.

    ``size="small"`` (17 files, a few seconds each) is what tests use; ``"full"`` adds a 60 fps,
    a variable-frame-rate, a rotated, a 30 s and a 1280x720 source.  The same seed gives the
    same content (not necessarily the same bytes)."""
    specs = corpus_specs(size)
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    files = {}
    for index, spec in enumerate(specs):
        files[spec.rel] = write_source(spec, root, seed * 1009 + index)
    truth = {
        "generator": "syncvid.sample",
        "version": GENERATOR_VERSION,
        "seed": seed,
        "size": size,
        "conventions": {
            "sync_offset_frames": "syncnet_python: positive = the audio leads the video; "
            "delaying the audio by that many frames re-synchronises it",
            "segments": f"{SEGMENT_FRAMES} frames at {OUTPUT_FPS} fps, tails under "
            f"{MIN_SEGMENT_FRAMES / OUTPUT_FPS:.1f} s dropped; cut frame = round(cut_s * {OUTPUT_FPS}); "
            f"output frames = floor(duration_s * {OUTPUT_FPS})",
            "face_boxes": "dlib frontal-detector box (x, y, w, h) in display pixels, averaged over the scene",
            "mouth_opening": "commanded opening in [0, 1] per source frame, at the middle of its display interval",
        },
        "files": files,
    }
    target = root / GROUND_TRUTH_NAME
    return write_text_atomic(target, json.dumps(truth, ensure_ascii=False, indent=1))


def load_ground_truth(path: str | os.PathLike) -> dict:
    """Read a ``ground_truth.json`` (or the folder holding one) written by `make_sample`."""
    path = Path(path)
    if path.is_dir():
        path = path / GROUND_TRUTH_NAME
    truth = json.loads(path.read_text(encoding="utf-8"))
    if truth.get("generator") != "syncvid.sample" or "files" not in truth:
        raise ValueError(f"{path.name}: not a syncvid sample ground truth")
    if truth.get("version") != GENERATOR_VERSION:
        raise ValueError(
            f"{path.name}: ground truth version {truth.get('version')} but this syncvid writes "
            f"version {GENERATOR_VERSION}; regenerate the sample"
        )
    return truth
