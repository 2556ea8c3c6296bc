"""The code itself: no unused imports, no undefined names (pyflakes), in every package."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_pyflakes_finds_nothing_in_the_code_and_tests():
    result = subprocess.run([sys.executable, "-m", "pyflakes", "appliance", "modem", "webui",
                             "tests", "bench"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
