"""What every benchmark needs: the machine it ran on, a process's memory and CPU time read
from /proc, and medians with their spread.

Figures from a shared machine move with what else runs on it, so each report carries the
load average before and after, and every median its minimum and maximum.
"""
from __future__ import annotations

import datetime as dt
import os
import platform
import signal
import statistics
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _shipped_daemon() -> dict:
    """The [daemon] table of docs/config.example.toml, what an appliance runs with, less its
    paths (the test harness gives its own). The benchmarks run the daemon so: the test
    harness's polls every 2 s and heartbeats every 0.5 s, there to keep the tests quick,
    would be measured as if the appliance did them."""
    import tomllib
    with open(ROOT / "docs" / "config.example.toml", "rb") as f:
        table = tomllib.load(f)["daemon"]
    return {k: v for k, v in table.items() if k not in ("runtime_directory", "reserve_mb")}


# The daemon as shipped; a benchmark's config sets the modems' pace (parts per minute) itself.
PRODUCTION = _shipped_daemon()


def stop_cleanly_on_sigterm() -> None:
    """SIGTERM (kill, a timeout) ends a benchmark like Ctrl-C: through its finally blocks,
    which stop the daemon and the simulated modems it started and remove their files."""
    def stop(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, stop)


def machine() -> dict:
    """Cores, CPU model, load average, memory and the date: what a figure was taken on."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass  # not Linux: the model is only informative
    try:
        memory_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        memory_gib = None
    return {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cores": os.cpu_count(), "cpu": model, "memory_gib": memory_gib,
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(), "kernel": platform.release()}


def proc_status_kib(pid: int, key: str) -> int | None:
    """A line of /proc/PID/status in KiB (VmHWM: peak resident set, VmRSS: now)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time the process has used (all its threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_ns(pid: int) -> int | None:
    """CPU time of every thread of the process, in nanoseconds (the scheduler's own count:
    finer than /proc/PID/stat's 10 ms ticks, for short windows)."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue  # a thread that ended meanwhile
    except OSError:
        return None
    return total


def mib(kib: int | None) -> float | None:
    return None if kib is None else round(kib / 1024, 1)


class MemoryWatch:
    """Samples a process's resident set every *interval* seconds in a thread, to tell its
    peak (the kernel's own high-water mark, VmHWM) from its steady size (the median of the
    last half of the samples) and whether it grows (last quarter against the second)."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[int] = []
        self.peak_kib: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"rss:{pid}")

    def start(self) -> MemoryWatch:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        rss = proc_status_kib(self.pid, "VmRSS")
        if rss is not None:
            self.samples.append(rss)
        peak = proc_status_kib(self.pid, "VmHWM")
        if peak is not None:
            self.peak_kib = peak

    def stop(self) -> dict:
        """Stop sampling (call while the process still runs) and summarise."""
        self.sample()
        self._stop.set()
        self._thread.join(5)
        s = self.samples
        if not s:
            return {"peak_mib": mib(self.peak_kib), "steady_mib": None, "growth_mib": None}
        quarter = max(1, len(s) // 4)
        growth = statistics.median(s[-quarter:]) - statistics.median(s[quarter:2 * quarter]
                                                                      or s[:quarter])
        return {"peak_mib": mib(self.peak_kib),
                "steady_mib": mib(int(statistics.median(s[len(s) // 2:]))),
                "growth_mib": mib(int(growth)), "samples": len(s)}


def spread(values: list[float], digits: int = 3) -> dict:
    """Median, minimum and maximum of repeated runs (None values left out)."""
    values = [v for v in values if v is not None]
    if not values:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits), "n": len(values)}


def percentile(values: list[float], p: float) -> float | None:
    """The p-th percentile (nearest rank) of *values*."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]

