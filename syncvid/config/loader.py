"""Loading a configuration: base chain, family, layers, overrides, validation.

Precedence, lowest first: schema defaults < the files of the base chain (the
root base first) < the file itself < named command-line flags < ``--set``
overrides.  Every layer is checked against the family's schema before merging;
interpolations (``${data.resolution}``) are resolved on the merged result; all
problems found are raised together in one ConfigError.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, cast

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

import syncvid.config.typecheck as tc
from syncvid.config.errors import ConfigError, Problem
from syncvid.config.families import FAMILIES, RETIRED_KEYS, family_from_path
from syncvid.config.yaml_io import YamlProblem, parse_yaml

EXTENDS_KEY = "extends"
FAMILY_KEY = "family"
FLAGS_WHERE = "command-line flags"
_KEY_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class Layer:
    """One file of a base chain: its data without the reserved keys."""

    path: Path  # as reached (relative paths stay relative)
    where: str  # how messages name it
    data: dict
    family: str | None  # its explicit family key


def _read_layer(path: Path) -> tuple[Layer, str | None]:
    """Read one file; returns the layer and its `extends` value."""
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem(where, "", "config file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(where, "", f"cannot read the file: {exc}")]) from None
    try:
        data = parse_yaml(text)
    except YamlProblem as exc:
        at = f"line {exc.line}: " if exc.line else ""
        raise ConfigError([Problem(where, "", at + exc.message)]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([Problem(where, "", f"the top level must be a mapping of sections, got {tc.show(data)}")])
    data = dict(data)
    problems: list[Problem] = []
    extends = data.pop(EXTENDS_KEY, None)
    if extends is not None and (not isinstance(extends, str) or not extends.strip()):
        problems.append(Problem(where, EXTENDS_KEY, f"expected the path of a base file, got {tc.show(extends)}"))
        extends = None
    family = data.pop(FAMILY_KEY, None)
    if family is not None and family not in FAMILIES:
        hint = tc.suggest(str(family), list(FAMILIES)).replace("valid keys at the top level", "families")
        problems.append(Problem(where, FAMILY_KEY, f"unknown family {family!r}; {hint}"))
    if problems:
        raise ConfigError(problems)
    return Layer(path=path, where=where, data=data, family=family), extends


def read_chain(path: str | os.PathLike) -> list[Layer]:
    """A file and its bases, the root base first.  Base paths are relative to the file naming them."""
    layers: list[Layer] = []
    seen: list[Path] = []  # resolved paths, the leaf first
    current = Path(path)
    named_by: Layer | None = None
    while True:
        resolved = current.resolve()
        if named_by is not None:
            if resolved in seen:
                names = [str(layer.path) for layer in reversed(layers)][seen.index(resolved) :] + [str(current)]
                raise ConfigError([Problem(named_by.where, EXTENDS_KEY, "base cycle: " + " -> ".join(names))])
            if not current.is_file():
                raise ConfigError([Problem(named_by.where, EXTENDS_KEY, f"base file not found: {current}")])
        layer, extends = _read_layer(current)
        layers.insert(0, layer)
        seen.append(resolved)
        if extends is None:
            return layers
        named_by = layer
        current = Path(os.path.normpath(current.parent / extends))


def decide_family(layers: list[Layer], expected: str | None) -> str:
    """The family of a chain (leaf last); see `syncvid.config.families` for the rule."""
    leaf = layers[-1].where if layers else "<defaults>"
    explicit = [(layer.where, layer.family) for layer in reversed(layers) if layer.family]
    problems = []
    for where, fam in explicit[1:]:
        if fam != explicit[0][1]:
            problems.append(
                Problem(explicit[0][0], FAMILY_KEY, f"family {explicit[0][1]!r} differs from {fam!r} stated in {where}")
            )
    if problems:
        raise ConfigError(problems)
    family, reason = (explicit[0][1], f"family key in {explicit[0][0]}") if explicit else (None, "")
    if family is None:
        for layer in reversed(layers):
            found = family_from_path(layer.path)
            if found:
                family, reason = found[0], f"{found[1]} of {layer.where}"
                break
    if expected is not None:
        if expected not in FAMILIES:
            raise ValueError(f"unknown family {expected!r}")
        if family is not None and family != expected:
            raise ConfigError([Problem(leaf, "", f"is a {family} config ({reason}), expected a {expected} config")])
        return expected
    if family is not None:
        return family
    candidates = [
        name for name, schema in FAMILIES.items()
        if all(tc.count_unknown(_without_retired(lay.data, name, None), schema) == 0 for lay in layers)
    ]
    if len(candidates) == 1:
        return candidates[0]
    closest = ""
    if not candidates:
        # No family knows every key: the one that knows most of them, typos counted as half
        # (so that a misspelt key gets its "did you mean" from that family's schema).
        fits = {name: [0.0, 0] for name in FAMILIES}
        for name, schema in FAMILIES.items():
            for lay in layers:
                score, keys = tc.key_fit(_without_retired(lay.data, name, None), schema)
                fits[name][0] += score
                fits[name][1] += keys
        best = max(score for score, _ in fits.values())
        top = [name for name, (score, keys) in fits.items() if score == best]
        if len(top) == 1 and best > fits[top[0]][1] / 2:
            return top[0]
        if best > 0:
            closest = "; closest: " + ", ".join(top)
    listed = (", ".join(candidates) if candidates else "none") + closest
    raise ConfigError(
        [
            Problem(
                leaf,
                "",
                f"cannot tell the config family (matching: {listed}); add a top-level key "
                f"'family: <name>' with one of {', '.join(FAMILIES)}",
            )
        ]
    )


def _nest(dotted: str, value: Any) -> dict:
    out: Any = value
    for name in reversed(dotted.split(".")):
        out = {name: out}
    return out


def retired_notice(where: str, key: str, why: str) -> None:
    """One line on stderr for a key the family no longer has."""
    print(f"syncvid: {where}: {key} is no longer used ({why}); it is ignored", file=sys.stderr)


def _without_retired(data: dict, family: str, where: str | None) -> dict:
    """`data` without the family's retired keys (a notice for each non-null one when `where`)."""
    retired = RETIRED_KEYS.get(family, {})
    for key, why in retired.items():
        *parents, name = key.split(".")
        section: Any = data
        for part in parents:
            section = section.get(part) if isinstance(section, dict) else None
        if not isinstance(section, dict) or name not in section:
            continue
        if where is not None and section[name] is not None:
            retired_notice(where, key, why)
        data = _copy_without(data, parents + [name])
    return data


def _copy_without(data: dict, path: list[str]) -> dict:
    out = dict(data)
    if len(path) == 1:
        out.pop(path[0], None)
    else:
        out[path[0]] = _copy_without(out[path[0]], path[1:])
    return out


def _lookup_or_problem(schema: type, key: str, where: str, problems: list[Problem]) -> Any:
    try:
        return tc.lookup(schema, key)
    except KeyError as exc:
        prefix, name, valid = exc.args
        if valid:
            problems.append(tc.unknown_key(where, key, name, valid, prefix))
        else:
            problems.append(Problem(where, key, f"{prefix} is not a section, it has no key {name!r}"))
        return None


def flags_layer(schema: type, flags: Mapping[str, object] | None, problems: list[Problem],
                retired: Mapping[str, str] | None = None) -> dict:
    """Named flags ({dotted key: value}) as a layer; None values mean 'not given'."""
    layer: dict = {}
    for key, value in (flags or {}).items():
        if value is None:
            continue
        if retired and key in retired:
            retired_notice(FLAGS_WHERE, key, retired[key])
            continue
        if not isinstance(key, str) or not _KEY_PATTERN.match(key):
            problems.append(
                Problem(FLAGS_WHERE, str(key), "invalid key: expected dotted names such as face.resolution")
            )
            continue
        tp = _lookup_or_problem(schema, key, FLAGS_WHERE, problems)
        if tp is None:
            continue
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        elif isinstance(value, tuple):
            value = list(value)
        value = tc.check_value(value, tp, key, FLAGS_WHERE, problems)
        layer = tc.deep_merge(layer, _nest(key, value))
    return layer


def parse_override(text: str) -> tuple[str, str]:
    """Split ``KEY=VALUE``; raises ConfigError for a malformed override."""
    where = f"--set {text}"
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError([Problem(where, "", "expected KEY=VALUE, e.g. --set face.resolution=512")])
    if not _KEY_PATTERN.match(key):
        raise ConfigError([Problem(where, "", f"invalid key {key!r}: expected dotted names such as face.resolution")])
    return key, raw


def overrides_layer(schema: type, overrides: Iterable[str] | None, problems: list[Problem],
                    retired: Mapping[str, str] | None = None) -> dict:
    """``--set KEY=VALUE`` overrides as a layer.

    VALUE is read as a YAML scalar or flow collection (``2e-5`` float, ``true``
    bool, ``[1, 2]`` list, empty: null); where the key holds a string, the text is
    taken as it is (``--set run.output_dir=2024`` gives the string "2024").
    """
    layer: dict = {}
    for text in overrides or []:
        where = f"--set {text}"
        try:
            key, raw = parse_override(text)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        if retired and key in retired:
            if raw.strip() not in ("", "null", "~"):
                retired_notice(where, key, retired[key])
            continue
        tp = _lookup_or_problem(schema, key, where, problems)
        if tp is None:
            continue
        try:
            value = parse_yaml(raw)
        except YamlProblem as exc:
            problems.append(Problem(where, key, f"cannot read the value {raw!r}: {exc.message}"))
            continue
        if (
            tp is not Any
            and not isinstance(value, str)
            and tc.accepts(tp, str)
            and not (value is None and tc.accepts(tp, type(None)))
            and not isinstance(value, (dict, list))
        ):
            value = raw.strip()
        value = tc.check_value(value, tp, key, where, problems)
        layer = tc.deep_merge(layer, _nest(key, value))
    return layer


def _resolve(merged: dict, schema: type, where: str, problems: list[Problem]) -> dict:
    """Resolve every interpolation, checking each resolved value against the schema."""
    try:
        root = OmegaConf.create(merged)
    except OmegaConfBaseException as exc:
        if not problems:  # otherwise the values at fault are already reported
            problems.append(Problem(where, "", f"cannot resolve interpolations: {str(exc).splitlines()[0]}"))
        return merged

    def visit(node: DictConfig | ListConfig, plain: Any, tp: Any, key: str) -> None:
        items = plain.items() if isinstance(plain, dict) else enumerate(plain)
        for k, v in items:
            dotted = tc.join(key, k) if isinstance(plain, dict) else f"{key}[{k}]"
            sub_tp = tc.child_type(tp, k)
            if isinstance(v, (dict, list)):
                visit(node[k], v, sub_tp, dotted)
            elif tc.is_interpolation(v):
                try:
                    value = node[k]
                    if isinstance(value, (DictConfig, ListConfig)):
                        value = OmegaConf.to_container(value, resolve=True)
                except OmegaConfBaseException as exc:
                    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    problems.append(Problem(where, dotted, f"cannot resolve {v!r}: {reason}"))
                    continue
                found: list[Problem] = []
                tc.check_value(value, sub_tp, dotted, where, found)
                problems.extend(dataclasses.replace(p, message=f"{p.message} (from {v!r})") for p in found)

    visit(root, merged, schema, "")
    if problems:
        return merged
    return cast(dict, OmegaConf.to_container(root, resolve=True))


def _value_problems(obj: Any, key: str, where: str, problems: list[Problem]) -> None:
    """Collect the cross-field checks (`check_values()`) of every section."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        check = getattr(obj, "check_values", None)
        if callable(check):
            problems.extend(Problem(where, key, msg) for msg in check())
        for f in dataclasses.fields(obj):
            _value_problems(getattr(obj, f.name), tc.join(key, f.name), where, problems)
    elif isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            _value_problems(item, f"{key}[{i}]", where, problems)


@functools.lru_cache(maxsize=None)
def _check_schema(schema: type) -> None:
    """Fail early (TypeError) on a schema OmegaConf cannot use as a structured config."""
    try:
        OmegaConf.structured(schema)
    except OmegaConfBaseException as exc:
        raise TypeError(f"{schema.__name__} is not a valid structured config: {exc}") from exc


def compose(
    layers: list[Layer],
    family: str,
    overrides: Iterable[str] | None = None,
    flags: Mapping[str, object] | None = None,
) -> Any:
    """Merge defaults, layers, flags and overrides into the family's typed config."""
    schema = FAMILIES[family]
    where = layers[-1].where if layers else "<defaults>"
    problems: list[Problem] = []
    _check_schema(schema)
    merged = tc.defaults(schema)
    retired = RETIRED_KEYS.get(family, {})
    for layer in layers:
        data = _without_retired(layer.data, family, layer.where)
        merged = tc.deep_merge(merged, tc.check_section(data, schema, "", layer.where, problems))
    merged = tc.deep_merge(merged, flags_layer(schema, flags, problems, retired))
    merged = tc.deep_merge(merged, overrides_layer(schema, overrides, problems, retired))
    for key in tc.missing_keys(merged):
        problems.append(
            Problem(where, key, f"missing required value (???); set it in the file or with --set {key}=VALUE")
        )
    resolved = _resolve(merged, schema, where, problems)
    if problems:
        raise ConfigError(problems)
    try:
        cfg = tc.build(schema, resolved)
    except tc.BuildError as exc:
        raise ConfigError([Problem(where, exc.key, exc.message)]) from None
    _value_problems(cfg, "", where, problems)
    if problems:
        raise ConfigError(problems)
    return cfg
