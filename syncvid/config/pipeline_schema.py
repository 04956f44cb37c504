"""Schema of the data-processing pipeline configuration (configs/data/pipeline.yaml).

Each section is a dataclass handed, typed, to the stage that uses it.  Defaults
here are the schema defaults; the YAML file states the shipped values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Optional

DEFAULT_EXTENSIONS = [".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".flv", ".mpg", ".mpeg", ".ts", ".wmv"]


@dataclass
class RunSection:
    input_dir: Optional[str] = None
    output_dir: Optional[str] = None  # default: the parent folder of input_dir (reference behaviour)
    total_num_workers: int = 2
    per_gpu_num_workers: int = 1
    executor: str = "local"  # local | sequential | ray
    ray_address: Optional[str] = None
    max_retries: int = 2
    keep_intermediate: bool = False
    keep_candidates: bool = True
    contact_sheet: bool = True
    extensions: List[str] = field(default_factory=lambda: list(DEFAULT_EXTENSIONS))
    progress: bool = True

    def check_values(self) -> List[str]:
        problems = _choice("executor", self.executor, EXECUTORS)
        if self.total_num_workers < 1:
            problems.append(f"total_num_workers must be >= 1, got {self.total_num_workers}")
        if self.per_gpu_num_workers < 1:
            problems.append(f"per_gpu_num_workers must be >= 1, got {self.per_gpu_num_workers}")
        if self.max_retries < 0:
            problems.append(f"max_retries must be >= 0, got {self.max_retries}")
        return problems


@dataclass
class MediaSection:
    fps: int = 25
    sample_rate: int = 16000
    decode_threads: int = 1

    def check_values(self) -> List[str]:
        # 25 fps and 16 kHz are what every stage and the models assume (640 samples a frame,
        # 125-frame segments, SyncNet's 4 MFCC steps a frame): other values are refused.
        problems = []
        if self.fps != 25:
            problems.append(f"fps must be 25 (the rate of the reference's clips and models), got {self.fps}")
        if self.sample_rate != 16000:
            problems.append(f"sample_rate must be 16000 (the rate the models take), got {self.sample_rate}")
        if self.decode_threads < 1:
            problems.append(f"decode_threads must be >= 1, got {self.decode_threads}")
        return problems


@dataclass
class SceneSection:
    detector: str = "adaptive"  # adaptive | content | threshold | none
    threshold: float = 2.0  # adaptive_threshold (adaptive) / threshold (content, threshold)
    window_width: int = 2
    min_content_val: float = 15.0
    min_scene_len_s: float = 0.6
    downscale_width: int = 320  # frames fed to the detector are resized to this width

    def check_values(self) -> List[str]:
        problems = _choice("detector", self.detector, SCENE_DETECTORS)
        problems += _at_least("threshold", self.threshold, 0.0)
        problems += _at_least("min_content_val", self.min_content_val, 0.0)
        problems += _at_least("min_scene_len_s", self.min_scene_len_s, 0.0)
        if self.window_width < 1 or self.downscale_width < 16:
            problems.append(f"window_width must be >= 1 and downscale_width >= 16, got {self.window_width}, "
                            f"{self.downscale_width}")
        return problems


@dataclass
class SegmentSection:
    seconds: float = 5.0
    min_seconds: float = 2.0

    def check_values(self) -> List[str]:
        if not (math.isfinite(self.seconds) and self.seconds > 0):
            return [f"seconds must be positive, got {self.seconds}"]
        if not (math.isfinite(self.min_seconds) and 0 <= self.min_seconds <= self.seconds):
            return [f"min_seconds must be in [0, seconds={self.seconds}], got {self.min_seconds}"]
        return []


RESIZE_INTERPOLATIONS = ("cubic", "lanczos4")
EXECUTORS = ("local", "sequential", "ray")
SCENE_DETECTORS = ("adaptive", "content", "threshold", "none")
FACE_BACKENDS = ("dlib", "insightface")
SYNC_BACKENDS = ("landmark", "syncnet", "stable_syncnet")
QUALITY_BACKENDS = ("classic", "brisque", "hyperiqa")
MIN_RESOLUTION, MAX_RESOLUTION = 32, 2048


def _choice(key: str, value: str, allowed: tuple[str, ...]) -> List[str]:
    """A problem when `value` is not one of `allowed` (named with the valid ones)."""
    return [] if value in allowed else [f"{key} must be one of {', '.join(allowed)}, got {value!r}"]


def _at_least(key: str, value: float, low: float) -> List[str]:
    return [] if math.isfinite(value) and value >= low else [f"{key} must be >= {low:g}, got {value}"]


@dataclass
class FaceSection:
    backend: str = "dlib"  # dlib | insightface
    resolution: int = 256
    min_size_px: int = 50
    min_width_px: int = 50
    min_height_px: int = 80
    min_aspect: float = 0.2
    max_aspect: float = 1.5
    min_score: float = 0.5
    multiple_face_ratio: float = 0.5  # a second face at least this fraction of the main face's area => multiple_faces
    max_yaw_deg: Optional[float] = None
    detect_width: int = 640  # detection runs on frames downscaled to this width
    redetect_every: int = 25
    max_missing_frames: int = 0
    insightface_model_dir: Optional[str] = None
    device: str = "auto"
    detect_upsample: int = 0  # dlib: upsample the detection image this many times (finds 2x smaller faces, 4x slower)
    insightface_det_size: int = 640  # insightface: SCRFD input size (square)
    verify_every: int = 5  # while tracking, check every N frames that the tracked region is still a face (0: never)
    verify_margin: float = -0.5  # dlib: HOG margin a tracked face must still reach at a check
    smooth_anchors: bool = True  # adaptive (one-euro) smoothing of the three alignment anchors, reset per clip
    smooth_min_cutoff_hz: float = 2.0  # one-euro cut-off for a still face (lower: smoother, more lag)
    smooth_beta: float = 4.0  # one-euro speed coefficient (higher: less lag when the face moves)
    # Resize of the warped W×H crop to resolution×resolution: cubic (default) or lanczos4 (the
    # reference's); they differ by 52-60 dB PSNR on real faces, far below the crf-13 encode's
    # own error (~42 dB), and cubic costs an eighth of the time.
    resize_interpolation: str = "cubic"

    def check_values(self) -> List[str]:
        problems = _choice("resize_interpolation", self.resize_interpolation, RESIZE_INTERPOLATIONS)
        problems += _choice("backend", self.backend, FACE_BACKENDS)
        if not (MIN_RESOLUTION <= self.resolution <= MAX_RESOLUTION and self.resolution % 2 == 0):
            problems.append(f"resolution must be an even size from {MIN_RESOLUTION} to {MAX_RESOLUTION}, "
                            f"got {self.resolution}")
        if self.redetect_every < 1 or self.detect_width < 32:
            problems.append(f"redetect_every must be >= 1 and detect_width >= 32, got {self.redetect_every}, "
                            f"{self.detect_width}")
        return problems


@dataclass
class SyncSection:
    backend: str = "landmark"  # landmark | syncnet | stable_syncnet
    conf_threshold: float = 3.0
    max_offset_frames: int = 6
    search_frames: int = 15
    syncnet_checkpoint: str = "checkpoints/auxiliary/syncnet_v2.model"
    stable_syncnet_checkpoint: Optional[str] = None
    stable_syncnet_config: str = "configs/syncnet/pixel.yaml"
    device: str = "auto"
    landmark_model: str = ""  # backend landmark: a corpus judge fitted on a run (syncvid judge-sync); empty: per-clip estimator
    corpus_judge: bool = True  # backend landmark, no landmark_model: fit the corpus judge at the end of the run and re-judge

    def check_values(self) -> List[str]:
        problems = _choice("backend", self.backend, SYNC_BACKENDS)
        if not math.isfinite(self.conf_threshold):
            problems.append(f"conf_threshold must be a finite number, got {self.conf_threshold}")
        if self.max_offset_frames < 0 or self.search_frames < 1:
            problems.append(f"max_offset_frames must be >= 0 and search_frames >= 1, got {self.max_offset_frames}, "
                            f"{self.search_frames}")
        return problems


@dataclass
class QualitySection:
    # Scales and reasons for every threshold: docs/quality.md.  A threshold set to null disables its check.
    backends: List[str] = field(default_factory=lambda: ["classic", "brisque"])  # classic | brisque | hyperiqa
    num_frames: int = 5  # frames scored per clip by classic and brisque (spread evenly, first and last included)
    min_sharpness: Optional[float] = 3.0  # variance of the Laplacian of the face's luma at 256x256
    min_mouth_sharpness: Optional[float] = 4.0  # the same on the mouth region
    min_brightness: Optional[float] = 40.0  # mean luma of the face, 0-255
    max_brightness: Optional[float] = 225.0
    min_contrast: Optional[float] = 8.0  # standard deviation of the face's luma, 0-255
    max_noise: Optional[float] = 5.0  # estimated white-noise std of the face's luma at 256x256
    max_blockiness: Optional[float] = 1.5  # luma step across the 8x8 grid / step elsewhere (1.0 = none)
    max_brisque: Optional[float] = 70.0  # BRISQUE of the face region, lower is better
    brisque_model_dir: Optional[str] = None  # folder with svm.txt + normalize.pickle; default: the brisque package's
    hyperiqa_checkpoint: str = "checkpoints/auxiliary/koniq_pretrained.pkl"
    min_hyperiqa: Optional[float] = 40.0  # mean HyperIQA over frames 0, middle, last (the reference keeps >= 40)
    device: str = "auto"

    def check_values(self) -> List[str]:
        problems = [f"backends: unknown {b!r} (known: {', '.join(QUALITY_BACKENDS)})"
                    for b in self.backends if b not in QUALITY_BACKENDS]
        if self.num_frames < 1:
            problems.append(f"num_frames must be >= 1, got {self.num_frames}")
        for name in ("min_sharpness", "min_mouth_sharpness", "min_brightness", "max_brightness", "min_contrast",
                     "max_noise", "max_blockiness", "max_brisque", "min_hyperiqa"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                problems.append(f"{name} must be a finite number or null, got {value}")
        return problems


X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")
AAC_CODERS = ("fast", "twoloop", "anmr")


@dataclass
class EncodeSection:
    crf: int = 13
    # superfast with the macroblock-tree rate control that superfast turns off (rc-lookahead 0):
    # on 256x256 faces at crf 13 half the CPU time of veryfast, files ~10 % larger, same PSNR.
    preset: str = "superfast"
    x264_params: str = "rc-lookahead=10:mbtree=1"  # extra x264 options (key=value:key=value); "" for none
    audio_bitrate: int = 96000
    aac_coder: str = "fast"  # FFmpeg AAC coder: fast | twoloop (FFmpeg's default, ~5x slower, no audible gain at 96 kb/s)

    def check_values(self) -> List[str]:
        problems = []
        if not 0 <= self.crf <= 51:
            problems.append(f"crf must be from 0 to 51 (x264's range), got {self.crf}")
        if self.preset not in X264_PRESETS:
            problems.append(f"preset must be one of {', '.join(X264_PRESETS)}, got {self.preset!r}")
        if self.aac_coder not in AAC_CODERS:
            problems.append(f"aac_coder must be one of {', '.join(AAC_CODERS)}, got {self.aac_coder!r}")
        pairs = [item.partition("=") for item in self.x264_params.split(":") if item]
        bad = ["".join(p) for p in pairs if not p[0].strip() or not p[1]]
        if bad:
            problems.append(f"x264_params must be key=value pairs joined by ':', got {bad[0]!r}")
        return problems

    def writer_options(self) -> dict:
        """Keyword arguments for `ClipWriter` / `write_clip`."""
        return {"crf": self.crf, "preset": self.preset, "x264_params": self.x264_params,
                "audio_bitrate": self.audio_bitrate, "aac_coder": self.aac_coder}


@dataclass
class PipelineConfig:
    run: RunSection = field(default_factory=RunSection)
    media: MediaSection = field(default_factory=MediaSection)
    scene: SceneSection = field(default_factory=SceneSection)
    segment: SegmentSection = field(default_factory=SegmentSection)
    face: FaceSection = field(default_factory=FaceSection)
    sync: SyncSection = field(default_factory=SyncSection)
    quality: QualitySection = field(default_factory=QualitySection)
    encode: EncodeSection = field(default_factory=EncodeSection)
