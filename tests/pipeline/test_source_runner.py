"""The worker's set-up: what a worker process loads before its first source."""

from __future__ import annotations

import subprocess
import sys


def test_default_worker_imports_neither_torch_nor_scipys_heavy_modules(repo_root):
    # Each costs every worker process about half a second of CPU; the default backends need
    # none (a GPU or checkpoint backend imports torch when it is chosen; numba imports scipy's
    # top-level package only).
    code = (
        "import sys\n"
        "from syncvid.config.pipeline_schema import PipelineConfig\n"
        "from syncvid.pipeline.source_runner import StageSet\n"
        "StageSet.create(PipelineConfig())\n"
        "print(sorted(m for m in ('torch', 'scipy.fft', 'scipy.special', 'scipy.signal') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
