"""Pure cores: type checks, merging, defaults, YAML reading and writing."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import pytest

from syncvid.config import typecheck as tc
from syncvid.config.yaml_io import YamlProblem, dump_yaml, parse_yaml


class Mode(enum.Enum):
    fast = 1
    slow = 2


@dataclass
class Inner:
    n: int = 1


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    required: float = field(default=tc.MISSING_VALUE)  # type: ignore[assignment]
    table: Dict[str, int] = field(default_factory=dict)


@dataclass
class NoDefault:
    x: int


# (annotation, value, expected messages; [] = accepted)
CHECKS = [
    (int, 3, []),
    (int, True, ["expected int, got true (bool)"]),
    (int, 3.0, ["expected int, got 3.0 (float)"]),
    (float, 3, []),
    (float, "3", ["expected float, got '3' (str)"]),
    (bool, 0, ["expected bool, got 0 (int)"]),
    (str, "x", []),
    (str, None, ["expected str, got null"]),
    (Optional[str], None, []),
    (Optional[int], "a", ["expected int or null, got 'a' (str)"]),
    (Path, "a/b", []),
    (Mode, "fast", []),
    (Mode, "medium", ["expected one of fast, slow, got 'medium' (str)"]),
    (Any, object, []),
    (List[int], [1, 2], []),
    (List[int], [1, "2"], ["k[1]: expected int, got '2' (str)"]),
    (Optional[List[int]], [1, "2"], ["k[1]: expected int, got '2' (str)"]),
    (Tuple[int, int], [1, 2], []),
    (Tuple[int, int], [1], ["expected list of 2 items (int, int), got [1] (list)"]),
    (Tuple[int, ...], [1, 2, 3], []),
    (Union[int, List[int]], [2, 1], []),
    (Union[int, List[int]], "x", ["expected int or list of int, got 'x' (str)"]),
    (Dict[str, int], {"a": 1}, []),
    (Dict[str, int], {"a": "b"}, ["k.a: expected int, got 'b' (str)"]),
    (Inner, {"n": 2}, []),
    (Inner, {"m": 2}, ["k.m: unknown key 'm'; valid keys under k: n"]),
    (Inner, [1], ["expected mapping (Inner), got [1] (list)"]),
    (int, "${a.b}", []),  # interpolations are checked once resolved
    (int, "???", []),  # missing values are reported after merging
]


@pytest.mark.parametrize("tp, value, expected", CHECKS)
def test_check_value(tp, value, expected):
    problems: list = []
    tc.check_value(value, tp, "k", "f.yaml", problems)
    got = [str(p).removeprefix("f.yaml: ") for p in problems]
    assert got == [m if m.startswith("k") else f"k: {m}" for m in expected]


def test_check_section_drops_unknown_keys_and_keeps_the_rest():
    problems: list = []
    out = tc.check_section({"inner": {"n": "x", "zz": 1}, "table": {"a": 1}}, Outer, "", "f", problems)
    assert out == {"inner": {"n": "x"}, "table": {"a": 1}}
    assert [p.key for p in problems] == ["inner.n", "inner.zz"]


@pytest.mark.parametrize(
    "dotted, expected",
    [("inner.n", int), ("required", float), ("table.anything", int), ("inner", Inner)],
)
def test_lookup(dotted, expected):
    assert tc.lookup(Outer, dotted) is expected


@pytest.mark.parametrize(
    "dotted, args",
    [("innr.n", ("", "innr", ["inner", "required", "table"])), ("inner.n.x", ("inner.n", "x", []))],
)
def test_lookup_unknown(dotted, args):
    with pytest.raises(KeyError) as info:
        tc.lookup(Outer, dotted)
    assert info.value.args == args


def test_defaults_mark_missing_values():
    assert tc.defaults(Outer) == {"inner": {"n": 1}, "required": "???", "table": {}}
    assert tc.defaults(NoDefault) == {"x": "???"}
    assert tc.missing_keys({"a": {"b": "???", "c": [1, "???"]}, "d": "x"}) == ["a.b", "a.c[1]"]


@pytest.mark.parametrize(
    "base, update, expected",
    [
        ({"a": 1, "b": {"c": 1, "d": 2}}, {"b": {"d": 3}}, {"a": 1, "b": {"c": 1, "d": 3}}),
        ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),  # lists are replaced, not merged
        ({"a": {"b": 1}}, {"a": 5}, {"a": 5}),
        ({"a": 1}, {"z": {"y": 2}}, {"a": 1, "z": {"y": 2}}),
    ],
)
def test_deep_merge(base, update, expected):
    assert tc.deep_merge(base, update) == expected


def test_build_converts_types_and_to_plain_inverts_it():
    @dataclass
    class Typed:
        ratio: float = 0.0
        mode: Mode = Mode.fast
        where: Path = Path(".")
        pair: Tuple[int, int] = (0, 0)
        factors: List[Union[int, List[int]]] = field(default_factory=list)

    plain = {"ratio": 1, "mode": "slow", "where": "a/b", "pair": [1, 2], "factors": [2, [1, 2]]}
    obj = tc.build(Typed, plain)
    assert obj == Typed(ratio=1.0, mode=Mode.slow, where=Path("a/b"), pair=(1, 2), factors=[2, [1, 2]])
    assert isinstance(obj.ratio, float)
    assert tc.to_plain(obj) == {**plain, "ratio": 1.0}


@pytest.mark.parametrize(
    "tp, name",
    [
        (int, "int"),
        (Optional[str], "str or null"),
        (List[Union[int, List[int]]], "list of (int or list of int)"),
        (List[Optional[str]], "list of (str or null)"),
        (Dict[str, float], "mapping of str to float"),
        (Inner, "mapping (Inner)"),
    ],
)
def test_describe(tp, name):
    assert tc.describe(tp) == name


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a: 1e-5", {"a": 1e-5}),
        ("a: 2E3", {"a": 2000.0}),
        ("a: -1.5e+2", {"a": -150.0}),
        ("a: .5", {"a": 0.5}),
        ("a: 1.", {"a": 1.0}),
        ("a: 12", {"a": 12}),
        ("a: 2024-01-02", {"a": "2024-01-02"}),  # dates stay strings
        ("a: [1, x, null, true]", {"a": [1, "x", None, True]}),
        ("", None),
    ],
)
def test_parse_yaml_scalars(text, expected):
    assert parse_yaml(text) == expected


@pytest.mark.parametrize(
    "text, line, start",
    [
        ("a: !!python/object:os.system {}", 1, "tag '!!python/object:os.system' is not allowed"),
        ("a: 1\nb: !!python/object/new:dict {}", 2, "tag '!!python/object/new:dict' is not allowed"),
        ("a: 1\na: 2", 2, "duplicate key 'a'"),
        ("a: !!float abc", 0, "invalid value"),
        ("a: [", 1, "invalid YAML"),
    ],
)
def test_parse_yaml_refusals(text, line, start):
    with pytest.raises(YamlProblem) as info:
        parse_yaml(text)
    assert info.value.line == line and info.value.message.startswith(start)


def test_dump_quotes_strings_that_would_load_as_other_types():
    data = {"a": "1e-5", "b": 1e-5, "c": "true", "d": "null", "e": "12", "f": [1, [2, 3]], "g": {"h": None}}
    text = dump_yaml(data)
    assert parse_yaml(text) == data
    assert "f: [1, [2, 3]]" in text and "g:\n  h: null" in text
