"""Safe YAML reading and writing for configuration files.

Only plain YAML is accepted: any tag that would construct an object
(``!!python/object``, ``!!python/name`` ...) is refused.  Beyond PyYAML's safe
loader, floats written without a dot (``1e-5``) load as floats, as YAML 1.2
and OmegaConf read them, and a key repeated in one mapping is an error.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_FLOAT_PATTERN = re.compile(
    r"""^(?:
        [-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
      | [-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
      | [-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
      | [-+]?\.(?:inf|Inf|INF)
      | \.(?:nan|NaN|NAN)
    )$""",
    re.VERBOSE,
)
_FLOAT_FIRST_CHARS = list("-+0123456789.")


class YamlProblem(Exception):
    """The text is not acceptable YAML; `line` is 1-based (0 when unknown)."""

    def __init__(self, message: str, line: int = 0):
        super().__init__(message)
        self.message = message
        self.line = line


class _Loader(yaml.SafeLoader):
    """Safe loader: YAML 1.2 floats, no duplicate keys, no object tags."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise YamlProblem("a mapping key must be a plain value", key_node.start_mark.line + 1) from None
            if key in seen:
                raise YamlProblem(
                    f"duplicate key {key!r} (first given on line {seen[key]})", key_node.start_mark.line + 1
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)

    def construct_undefined(self, node: yaml.Node) -> Any:
        tag = str(node.tag).replace("tag:yaml.org,2002:", "!!", 1)
        raise YamlProblem(
            f"tag {tag!r} is not allowed: configuration files are plain YAML and never construct objects",
            node.start_mark.line + 1,
        )


_Loader.add_constructor(None, _Loader.construct_undefined)
# Dates stay strings: a config value never becomes a datetime object.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_PATTERN, _FLOAT_FIRST_CHARS)


class _Dumper(yaml.SafeDumper):
    """Safe dumper that quotes every string the loader would read as another type."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flow = not any(isinstance(item, dict) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_PATTERN, _FLOAT_FIRST_CHARS)
_Dumper.add_representer(list, _represent_list)


def parse_yaml(text: str) -> Any:
    """Parse YAML text safely; raises YamlProblem with a 1-based line number."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader derives from SafeLoader
    except YamlProblem:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        what = exc.problem or exc.context or "invalid YAML"
        raise YamlProblem(f"invalid YAML: {what}", line) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(f"invalid YAML: {exc}") from None
    except (ValueError, TypeError) as exc:  # e.g. !!float "abc"
        raise YamlProblem(f"invalid value: {exc}") from None


def dump_yaml(data: Any) -> str:
    """Block-style YAML, keys in their given order, lists without mappings on one line."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100)
