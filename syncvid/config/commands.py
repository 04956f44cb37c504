"""``syncvid config show`` and ``syncvid config validate``: print, never raise ConfigError."""

from __future__ import annotations

import sys
from typing import Iterable, TextIO

from syncvid.config import ConfigError, config_to_yaml, family_of, load_config


def show(path: str, overrides: Iterable[str] | None = None) -> int:
    """Print the resolved YAML of a config (with overrides applied); 0, or 1 after printing the problems."""
    try:
        cfg = load_config(path, overrides=list(overrides or []))
    except ConfigError as exc:
        _print_problems(path, exc, sys.stderr)
        return 1
    sys.stdout.write(config_to_yaml(cfg))
    return 0


def validate(path: str, overrides: Iterable[str] | None = None) -> int:
    """Check a config completely: 0 when valid, else print every problem (one per line) and return 1."""
    try:
        cfg = load_config(path, overrides=list(overrides or []))
    except ConfigError as exc:
        _print_problems(path, exc, sys.stdout)
        return 1
    print(f"{path}: valid {family_of(cfg)} config")
    return 0


def _print_problems(path: str, exc: ConfigError, stream: TextIO) -> None:
    for problem in exc.problems:
        print(problem, file=stream)
    count = len(exc.problems)
    print(f"{path}: {count} problem{'s' if count != 1 else ''}", file=sys.stderr)
