"""Loading: precedence, interpolation, base chains, the shipped files, round trips."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import syncvid.config as config_api
from syncvid.config import (
    CONFIG_ROOT,
    AudioConfig,
    ConfigError,
    PipelineConfig,
    SyncNetConfig,
    UNetConfig,
    config_to_yaml,
    load_config,
    load_pipeline_config,
    save_config,
)
from syncvid.config import commands
from syncvid.config.loader import read_chain
from syncvid.config.pipeline_schema import FaceSection
from syncvid.config.typecheck import field_types, is_schema
from syncvid.config.yaml_io import parse_yaml

SHIPPED = sorted(CONFIG_ROOT.rglob("*.yaml"))


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_config_root_holds_the_shipped_files():
    names = {p.relative_to(CONFIG_ROOT).as_posix() for p in SHIPPED}
    assert {"data/pipeline.yaml", "audio.yaml", "syncnet/pixel.yaml", "unet/stage1.yaml", "unet/stage2.yaml"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=[p.relative_to(CONFIG_ROOT).as_posix() for p in SHIPPED])
def test_every_shipped_yaml_validates(path, capsys):
    assert commands.validate(str(path)) == 0
    assert capsys.readouterr().out.startswith(f"{path}: valid ")


@pytest.mark.parametrize(
    "rel, schema",
    [
        ("data/pipeline.yaml", PipelineConfig),
        ("audio.yaml", AudioConfig),
        ("syncnet/pixel.yaml", SyncNetConfig),
        ("unet/stage1.yaml", UNetConfig),
    ],
)
def test_shipped_files_state_every_key(rel, schema):
    """Adding a field to a schema means adding it, with a comment, to its shipped file."""
    data = parse_yaml((CONFIG_ROOT / rel).read_text())

    def unstated(tp: type, node: dict, prefix: str) -> list[str]:
        out = []
        for name, sub in field_types(tp).items():
            key = f"{prefix}{name}"
            if name not in node:
                out.append(key)
            elif is_schema(sub):
                out += unstated(sub, node[name], key + ".")
        return out

    assert unstated(schema, data, "") == [], f"configs/{rel} does not state these schema keys"


def test_pipeline_yaml_comments_every_key():
    for number, line in enumerate((CONFIG_ROOT / "data" / "pipeline.yaml").read_text().splitlines(), 1):
        if line.startswith("  ") and ":" in line:
            assert "#" in line, f"configs/data/pipeline.yaml line {number} has no comment: {line.strip()}"


def test_typed_sections_with_attribute_access():
    cfg = load_config(CONFIG_ROOT / "data" / "pipeline.yaml")
    assert isinstance(cfg, PipelineConfig)
    assert isinstance(cfg.face, FaceSection)
    assert cfg.face.resolution == 256 and cfg.sync.conf_threshold == 3.0
    assert isinstance(cfg.scene.threshold, float)
    assert cfg.run.input_dir is None


def test_precedence_defaults_base_file_flags_set(tmp_path):
    _write(
        tmp_path / "base.yaml",
        "family: pipeline\nface:\n  resolution: 300\n  min_size_px: 60\n  detect_width: 600\n  redetect_every: 10\n",
    )
    leaf = _write(
        tmp_path / "leaf.yaml",
        "extends: base.yaml\nface:\n  min_size_px: 70\n  detect_width: 700\n  redetect_every: 11\n",
    )
    cfg = load_config(
        leaf,
        overrides=["face.redetect_every=13"],
        flags={"face.detect_width": 720, "face.redetect_every": 12, "face.min_size_px": None},
    )
    defaults = FaceSection()
    assert cfg.face.backend == defaults.backend  # schema default
    assert cfg.face.resolution == 300  # base file
    assert cfg.face.min_size_px == 70  # the file itself; a None flag is "not given"
    assert cfg.face.detect_width == 720  # named flag
    assert cfg.face.redetect_every == 13  # --set wins over all
    later = load_config(leaf, overrides=["face.redetect_every=13", "face.redetect_every=14"])
    assert later.face.redetect_every == 14  # the last --set wins


def test_override_values_parse_as_yaml_scalars(tmp_path):
    cfg = load_config(
        CONFIG_ROOT / "unet" / "stage2.yaml",
        overrides=[
            "optimizer.lr=2e-5",
            "run.use_syncnet=false",
            "model.motion_module_resolutions=[1,2]",
            "data.mask_image_path=",
            "data.train_fileslist=2024",
            "data.val_video_path=true",
            "run.trainable_modules=[]",
            "model.norm_eps=1e-6",
        ],
    )
    assert cfg.optimizer.lr == pytest.approx(2e-5) and isinstance(cfg.optimizer.lr, float)
    assert cfg.run.use_syncnet is False
    assert cfg.model.motion_module_resolutions == [1, 2]
    assert cfg.data.mask_image_path is None  # empty value: null
    assert cfg.data.train_fileslist == "2024"  # string fields take the text as written
    assert cfg.data.val_video_path == "true"
    assert cfg.run.trainable_modules == []
    assert cfg.model.norm_eps == pytest.approx(1e-6)


def test_override_of_a_whole_section_merges(tmp_path):
    cfg = load_config(CONFIG_ROOT / "audio.yaml", overrides=["audio={num_mels: 40, fmax: 7000}"])
    assert cfg.audio.num_mels == 40 and cfg.audio.fmax == 7000.0 and cfg.audio.n_fft == 800


def test_flags_accept_paths_and_ints_for_floats(tmp_path):
    cfg = load_pipeline_config(flags={"run.input_dir": tmp_path / "raw", "sync.conf_threshold": 4})
    assert cfg.run.input_dir == str(tmp_path / "raw")
    assert cfg.sync.conf_threshold == 4.0 and isinstance(cfg.sync.conf_threshold, float)


def test_unknown_flag_key_names_the_closest_key():
    with pytest.raises(ConfigError) as info:
        load_pipeline_config(flags={"face.resolutoin": 512})
    assert str(info.value) == "command-line flags: face.resolutoin: unknown key 'resolutoin'; did you mean face.resolution?"


def test_interpolation_across_sections_and_files(tmp_path):
    _write(tmp_path / "base.yaml", "family: unet\ndata:\n  resolution: 512\n")
    leaf = _write(
        tmp_path / "leaf.yaml",
        "extends: base.yaml\n"
        "data:\n  train_output_dir: out/unet_${data.resolution}\n  num_frames: ${model.motion_module_kwargs.num_attention_heads}\n"
        "model:\n  motion_module_resolutions: [1, '${data.video_fps}']\n",
    )
    cfg = load_config(leaf)
    assert cfg.data.train_output_dir == "out/unet_512"
    assert cfg.data.num_frames == 8 and isinstance(cfg.data.num_frames, int)
    assert cfg.model.motion_module_resolutions == [1, 25]
    # an override of the referenced value flows into the interpolation
    cfg2 = load_config(leaf, overrides=["data.resolution=256"])
    assert cfg2.data.train_output_dir == "out/unet_256"


def test_stage2_states_only_differences_and_inherits_stage1():
    stage1_path = CONFIG_ROOT / "unet" / "stage1.yaml"
    stage2_path = CONFIG_ROOT / "unet" / "stage2.yaml"
    stage2_text = parse_yaml(stage2_path.read_text())
    assert stage2_text["extends"] == "stage1.yaml"
    assert set(stage2_text) == {"extends", "run", "model"}
    assert stage2_text["model"] == {"use_motion_module": True}
    assert [layer.path.name for layer in read_chain(stage2_path)] == ["stage1.yaml", "stage2.yaml"]

    stage1, stage2 = load_config(stage1_path), load_config(stage2_path)
    assert stage1.model.use_motion_module is False and stage2.model.use_motion_module is True
    assert stage2.run.use_syncnet and stage2.run.pixel_space_supervise
    assert stage2.data == stage1.data and stage2.optimizer == stage1.optimizer and stage2.ckpt == stage1.ckpt
    changed = {
        (section.name, f.name)
        for section in dataclasses.fields(UNetConfig)
        for f in dataclasses.fields(getattr(stage1, section.name))
        if getattr(getattr(stage1, section.name), f.name) != getattr(getattr(stage2, section.name), f.name)
    }
    stated = {(section, key) for section in ("run", "model") for key in stage2_text[section]}
    assert changed == stated  # every stated key differs from stage1, nothing else does


def test_syncnet_pixel_matches_the_reference_architecture():
    cfg = load_config(CONFIG_ROOT / "syncnet" / "pixel.yaml")
    assert cfg.model.audio_encoder.downsample_factors == [[2, 1], 2, 2, 1, 2, 2, [2, 3]]
    assert cfg.model.visual_encoder.in_channels == 48
    assert cfg.model.visual_encoder.block_out_channels[-1] == 2048
    assert (cfg.data.num_frames, cfg.data.resolution, cfg.data.lower_half, cfg.data.latent_space) == (16, 256, True, False)
    assert cfg.data.audio_config_path == "configs/audio.yaml"
    attn = load_config(CONFIG_ROOT / "syncnet" / "pixel_attn.yaml")
    assert attn.model.audio_encoder.attn_blocks == [0, 0, 0, 1, 1, 0, 0]
    assert attn.model.visual_encoder.block_out_channels == cfg.model.visual_encoder.block_out_channels


def test_audio_yaml_holds_the_reference_mel_parameters():
    a = load_config(CONFIG_ROOT / "audio.yaml").audio
    assert (a.sample_rate, a.n_fft, a.hop_size, a.win_size, a.num_mels) == (16000, 800, 200, 800, 80)
    assert (a.fmin, a.fmax, a.preemphasis, a.ref_level_db, a.min_level_db, a.max_abs_value) == (
        55.0, 7600.0, 0.97, 20.0, -100.0, 4.0,
    )
    assert a.symmetric_mels and a.allow_clipping_in_normalization and a.signal_normalization


@pytest.mark.parametrize("path", SHIPPED, ids=[p.relative_to(CONFIG_ROOT).as_posix() for p in SHIPPED])
def test_written_config_loads_back_identically(tmp_path, path):
    cfg = load_config(path, overrides=[])
    target = save_config(cfg, tmp_path / "out" / "run.yaml")
    assert load_config(target) == cfg
    assert parse_yaml(target.read_text())["family"] == config_api.family_of(cfg)
    assert [p.name for p in target.parent.iterdir()] == ["run.yaml"]  # no temporary file left


def test_round_trip_keeps_awkward_strings(tmp_path):
    cfg = load_pipeline_config(
        overrides=["run.input_dir=1e5", r"run.output_dir=\${not.an.interpolation}", "sync.device=null", "run.ray_address=on"]
    )
    assert cfg.run.input_dir == "1e5" and cfg.run.ray_address == "on" and cfg.sync.device == "null"
    assert cfg.run.output_dir == "${not.an.interpolation}"  # escaped: a literal
    again = load_config(save_config(cfg, tmp_path / "run.yaml"))
    assert again == cfg


def test_round_trip_file_reloads_anywhere(tmp_path):
    """run.yaml names its family, so its folder does not matter."""
    cfg = load_config(CONFIG_ROOT / "unet" / "stage2.yaml")
    target = save_config(cfg, tmp_path / "data" / "run.yaml")  # a folder that would mean "pipeline"
    assert load_config(target) == cfg


def test_config_to_yaml_refuses_other_objects():
    with pytest.raises(TypeError):
        config_to_yaml(FaceSection())


def test_family_rule(tmp_path):
    # 1. an explicit key wins over the folder
    assert isinstance(load_config(_write(tmp_path / "unet" / "a.yaml", "family: audio\n")), AudioConfig)
    # 2. the folder, and the file name audio.yaml
    assert isinstance(load_config(_write(tmp_path / "syncnet" / "b.yaml", "")), SyncNetConfig)
    assert isinstance(load_config(_write(tmp_path / "data" / "c.yaml", "")), PipelineConfig)
    assert isinstance(load_config(_write(tmp_path / "x" / "audio.yaml", "")), AudioConfig)
    # ... then the bases' folders
    _write(tmp_path / "unet" / "base.yaml", "")
    assert isinstance(load_config(_write(tmp_path / "exp" / "d.yaml", "extends: ../unet/base.yaml\n")), UNetConfig)
    # 3. inferred from the keys
    assert isinstance(load_config(_write(tmp_path / "e.yaml", "face:\n  resolution: 512\n")), PipelineConfig)
    assert isinstance(load_config(_write(tmp_path / "f.yaml", "model:\n  use_motion_module: true\n")), UNetConfig)
    # the family a caller expects applies when the file says nothing
    assert isinstance(load_config(_write(tmp_path / "g.yaml", ""), family="pipeline"), PipelineConfig)


def test_load_pipeline_config_default_and_fallback(monkeypatch, tmp_path):
    shipped = load_pipeline_config()
    assert shipped == load_config(CONFIG_ROOT / "data" / "pipeline.yaml")
    assert load_pipeline_config(overrides=["face.resolution=512"]).face.resolution == 512
    monkeypatch.setattr(config_api, "DEFAULT_PIPELINE_CONFIG", tmp_path / "absent.yaml")
    fallback = load_pipeline_config(flags={"run.input_dir": "raw"})
    assert fallback == dataclasses.replace(PipelineConfig(), run=dataclasses.replace(PipelineConfig().run, input_dir="raw"))
    with pytest.raises(ConfigError) as info:
        load_pipeline_config(overrides=["face.x=1"])
    assert str(info.value).startswith("--set face.x=1: face.x: unknown key 'x'")


def test_load_pipeline_config_refuses_another_family():
    with pytest.raises(ConfigError) as info:
        load_pipeline_config(CONFIG_ROOT / "unet" / "stage1.yaml")
    assert "is a unet config" in str(info.value) and "expected a pipeline config" in str(info.value)


@dataclasses.dataclass
class _Section:
    old: int = 1


@dataclasses.dataclass
class _GrownSection(_Section):
    new_threshold: float = 0.25


@dataclasses.dataclass
class _GrownConfig:
    sec: _GrownSection = dataclasses.field(default_factory=_GrownSection)


def test_adding_a_field_needs_only_the_dataclass_and_the_yaml(tmp_path, monkeypatch):
    from syncvid.config.families import FAMILIES

    monkeypatch.setitem(FAMILIES, "grown", _GrownConfig)
    path = _write(tmp_path / "g.yaml", "family: grown\nsec:\n  old: 2\n  new_threshold: 0.5\n")
    cfg = load_config(path, overrides=["sec.new_threshold=0.75"])
    assert cfg == _GrownConfig(sec=_GrownSection(old=2, new_threshold=0.75))
    assert load_config(save_config(cfg, tmp_path / "run.yaml")) == cfg


def test_show_prints_resolved_yaml(capsys):
    assert commands.show(str(CONFIG_ROOT / "unet" / "stage2.yaml"), ["optimizer.lr=2e-5"]) == 0
    out = capsys.readouterr().out
    data = parse_yaml(out)
    assert data["family"] == "unet" and data["optimizer"]["lr"] == pytest.approx(2e-5)
    assert data["model"]["use_motion_module"] is True and data["data"]["resolution"] == 256


def test_show_reports_problems_without_raising(capsys):
    assert commands.show(str(CONFIG_ROOT / "unet" / "stage2.yaml"), ["optimizer.lrr=1", "run"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "--set optimizer.lrr=1: optimizer.lrr: unknown key 'lrr'; did you mean optimizer.lr?"
    assert err[1] == "--set run: expected KEY=VALUE, e.g. --set face.resolution=512"
    assert err[2].endswith("stage2.yaml: 2 problems")


def test_validate_a_missing_file(tmp_path, capsys):
    assert commands.validate(str(tmp_path / "nope.yaml")) == 1
    assert capsys.readouterr().out.strip() == f"{tmp_path}/nope.yaml: config file not found"


# ------------------------------------------------------------------ retired keys
def test_a_retired_key_is_dropped_with_one_line(tmp_path, capsys):
    path = _write(tmp_path / "old.yaml", "run:\n  temp_dir: /scratch\n  total_num_workers: 3\n")
    cfg = load_config(path)  # the family is still told from the keys
    assert isinstance(cfg, PipelineConfig) and cfg.run.total_num_workers == 3
    assert not hasattr(cfg.run, "temp_dir")
    assert capsys.readouterr().err.splitlines() == [
        f"syncvid: {path}: run.temp_dir is no longer used (partial files are written, hidden, beside their final "
        "names and renamed when complete); it is ignored"]


def test_a_retired_key_set_to_null_is_dropped_quietly(tmp_path, capsys):
    cfg = load_config(_write(tmp_path / "data" / "run.yaml", "run:\n  temp_dir: null\n"))
    assert cfg == PipelineConfig()
    assert capsys.readouterr().err == ""


def test_a_retired_key_from_flags_or_set(capsys):
    cfg = load_pipeline_config(flags={"run.temp_dir": "/scratch"}, overrides=["run.temp_dir=/other", "run.temp_dir="])
    assert cfg == load_pipeline_config()
    err = capsys.readouterr().err.splitlines()
    assert [line.split(" is no longer used")[0] for line in err] == [
        "syncvid: command-line flags: run.temp_dir", "syncvid: --set run.temp_dir=/other: run.temp_dir"]


def test_the_shipped_pipeline_yaml_states_the_schema_defaults():
    # configs/data/pipeline.yaml restates every default: a value differing from the schema's would
    # make a run without the configs/ folder (schema defaults) behave differently.
    assert load_config(CONFIG_ROOT / "data" / "pipeline.yaml") == PipelineConfig()
