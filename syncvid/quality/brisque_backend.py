"""BRISQUE (Mittal, Moorthy & Bovik 2012): no-reference quality from natural-scene statistics.

Lower is better; natural, undistorted images score roughly 0-40, strong blur,
noise or compression 60 and more.  The 36 features are the ones the `brisque`
package computes (and its shipped regression model was fitted to): on the
grey image in [0, 1] (BT.709 weights), mean-subtracted contrast-normalised
(MSCN) coefficients with a 7x7 Gaussian window (sigma 7/6, zero padding,
C = 1/255); an asymmetric generalised Gaussian fitted to the MSCN
coefficients (shape, variance) and to their four neighbour products
(shape, mean, left and right variances); the same again at half size.

The regression model is the package's own files (`models/svm.txt`, a libsvm
epsilon-SVR with an RBF kernel, and `models/normalize.pickle`, the feature
ranges): they are read here directly and evaluated with numpy, so neither
the package's code nor libsvm runs.
"""

from __future__ import annotations

import importlib.util
import math
import pickle
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from syncvid.quality.classic import FACE_BOX, box_slices, resize_square, sample_indices

_WINDOW = 7
_SIGMA = 7.0 / 6.0
_C = 1.0 / 255.0


def gamma_fn(x):
    """Γ(x) of a number or an array (math.gamma elementwise: no scipy import in workers)."""
    if np.ndim(x) == 0:
        return math.gamma(float(x))
    a = np.asarray(x, dtype=np.float64)
    return np.fromiter((math.gamma(v) for v in a.ravel()), np.float64, a.size).reshape(a.shape)


# Table of the generalised-Gaussian moment ratio rho(a) = G(2/a)^2 / (G(1/a) G(3/a)),
# increasing in the shape a; inverted by interpolation (shape range as in the original).
_ALPHAS = np.arange(0.2, 10.0 + 1e-9, 0.001)
_RHO = gamma_fn(2.0 / _ALPHAS) ** 2 / (gamma_fn(1.0 / _ALPHAS) * gamma_fn(3.0 / _ALPHAS))


def _gaussian_window(size: int = _WINDOW, sigma: float = _SIGMA) -> np.ndarray:
    r = np.arange(size, dtype=np.float64) - size // 2
    yy, xx = np.meshgrid(r, r, indexing="ij")
    k = np.exp(-(xx**2 + yy**2) / (2.0 * sigma**2))
    return k / k.sum()


_KERNEL = _gaussian_window()


def mscn(gray: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients of a grey image in [0, 1] (float64)."""
    g = np.ascontiguousarray(gray, dtype=np.float64)
    mu = cv2.filter2D(g, cv2.CV_64F, _KERNEL, borderType=cv2.BORDER_CONSTANT)
    second = cv2.filter2D(g * g, cv2.CV_64F, _KERNEL, borderType=cv2.BORDER_CONSTANT)
    sigma = np.sqrt(np.abs(mu * mu - second))
    return (g - mu) / (sigma + _C)


def pair_products(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Products of neighbouring MSCN coefficients: horizontal, vertical, main and secondary diagonal."""
    return (
        m[:, :-1] * m[:, 1:],
        m[:-1, :] * m[1:, :],
        m[:-1, :-1] * m[1:, 1:],
        m[1:, :-1] * m[:-1, 1:],
    )


def aggd_fit(x: np.ndarray) -> tuple[float, float, float, float]:
    """Fit an asymmetric generalised Gaussian by moment matching.

    Returns (shape, mean, left variance, right variance); NaN everywhere when
    `x` has no negative or no non-negative values or is all zero (nothing to fit).
    """
    x = np.ravel(x)
    neg = x[x < 0]
    pos = x[x >= 0]
    sq_mean = float(np.mean(x * x))
    if neg.size == 0 or pos.size == 0 or sq_mean == 0.0:
        return (float("nan"),) * 4
    left = float(np.mean(neg * neg))
    right = float(np.mean(pos * pos))
    if right == 0.0:
        return (float("nan"),) * 4
    g = np.sqrt(left) / np.sqrt(right)
    r_hat = float(np.mean(np.abs(x))) ** 2 / sq_mean
    big_r = r_hat * (g**3 + 1.0) * (g + 1.0) / (g**2 + 1.0) ** 2
    alpha = float(np.interp(big_r, _RHO, _ALPHAS))
    scale = np.sqrt(gamma_fn(1.0 / alpha) / gamma_fn(3.0 / alpha))
    mean = (np.sqrt(right) - np.sqrt(left)) * scale * gamma_fn(2.0 / alpha) / gamma_fn(1.0 / alpha)
    return alpha, float(mean), left, right


def scale_features(gray: np.ndarray) -> list[float]:
    """The 18 features of one scale."""
    m = mscn(gray)
    alpha, _, left, right = aggd_fit(m)
    feats = [alpha, (left + right) / 2.0]
    for prod in pair_products(m):
        feats.extend(aggd_fit(prod))
    return feats


def brisque_features(gray: np.ndarray) -> np.ndarray:
    """The 36 BRISQUE features of a grey image in [0, 1]: 18 at full size, 18 at half size (bicubic)."""
    g = np.ascontiguousarray(gray, dtype=np.float64)
    half = cv2.resize(g, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)
    return np.array(scale_features(g) + scale_features(half), dtype=np.float64)


def grey709(frame: np.ndarray) -> np.ndarray:
    """Grey image in [0, 1] (BT.709 weights) of an RGB uint8 frame."""
    rgb = frame.astype(np.float64) / 255.0
    return rgb[..., 0] * 0.2125 + rgb[..., 1] * 0.7154 + rgb[..., 2] * 0.0721


@dataclass(frozen=True)
class SvrModel:
    """An epsilon-SVR with an RBF kernel: f(x) = sum_i c_i exp(-gamma |x - s_i|^2) - rho."""

    support_vectors: np.ndarray  # [n, d]
    coefficients: np.ndarray  # [n]
    gamma: float
    rho: float

    @classmethod
    def from_libsvm(cls, path: str | Path) -> "SvrModel":
        """Read a model file written by libsvm's `svm_save_model` (RBF kernel only)."""
        path = Path(path)
        header: dict[str, str] = {}
        rows: list[tuple[float, dict[int, float]]] = []
        with path.open("r", encoding="ascii") as fh:
            for line in fh:
                line = line.strip()
                if line == "SV":
                    break
                key, _, value = line.partition(" ")
                header[key] = value
            for line in fh:
                parts = line.split()
                if not parts:
                    continue
                rows.append((float(parts[0]), {int(k): float(v) for k, v in (p.split(":") for p in parts[1:])}))
        if header.get("kernel_type") != "rbf" or header.get("svm_type") not in ("epsilon_svr", "nu_svr"):
            raise ValueError(
                f"{path}: expected an SVR model with an RBF kernel, "
                f"got svm_type={header.get('svm_type')!r} kernel_type={header.get('kernel_type')!r}"
            )
        if not rows:
            raise ValueError(f"{path}: no support vectors")
        dim = max(max(r[1], default=0) for r in rows)
        sv = np.zeros((len(rows), dim), dtype=np.float64)
        for i, (_, feats) in enumerate(rows):
            for k, v in feats.items():
                sv[i, k - 1] = v
        coef = np.array([r[0] for r in rows], dtype=np.float64)
        return cls(sv, coef, float(header["gamma"]), float(header["rho"].split()[0]))

    def predict(self, x: np.ndarray) -> float:
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (self.support_vectors.shape[1],):
            raise ValueError(f"expected {self.support_vectors.shape[1]} features, got shape {x.shape}")
        d2 = np.sum((self.support_vectors - x) ** 2, axis=1)
        return float(self.coefficients @ np.exp(-self.gamma * d2) - self.rho)


@dataclass(frozen=True)
class BrisqueModel:
    """Feature scaling to [-1, 1] with the training ranges, then the SVR."""

    svr: SvrModel
    feature_min: np.ndarray
    feature_max: np.ndarray

    @classmethod
    def load(cls, model_dir: str | Path | None = None) -> "BrisqueModel":
        """Load `svm.txt` + `normalize.pickle` from `model_dir` (default: the installed `brisque` package)."""
        folder = Path(model_dir) if model_dir is not None else shipped_model_dir()
        svm_path, norm_path = folder / "svm.txt", folder / "normalize.pickle"
        missing = [str(p) for p in (svm_path, norm_path) if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"BRISQUE model file(s) not found: {', '.join(missing)}")
        with norm_path.open("rb") as fh:
            ranges = pickle.load(fh)
        lo = np.asarray(ranges["min_"], dtype=np.float64)
        hi = np.asarray(ranges["max_"], dtype=np.float64)
        svr = SvrModel.from_libsvm(svm_path)
        if lo.shape != hi.shape or lo.shape != (svr.support_vectors.shape[1],):
            raise ValueError(f"{norm_path}: feature ranges of shape {lo.shape} do not fit the model in {svm_path}")
        return cls(svr, lo, hi)

    def score(self, features: np.ndarray) -> float:
        """BRISQUE score of a feature vector; NaN if any feature is not finite."""
        f = np.asarray(features, dtype=np.float64)
        if not np.all(np.isfinite(f)):
            return float("nan")
        scaled = -1.0 + 2.0 * (f - self.feature_min) / (self.feature_max - self.feature_min)
        return self.svr.predict(scaled)


def shipped_model_dir() -> Path:
    """Folder of the model files shipped in the `brisque` package (found without importing it)."""
    spec = importlib.util.find_spec("brisque")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the BRISQUE model ships with the 'brisque' package, which is not installed "
            "(pip install 'syncvid[quality]'), or set quality.brisque_model_dir"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "models"


class BrisqueBackend:
    """BRISQUE of the face region (at the classic metrics' analysis resolution) of a few frames."""

    name = "brisque"
    metrics = ("brisque",)

    def __init__(self, num_frames: int = 5, model_dir: str | None = None):
        self.num_frames = num_frames
        self.model_dir = model_dir
        self.model: BrisqueModel | None = None

    def setup(self) -> None:
        self.model = BrisqueModel.load(self.model_dir)

    def frame_score(self, frame: np.ndarray) -> float:
        if self.model is None:
            raise RuntimeError("BrisqueBackend.setup() must run before scoring")
        grey = resize_square(grey709(frame))
        return self.model.score(brisque_features(grey[box_slices(grey.shape, FACE_BOX)]))

    def score(self, frames: np.ndarray) -> dict[str, float]:
        idx = sample_indices(len(frames), self.num_frames)
        return {"brisque": float(np.mean([self.frame_score(frames[i]) for i in idx]))}
