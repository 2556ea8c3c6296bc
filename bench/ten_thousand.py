"""Benchmark: ten thousand recipients — a clinic group's roster, or a week of reminders
waiting behind the daily limit.

Everything runs as in production: `tsunagu contacts import` reads a 10,000-row CP932 roster
(as Excel writes it), `tsunagu web` (waitress) serves the pages over HTTP on 127.0.0.1 to a
logged-in client, `tsunagu daemon` sends through two simulated modems, and `tsunagu
broadcast show` is the command the office manager types.

1. import the roster (the whole command, Python's start included);
2. plan and create a 10,000-person broadcast (the functions every door calls);
3. while the daemon sends it as fast as the simulated modems go (the heaviest load the web
   process meets): the broadcast page (its first and a middle page) and its live update,
   back to back, and `broadcast show` now and then — p50/p95 of each; the daemon's and the
   web's memory sampled throughout (peak, steady, growth from the first to the last
   quarter of the sending);
4. the SIMs' daily limits now used up, a second 10,000-person broadcast waits behind them
   (上限待ち for every one: the forecast of the whole queue on every page load): the same
   page and command timings, and budget.held_back() alone.

    .venv/bin/python bench/ten_thousand.py [--people 10000] [--send-delay 0.005]
"""
from __future__ import annotations

import argparse
import http.cookiejar
import json
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (PRODUCTION, MemoryWatch, percentile,  # noqa: E402
                          stop_cleanly_on_sigterm)
from bench.broadcast_throughput import SubmitCounter  # noqa: E402

from appliance import broadcasts, budget, config as config_mod, doorbell, roster_csv  # noqa: E402
from appliance import users  # noqa: E402
from appliance.db import connect, write  # noqa: E402
from tests.daemon_harness import (ROOT, DaemonProcess, Sim, stop_process,  # noqa: E402
                                  tsunagu_command, wait_until, write_config)

TEXT = "{name}様 つなぐ透析クリニックです。来週の透析の予定をお知らせします。"
USER = ("bench-nurse", "bench-pass-123456")
HEADER = ["患者ID", "氏名", "フリガナ", "携帯電話", "施設", "透析曜日", "時間帯", "備考"]


def roster(people: int) -> bytes:
    """A roster as Excel saves it in Japan (CP932), with the shift columns that make groups."""
    rows = [[f"P{i:05d}", f"患者{i:05d} 山田", "ヤマダ タロウ", f"0901{i:07d}",
             ["本院", "みなみ分院"][i % 2], ["月水金", "火木土"][i % 3 % 2], ["午前", "午後"][i % 5 % 2],
             ""] for i in range(people)]
    return roster_csv.write(HEADER, rows, "cp932")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    """A logged-in staff browser on the loopback address (cookies, the CSRF token)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str) -> tuple[float, int, bytes]:
        started = time.perf_counter()
        with self.opener.open(self.base + path, timeout=60) as response:
            body = response.read()
            return time.perf_counter() - started, response.status, body

    def log_in(self, username: str, password: str) -> None:
        _t, _status, page = self.get("/login")
        token = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page).group(1).decode()
        data = urllib.parse.urlencode({"username": username, "password": password,
                                       "csrf_token": token}).encode()
        with self.opener.open(self.base + "/login", data=data, timeout=60) as response:
            if "/login" in response.url:
                raise RuntimeError("the bench could not log in")


def timed_command(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                   cwd=ROOT, timeout=300)
    return time.perf_counter() - started


def summary_ms(seconds: list[float]) -> dict:
    if not seconds:
        return {"n": 0}
    ms = [1000 * s for s in seconds]
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 1),
            "p95_ms": round(percentile(ms, 95), 1), "max_ms": round(max(ms), 1)}


def page_load(browser: Browser, broadcast_id: int, pages: int, rounds: int | None,
              until=None, show_every: float = 10.0, show=None) -> dict:
    """Load the page (first and middle), its live update, and `broadcast show` now and
    then, back to back, for *rounds* rounds or until *until()* is true."""
    middle = max(1, pages // 2)
    times: dict[str, list[float]] = {"page": [], "page_middle": [], "live_update": [],
                                     "broadcast_show": []}
    last_show = 0.0
    done = 0
    while (rounds is None or done < rounds) and not (until and until()):
        for key, path in (("page", f"/broadcasts/{broadcast_id}"),
                          ("page_middle", f"/broadcasts/{broadcast_id}?page={middle}"),
                          ("live_update", f"/api/broadcasts/{broadcast_id}?page={middle}")):
            took, status, _body = browser.get(path)
            if status != 200:
                raise RuntimeError(f"{path}: HTTP {status}")
            times[key].append(took)
        if show and time.monotonic() - last_show >= show_every:
            times["broadcast_show"].append(show())
            last_show = time.monotonic()
        done += 1
    return {key: summary_ms(values) for key, values in times.items()}


def run(people: int = 10_000, send_delay: float = 0.005) -> dict:
    result: dict = {"people": people, "send_delay_s": send_delay, "modems": 2}
    with tempfile.TemporaryDirectory(prefix="tsunagu-10k-") as tmp:
        directory = Path(tmp)
        sims = [Sim(directory, f"modem{i}", send_delay=send_delay, report_delay=0.05).start()
                for i in range(2)]
        # The daily limits take exactly the first broadcast, so the second waits (上限待ち).
        config_path = write_config(directory, sims, pace=60_000, daily_limit=people // 2,
                                   daemon=PRODUCTION)
        config = config_mod.load(config_path)
        db = connect(config.database)
        users.create_user(db, USER[0], "staff", password=USER[1], actor="bench")
        cli = [*tsunagu_command()]
        web = daemon = None
        try:
            csv_path = directory / "roster.csv"
            csv_path.write_bytes(roster(people))
            result["contacts_import_s"] = round(timed_command(
                [*cli, "contacts", "import", str(csv_path), "--config", str(config_path)]), 2)
            imported = db.conn.execute("SELECT count(*) FROM contacts").fetchone()[0]
            assert imported == people, f"imported {imported} of {people}"

            port = free_port()
            with open(directory / "web.stderr", "wb") as stderr:
                web = subprocess.Popen([*cli, "web", "--config", str(config_path), "--host",
                                        "127.0.0.1", "--port", str(port)],
                                       stdout=subprocess.DEVNULL, stderr=stderr, cwd=ROOT)
            web_memory = MemoryWatch(web.pid).start()
            browser = Browser(f"http://127.0.0.1:{port}")
            wait_until(lambda: _answers(browser), 60, "the web UI")
            browser.log_in(*USER)

            daemon = DaemonProcess(config_path, directory).start()
            wait_until(lambda: db.conn.execute("SELECT count(*) FROM modem_status WHERE "
                                               "ready = 1").fetchone()[0] == 2, 60,
                       "modems ready")
            daemon_memory = MemoryWatch(daemon.proc.pid, interval=0.5).start()

            started = time.perf_counter()
            plan = broadcasts.plan(db.conn, config, text=TEXT, everyone=True, now=time.time())
            result["plan_s"] = round(time.perf_counter() - started, 3)
            assert plan.parts == people, "one part per person"
            started = time.perf_counter()
            with write(db) as conn:
                first = broadcasts.create(conn, plan, title="10,000", actor="bench",
                                          now=time.time())
            result["create_s"] = round(time.perf_counter() - started, 3)
            queued_at = time.time()
            doorbell.ring(config.database)

            def show(broadcast_id: int) -> float:
                return timed_command([*cli, "broadcast", "show", str(broadcast_id),
                                      "--config", str(config_path)])
            tails = [SubmitCounter(s.log) for s in sims]
            pages = -(-people // 200)
            result["while_sending"] = page_load(
                browser, first, pages, None,
                until=lambda: sum(t.count() for t in tails) >= people,
                show=lambda: show(first))
            wait_until(lambda: sum(t.count() for t in tails) >= people, 600, "all sent")
            last = max(e["t"] for s in sims for e in s.events("submit"))
            result["sending_s"] = round(last - queued_at, 1)
            result["parts_per_second"] = round(people / (last - queued_at), 1)
            result["daemon_memory_while_sending"] = daemon_memory.stop()

            # A second 10,000 behind the used-up daily limits: every one 上限待ち.
            plan = broadcasts.plan(db.conn, config, text=TEXT, everyone=True, now=time.time())
            with write(db) as conn:
                second = broadcasts.create(conn, plan, title="10,000 (上限待ち)", actor="bench",
                                           now=time.time())
            held_times = []
            for _ in range(5):
                started = time.perf_counter()
                held = budget.held_back(db.conn, config, time.time())
                held_times.append(time.perf_counter() - started)
            assert len(held) == people, f"{len(held)} held back, expected {people}"
            result["held_back"] = summary_ms(held_times)
            result["behind_the_daily_limit"] = page_load(browser, second, pages, 20)
            result["behind_the_daily_limit"]["broadcast_show"] = summary_ms(
                [show(second) for _ in range(3)])
            result["web_memory"] = web_memory.stop()
        finally:
            stop_process(web)
            if daemon is not None:
                daemon.stop()
            for sim in sims:
                sim.stop()
            db.conn.close()
    return result


def _answers(browser: Browser) -> bool:
    try:
        browser.get("/login")
        return True
    except OSError:
        return False


def main() -> None:
    stop_cleanly_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--send-delay", type=float, default=0.005)
    args = parser.parse_args()
    print(json.dumps(run(args.people, args.send_delay), ensure_ascii=False))


if __name__ == "__main__":
    main()
