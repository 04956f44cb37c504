"""Errors every layer may raise and the command line turns into one line and an exit code."""

from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(ValueError):
    """The user asked for something that cannot be done as asked (bad flag, wrong folder, a
    missing optional package): the command line prints the message on one line and exits 2."""
