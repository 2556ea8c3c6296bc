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


def test_one_command_runs_every_benchmark_and_writes_the_readme_performance_section(tmp_path):
    readme = tmp_path / "README.md"
    original = (ROOT / "README.md").read_text(encoding="utf-8")
    readme.write_text(original, encoding="utf-8")
    report = tmp_path / "report.json"
    subprocess.run([sys.executable, str(ROOT / "bench" / "performance.py"), "--smoke",
                    "--repeat", "1", "--drill-repeat", "1", "--report", "--readme", str(readme),
                    "--json", str(report)],
                   capture_output=True, text=True, timeout=300, cwd=ROOT, check=True)
    figures = json.loads(report.read_text(encoding="utf-8"))
    assert {"queue_depth", "throughput", "drill", "ten_thousand", "clinic", "machine_before",
            "machine_after"} <= set(figures)
    cases = figures["throughput"]["cases"]
    assert cases["0.02s/2 pi"]["cpu_quota"].startswith("50% of one core")
    assert all(c["messages_split_over_modems"] == 0 for c in cases.values())
    assert figures["drill"]["lost"] == figures["drill"]["duplicates"] == 0
    written = readme.read_text(encoding="utf-8")
    section = written.split("## Performance\n", 1)[1].split("\n## ", 1)[0]
    for heading in ("### The claim and the queue's depth", "### The send path",
                    "### The disaster drill", "### Ten thousand recipients",
                    "### Memory (resident, MiB)", "load average", "bench/performance.py --report",
                    "A smoke run at toy sizes"):
        assert heading in section, heading
    # Only the section changed: what comes before and after it is the README's own.
    before, after = original.split("## Performance\n", 1)[0], original.split("\n## Status", 1)[1]
    assert written.startswith(before) and written.endswith(after)


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
