#!/usr/bin/env bash
# One-step set-up: a virtual environment in .venv with syncvid and everything its tests need.
# torch is installed first, pinned to a CPU build (override with SYNCVID_TORCH=<version spec>),
# so that the project's `torch>=2.2` range does not pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch${SYNCVID_TORCH:-==2.13.0}"
.venv/bin/python -m pip install -q -e ".[dev]"
echo "syncvid is installed in .venv: run '.venv/bin/syncvid demo' or '.venv/bin/pytest'"
