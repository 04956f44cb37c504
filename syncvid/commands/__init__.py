"""The commands that work on a finished output root: filter, rescore, report."""
