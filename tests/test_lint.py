"""`python -m ruff check .` passes: the [tool.ruff] settings in pyproject.toml (line length 120; pyflakes, pycodestyle,
import order) hold for the whole checkout."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(importlib.util.find_spec("ruff") is None,
                    reason="ruff not installed: pip install -r requirements-dev.txt")
def test_ruff_check_passes():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", str(ROOT)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
