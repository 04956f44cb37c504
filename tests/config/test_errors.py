"""Every configuration error message, fixed by a table of bad configs.

Most cases use a small schema registered as the family ``toy`` so that the
messages do not change when stages add fields to the pipeline schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Union

import pytest

from syncvid.config import ConfigError, Problem, load_config
from syncvid.config.commands import validate
from syncvid.config.families import FAMILIES


@dataclass
class ToyInner:
    size: int = 3
    ratio: float = 0.5
    name: str = "a"
    limit: Optional[float] = None
    tags: List[str] = field(default_factory=lambda: ["x"])
    factors: List[Union[int, List[int]]] = field(default_factory=lambda: [2, [1, 2]])
    enabled: bool = True


@dataclass
class ToyOther:
    seconds: float = 5.0
    min_seconds: float = 2.0

    def check_values(self) -> List[str]:
        if self.min_seconds > self.seconds:
            return [f"min_seconds ({self.min_seconds}) exceeds seconds ({self.seconds})"]
        return []


@dataclass
class ToyConfig:
    inner: ToyInner = field(default_factory=ToyInner)
    other: ToyOther = field(default_factory=ToyOther)


@pytest.fixture(autouse=True)
def toy_family(monkeypatch):
    monkeypatch.setitem(FAMILIES, "toy", ToyConfig)


def _write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)


# (case id, files, file loaded, overrides, expected messages with {d} = the folder)
T = "family: toy\n"
BAD_CONFIGS = [
    (
        "unknown key with suggestion",
        {"c.yaml": T + "inner:\n  sise: 3\n"},
        "c.yaml",
        [],
        ["{d}/c.yaml: inner.sise: unknown key 'sise'; did you mean inner.size?"],
    ),
    (
        "unknown key with several suggestions",
        {"c.yaml": T + "other:\n  min_second: 3\n"},
        "c.yaml",
        [],
        ["{d}/c.yaml: other.min_second: unknown key 'min_second'; did you mean other.min_seconds or other.seconds?"],
    ),
    (
        "unknown section",
        {"c.yaml": T + "iner:\n  size: 3\n"},
        "c.yaml",
        [],
        ["{d}/c.yaml: iner: unknown key 'iner'; did you mean inner?"],
    ),
    (
        "unknown key without a close match lists the valid keys",
        {"c.yaml": T + "other:\n  zzz: 1\n"},
        "c.yaml",
        [],
        ["{d}/c.yaml: other.zzz: unknown key 'zzz'; valid keys under other: seconds, min_seconds"],
    ),
    (
        "wrong scalar type",
        {"c.yaml": T + "inner:\n  size: big\n"},
        "c.yaml",
        [],
        ["{d}/c.yaml: inner.size: expected int, got 'big' (str)"],
    ),
    (
        "bool is not an int",
        {"c.yaml": T + "inner:\n  size: true\n"},
        "c.yaml",
        [],
        ["{d}/c.yaml: inner.size: expected int, got true (bool)"],
    ),
    (
        "float is not an int",
        {"c.yaml": T + "inner:\n  size: 13.5\n"},
        "c.yaml",
        [],
        ["{d}/c.yaml: inner.size: expected int, got 13.5 (float)"],
    ),
    (
        "number is not a string",
        {"c.yaml": T + "inner:\n  name: 7\n"},
        "c.yaml",
        [],
        ["{d}/c.yaml: inner.name: expected str, got 7 (int)"],
    ),
    (
        "string is not a bool",
        {"c.yaml": T + "inner:\n  enabled: 'yes'\n"},
        "c.yaml",
        [],
        ["{d}/c.yaml: inner.enabled: expected bool, got 'yes' (str)"],
    ),
    (
        "optional value",
        {"c.yaml": T + "inner:\n  limit: [30]\n"},
        "c.yaml",
        [],
        ["{d}/c.yaml: inner.limit: expected float or null, got [30] (list)"],
    ),
    (
        "list item",
        {"c.yaml": T + "inner:\n  tags: [a, 3]\n"},
        "c.yaml",
        [],
        ["{d}/c.yaml: inner.tags[1]: expected str, got 3 (int)"],
    ),
    (
        "scalar where a list is expected",
        {"c.yaml": T + "inner:\n  tags: a\n"},
        "c.yaml",
        [],
        ["{d}/c.yaml: inner.tags: expected list of str, got 'a' (str)"],
    ),
    (
        "scalar where a section is expected",
        {"c.yaml": T + "inner: 3\n"},
        "c.yaml",
        [],
        ["{d}/c.yaml: inner: expected mapping (ToyInner), got 3 (int)"],
    ),
    (
        "null where a section is expected",
        {"c.yaml": T + "inner:\n"},
        "c.yaml",
        [],
        ["{d}/c.yaml: inner: expected mapping (ToyInner), got null"],
    ),
    (
        "union item",
        {"c.yaml": T + "inner:\n  factors: [2, x]\n"},
        "c.yaml",
        [],
        ["{d}/c.yaml: inner.factors[1]: expected int or list of int, got 'x' (str)"],
    ),
    (
        "missing required value",
        {"c.yaml": T + "inner:\n  ratio: ???\n"},
        "c.yaml",
        [],
        ["{d}/c.yaml: inner.ratio: missing required value (???); set it in the file or with --set inner.ratio=VALUE"],
    ),
    (
        "missing base",
        {"c.yaml": "extends: nothere.yaml\n" + T},
        "c.yaml",
        [],
        ["{d}/c.yaml: extends: base file not found: {d}/nothere.yaml"],
    ),
    (
        "missing base in a sub-folder",
        {"sub/c.yaml": "extends: ../base/b.yaml\n" + T},
        "sub/c.yaml",
        [],
        ["{d}/sub/c.yaml: extends: base file not found: {d}/base/b.yaml"],
    ),
    (
        "base cycle",
        {"a.yaml": "extends: b.yaml\n", "b.yaml": "extends: a.yaml\n"},
        "a.yaml",
        [],
        ["{d}/b.yaml: extends: base cycle: {d}/a.yaml -> {d}/b.yaml -> {d}/a.yaml"],
    ),
    (
        "file extends itself",
        {"a.yaml": "extends: a.yaml\n"},
        "a.yaml",
        [],
        ["{d}/a.yaml: extends: base cycle: {d}/a.yaml -> {d}/a.yaml"],
    ),
    (
        "extends is not a path",
        {"c.yaml": "extends: [a.yaml]\n"},
        "c.yaml",
        [],
        ["{d}/c.yaml: extends: expected the path of a base file, got ['a.yaml'] (list)"],
    ),
    (
        "unknown family",
        {"c.yaml": "family: pipelin\n"},
        "c.yaml",
        [],
        ["{d}/c.yaml: family: unknown family 'pipelin'; did you mean pipeline?"],
    ),
    (
        "families disagree along the chain",
        {"base.yaml": "family: unet\n", "c.yaml": "extends: base.yaml\nfamily: toy\n"},
        "c.yaml",
        [],
        ["{d}/c.yaml: family: family 'toy' differs from 'unet' stated in {d}/base.yaml"],
    ),
    (
        "family cannot be told",
        {"c.yaml": "data:\n  resolution: 256\n"},
        "c.yaml",
        [],
        [
            "{d}/c.yaml: cannot tell the config family (matching: syncnet, unet); "
            "add a top-level key 'family: <name>' with one of pipeline, audio, syncnet, unet, toy"
        ],
    ),
    (
        "family told from the keys despite a typo",
        {"c.yaml": "scene:\n  detectr: content\n"},
        "c.yaml",
        [],
        ["{d}/c.yaml: scene.detectr: unknown key 'detectr'; did you mean scene.detector?"],
    ),
    (
        "family told from the keys despite a misspelt section",
        {"c.yaml": "scen:\n  detector: content\nsegment:\n  seconds: 4\n"},
        "c.yaml",
        [],
        ["{d}/c.yaml: scen: unknown key 'scen'; did you mean scene?"],
    ),
    (
        "family cannot be told when two fit a typo equally",
        {"c.yaml": "data:\n  resolutoin: 256\n"},
        "c.yaml",
        [],
        [
            "{d}/c.yaml: cannot tell the config family (matching: none; closest: syncnet, unet); "
            "add a top-level key 'family: <name>' with one of pipeline, audio, syncnet, unet, toy"
        ],
    ),
    (
        "family cannot be told when most keys are unknown",
        {"c.yaml": "scene:\n  detector: content\nwidth: 3\nheight: 4\ndepth: 5\n"},
        "c.yaml",
        [],
        [
            "{d}/c.yaml: cannot tell the config family (matching: none; closest: pipeline); "
            "add a top-level key 'family: <name>' with one of pipeline, audio, syncnet, unet, toy"
        ],
    ),
    (
        "file not found",
        {},
        "none.yaml",
        [],
        ["{d}/none.yaml: config file not found"],
    ),
    (
        "top level is not a mapping",
        {"c.yaml": "- 1\n- 2\n"},
        "c.yaml",
        [],
        ["{d}/c.yaml: the top level must be a mapping of sections, got [1, 2] (list)"],
    ),
    (
        "invalid YAML",
        {"c.yaml": T + "inner: [1\n"},
        "c.yaml",
        [],
        ["{d}/c.yaml: line 3: invalid YAML: expected ',' or ']', but got '<stream end>'"],
    ),
    (
        "duplicate key",
        {"c.yaml": T + "inner:\n  size: 256\n  size: 512\n"},
        "c.yaml",
        [],
        ["{d}/c.yaml: line 4: duplicate key 'size' (first given on line 3)"],
    ),
    (
        "python object tag refused",
        {"c.yaml": T + "inner:\n  name: !!python/object/apply:os.system [echo hi]\n"},
        "c.yaml",
        [],
        [
            "{d}/c.yaml: line 3: tag '!!python/object/apply:os.system' is not allowed: "
            "configuration files are plain YAML and never construct objects"
        ],
    ),
    (
        "python name tag refused",
        {"c.yaml": T + "inner: !!python/name:os.system\n"},
        "c.yaml",
        [],
        [
            "{d}/c.yaml: line 2: tag '!!python/name:os.system' is not allowed: "
            "configuration files are plain YAML and never construct objects"
        ],
    ),
    (
        "unresolvable interpolation",
        {"c.yaml": T + "other:\n  seconds: ${inner.sise}\n"},
        "c.yaml",
        [],
        ["{d}/c.yaml: other.seconds: cannot resolve '${{inner.sise}}': Interpolation key 'inner.sise' not found"],
    ),
    (
        "interpolation of the wrong type",
        {"c.yaml": T + "other:\n  seconds: ${inner.name}\n"},
        "c.yaml",
        [],
        ["{d}/c.yaml: other.seconds: expected float, got 'a' (str) (from '${{inner.name}}')"],
    ),
    (
        "cross-field check of a section",
        {"c.yaml": T + "other:\n  min_seconds: 9\n"},
        "c.yaml",
        [],
        ["{d}/c.yaml: other: min_seconds (9.0) exceeds seconds (5.0)"],
    ),
    (
        "cross-field check of the audio config",
        {"c.yaml": "family: audio\naudio:\n  win_size: 900\n"},
        "c.yaml",
        [],
        ["{d}/c.yaml: audio: win_size (900) must not exceed n_fft (800)"],
    ),
    (
        "syncnet encoder lists of different lengths",
        {"c.yaml": "family: syncnet\nmodel:\n  visual_encoder:\n    attn_blocks: [0, 0]\n"},
        "c.yaml",
        [],
        ["{d}/c.yaml: model.visual_encoder: attn_blocks has 2 entries, block_out_channels 8"],
    ),
    (
        "encoder settings of the pipeline config",
        {"c.yaml": "family: pipeline\nencode:\n  preset: quick\n  aac_coder: best\n  x264_params: subme=1:fast\n"},
        "c.yaml",
        [],
        [
            "{d}/c.yaml: encode: preset must be one of ultrafast, superfast, veryfast, faster, fast, medium, slow, "
            "slower, veryslow, placebo, got 'quick'",
            "{d}/c.yaml: encode: aac_coder must be one of fast, twoloop, anmr, got 'best'",
            "{d}/c.yaml: encode: x264_params must be key=value pairs joined by ':', got 'fast'",
        ],
    ),
    (
        "face crop resize of the pipeline config",
        {"c.yaml": "family: pipeline\nface:\n  resize_interpolation: area\n"},
        "c.yaml",
        [],
        ["{d}/c.yaml: face: resize_interpolation must be one of cubic, lanczos4, got 'area'"],
    ),
    (
        "a file of one family loaded as another",
        {"unet/s.yaml": "run:\n  seed: 1\n"},
        "unet/s.yaml",
        [],
        ["{d}/unet/s.yaml: is a unet config (folder unet/ of {d}/unet/s.yaml), expected a toy config"],
    ),
    (
        "override without '='",
        {"c.yaml": T},
        "c.yaml",
        ["inner.size"],
        ["--set inner.size: expected KEY=VALUE, e.g. --set face.resolution=512"],
    ),
    (
        "override with an empty key",
        {"c.yaml": T},
        "c.yaml",
        ["=3"],
        ["--set =3: expected KEY=VALUE, e.g. --set face.resolution=512"],
    ),
    (
        "override with a malformed key",
        {"c.yaml": T},
        "c.yaml",
        ["inner..size=3"],
        ["--set inner..size=3: invalid key 'inner..size': expected dotted names such as face.resolution"],
    ),
    (
        "override of an unknown key",
        {"c.yaml": T},
        "c.yaml",
        ["inner.sise=512"],
        ["--set inner.sise=512: inner.sise: unknown key 'sise'; did you mean inner.size?"],
    ),
    (
        "override of an unknown section",
        {"c.yaml": T},
        "c.yaml",
        ["iner.size=512"],
        ["--set iner.size=512: iner.size: unknown key 'iner'; did you mean inner?"],
    ),
    (
        "override below a scalar",
        {"c.yaml": T},
        "c.yaml",
        ["inner.size.x=1"],
        ["--set inner.size.x=1: inner.size.x: inner.size is not a section, it has no key 'x'"],
    ),
    (
        "override of the wrong type",
        {"c.yaml": T},
        "c.yaml",
        ["inner.size=abc"],
        ["--set inner.size=abc: inner.size: expected int, got 'abc' (str)"],
    ),
    (
        "override value that is not YAML",
        {"c.yaml": T},
        "c.yaml",
        ["inner.tags=[a"],
        ["--set inner.tags=[a: inner.tags: cannot read the value '[a': invalid YAML: expected ',' or ']', but got '<stream end>'"],
    ),
    (
        "override value with an object tag",
        {"c.yaml": T},
        "c.yaml",
        ["inner.name=!!python/name:os.system"],
        [
            "--set inner.name=!!python/name:os.system: inner.name: cannot read the value '!!python/name:os.system': "
            "tag '!!python/name:os.system' is not allowed: configuration files are plain YAML and never construct objects"
        ],
    ),
]


@pytest.mark.parametrize(
    "files, name, overrides, expected", [case[1:] for case in BAD_CONFIGS], ids=[case[0] for case in BAD_CONFIGS]
)
def test_bad_config_messages(tmp_path, files, name, overrides, expected):
    _write(tmp_path, files)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / name, overrides=overrides, family="toy" if name.startswith("unet/") else None)
    assert str(info.value).splitlines() == [line.format(d=tmp_path) for line in expected]
    assert [str(p) for p in info.value.problems] == [line.format(d=tmp_path) for line in expected]


def test_every_problem_is_reported_in_file_order(tmp_path):
    _write(
        tmp_path,
        {
            "base.yaml": T + "other:\n  secs: 13\n",
            "c.yaml": (
                "extends: base.yaml\n"
                "inner:\n  sise: 3\n  size: big\n  ratio: ???\n  limit: ${inner.nope}\n"
            ),
        },
    )
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "c.yaml", overrides=["other.second=2", "inner.name=[x]"], flags={"other.seconds": "5s"})
    keys = [(p.where.replace(str(tmp_path), "D"), p.key) for p in info.value.problems]
    assert keys == [
        ("D/base.yaml", "other.secs"),
        ("D/c.yaml", "inner.sise"),
        ("D/c.yaml", "inner.size"),
        ("command-line flags", "other.seconds"),
        ("--set other.second=2", "other.second"),
        ("--set inner.name=[x]", "inner.name"),
        ("D/c.yaml", "inner.ratio"),
        ("D/c.yaml", "inner.limit"),
    ]


def test_validate_prints_every_problem_and_returns_1(tmp_path, capsys):
    _write(tmp_path, {"c.yaml": T + "inner:\n  sise: 3\n  size: big\niner: {}\n"})
    assert validate(str(tmp_path / "c.yaml")) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"{tmp_path}/c.yaml: inner.sise: unknown key 'sise'; did you mean inner.size?",
        f"{tmp_path}/c.yaml: inner.size: expected int, got 'big' (str)",
        f"{tmp_path}/c.yaml: iner: unknown key 'iner'; did you mean inner?",
    ]
    assert captured.err.strip() == f"{tmp_path}/c.yaml: 3 problems"


def test_config_error_str_is_one_line_per_problem():
    err = ConfigError([Problem("a.yaml", "face.x", "bad"), Problem("b.yaml", "", "worse")])
    assert str(err) == "a.yaml: face.x: bad\nb.yaml: worse"
    with pytest.raises(ValueError):
        ConfigError([])
