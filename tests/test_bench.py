"""The benchmark runs end to end and prints what the README reports (its figures are not
checked here: speed is measured by the benchmark, never by a timed test)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_throughput_benchmark_prints_one_line_per_run_and_a_median_summary():
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "broadcast_throughput.py"), "--quick",
         "--people", "4", "--repeat", "1"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=True).stdout
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    runs, summary = lines[:-1], lines[-1]
    assert [(r["send_delay_s"], r["modems"]) for r in runs] == \
        [(0.0, 1), (0.0, 2), (0.02, 1), (0.02, 2)]
    assert all(r["parts"] == 8 and sum(r["parts_per_modem"]) == 8 for r in runs)
    assert all(r["daemon_peak_rss_mib"] > 0 for r in runs)
    assert set(summary["median_ratio_to_ideal"]) == {"0.02s/1", "0.02s/2"}
    assert summary["runs_per_case"] == 1 and "0.02" in summary["speedup_two_modems"]
