"""The benchmarks run end to end and print what the README reports (their figures are not
checked here: speed is measured by the benchmarks, never by a timed test)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.cpu_quota import CpuQuota

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def test_the_throughput_benchmark_prints_one_line_per_run_and_a_median_summary():
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "broadcast_throughput.py"), "--people", "4",
         "--case", "0:1", "--case", "0.02:2:50"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=True).stdout
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    runs, summary = lines[:-1], lines[-1]
    assert [(r["send_delay_s"], r["modems"]) for r in runs] == [(0.0, 1), (0.02, 2)]
    assert all(r["parts"] == 8 and sum(r["parts_per_modem"]) == 8 for r in runs)
    assert all(r["messages_split_over_modems"] == 0 for r in runs)
    assert all(r["daemon_peak_rss_mib"] > 0 and r["daemon_cpu_ms_per_part"] > 0 for r in runs)
    assert runs[0]["cpu_quota"] is None and runs[1]["cpu_quota"].startswith("50% of one core")
    assert set(summary["cases"]) == {"0.0s/1", "0.02s/2 pi"}
    assert summary["cases"]["0.02s/2 pi"]["ratio_to_ideal"]["n"] == 1


def _cpu_share_of_a_busy_loop(quota: CpuQuota, seconds: float) -> float:
    """CPU time over wall time of a process that only computes, run inside *quota*."""
    busy = ("import time\nend = time.monotonic() + %r\nwhile time.monotonic() < end: pass\n"
            "print(time.process_time())" % seconds)
    started = time.monotonic()
    proc = subprocess.Popen([*quota.prefix(), sys.executable, "-c", busy],
                            stdout=subprocess.PIPE, text=True)
    quota.attach(proc)
    out, _ = proc.communicate(timeout=60)
    quota.release()
    return float(out) / (time.monotonic() - started)


@pytest.mark.parametrize("approximate", [False, True], ids=["this machine's way", "fallback"])
def test_the_cpu_quota_holds_a_busy_process_to_its_share(approximate):
    quota = CpuQuota(25, approximate=approximate)
    try:
        share = _cpu_share_of_a_busy_loop(quota, 1.5)
    finally:
        quota.close()
    # A busy machine can give it less, never more: only the ceiling is the quota's doing.
    assert 0 < share <= 0.25 + 0.1, (quota.method, share)
