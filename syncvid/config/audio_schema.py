"""Schema of the mel-feature configuration (configs/audio.yaml, LatentSync's `audio` hparams)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional


@dataclass
class AudioSection:
    sample_rate: int = 16000
    num_mels: int = 80
    n_fft: int = 800
    hop_size: int = 200  # 12.5 ms at 16 kHz => 80 mel frames per second
    win_size: int = 800
    frame_shift_ms: Optional[float] = None  # only used when hop_size is not given
    fmin: float = 55.0
    fmax: float = 7600.0
    preemphasize: bool = True
    preemphasis: float = 0.97
    ref_level_db: float = 20.0
    min_level_db: float = -100.0
    signal_normalization: bool = True
    allow_clipping_in_normalization: bool = True
    symmetric_mels: bool = True
    max_abs_value: float = 4.0
    rescale: bool = True
    rescaling_max: float = 0.9
    use_lws: bool = False
    pad_mode: str = "constant"  # padding of the centred STFT: constant (zeros) | reflect

    def check_values(self) -> List[str]:
        problems = []
        for name in ("sample_rate", "num_mels", "n_fft", "hop_size", "win_size"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be positive, got {getattr(self, name)}")
        if self.win_size > self.n_fft:
            problems.append(f"win_size ({self.win_size}) must not exceed n_fft ({self.n_fft})")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            problems.append(
                f"fmin/fmax must satisfy 0 <= fmin < fmax <= sample_rate/2, got {self.fmin}, {self.fmax}"
            )
        if self.min_level_db >= 0:
            problems.append(f"min_level_db must be negative, got {self.min_level_db}")
        if self.pad_mode not in ("constant", "reflect"):
            problems.append(f"pad_mode must be 'constant' or 'reflect', got {self.pad_mode!r}")
        return problems


@dataclass
class AudioConfig:
    audio: AudioSection = field(default_factory=AudioSection)
