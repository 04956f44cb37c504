"""Process one source end to end: decode once, stream frames through the stages, encode once.

probe -> decode at 25 fps (+ 16 kHz audio) -> per frame: scene detector on a thumbnail, then
(a few frames later, once cuts up to that frame are known) face tracker + aligned crop ->
when a segment is complete: face rules -> sync -> quality -> encode the kept clip.
Frames travel as `Picture`s, which convert to RGB only the region around the face (and a
whole frame only where one is needed: detections, intermediates).  Full-resolution frames
are dropped as soon as they are aligned; a worker holds the aligned crops of one segment,
a few decoded frames and the source's 16 kHz audio.
"""

from __future__ import annotations

import shutil
import time
import traceback
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from syncvid.config.pipeline_schema import PipelineConfig
from syncvid.media.decode import SourceReader, release_free_memory, tune_allocator
from syncvid.media.encode import ClipWriter, replace_audio, write_clip
from syncvid.media.picture import Picture
from syncvid.atomic import atomic_path
from syncvid.errors import OutputWriteError
from syncvid.pipeline.decisions import decide, decision_fields, score_clip, summarise_source
from syncvid.outputs.layout import OutputLayout
from syncvid.outputs.markers import DoneMarker, read_marker, source_identity
from syncvid.outputs.thumbs import save_thumbnail_strip
from syncvid.records import Clip, MediaInfo, Rejected, Segment, Source
from syncvid.rows import Reason, RowType, Status
from syncvid.stages.broken import open_source
from syncvid.stages.scene import SceneDetector
from syncvid.stages.segment import locate, segment_frames


PROGRESS_EVERY_S = 1.0


@dataclass
class StageSet:
    """The stage objects of one worker process, set up once and reused for every source."""

    face: object
    sync: object
    quality: object
    device: str = "cpu"

    @staticmethod
    def per_clip_stages(cfg: PipelineConfig) -> tuple:
        """Face, sync and quality built from the config, not set up (no model loaded yet)."""
        from syncvid.stages.face import FaceStage
        from syncvid.stages.quality import QualityStage
        from syncvid.stages.sync import SyncStage

        return FaceStage(cfg.face), SyncStage(cfg.sync), QualityStage(cfg.quality)

    @classmethod
    def create(cls, cfg: PipelineConfig, device: str = "cpu") -> "StageSet":
        import cv2

        cv2.setNumThreads(1)  # parallelism comes from worker processes, not from threads inside one
        tune_allocator()  # recycle full-frame buffers (see its docstring)
        stages = cls(*cls.per_clip_stages(cfg), device)
        for stage in (stages.face, stages.sync, stages.quality):
            stage.setup()
        return stages


@dataclass
class SourceOutcome:
    source_rel: str
    rows: list[dict]
    duration_s: float = 0.0
    kept: int = 0
    retry_on_resume: bool = False
    cpu_s: dict = field(default_factory=dict)  # CPU seconds per stage (decode, scene, face, sync, quality, encode)


@dataclass
class _SegmentBuffer:
    shot_index: int
    seg_index: int
    start: int
    aligner: object
    frame_faces: list = field(default_factory=list)
    crops: list = field(default_factory=list)
    landmarks: list = field(default_factory=list)
    writer: _GuardedWriter | None = None  # segmented/ (only with keep_intermediate)

    @property
    def end(self) -> int:
        return self.start + len(self.frame_faces)


class SourceRunner:
    """Runs every stage on one source; the executor calls `run(source)` once per source."""

    def __init__(self, cfg: PipelineConfig, layout: OutputLayout, stages: StageSet, fingerprint: str):
        self.cfg = cfg
        self.layout = layout
        self.stages = stages
        self.fingerprint = fingerprint
        self.fps = cfg.media.fps
        self.sample_rate = cfg.media.sample_rate
        self.spf = self.sample_rate // self.fps  # audio samples per frame (640)
        self.seg_len, self.seg_min = segment_frames(cfg.segment, self.fps)
        # Called with (source, seconds of video done, seconds in all) while a source runs, at most
        # every PROGRESS_EVERY_S of wall time: worker processes forward it to the progress bar.
        self.on_progress = None

    # ------------------------------------------------------------------ public
    def run(self, source: Source) -> SourceOutcome:
        """Process `source`, write its clips, then its completion marker (always last).

        The marker records the input's identity (taken before decoding) and the size of every file
        written, so a resume redoes the source when either no longer matches.  A source whose
        processing fails leaves none of its files behind (see `_process`)."""
        self._remove_previous_outputs(source)
        identity = source_identity(source.path)
        outcome = self._process(source)
        marker = DoneMarker(source.rel, self.fingerprint, outcome.rows, duration_s=outcome.duration_s,
                            retry_on_resume=outcome.retry_on_resume, finished=time.time(), input=identity)
        marker.record_files(self.layout.root)
        try:
            marker.write(self.layout)
        except OSError as exc:  # the source's files are useless without their marker: remove them
            self._remove_written()
            error = OutputWriteError("quality", self.layout.done_marker(source.rel), exc)
            row = dict(outcome.rows[0]) if outcome.rows else self._source_row(source, None, "", "", "", "")
            row.update(status="dropped", stage=error.stage, reason=error.reason, message=error.describe())
            outcome = SourceOutcome(source.rel, [row], 0.0, retry_on_resume=True)
        return outcome

    # ----------------------------------------------------------------- private
    @contextmanager
    def _timer(self, stage: str):
        start = time.process_time()
        try:
            yield
        finally:
            self._cpu[stage] = self._cpu.get(stage, 0.0) + time.process_time() - start

    def _timed_pictures(self, reader: SourceReader):
        pictures = reader.pictures()
        while True:
            with self._timer("decode"):
                picture = next(pictures, None)
            if picture is None:
                return
            yield picture

    def _process(self, source: Source) -> SourceOutcome:
        """The source's rows; a source that fails is one `dropped` row and leaves none of its files."""
        stage = "broken"
        info: MediaInfo | None = None
        self._cpu: dict[str, float] = {}
        self._written: list[Path] = []
        try:
            with self._timer("decode"):
                reader = open_source(source.path, self.cfg.media)
            with reader:
                info = reader.info
                stage = "resample"
                return self._stream(source, info, reader)
        except Rejected as rej:
            self._remove_written()
            row = self._source_row(source, info, Status.DROPPED, rej.stage, rej.reason, rej.message)
            row.update(rej.measurements)
            return SourceOutcome(source.rel, [row], 0.0)
        except OutputWriteError as err:  # disk full, quota, permissions: the run decides whether to go on
            self._remove_written()
            row = self._source_row(source, info, "dropped", err.stage, err.reason, err.describe())
            return SourceOutcome(source.rel, [row], 0.0, retry_on_resume=True)
        except Exception as exc:  # one bad file never stops a run: record it with its cause
            self._remove_written()
            last = traceback.extract_tb(exc.__traceback__)[-1]
            message = f"{type(exc).__name__}: {exc} (at {Path(last.filename).name}:{last.lineno})"
            row = self._source_row(source, info, Status.DROPPED, stage, Reason.INTERNAL_ERROR, message)
            return SourceOutcome(source.rel, [row], 0.0, retry_on_resume=True)

    @contextmanager
    def _writing(self, stage: str, path: Path, done: bool = True):
        """Around the writing of one of our files: an OSError becomes an `OutputWriteError` naming
        `path` and `stage`; a file written completely (`done`) is remembered, to be removed if the
        source fails."""
        try:
            yield
        except OutputWriteError:
            raise
        except OSError as exc:
            raise OutputWriteError(stage, path, exc) from exc
        if done:
            self._written.append(path)

    def _remove_written(self) -> None:
        """Delete every file this source has written so far (they would belong to no manifest row)."""
        for path in getattr(self, "_written", []):
            path.unlink(missing_ok=True)
        self._written = []

    def _stream(self, source: Source, info: MediaInfo, reader: SourceReader) -> SourceOutcome:
        cfg = self.cfg
        scene = SceneDetector(cfg.scene, self.fps)
        lag = scene.latency + 1
        cuts: list[int] = []
        pending: deque = deque()
        self._rows: list[dict] = []
        self._segment: _SegmentBuffer | None = None
        self._candidate: tuple | None = None  # (path, frames, audio) of the segment's candidate file
        self._shot_writer: _GuardedWriter | None = None
        self._shot_index = -1
        self._shot_span = (0, 0)
        self._source = source
        self.stages.face.reset()
        num_frames = 0
        self._reader = reader
        resampled = self._open_resampled(source, info)
        try:
            last_report = time.monotonic()
            for k, picture in enumerate(self._timed_pictures(reader)):
                num_frames = k + 1
                if self.on_progress is not None and time.monotonic() - last_report >= PROGRESS_EVERY_S:
                    last_report = time.monotonic()
                    self.on_progress((source.rel, num_frames / self.fps, float(info.duration_s)))
                if scene.enabled:
                    with self._timer("scene"):
                        cuts.extend(scene.push(k, picture))
                if resampled is not None:
                    resampled.write_frame(_even(picture.rgb()))
                pending.append((k, picture))
                while pending and pending[0][0] <= k - lag:
                    self._emit(*pending.popleft(), cuts)
            cuts.extend(scene.finish())
            while pending:
                self._emit(*pending.popleft(), cuts)
            self._finish_segment()
            self._close_shot_writer()
            if num_frames == 0:
                raise Rejected("resample", Reason.NO_COMMON_SPAN, "audio and video do not overlap in time")
            if resampled is not None:
                resampled.write_audio(self._audio_slice(0, num_frames))
                resampled.close()
        except BaseException:
            for w in (resampled, self._shot_writer, self._segment.writer if self._segment else None):
                if w is not None:
                    w.abort()
            raise
        duration = num_frames / self.fps
        kept = sum(1 for r in self._rows if r["status"] == Status.KEPT)
        shots = len({r["shot_index"] for r in self._rows})
        src = summarise_source(self._source_row(source, info, Status.KEPT, "", "", ""), self._rows)
        src.update(num_frames=num_frames, start_s=float(reader.t0), end_s=float(reader.t0) + duration, num_shots=shots)
        src.update({f"cpu_{k}_s": round(v, 4) for k, v in self._cpu.items()})
        return SourceOutcome(source.rel, [src] + self._rows, duration, kept, cpu_s=dict(self._cpu))

    def _emit(self, k: int, picture: Picture, cuts: list[int]) -> None:
        """Assign frame k to its shot and segment (cuts up to k are known), track and align it."""
        shot_start = max([0] + [c for c in cuts if c <= k])
        shot_index = sum(1 for c in set(cuts) if 0 < c <= k)
        seg_index, seg_start = locate(k, shot_start, self.seg_len)
        buf = self._segment
        if buf is None or (buf.shot_index, buf.seg_index) != (shot_index, seg_index):
            self._finish_segment()
            if shot_index != self._shot_index:
                self._close_shot_writer()
                self._shot_index = shot_index
                self._shot_writer = self._open_intermediate("shot", f"_shot_{shot_index:03d}", picture)
            seg = self._segment_record(shot_index, seg_index, seg_start, seg_start + 1)
            writer = self._open_intermediate("segmented", seg.clip_id[len(self._source.output_stem):], picture)
            buf = self._segment = _SegmentBuffer(shot_index, seg_index, seg_start,
                                                 self.stages.face.new_aligner(), writer=writer)
        self._shot_span = (shot_start, k + 1)
        if self._shot_writer is not None:
            self._shot_writer.write_frame(_even(picture.rgb()))
        if buf.writer is not None:
            buf.writer.write_frame(_even(picture.rgb()))
        with self._timer("face"):
            face = self.stages.face.track(picture, new_shot=(k == shot_start))
            buf.frame_faces.append(face)
            if face.landmarks is not None:
                crop, lm = buf.aligner.warp(picture, face)
                buf.crops.append(crop)
                buf.landmarks.append(lm)
            else:
                buf.crops.append(None)
                buf.landmarks.append(None)

    def _finish_segment(self) -> None:
        buf = self._segment
        self._segment = None
        if buf is None:
            return
        seg = self._segment_record(buf.shot_index, buf.seg_index, buf.start, buf.end)
        if buf.writer is not None:
            buf.writer.write_audio(self._audio_slice(seg.start_frame, seg.end_frame))
            buf.writer.close()
        row = self._clip_row(seg)
        try:
            if seg.num_frames < self.seg_min:
                raise Rejected("segment", Reason.TOO_SHORT,
                               f"{seg.num_frames} frames ({seg.num_frames / self.fps:.2f} s) < "
                               f"segment.min_seconds {self.cfg.segment.min_seconds} s")
            with self._timer("face"):
                row.update(self.stages.face.judge(buf.frame_faces).as_dict())
            clip = self._build_clip(seg, buf)
            self._candidate = None
            self._write_candidate(clip, row)
            self._score_and_keep(clip, row)
        except Rejected as rej:
            row.update(rej.measurements)
            row.update(status=Status.DROPPED, stage=rej.stage, reason=rej.reason, message=rej.message)
        if any(c is not None for c in buf.crops):
            self._save_thumbnails(seg, buf.crops)
        self._rows.append(row)
        release_free_memory()  # the segment's crops and encoders are gone: keep the heap from growing

    def _score_and_keep(self, clip: Clip, row: dict) -> None:
        """Sync and quality: measure everything, then decide, so `syncvid filter` can re-decide later.

        The corrected clip is encoded either way: into high_visual_quality/ when kept, or into
        the hidden pool when dropped by a threshold, from where `syncvid filter` can move it.
        """
        clip = score_clip(clip, row, self.stages.sync, self.stages.quality, timer=self._timer)
        decision = decide(row, self.stages.sync, self.stages.quality)
        if decision is None or decision.stage == "quality":  # av_synced/ holds what passed sync
            self._write_intermediate_synced(clip)
        row.update(decision_fields(self.layout, clip.segment.clip_rel, decision))
        self._encode_clip(self.layout.root / (row["output"] or row["pooled"]), clip, "quality")
        if decision is not None:
            try:
                raise decision
            finally:
                # The traceback refers to this frame: a local still holding the exception would make
                # a reference cycle that keeps the clip's frames alive until the cyclic collector runs.
                decision = None

    def _build_clip(self, seg: Segment, buf: _SegmentBuffer) -> Clip:
        crops = _fill_missing(buf.crops)
        landmarks = _fill_missing(buf.landmarks)
        return Clip(
            segment=seg,
            frames=np.stack(crops),
            audio=self._audio_slice(seg.start_frame, seg.end_frame),
            landmarks=np.stack(landmarks).astype(np.float32),
            sample_rate=self.sample_rate,
            source_audio=self._reader.audio,
            audio_start_sample=seg.start_frame * self.spf,
        )

    def _audio_slice(self, start_frame: int, end_frame: int) -> np.ndarray:
        """Audio of output frames [start, end), zero-padded if the source's audio ends a fraction early."""
        a, b = start_frame * self.spf, end_frame * self.spf
        audio = self._reader.audio[a:b]
        if audio.shape[0] < b - a:
            audio = np.concatenate([audio, np.zeros(b - a - audio.shape[0], np.float32)])
        return audio

    # ------------------------------------------------------------------ outputs
    def _encode(self, path: Path, frames: np.ndarray, audio: np.ndarray, stage: str) -> None:
        enc = self.cfg.encode
        with self._writing(stage, path), self._timer("encode"):
            path.parent.mkdir(parents=True, exist_ok=True)
            write_clip(path, frames, audio, fps=self.fps, sample_rate=self.sample_rate,
                       **enc.writer_options())

    def _encode_clip(self, path: Path, clip: Clip, stage: str) -> None:
        """Write `clip`, reusing this segment's candidate file when it has the same frames.

        The sync correction usually only moves the audio: the candidate's H.264 stream is then
        exactly what encoding the same frames again would give, so it is copied packet for packet
        and only the audio is encoded (or the whole file is copied when the audio is unchanged too).
        """
        cand = self._candidate
        if cand is None or not _same_frames(clip.frames, cand[1]):
            self._encode(path, clip.frames, clip.audio, stage)
            return
        with self._writing(stage, path), self._timer("encode"):
            path.parent.mkdir(parents=True, exist_ok=True)
            if clip.audio is cand[2]:
                _copy_file(cand[0], path)
            else:
                enc = self.cfg.encode
                replace_audio(cand[0], path, clip.audio, sample_rate=self.sample_rate,
                              audio_bitrate=enc.audio_bitrate, aac_coder=enc.aac_coder)

    def _write_candidate(self, clip: Clip, row: dict) -> None:
        if not self.cfg.run.keep_candidates:
            return
        path = self.layout.candidates_dir / clip.segment.clip_rel
        self._encode(path, clip.frames, clip.audio, "face")
        self._candidate = (path, clip.frames, clip.audio)
        row["candidate"] = path.relative_to(self.layout.root).as_posix()
        lm_path = self.layout.landmarks_dir / (clip.segment.clip_rel[:-4] + ".npy")
        with self._writing("face", lm_path), atomic_path(lm_path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, clip.landmarks.astype(np.float16))

    def _write_intermediate_synced(self, clip: Clip) -> None:
        if not self.cfg.run.keep_intermediate:
            return
        folder = self.layout.intermediate_dir(f"av_synced_{self.cfg.sync.conf_threshold:g}")
        self._encode_clip(folder / clip.segment.clip_rel, clip, "sync")

    def _open_resampled(self, source: Source, info: MediaInfo) -> _GuardedWriter | None:
        if not self.cfg.run.keep_intermediate:
            return None
        return self._writer(self.layout.intermediate_dir("resampled"), "", info.width, info.height, "resample")

    def _open_intermediate(self, folder: str, suffix: str, picture: Picture) -> _GuardedWriter | None:
        if not self.cfg.run.keep_intermediate:
            return None
        stage = {"shot": "scene", "segmented": "segment"}[folder]
        return self._writer(self.layout.intermediate_dir(folder), suffix, picture.width, picture.height, stage)

    def _writer(self, folder: Path, suffix: str, width: int, height: int, stage: str) -> _GuardedWriter:
        rel_dir = self._source.rel_dir
        path = folder / rel_dir / f"{self._source.output_stem}{suffix}.mp4"
        enc = self.cfg.encode
        with self._writing(stage, path, done=False):  # `close` records the file once it is complete
            path.parent.mkdir(parents=True, exist_ok=True)
            writer = ClipWriter(path, width - width % 2, height - height % 2, fps=self.fps,
                                sample_rate=self.sample_rate, **enc.writer_options())
        return _GuardedWriter(writer, self, stage, path)

    def _close_shot_writer(self) -> None:
        if self._shot_writer is None:
            return
        self._shot_writer.write_audio(self._audio_slice(*self._shot_span))
        self._shot_writer.close()
        self._shot_writer = None

    def _save_thumbnails(self, seg: Segment, crops: list) -> None:
        valid = [c for c in crops if c is not None]
        picks = [valid[0], valid[len(valid) // 2], valid[-1]]
        path = self.layout.state_dir / "thumbs" / (seg.clip_rel[:-4] + ".png")
        with self._writing("face", path):
            save_thumbnail_strip(path, picks)

    def _remove_previous_outputs(self, source: Source) -> None:
        """Delete this source's outputs listed by an earlier completed run (our files, never inputs)."""
        path = self.layout.done_marker(source.rel)
        marker = read_marker(self.layout, source.rel)
        path.unlink(missing_ok=True)
        for r in marker.rows if marker is not None else []:
            for key in ("output", "candidate", "pooled"):
                if r.get(key):
                    (self.layout.root / r[key]).unlink(missing_ok=True)

    # --------------------------------------------------------------------- rows
    def _segment_record(self, shot: int, seg: int, start: int, end: int) -> Segment:
        return Segment(self._source.rel, shot, seg, start, end, time_offset_s=self._reader.t0,
                       clip_stem=self._source.output_stem)

    def _clip_row(self, seg: Segment) -> dict:
        return {
            "source": seg.source_rel, "clip": seg.clip_id, "row_type": RowType.CLIP, "status": Status.DROPPED,
            "stage": "", "reason": "", "message": "", "start_s": round(seg.start_s, 6),
            "end_s": round(seg.end_s, 6), "num_frames": seg.num_frames, "output": "", "candidate": "", "pooled": "",
            "shot_index": seg.shot_index, "seg_index": seg.seg_index,
            "start_frame": seg.start_frame, "end_frame": seg.end_frame,
        }

    def _source_row(self, source: Source, info: MediaInfo | None, status: Status, stage: str, reason: str,
                    message: str) -> dict:
        row = {"source": source.rel, "clip": "", "row_type": RowType.SOURCE, "status": status, "stage": stage,
               "reason": reason, "message": message, "output": "", "candidate": ""}
        if source.output_stem != source.stem:  # its clips are named after something else (see discovery)
            row["clip_stem"] = source.output_stem
        if info is not None:
            row.update(src_fps=f"{info.fps.numerator}/{info.fps.denominator}", src_width=info.width,
                       src_height=info.height, src_audio_rate=info.audio_rate, duration_s=float(info.duration_s))
        return row


class _GuardedWriter:
    """A `ClipWriter` of one source's intermediate file whose OSErrors name the file and its stage."""

    def __init__(self, writer: ClipWriter, runner: SourceRunner, stage: str, path: Path):
        self._writer, self._runner, self._stage, self._path = writer, runner, stage, path

    def write_frame(self, *args, **kw) -> None:
        with self._guard():
            self._writer.write_frame(*args, **kw)

    def write_audio(self, *args, **kw) -> None:
        with self._guard():
            self._writer.write_audio(*args, **kw)

    def close(self) -> None:
        with self._runner._writing(self._stage, self._path):
            self._writer.close()

    def abort(self) -> None:
        self._writer.abort()

    @contextmanager
    def _guard(self):
        try:
            yield
        except OSError as exc:
            raise OutputWriteError(self._stage, self._path, exc) from exc


def _fill_missing(items: list) -> list:
    """Replace None entries (frames tolerated without a face) by the nearest earlier, else later, entry."""
    first = next(x for x in items if x is not None)
    out, last = [], first
    for x in items:
        last = x if x is not None else last
        out.append(last)
    return out


def _same_frames(a: np.ndarray, b: np.ndarray) -> bool:
    """True when `a` and `b` are the same frames in memory (the same array or an identical view)."""
    return (a.shape == b.shape and a.strides == b.strides and a.dtype == b.dtype
            and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])


def _copy_file(src: Path, dst: Path) -> None:
    """Copy `src` onto `dst` through a hidden temporary name (never a partial file under `dst`)."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def _even(frame: np.ndarray) -> np.ndarray:
    """The frame cropped to even width and height (H.264 4:2:0 needs both even)."""
    h, w = frame.shape[:2]
    return frame[: h - h % 2, : w - w % 2]
