"""Checking plain YAML data against dataclass schemas, and converting between the two.

The checks collect every problem instead of stopping at the first one.  Supported
annotations: the dataclasses of a schema, ``int``, ``float`` (ints accepted),
``bool``, ``str``, ``pathlib.Path`` (given as a string), Enum subclasses (given by
member name), ``Any``, ``Optional``/``Union``, ``List``, ``Tuple`` and ``Dict[str, X]``.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
import os
import types
import typing
from pathlib import Path
from typing import Any, Union

from syncvid.config.errors import Problem

MISSING_VALUE = "???"
_NONE = type(None)


@functools.lru_cache(maxsize=None)
def field_types(cls: type) -> dict[str, Any]:
    """Resolved annotations of a dataclass's init fields, in declaration order."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def is_schema(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def is_interpolation(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


def join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _union_args(tp: Any) -> tuple | None:
    origin = typing.get_origin(tp)
    if origin is Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        return typing.get_args(tp)
    return None


def describe(tp: Any) -> str:
    """Human name of an annotation: ``int``, ``int or null``, ``list of int`` ..."""
    if tp is Any:
        return "any value"
    if tp is _NONE:
        return "null"
    args = _union_args(tp)
    if args is not None:
        return " or ".join(describe(a) for a in args)
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        inner = [a for a in typing.get_args(tp) if a is not Ellipsis]
        if origin is tuple and len(inner) > 1 and Ellipsis not in typing.get_args(tp):
            return f"list of {len(inner)} items ({', '.join(describe(a) for a in inner)})"
        if not inner:
            return "list"
        item = describe(inner[0])
        return f"list of ({item})" if _union_args(inner[0]) is not None else f"list of {item}"
    if origin is dict:
        args2 = typing.get_args(tp)
        return f"mapping of str to {describe(args2[1])}" if args2 else "mapping"
    if is_schema(tp):
        return f"mapping ({tp.__name__})"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(m.name for m in tp)
    if tp is Path:
        return "str (a path)"
    return getattr(tp, "__name__", str(tp))


def show(value: Any) -> str:
    """A given value as the user wrote it, with its YAML kind."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (bool)"
    if isinstance(value, str):
        return f"{value!r} (str)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        text = repr(list(value))
        return f"{text if len(text) <= 60 else text[:57] + '...'} (list)"
    return f"{value!r} ({type(value).__name__})"


def suggest(name: str, valid: list[str], prefix: str = "") -> str:
    """'did you mean a, b or c?' with the closest valid keys, else the list of valid keys."""
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.6)
    if close:
        names = [join(prefix, c) for c in close]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
        return f"did you mean {listed}?"
    scope = f"under {prefix}" if prefix else "at the top level"
    return f"valid keys {scope}: " + ", ".join(valid)


def unknown_key(where: str, key: str, name: str, valid: list[str], prefix: str) -> Problem:
    """Problem for an unknown key, naming the closest valid keys (or all of them)."""
    return Problem(where, key, f"unknown key {name!r}; {suggest(name, valid, prefix)}")


def check_value(value: Any, tp: Any, key: str, where: str, problems: list[Problem]) -> Any:
    """Check one value against an annotation; append problems; return it without unknown keys.

    Interpolations and ``???`` are accepted here: they are checked once resolved.
    """
    if is_interpolation(value) or (isinstance(value, str) and value == MISSING_VALUE):
        return value
    if tp is Any:
        return value
    if is_schema(tp):
        if isinstance(value, dict):
            return check_section(value, tp, key, where, problems)
        problems.append(Problem(where, key, f"expected {describe(tp)}, got {show(value)}"))
        return value
    args = _union_args(tp)
    if args is not None:
        if value is None and _NONE in args:
            return value
        for arm in args:
            if arm is _NONE:
                continue
            trial: list[Problem] = []
            cleaned = check_value(value, arm, key, where, trial)
            if not trial:
                return cleaned
        arms = [a for a in args if a is not _NONE]
        if len(arms) == 1 and _same_container(value, arms[0]):
            # Optional[container]: the container's own messages name the faulty item.
            return check_value(value, arms[0], key, where, problems)
        problems.append(Problem(where, key, f"expected {describe(tp)}, got {show(value)}"))
        return value
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        if not isinstance(value, list):
            problems.append(Problem(where, key, f"expected {describe(tp)}, got {show(value)}"))
            return value
        targs = typing.get_args(tp)
        if origin is tuple and targs and Ellipsis not in targs:
            if len(value) != len(targs):
                problems.append(Problem(where, key, f"expected {describe(tp)}, got {show(value)}"))
                return value
            item_types = list(targs)
        else:
            item_types = [targs[0] if targs else Any] * len(value)
        return [check_value(v, t, f"{key}[{i}]", where, problems) for i, (v, t) in enumerate(zip(value, item_types))]
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(Problem(where, key, f"expected {describe(tp)}, got {show(value)}"))
            return value
        dargs = typing.get_args(tp)
        value_type = dargs[1] if dargs else Any
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                problems.append(Problem(where, key, f"keys must be strings, got {show(k)}"))
                continue
            out[k] = check_value(v, value_type, join(key, k), where, problems)
        return out
    if _scalar_ok(value, tp):
        return value
    problems.append(Problem(where, key, f"expected {describe(tp)}, got {show(value)}"))
    return value


def _same_container(value: Any, tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if is_schema(tp) or origin is dict:
        return isinstance(value, dict)
    return origin in (list, tuple) and isinstance(value, list)


def _scalar_ok(value: Any, tp: Any) -> bool:
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if tp is Path:
        return isinstance(value, (str, os.PathLike))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return isinstance(value, tp) or (isinstance(value, str) and value in tp.__members__)
    if tp is _NONE:
        return value is None
    return isinstance(tp, type) and isinstance(value, tp)


def check_section(data: dict, cls: type, prefix: str, where: str, problems: list[Problem]) -> dict:
    """Check a mapping against a dataclass schema; unknown keys are reported and dropped."""
    types_ = field_types(cls)
    valid = list(types_)
    out: dict = {}
    for name, value in data.items():
        if not isinstance(name, str):
            problems.append(Problem(where, prefix, f"keys must be strings, got {show(name)}"))
            continue
        key = join(prefix, name)
        if name not in types_:
            problems.append(unknown_key(where, key, name, valid, prefix))
            continue
        out[name] = check_value(value, types_[name], key, where, problems)
    return out


def lookup(cls: type, dotted: str) -> Any:
    """The annotation at a dotted key of a schema.

    Returns the annotation, or raises KeyError(prefix, name, valid_keys) for the
    first unknown part (``valid_keys`` empty when the parent is not a mapping).
    """
    tp: Any = cls
    prefix = ""
    for name in dotted.split("."):
        if is_schema(tp):
            types_ = field_types(tp)
            if name not in types_:
                raise KeyError(prefix, name, list(types_))
            tp = types_[name]
        elif typing.get_origin(tp) is dict:
            dargs = typing.get_args(tp)
            tp = dargs[1] if dargs else Any
        elif tp is Any:
            pass
        else:
            raise KeyError(prefix, name, [])
        prefix = join(prefix, name)
    return tp


def accepts(tp: Any, kind: type) -> bool:
    """Whether an annotation admits values of the given Python type (str, NoneType)."""
    if tp is Any or tp is kind:
        return True
    if kind is str and (tp is Path or (isinstance(tp, type) and issubclass(tp, enum.Enum))):
        return True
    args = _union_args(tp)
    return args is not None and any(accepts(a, kind) for a in args)


def defaults(cls: type) -> dict:
    """The schema defaults of a dataclass as plain data (``???`` where a field has none)."""
    out: dict = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            out[f.name] = to_plain(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = to_plain(f.default_factory())
        elif is_schema(field_types(cls)[f.name]):
            out[f.name] = defaults(field_types(cls)[f.name])
        else:
            out[f.name] = MISSING_VALUE
    return out


def deep_merge(base: Any, update: Any) -> Any:
    """Merge `update` onto `base`: mappings key by key, anything else replaced."""
    if isinstance(base, dict) and isinstance(update, dict):
        out = dict(base)
        for k, v in update.items():
            out[k] = deep_merge(base[k], v) if k in base else v
        return out
    return update


def missing_keys(data: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose value is ``???``."""
    if isinstance(data, str) and data == MISSING_VALUE:
        return [prefix]
    if isinstance(data, dict):
        return [k for name, v in data.items() for k in missing_keys(v, join(prefix, str(name)))]
    if isinstance(data, list):
        return [k for i, v in enumerate(data) for k in missing_keys(v, f"{prefix}[{i}]")]
    return []


class BuildError(Exception):
    """A schema class refused its values (its ``__post_init__`` raised); `key` names the section."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key
        self.message = message


def build(tp: Any, value: Any, key: str = "") -> Any:
    """Typed objects from checked, resolved plain data."""
    if value is None:
        return None
    if is_schema(tp):
        types_ = field_types(tp)
        kwargs = {name: build(types_[name], v, join(key, name)) for name, v in value.items() if name in types_}
        try:
            return tp(**kwargs)
        except (TypeError, ValueError) as exc:
            raise BuildError(key, str(exc)) from exc
    args = _union_args(tp)
    if args is not None:
        for arm in args:
            if arm is _NONE:
                continue
            trial: list[Problem] = []
            check_value(value, arm, "", "", trial)
            if not trial:
                return build(arm, value, key)
        return value
    origin = typing.get_origin(tp)
    if origin is list:
        targs = typing.get_args(tp)
        return [build(targs[0] if targs else Any, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        targs = typing.get_args(tp)
        if targs and Ellipsis not in targs:
            return tuple(build(t, v, f"{key}[{i}]") for i, (t, v) in enumerate(zip(targs, value)))
        return tuple(build(targs[0] if targs else Any, v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        dargs = typing.get_args(tp)
        return {k: build(dargs[1] if dargs else Any, v, join(key, k)) for k, v in value.items()}
    if tp is float:
        return float(value)
    if tp is Path:
        return Path(value)
    if isinstance(tp, type) and issubclass(tp, enum.Enum) and isinstance(value, str):
        return tp[value]
    return value


def to_plain(obj: Any) -> Any:
    """Plain YAML-ready data from typed objects (dataclasses, enums, paths, tuples)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, enum.Enum):
        return obj.name
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def count_unknown(data: Any, cls: type) -> int:
    """How many keys of `data` (at any depth of nested schemas) a schema does not know."""
    if not isinstance(data, dict):
        return 0
    types_ = field_types(cls)
    count = 0
    for name, value in data.items():
        if name not in types_:
            count += 1
        elif is_schema(types_[name]):
            count += count_unknown(value, types_[name])
    return count


def _as_schema(tp: Any) -> type | None:
    """`tp` when it is a schema, or the schema of an optional one, else None."""
    if is_schema(tp):
        return tp
    args = _union_args(tp)
    if args is not None:
        arms = [a for a in args if a is not _NONE]
        if len(arms) == 1 and is_schema(arms[0]):
            return arms[0]
    return None


def key_fit(data: Any, cls: type) -> tuple[float, int]:
    """(score, keys): how well a schema knows the keys of `data`, at any depth of nested schemas.

    `keys` counts every key of `data`; a key the schema knows scores 1, a key one typo away
    from one it knows (what `suggest` would propose) scores 1/2 and is followed into that
    key's section; the keys below an unknown key score nothing."""
    if not isinstance(data, dict):
        return 0.0, 0
    types_ = field_types(cls)
    score, keys = 0.0, 0
    for name, value in data.items():
        keys += 1
        if name in types_:
            score += 1.0
            target = types_[name]
        else:
            close = difflib.get_close_matches(str(name), list(types_), n=1, cutoff=0.6)
            if not close:
                keys += _count_keys(value)
                continue
            score += 0.5
            target = types_[close[0]]
        schema = _as_schema(target)
        if schema is None:
            keys += _count_keys(value)
            continue
        sub_score, sub_keys = key_fit(value, schema)
        score += sub_score
        keys += sub_keys
    return score, keys


def _count_keys(data: Any) -> int:
    if not isinstance(data, dict):
        return 0
    return sum(1 + _count_keys(v) for v in data.values())


def child_type(tp: Any, key: str | int) -> Any:
    """The annotation of a child (field, mapping value or list item) of `tp`, else Any."""
    args = _union_args(tp)
    if args is not None:
        arms = [a for a in args if a is not _NONE]
        return child_type(arms[0], key) if len(arms) == 1 else Any
    if is_schema(tp):
        return field_types(tp).get(str(key), Any)
    origin = typing.get_origin(tp)
    targs = typing.get_args(tp)
    if origin is dict:
        return targs[1] if targs else Any
    if origin is list:
        return targs[0] if targs else Any
    if origin is tuple and targs:
        if Ellipsis in targs:
            return targs[0]
        return targs[key] if isinstance(key, int) and key < len(targs) else Any
    return Any
