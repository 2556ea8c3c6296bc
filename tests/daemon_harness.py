"""Simulated modems and the daemon as real subprocesses, for end-to-end tests and the bench.

`tsunagu sim` processes stand in for the modems (each on its own pty, with a JSONL network
log of what reached the phones); `tsunagu daemon` runs exactly as systemd runs it. The
test process only writes broadcasts into the database and reads states back — the same
seam the web UI uses.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from appliance import broadcasts, config as config_mod
from appliance.db import connect, write
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parent.parent
FINAL_STATES = ("submitted", "delivered", "failed", "uncertain", "cancelled")


def tsunagu_command() -> list[str]:
    """The installed console script beside this Python, else the module."""
    script = Path(sys.executable).parent / "tsunagu"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from appliance.cli import main; main()"]


def wait_until(predicate, timeout: float, message: str, interval: float = 0.02):
    """tests.helpers.wait_for with the argument order these tests read best in."""
    return wait_for(predicate, timeout, interval=interval, message=message)


def stop_process(proc: subprocess.Popen | None, timeout: float = 10.0) -> int | None:
    """SIGTERM, then SIGKILL if it does not go; never leaves the process behind."""
    if proc is None or proc.poll() is not None:
        return None if proc is None else proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(timeout)


@dataclass
class Sim:
    """One `tsunagu sim` subprocess: a simulated modem with a network log."""
    directory: Path
    name: str
    send_delay: float = 0.01
    report_delay: float = 0.05
    pin: str | None = None
    model: str = "ec25"
    seed: int = 0          # the simulated network's dice (fault rates, send delays)
    proc: subprocess.Popen | None = None

    @property
    def link(self) -> Path:
        return self.directory / f"{self.name}.tty"

    @property
    def log(self) -> Path:
        return self.directory / f"{self.name}.jsonl"

    def start(self) -> Sim:
        stderr = open(self.directory / f"{self.name}.stderr", "ab")
        self.proc = subprocess.Popen(
            [*tsunagu_command(), "sim", "--link", str(self.link), "--log", str(self.log),
             "--send-delay", str(self.send_delay), "--report-delay", str(self.report_delay),
             "--model", self.model, "--seed", str(self.seed),
             *(["--pin", self.pin] if self.pin else [])],
            stdout=subprocess.DEVNULL, stderr=stderr, cwd=ROOT)
        stderr.close()
        wait_until(lambda: self.link.exists() and Path(f"{self.link}.ctl").exists()
                   or self.proc.poll() is not None, 20, f"simulated modem {self.name}")
        if self.proc.poll() is not None:
            raise AssertionError(f"tsunagu sim exited: {self.stderr()}")
        return self

    def control(self):
        from modem.sim.control import SimControl
        return SimControl(str(self.link))

    def stderr(self) -> str:
        return (self.directory / f"{self.name}.stderr").read_text(errors="replace")

    def events(self, kind: str | None = None) -> list[dict]:
        if not self.log.exists():
            return []
        out = []
        for line in self.log.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line being written right now
            if kind is None or event.get("event") == kind:
                out.append(event)
        return out

    def stop(self) -> None:
        stop_process(self.proc)


def messages(sims: list[Sim]) -> list[dict]:
    """Every whole message that reached a phone, across all simulated modems."""
    return [m for sim in sims for m in sim.events("message")]


def messages_per_number(sims: list[Sim]) -> Counter:
    return Counter(m["to"] for m in messages(sims))


def submits(sims: list[Sim]) -> int:
    return sum(len(sim.events("submit")) for sim in sims)


@dataclass
class DaemonProcess:
    """`tsunagu daemon --config FILE` as a subprocess."""
    config: Path
    directory: Path
    proc: subprocess.Popen | None = None
    runs: int = 0
    env: dict = field(default_factory=dict)
    prefix: list = field(default_factory=list)   # e.g. the bench's CPU quota (bench/cpu_quota)

    @property
    def stderr_path(self) -> Path:
        return self.directory / "daemon.stderr"

    def start(self) -> DaemonProcess:
        self.runs += 1
        stderr = open(self.stderr_path, "ab")
        stderr.write(f"\n--- run {self.runs} ---\n".encode())
        stderr.flush()
        env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
        env.update(self.env)  # a test may give the daemon its own NOTIFY_SOCKET
        self.proc = subprocess.Popen([*self.prefix, *tsunagu_command(), "daemon", "--config",
                                      str(self.config)],
                                     stdout=subprocess.DEVNULL, stderr=stderr, cwd=ROOT, env=env)
        stderr.close()
        return self

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def kill(self) -> None:
        """kill -9: no chance to record anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> int | None:
        return stop_process(self.proc, timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def write_config(directory: Path, sims: list[Sim], *, pace: int = 600,
                 daily_limit: int = 100_000, daemon: dict | None = None,
                 request_status_reports: bool = True, database: str = "tsunagu.db",
                 sections: dict | None = None, modem: dict | None = None) -> Path:
    """A configuration for the daemon under test: its database and one [[modem]] per sim.
    *sections*: more tables ({"recovery": {…}}); *modem*: more keys for every [[modem]]
    ("{link}" in a value is that sim's link)."""
    settings = {"poll_interval": 2, "heartbeat_interval": 0.5, "max_attempts": 5,
                "retry_backoff": 0.05, "min_signal_dbm": -110, "resend_uncertain": "emergency",
                # The test's own: the daemon's status file, a small reserve.
                "runtime_directory": str(directory / "run"), "reserve_mb": 1}
    settings.update(daemon or {})
    lines = [f'database = "{database}"', 'clinic_name = "つなぐ透析クリニック"', "",
             "[daemon]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    lines += ["", "[gpio]", "enabled = false"]
    # A daemon under test never sets this machine's clock.
    tables = {"time": {"setter": ""}, **(sections or {})}
    for name, table in tables.items():
        lines += ["", f"[{name}]", *[f"{k} = {json.dumps(v)}" for k, v in table.items()]]
    for sim in sims:
        lines += ["", "[[modem]]", f'name = "{sim.name}"', f'port = "{sim.link}"',
                  *([f'pin = "{sim.pin}"'] if sim.pin else []),
                  f"pace = {pace}", f"daily_limit = {daily_limit}",
                  f"request_status_reports = {str(request_status_reports).lower()}",
                  *[f"{k} = {json.dumps(str(v).replace('{link}', str(sim.link)))}"
                    for k, v in (modem or {}).items()]]
    path = directory / "tsunagu.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def recipient_states(db) -> Counter:
    return Counter({r[0]: r[1] for r in db.conn.execute(
        "SELECT state, count(*) FROM recipients GROUP BY state")})


def all_final(db, broadcast_id: int | None = None) -> bool:
    where = "" if broadcast_id is None else f" AND broadcast_id = {int(broadcast_id)}"
    left = db.conn.execute(
        "SELECT count(*) FROM recipients WHERE state IN ('queued', 'sending')" + where
    ).fetchone()[0]
    return left == 0


TEXT = ("{name}様\n停電のため本日の透析は中止です。自宅で待機してください。"
        "明日以降の予定は改めてご連絡します。つなぐ透析クリニック")


def _now() -> float:
    return time.time()


def seed_patients(db, count: int, group: str = "月水金 午前") -> int:
    """*count* active patients in *group* (direct rows: setting up, not under test)."""
    with write(db) as conn:
        group_id = conn.execute("INSERT INTO groups (name, kind) VALUES (?, 'shift')",
                                [group]).lastrowid
        for i in range(count):
            contact_id = conn.execute(
                "INSERT INTO contacts (name, kana, phone, created_at, updated_at) "
                "VALUES (?, ?, ?, 0, 0)",
                [f"患者{i:03d} 𠮷田", f"かんじゃ{i:03d}", f"+81901{i:07d}"]).lastrowid
            conn.execute("INSERT INTO contact_groups VALUES (?, ?)", [contact_id, group_id])
    return group_id


class Rig:
    """Simulated modems, a config, the database and the daemon for one test."""

    def __init__(self, tmp_path, sims: int = 1, *, send_delay: float = 0.005,
                 report_delay: float = 0.02, seed: int = 0, model: str = "ec25",
                 **config_kw):
        self.sims = [Sim(tmp_path, f"modem{i}", send_delay=send_delay,
                         report_delay=report_delay, seed=seed + i, model=model).start()
                     for i in range(sims)]
        config_kw.setdefault("pace", 60_000)
        self.config_path = write_config(tmp_path, self.sims, **config_kw)
        self.config = config_mod.load(self.config_path)
        self.db = connect(self.config.database)
        self.daemon = DaemonProcess(self.config_path, tmp_path)

    def broadcast(self, group_id: int, *, priority: str = "routine", choices=None) -> int:
        p = broadcasts.plan(self.db.conn, self.config, text=TEXT, group_ids=[group_id],
                            priority=priority, choices=choices, now=_now())
        with write(self.db) as conn:
            return broadcasts.create(conn, p, title="停電", actor="test", now=_now())

    def wait_final(self, broadcast_id: int, timeout: float = 90) -> Counter:
        wait_until(lambda: all_final(self.db, broadcast_id) or not self.daemon.alive(),
                   timeout, "every recipient in a final state")
        assert self.daemon.alive(), self.daemon.stderr()[-3000:]
        return recipient_states(self.db)

    def wait_delivered(self, count: int, timeout: float = 90) -> None:
        wait_until(lambda: recipient_states(self.db)["delivered"] >= count
                   or not self.daemon.alive(), timeout, f"{count} recipients delivered")
        assert self.daemon.alive(), self.daemon.stderr()[-3000:]

    def close(self) -> None:
        self.daemon.stop()
        for sim in self.sims:
            sim.stop()
        self.db.conn.close()


def worker_with_a_broadcast(tmp_path: Path, sim_modem, people: int, clock, *,
                            daemon: dict | None = None):
    """An in-process dispatcher Worker (appliance.dispatcher) on *sim_modem*'s pty with the
    injected *clock*, connected, and a broadcast to *people* patients queued: (worker, db)."""
    from appliance.dispatcher import Worker

    class Modem0:
        name, link, pin = "modem0", sim_modem.link, None
    config = config_mod.load(write_config(tmp_path, [Modem0()], pace=60_000, daemon=daemon))
    db = connect(config.database)
    group = seed_patients(db, people)
    plan = broadcasts.plan(db.conn, config, text="停電のため中止です", group_ids=[group],
                           now=clock.now())
    with write(db) as conn:
        broadcasts.create(conn, plan, title="停電", actor="test", now=clock.now())
    worker = Worker(config, config.modems[0], db=db, clock=clock)
    assert worker.connect()
    return worker, db
