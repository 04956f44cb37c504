"""Configuration problems and the error that carries all of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration.

    `where` names the origin (a file path, ``--set KEY=VALUE`` or ``flag KEY``),
    `key` the full dotted key (empty when the problem concerns the whole file).
    """

    where: str
    key: str
    message: str

    def __str__(self) -> str:
        if self.key:
            return f"{self.where}: {self.key}: {self.message}"
        return f"{self.where}: {self.message}"


class ConfigError(Exception):
    """A configuration could not be loaded; `problems` lists every reason, in order."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems: list[Problem] = list(problems)
        if not self.problems:
            raise ValueError("ConfigError needs at least one problem")
        super().__init__("\n".join(str(p) for p in self.problems))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)
