"""BRISQUE: feature statistics, the libsvm model reader, the shipped model, and agreement with the package."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from syncvid.quality import brisque_backend as bb


def natural(size: int = 192, seed: int = 0) -> np.ndarray:
    """A grey test image in [0, 1] with 1/f-like texture and edges."""
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size), np.float64)
    for sigma, weight in ((0.7, 0.15), (2.0, 0.3), (6.0, 0.5)):
        img += weight * cv2.GaussianBlur(rng.normal(0.0, 1.0, (size, size)), (0, 0), sigma)
    img = (img - img.min()) / (img.max() - img.min())
    yy, xx = np.mgrid[0:size, 0:size]
    img = 0.7 * img + 0.3 * (((xx - yy) > 20) & ((xx + yy) < 250))
    return np.round(img * 255.0) / 255.0


@pytest.mark.parametrize(
    "sampler, alpha",
    [
        (lambda rng, n: rng.normal(0.0, 2.0, n), 2.0),
        (lambda rng, n: rng.laplace(0.0, 1.0, n), 1.0),
    ],
)
def test_aggd_fit_recovers_the_shape(sampler, alpha):
    x = sampler(np.random.default_rng(1), 400_000)
    shape, mean, left, right = bb.aggd_fit(x)
    assert shape == pytest.approx(alpha, rel=0.03)
    assert left == pytest.approx(right, rel=0.02)
    assert abs(mean) < 0.02 * math.sqrt(left)


def test_aggd_fit_of_asymmetric_data_has_the_sign_of_the_skew():
    rng = np.random.default_rng(2)
    x = np.concatenate([-np.abs(rng.normal(0, 1.0, 100_000)), np.abs(rng.normal(0, 3.0, 100_000))])
    _, mean, left, right = bb.aggd_fit(x)
    assert right == pytest.approx(9 * left, rel=0.05)
    assert mean > 0


def test_aggd_fit_of_nothing_is_nan():
    assert all(math.isnan(v) for v in bb.aggd_fit(np.zeros(100)))
    assert all(math.isnan(v) for v in bb.aggd_fit(np.ones(100)))  # no negative side


def test_mscn_of_flat_image_is_zero_inside():
    m = bb.mscn(np.full((32, 32), 0.4))
    assert np.abs(m[4:-4, 4:-4]).max() < 1e-9


def test_features_have_36_entries_and_respond_to_blur():
    img = natural()
    f = bb.brisque_features(img)
    assert f.shape == (36,) and np.all(np.isfinite(f))
    blurred = bb.brisque_features(cv2.GaussianBlur(img, (0, 0), 3.0))
    # blur makes the MSCN distribution peakier (smaller shape) and narrower, at both scales
    assert blurred[0] < f[0] and blurred[18] < f[18]


def write_tiny_model(path, coefs, svs, gamma, rho):
    lines = ["svm_type epsilon_svr", "kernel_type rbf", f"gamma {gamma}", "nr_class 2",
             f"total_sv {len(coefs)}", f"rho {rho}", "SV"]
    for c, sv in zip(coefs, svs):
        lines.append(f"{c} " + " ".join(f"{i + 1}:{v}" for i, v in enumerate(sv) if v != 0) + " ")
    path.write_text("\n".join(lines) + "\n")


def test_svr_reader_and_prediction(tmp_path):
    path = tmp_path / "svm.txt"
    svs = [[0.0, 1.0, 0.5], [1.0, 0.0, -0.5]]  # the zero is left out of the file (sparse format)
    write_tiny_model(path, [2.0, -1.0], svs, 0.5, 0.25)
    model = bb.SvrModel.from_libsvm(path)
    x = np.array([0.5, 0.5, 0.0])
    expected = 2.0 * math.exp(-0.5 * (0.25 + 0.25 + 0.25)) - 1.0 * math.exp(-0.5 * (0.25 + 0.25 + 0.25)) - 0.25
    assert model.predict(x) == pytest.approx(expected, abs=1e-12)
    with pytest.raises(ValueError, match="expected 3 features"):
        model.predict(np.zeros(2))


def test_svr_reader_refuses_other_kernels(tmp_path):
    path = tmp_path / "svm.txt"
    path.write_text("svm_type c_svc\nkernel_type linear\nSV\n1 1:0.5\n")
    with pytest.raises(ValueError, match="RBF"):
        bb.SvrModel.from_libsvm(path)


def test_missing_model_names_the_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="svm.txt"):
        bb.BrisqueModel.load(tmp_path)


@pytest.fixture(scope="module")
def shipped():
    try:
        return bb.BrisqueModel.load()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


def test_shipped_model_ranks_blur_and_gives_nan_for_unfitted_features(shipped):
    img = natural(256)
    sharp = shipped.score(bb.brisque_features(img))
    blurred = shipped.score(bb.brisque_features(cv2.GaussianBlur(img, (0, 0), 4.0)))
    assert np.isfinite(sharp) and blurred > sharp + 20
    features = bb.brisque_features(img)
    features[7] = np.nan  # a distribution that could not be fitted
    assert math.isnan(shipped.score(features))


def test_backend_scores_face_region_of_sampled_frames(shipped):
    backend = bb.BrisqueBackend(num_frames=2)
    backend.setup()
    frame = np.repeat((natural(256) * 255).astype(np.uint8)[..., None], 3, axis=2)
    clip = np.stack([frame, frame, cv2.GaussianBlur(frame, (0, 0), 4.0)])
    one = backend.frame_score(frame)
    both = backend.score(clip)["brisque"]  # frames 0 and 2
    assert both == pytest.approx((one + backend.frame_score(clip[2])) / 2)


def test_features_match_the_brisque_package():
    pkg = pytest.importorskip("brisque", reason="the brisque package (reference features) is not importable")
    ref = object.__new__(pkg.BRISQUE)  # only its feature methods are used, not its model or libsvm
    img = natural(160, seed=4)
    ours = bb.brisque_features(img)
    half = cv2.resize(img, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)
    theirs = [float(np.ravel(v)[0]) for v in ref.calculate_brisque_features(img)]
    theirs += [float(np.ravel(v)[0]) for v in ref.calculate_brisque_features(half)]
    # the package solves for the shape with a root finder, we invert a 0.001-step table
    assert ours == pytest.approx(np.array(theirs), rel=2e-3, abs=1e-6)


def test_svr_matches_libsvm(shipped):
    svmutil = pytest.importorskip("libsvm.svmutil", reason="libsvm is not installed")
    model = svmutil.svm_load_model(str(bb.shipped_model_dir() / "svm.txt"))
    rng = np.random.default_rng(5)
    for _ in range(4):
        x = rng.uniform(-1.0, 1.0, 36)
        nodes, _ = svmutil.gen_svm_nodearray([float(v) for v in x])
        assert shipped.svr.predict(x) == pytest.approx(svmutil.libsvm.svm_predict(model, nodes), abs=1e-9)


def test_gamma_is_scipys_gamma_on_the_shape_table():
    from scipy.special import gamma

    x = 1.0 / bb._ALPHAS
    np.testing.assert_allclose(bb.gamma_fn(x), gamma(x), rtol=1e-13)
    assert bb.gamma_fn(2.5) == pytest.approx(gamma(2.5), rel=1e-15)
    assert bb.gamma_fn(np.array([[0.5, 3.0]])).shape == (1, 2)
