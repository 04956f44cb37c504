"""Sync backends behind one small interface, chosen by name (`sync.backend`).

Every backend turns a `SyncInput` (aligned frames, landmarks, the source's audio and the
clip's place in it) into an `OffsetEstimate` (syncnet_python's sign: positive = audio
leads) plus backend-specific measurements.  Offsets are searched over ±`search_frames`
using the audio *around* the clip where the source has it, so a shifted clip is compared
with real audio rather than zero padding.

- `landmark` (default): lip landmarks vs speech band energies; numpy only, no weights.  With
  `sync.landmark_model` it judges with a corpus model fitted on a run (`syncvid.sync.corpus_judge`).
- `syncnet`: the original SyncNet with a user-supplied `syncnet_v2.model`.
- `stable_syncnet`: LatentSync's SyncNet with a user-supplied checkpoint and config.

The torch backends import torch (and their model modules) inside `setup()` only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from syncvid.sync.landmark import DlibLandmarker, context_window, landmark_offset
from syncvid.sync.mfcc import float_to_int16_scale, mfcc
from syncvid.sync.offset import OffsetEstimate, offset_from_mean_dists, offset_from_similarity

__all__ = [
    "SyncInput",
    "SyncBackend",
    "LandmarkBackend",
    "SyncNetBackend",
    "StableSyncNetBackend",
    "BACKENDS",
    "create_backend",
    "syncnet_face_box",
    "syncnet_crops",
    "stable_syncnet_visual_windows",
    "STABLE_SYNCNET_CONF_SCALE",
]

# conf of the stable_syncnet backend = scale * (best - median cosine similarity).
STABLE_SYNCNET_CONF_SCALE = 10.0


@dataclass
class SyncInput:
    """What a backend sees of one clip."""

    frames: np.ndarray  # uint8 [T, r, r, 3] RGB aligned faces
    landmarks: np.ndarray | None  # float32 [T, 68, 2] in crop pixels, or None
    source_audio: np.ndarray  # float32 16 kHz mono: the whole source (or the clip alone)
    audio_start_sample: int  # index in source_audio of the clip's first sample
    sample_rate: int = 16000

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])


class SyncBackend(ABC):
    """Estimates the audio-video offset of a clip."""

    name: str = ""
    needs_landmarks: bool = False

    def __init__(self, params: Any) -> None:
        self.params = params
        self._landmarker: DlibLandmarker | None = None

    def setup(self) -> None:
        """Load models (called once per worker, before the first `measure`)."""

    @property
    def min_frames(self) -> int:
        return 1

    def landmarks_for(self, inp: SyncInput) -> np.ndarray:
        """The clip's landmarks, or dlib landmarks computed from its frames when absent."""
        if inp.landmarks is not None:
            return np.asarray(inp.landmarks, dtype=np.float32)
        if self._landmarker is None:
            self._landmarker = DlibLandmarker(detect_width=max(64, inp.frames.shape[2]))
        return self._landmarker(inp.frames)

    @abstractmethod
    def measure(self, inp: SyncInput, max_shift: int) -> tuple[OffsetEstimate, dict]:
        """Return the estimate and extra measurements (JSON-friendly scalars)."""


class LandmarkBackend(SyncBackend):
    name = "landmark"
    needs_landmarks = True

    def __init__(self, params: Any) -> None:
        super().__init__(params)
        self.model = None  # a fitted corpus judge (`sync.landmark_model`), else the per-clip estimator

    @property
    def min_frames(self) -> int:
        return 25

    def setup(self) -> None:
        path = getattr(self.params, "landmark_model", "") or ""
        if path:
            from syncvid.sync.corpus_judge import load_model

            self.model = load_model(path)

    def measure(self, inp: SyncInput, max_shift: int) -> tuple[OffsetEstimate, dict]:
        lm = self.landmarks_for(inp)
        if self.model is not None:
            from syncvid.sync.corpus_judge import judge_clip

            est = judge_clip(self.model, lm, inp.source_audio, inp.audio_start_sample, max_shift,
                             sample_rate=inp.sample_rate)
        else:
            est = landmark_offset(lm, inp.source_audio, inp.audio_start_sample, max_shift, sample_rate=inp.sample_rate)
        k = est.offset + max_shift
        extras = {"sync_score": float(est.curve[k]) if np.isfinite(est.curve[k]) else float("nan"),
                  "sync_judge": "corpus" if self.model is not None else "clip"}
        return est, extras


# --------------------------------------------------------------------------- SyncNet (v2)


def syncnet_face_box(landmarks: np.ndarray, kernel: int = 13) -> np.ndarray:
    """Per-frame (centre x, centre y, half size) of the face box spanned by the landmarks,
    median-filtered over time like the reference's face track."""
    from scipy.signal import medfilt

    lm = np.asarray(landmarks, dtype=np.float64)
    x0, x1 = lm[..., 0].min(1), lm[..., 0].max(1)
    y0, y1 = lm[..., 1].min(1), lm[..., 1].max(1)
    boxes = np.stack([(x0 + x1) / 2, (y0 + y1) / 2, np.maximum(x1 - x0, y1 - y0) / 2], axis=1)
    k = min(kernel, len(boxes) if len(boxes) % 2 else len(boxes) - 1)
    if k >= 3:
        boxes = np.stack([medfilt(boxes[:, c], k) for c in range(3)], axis=1)
    return boxes


def syncnet_crops(frames: np.ndarray, boxes: np.ndarray, size: int = 224, crop_scale: float = 0.4) -> np.ndarray:
    """The reference's face crops: rows y-s … y+s(1+2c), columns x-s(1+c) … x+s(1+c) of the
    frame padded with grey 110, resized to size×size, BGR, float32 0-255 → [T, size, size, 3]."""
    import cv2

    out = np.empty((len(frames), size, size, 3), dtype=np.float32)
    for i, (frame, (mx, my, bs)) in enumerate(zip(frames, boxes)):
        pad = int(bs * (1 + 2 * crop_scale))
        bgr = np.ascontiguousarray(frame[..., ::-1])
        padded = np.pad(bgr, ((pad, pad), (pad, pad), (0, 0)), mode="constant", constant_values=110)
        cy, cx = my + pad, mx + pad
        face = padded[int(cy - bs) : int(cy + bs * (1 + 2 * crop_scale)), int(cx - bs * (1 + crop_scale)) : int(cx + bs * (1 + crop_scale))]
        out[i] = cv2.resize(face, (size, size))
    return out


class SyncNetBackend(SyncBackend):
    """The original SyncNet: conf = median - min of the mean distances (reference rule)."""

    name = "syncnet"
    needs_landmarks = True

    def __init__(self, params: Any, batch_size: int = 20) -> None:
        super().__init__(params)
        self.batch_size = batch_size
        self.model = None
        self.device = "cpu"

    @property
    def min_frames(self) -> int:
        return 6

    def setup(self) -> None:
        from syncvid.sync.syncnet_model import load_syncnet_v2

        self.device = _resolve_device(getattr(self.params, "device", "auto"))
        self.model = load_syncnet_v2(Path(self.params.syncnet_checkpoint), self.device)

    def embeddings(self, crops: np.ndarray, mfcc_ctx: np.ndarray, num_audio: int):
        """Lip embeddings of 5-frame windows and audio embeddings of 20-step MFCC windows."""
        import torch

        t = len(crops)
        video = torch.from_numpy(crops).permute(3, 0, 1, 2)  # C, T, H, W
        v_out, a_out = [], []
        with torch.inference_mode():
            for i in range(0, t - 5, self.batch_size):
                idx = range(i, min(t - 5, i + self.batch_size))
                batch = torch.stack([video[:, j : j + 5] for j in idx]).to(self.device)
                v_out.append(self.model.forward_lip(batch).float().cpu())
            cc = torch.from_numpy(mfcc_ctx.astype(np.float32))
            for i in range(0, num_audio, self.batch_size):
                idx = range(i, min(num_audio, i + self.batch_size))
                batch = torch.stack([cc[:, 4 * j : 4 * j + 20] for j in idx])[:, None].to(self.device)
                a_out.append(self.model.forward_aud(batch).float().cpu())
        v = torch.cat(v_out).numpy() if v_out else np.zeros((0, 1024), np.float32)
        a = torch.cat(a_out).numpy() if a_out else np.zeros((0, 1024), np.float32)
        return v, a

    def measure(self, inp: SyncInput, max_shift: int) -> tuple[OffsetEstimate, dict]:
        if self.model is None:
            raise RuntimeError("SyncNetBackend.setup() was not called")
        hop = inp.sample_rate // 25
        # Windows only where video and audio both exist: LatentSync's SyncNet evaluation cuts a
        # clip to min(frames, floor(samples / 640)) (too few left: keep the clip whole and let
        # zeros pad).
        covered = max(0, (len(inp.source_audio) - inp.audio_start_sample) // hop)
        if self.min_frames <= covered < inp.num_frames:
            inp = SyncInput(inp.frames[:covered], None if inp.landmarks is None else inp.landmarks[:covered],
                            inp.source_audio, inp.audio_start_sample, inp.sample_rate)
        lm = self.landmarks_for(inp)
        crops = syncnet_crops(inp.frames, syncnet_face_box(lm))
        t = inp.num_frames
        j0, j1, s0 = context_window(len(inp.source_audio), inp.audio_start_sample, t, max_shift, hop)
        # audio window for context frame j needs 5 frames of audio: MFCC columns [4j, 4j+20)
        seg = float_to_int16_scale(inp.source_audio[s0 : s0 + (j1 - j0) * hop])
        cc = mfcc(seg, inp.sample_rate) if len(seg) else np.zeros((13, 0))
        num_audio = max(0, min(j1 - j0 - 4, (cc.shape[1] - 20) // 4 + 1))
        v, a = self.embeddings(crops, cc, num_audio)
        dists = _window_distances(v, a, j0, max_shift)
        est = offset_from_mean_dists(dists.mean(axis=0), max_shift)
        return est, {"sync_min_dist": float(dists.mean(axis=0).min())}


def _window_distances(v: np.ndarray, a: np.ndarray, j0: int, vshift: int) -> np.ndarray:
    """dists[i, j] = ||v_i - audio of clip frame i - vshift + j|| over the context; audio that
    the source lacks counts as a zero embedding, as in the reference's zero padding."""
    n = len(v)
    dim = v.shape[1] if v.ndim == 2 and v.shape[1] else 1024
    ctx = np.zeros((n + 2 * vshift, dim))
    # context row r ↔ clip frame r - vshift; audio embedding k ↔ context frame j0 + k
    for k in range(len(a)):
        r = j0 + k
        if 0 <= r < len(ctx):
            ctx[r] = a[k]
    out = np.empty((n, 2 * vshift + 1))
    for i in range(n):
        diff = ctx[i : i + 2 * vshift + 1] - v[i][None, :]
        out[i] = np.sqrt(((diff + 1e-6) ** 2).sum(axis=1))
    return out


# --------------------------------------------------------------------------- StableSyncNet


def stable_syncnet_visual_windows(frames: np.ndarray, num_frames: int, stride: int, height: int = 256) -> tuple[np.ndarray, list[int]]:
    """LatentSync's visual input: lower half of each aligned face resized to
    (height/2)×height, RGB in [-1, 1], `num_frames` frames stacked frame-major into
    3·num_frames channels → ([W, 3·num_frames, height/2, height], window starts)."""
    import cv2

    t = len(frames)
    starts = list(range(0, t - num_frames + 1, max(1, stride)))
    r = frames.shape[1]
    faces = frames if r == height else np.stack([cv2.resize(f, (height, height), interpolation=cv2.INTER_AREA) for f in frames])
    lower = faces[:, height // 2 :].astype(np.float32) / 127.5 - 1.0  # T, h/2, w, 3
    chw = np.transpose(lower, (0, 3, 1, 2))  # T, 3, h/2, w
    wins = np.stack([chw[s : s + num_frames].reshape(3 * num_frames, height // 2, height) for s in starts]) if starts else np.zeros((0, 3 * num_frames, height // 2, height), np.float32)
    return wins, starts


class StableSyncNetBackend(SyncBackend):
    """LatentSync's SyncNet: cosine similarity of 16-frame windows against the mel window of
    each candidate offset, averaged over the clip's windows; conf = 10·(best − median)."""

    name = "stable_syncnet"

    def __init__(self, params: Any, model_cfg: Any | None = None, window_stride: int | None = None) -> None:
        super().__init__(params)
        self.model_cfg = model_cfg
        self.window_stride = window_stride
        self.model = None
        self.device = "cpu"
        self.resolution = 256  # side of the face the model was trained on (the config's data.resolution)

    @property
    def num_frames(self) -> int:
        return self.model.num_frames if self.model is not None else 16

    @property
    def min_frames(self) -> int:
        return self.num_frames

    def _model_section(self) -> Any:
        if self.model_cfg is not None:
            return self.model_cfg
        from syncvid.config import load_config

        cfg = load_config(self.params.stable_syncnet_config)
        self.resolution = int(cfg.data.resolution)
        return cfg.model

    def setup(self) -> None:
        from syncvid.sync.stable_syncnet import load_stable_syncnet

        ckpt = self.params.stable_syncnet_checkpoint
        if not ckpt:
            raise FileNotFoundError(
                "sync.backend=stable_syncnet needs sync.stable_syncnet_checkpoint: the path of a LatentSync "
                "SyncNet checkpoint (e.g. stable_syncnet.pt) matching sync.stable_syncnet_config"
            )
        self.device = _resolve_device(getattr(self.params, "device", "auto"))
        self.model = load_stable_syncnet(ckpt, self._model_section(), self.device)
        if self.model.visual_cfg.in_channels % 3:
            raise ValueError(
                f"{self.params.stable_syncnet_config}: visual_encoder.in_channels={self.model.visual_cfg.in_channels} "
                "is not 3×frames (latent-space SyncNets are not supported for scoring pixel clips)"
            )

    def measure(self, inp: SyncInput, max_shift: int) -> tuple[OffsetEstimate, dict]:
        import torch

        from syncvid.data.mel import crop_mel_window, melspectrogram, mel_start_index, mel_window_length

        if self.model is None:
            raise RuntimeError("StableSyncNetBackend.setup() was not called")
        f = self.num_frames
        wins, starts = stable_syncnet_visual_windows(inp.frames, f, self.window_stride or f, self.resolution)
        t = inp.num_frames
        hop = inp.sample_rate // 25
        j0, j1, s0 = context_window(len(inp.source_audio), inp.audio_start_sample, t, max_shift, hop)
        mel = melspectrogram(inp.source_audio[s0 : s0 + (j1 - j0) * hop])
        need = mel_window_length(f)
        dev = self.device
        with torch.inference_mode():
            vis = torch.cat([
                self.model.visual_encoder(torch.from_numpy(wins[i : i + 4]).to(dev)).flatten(1)
                for i in range(0, len(wins), 4)
            ])
            vis = torch.nn.functional.normalize(vis.float(), dim=1).cpu().numpy()
            # audio windows for every clip start frame a = s - o that the context covers
            audio_emb: dict[int, np.ndarray] = {}
            wanted = sorted({s - o for s in starts for o in range(-max_shift, max_shift + 1)})
            keys, batch = [], []
            for a in wanted:
                rel = a + max_shift - j0  # frames after the context's first available frame
                if rel < 0 or rel + f > j1 - j0 or mel_start_index(rel) + need > mel.shape[1]:
                    continue
                keys.append(a)
                batch.append(crop_mel_window(mel, rel, f)[None])
            for i in range(0, len(batch), 16):
                x = torch.from_numpy(np.stack(batch[i : i + 16]).astype(np.float32)).to(dev)
                emb = torch.nn.functional.normalize(self.model.audio_encoder(x).flatten(1).float(), dim=1).cpu().numpy()
                for k, e in zip(keys[i : i + 16], emb):
                    audio_emb[k] = e
        if audio_emb and len(next(iter(audio_emb.values()))) != vis.shape[1]:
            raise ValueError(
                f"stable_syncnet: audio embedding has {len(next(iter(audio_emb.values())))} values, visual "
                f"{vis.shape[1]}; the model config does not fit {f}-frame windows of 128×256 faces"
            )
        sims = np.full((len(starts), 2 * max_shift + 1), np.nan)
        for w, s in enumerate(starts):
            for k, o in enumerate(range(-max_shift, max_shift + 1)):
                e = audio_emb.get(s - o)
                if e is not None:
                    sims[w, k] = float(vis[w] @ e)
        with np.errstate(all="ignore"):
            curve = np.nanmean(sims, axis=0) if len(starts) else np.full(2 * max_shift + 1, np.nan)
        est = offset_from_similarity(curve, max_shift, STABLE_SYNCNET_CONF_SCALE)
        best = est.curve[est.offset + max_shift]
        return est, {"sync_similarity": float(best) if np.isfinite(best) else float("nan")}


# --------------------------------------------------------------------------- registry


def _resolve_device(device: str) -> str:
    if device and device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


BACKENDS: dict[str, Callable[[Any], SyncBackend]] = {
    "landmark": LandmarkBackend,
    "syncnet": SyncNetBackend,
    "stable_syncnet": StableSyncNetBackend,
}


def create_backend(params: Any) -> SyncBackend:
    """The backend named by `params.backend` (a `SyncSection`)."""
    name = getattr(params, "backend", "landmark")
    try:
        factory = BACKENDS[name]
    except KeyError:
        raise ValueError(f"sync.backend: unknown backend {name!r} (known: {', '.join(sorted(BACKENDS))})") from None
    return factory(params)
