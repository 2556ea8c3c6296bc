"""Run the daemon on a Raspberry Pi's share of CPU: a CPU quota for one process tree.

The appliance runs on a Pi 4, about a third of one of this machine's cores. The bench
gives the daemon (and only the daemon: the simulated modems stand for hardware) that much
CPU time, in the first of these ways that this machine offers:

1. `systemd-run --scope -p CPUQuota=N%` when systemd is the init (it makes a cgroup);
2. a cgroup v2 of our own (`cpu.max`), where the cpu controller is on the unified tree;
3. a cgroup v1 of our own (`cpu.cfs_quota_us` / `cpu.cfs_period_us`) — as root, on a
   hybrid or legacy hierarchy (this development machine: no systemd, v1 cpu controller);
4. otherwise an approximation: the bench stops and continues the process (SIGSTOP /
   SIGCONT) so that it runs N% of every 100 ms period. It is harsher than a quota — the
   process is stopped even when it would be idle, so it may wait up to (1 − N%) × 100 ms
   to answer anything — and the report says when it was used.

Either cgroup kind is the kernel's CFS bandwidth control, the same mechanism systemd's
CPUQuota uses: N% of a 100 ms period, throttled once used up. The report gives how many
periods were throttled, which shows the quota bit.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path

PERIOD_US = 100_000
APPROXIMATION = "approximation: SIGSTOP/SIGCONT duty cycle"


def _mounts() -> list[tuple[str, str, list[str]]]:
    """(mount point, file system type, options) of every mount."""
    out = []
    try:
        for line in Path("/proc/self/mounts").read_text().splitlines():
            fields = line.split()
            if len(fields) >= 4:
                out.append((fields[1], fields[2], fields[3].split(",")))
    except OSError:
        pass  # no /proc: no cgroup either, the approximation is used
    return out


def _own_cgroup(controller: str | None) -> str:
    """Our cgroup path in the hierarchy of *controller* (None: the unified v2 one)."""
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _id, controllers, path = line.split(":", 2)
            if (controller is None and controllers == "") or \
                    (controller is not None and controller in controllers.split(",")):
                return path.lstrip("/")
    except (OSError, ValueError):
        pass  # unreadable: the hierarchy's root
    return ""


class CpuQuota:
    """*percent* of one CPU for the processes started with `prefix()` (and their threads)."""

    def __init__(self, percent: float, *, approximate: bool = False) -> None:
        """*approximate*: use the stop/continue fallback even where a cgroup could be made
        (to compare the two, and to test the fallback)."""
        if not 1 <= percent <= 100 * (os.cpu_count() or 1):
            raise ValueError(f"a CPU quota is 1–{100 * (os.cpu_count() or 1)} %, got {percent}")
        self.percent = percent
        self.method = ""
        self.group: Path | None = None
        self._stats_file: Path | None = None
        self._stopper: threading.Thread | None = None
        self._stop = threading.Event()
        if approximate:
            self.method = APPROXIMATION
        else:
            self._choose()

    # -- choosing the way -------------------------------------------------------------------
    def _choose(self) -> None:
        if shutil.which("systemd-run") and Path("/run/systemd/system").is_dir():
            self.method = "systemd-run --scope -p CPUQuota"
            return
        for make in (self._cgroup_v2, self._cgroup_v1):
            try:
                if make():
                    return
            except OSError:
                self._remove_group()  # not allowed here: try the next way
        self.method = APPROXIMATION

    def _cgroup_v2(self) -> bool:
        for mount, kind, _options in _mounts():
            if kind != "cgroup2":
                continue
            parent = Path(mount) / _own_cgroup(None)
            if "cpu" not in (Path(mount) / "cgroup.controllers").read_text().split():
                continue
            if "cpu" not in (parent / "cgroup.subtree_control").read_text().split():
                (parent / "cgroup.subtree_control").write_text("+cpu")
            self.group = parent / f"tsunagu-bench-{os.getpid()}"
            self.group.mkdir()
            quota = int(PERIOD_US * self.percent / 100)
            (self.group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
            self._stats_file = self.group / "cpu.stat"
            self.method = "cgroup v2 cpu.max"
            return True
        return False

    def _cgroup_v1(self) -> bool:
        for mount, kind, options in _mounts():
            if kind != "cgroup" or "cpu" not in options:
                continue
            self.group = Path(mount) / _own_cgroup("cpu") / f"tsunagu-bench-{os.getpid()}"
            self.group.mkdir()
            (self.group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (self.group / "cpu.cfs_quota_us").write_text(str(int(PERIOD_US * self.percent / 100)))
            self._stats_file = self.group / "cpu.stat"
            self.method = "cgroup v1 cpu.cfs_quota_us"
            return True
        return False

    # -- using it ---------------------------------------------------------------------------
    def prefix(self) -> list[str]:
        """What to put before a command so that it starts inside the quota."""
        if self.method.startswith("systemd-run"):
            return ["systemd-run", "--scope", "--quiet", "--collect",
                    "-p", f"CPUQuota={self.percent:g}%", "--"]
        if self.group is not None:
            # The shell joins the group, then becomes the command: nothing runs outside.
            return ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.group / "cgroup.procs")]
        return []

    def attach(self, proc: subprocess.Popen) -> None:
        """For the approximation: start stopping and continuing *proc*."""
        if self.method == APPROXIMATION:
            self._stopper = threading.Thread(target=self._duty_cycle, args=(proc,),
                                             daemon=True, name="cpu-duty-cycle")
            self._stopper.start()

    def _duty_cycle(self, proc: subprocess.Popen) -> None:
        period = PERIOD_US / 1e6
        run = period * self.percent / 100
        while not self._stop.is_set() and proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGCONT)
                if self._stop.wait(run):
                    break
                if run < period:
                    os.kill(proc.pid, signal.SIGSTOP)
                    self._stop.wait(period - run)
            except ProcessLookupError:
                break
        try:
            os.kill(proc.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass  # it has ended: nothing to continue

    def release(self, proc: subprocess.Popen | None = None) -> None:
        """Stop the duty cycle (the process is left running, continued)."""
        self._stop.set()
        if self._stopper is not None:
            self._stopper.join(2)
        if proc is not None and proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass  # ended meanwhile

    def throttling(self) -> dict:
        """How often the kernel held the group back (cgroups only)."""
        if self._stats_file is None:
            return {}
        try:
            stats = dict(line.split() for line in self._stats_file.read_text().splitlines())
        except (OSError, ValueError):
            return {}
        periods, throttled = int(stats.get("nr_periods", 0)), int(stats.get("nr_throttled", 0))
        return {"periods": periods, "throttled_periods": throttled}

    def close(self) -> None:
        self._stop.set()
        self._remove_group()

    def _remove_group(self) -> None:
        if self.group is not None and self.group.exists():
            try:
                self.group.rmdir()   # empty once its processes have ended
            except OSError:
                pass  # a process is still in it; the kernel keeps the group, nothing leaks
        self.group = None

    def describe(self) -> str:
        return f"{self.percent:g}% of one core ({self.method})"
