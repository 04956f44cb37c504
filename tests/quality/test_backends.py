"""The backend registry: names, metrics, setup errors collected into one message naming the files."""

from __future__ import annotations

import pytest

from syncvid.config.pipeline_schema import QualitySection
from syncvid.quality import backends
from syncvid.quality.classic import ClassicBackend


@pytest.mark.parametrize(
    "name, metrics",
    [
        ("classic", ("sharpness", "mouth_sharpness", "brightness", "contrast", "noise", "blockiness")),
        ("brisque", ("brisque",)),
        ("hyperiqa", ("hyperiqa",)),
    ],
)
def test_backend_metrics(name, metrics):
    assert backends.backend_metrics(name) == metrics


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown backend 'niqe'.*classic, brisque, hyperiqa"):
        backends.backend_metrics("niqe")
    with pytest.raises(ValueError, match="unknown backend 'niqe'"):
        backends.create_backend("niqe", QualitySection())


def test_create_backends_keeps_order_and_drops_repeats():
    made = backends.create_backends(QualitySection(backends=["classic", "classic"], num_frames=3))
    assert [b.name for b in made] == ["classic"]
    assert isinstance(made[0], ClassicBackend) and made[0].num_frames == 3


def test_setup_failures_are_collected_and_name_the_files(tmp_path):
    params = QualitySection(
        backends=["classic", "brisque", "nope"],
        brisque_model_dir=str(tmp_path / "no_brisque_model"),
    )
    with pytest.raises(backends.BackendSetupError) as info:
        backends.create_backends(params)
    text = str(info.value)
    assert "brisque:" in text and str(tmp_path / "no_brisque_model" / "svm.txt") in text
    assert "nope: quality.backends: unknown backend 'nope'" in text
    assert not any(line.strip().startswith("classic:") for line in text.splitlines())  # it worked


def test_missing_hyperiqa_checkpoint_is_one_clear_error(tmp_path):
    pytest.importorskip("torch")
    path = tmp_path / "checkpoints" / "auxiliary" / "koniq_pretrained.pkl"
    with pytest.raises(backends.BackendSetupError, match="HyperIQA checkpoint not found") as info:
        backends.create_backends(QualitySection(backends=["hyperiqa"], hyperiqa_checkpoint=str(path)))
    assert str(path) in str(info.value)


@pytest.mark.parametrize("params, match", [
    (QualitySection(backends=[]), "quality.backends is empty"),
    (QualitySection(num_frames=0), "num_frames must be at least 1"),
])
def test_bad_configuration(params, match):
    with pytest.raises(ValueError, match=match):
        backends.create_backends(params)
