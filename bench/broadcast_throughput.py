"""Benchmark: a 200-recipient two-part UCS2 broadcast through the whole path.

`tsunagu daemon` and `tsunagu sim` run as subprocesses, exactly as in production and in the
end-to-end tests; the broadcast is written into the database as the web UI writes it.
Times come from the simulators' network logs (when each part reached the "network").

    .venv/bin/python bench/broadcast_throughput.py [--people 200] [--quick] [--repeat N]

Prints one JSON object per run and a summary; see README "Performance" for the figures.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance import broadcasts, config as config_mod, doorbell  # noqa: E402
from appliance.db import connect, write  # noqa: E402
from tests.daemon_harness import DaemonProcess, Sim, wait_until, write_config  # noqa: E402
from tests.test_daemon_e2e import CHOICES, TEXT, seed_patients  # noqa: E402


def peak_rss_kib(pid: int) -> int | None:
    """The daemon's peak resident set (VmHWM), read before it exits."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class SubmitCounter:
    """Counts the sends in a simulator's log by reading only what was added since the last
    look: the bench shares the CPUs with the daemon and the simulators, and re-reading and
    parsing whole logs every 50 ms would take CPU time from what it measures."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.submits = 0
        self.partial = b""

    def count(self) -> int:
        try:
            with open(self.path, "rb") as log:
                log.seek(self.offset)
                data = log.read()
        except FileNotFoundError:
            return 0
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()  # a line still being written
        self.submits += sum(1 for line in lines if b'"event": "submit"' in line)
        return self.submits


def run(people: int, modems: int, delay: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="tsunagu-bench-") as tmp:
        directory = Path(tmp)
        sims = [Sim(directory, f"modem{i}", send_delay=delay, report_delay=0.05).start()
                for i in range(modems)]
        config_path = write_config(directory, sims, pace=60_000)
        config = config_mod.load(config_path)
        db = connect(config.database)
        group = seed_patients(db, people)
        daemon = DaemonProcess(config_path, directory).start()
        try:
            # Wait until every modem is ready, so the figure is the send path, not start-up.
            wait_until(lambda: db.conn.execute("SELECT count(*) FROM modem_status WHERE "
                                               "ready = 1").fetchone()[0] == modems, 30,
                       "modems ready")
            p = broadcasts.plan(db.conn, config, text=TEXT, group_ids=[group], choices=CHOICES,
                                now=time.time())  # two UCS2 parts per person
            queued_at = time.time()
            with write(db) as conn:
                broadcasts.create(conn, p, title="bench", actor="bench", now=queued_at)
            doorbell.ring(config.database)  # as the web UI does after its commit
            total_parts = p.parts
            tails = [SubmitCounter(s.log) for s in sims]
            wait_until(lambda: sum(t.count() for t in tails) >= total_parts,
                       600, "every part on the wire", interval=0.05)
            rss = peak_rss_kib(daemon.proc.pid)
        finally:
            daemon.stop()
            for sim in sims:
                sim.stop()
            db.conn.close()
        submits = sorted(e["t"] for s in sims for e in s.events("submit"))
        per_modem = [len(s.events("submit")) for s in sims]
    elapsed = submits[-1] - queued_at
    ideal = total_parts * delay / modems
    return {"people": people, "modems": modems, "send_delay_s": delay, "parts": total_parts,
            "parts_per_modem": per_modem, "time_to_last_part_s": round(elapsed, 3),
            "modem_bound_ideal_s": round(ideal, 3),
            "ratio_to_ideal": round(elapsed / ideal, 3) if ideal else None,
            "first_part_after_queued_s": round(submits[0] - queued_at, 3),
            "parts_per_second": round(total_parts / elapsed, 1),
            "daemon_peak_rss_mib": round(rss / 1024, 1) if rss else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="skip the 0.2 s runs")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per case; the summary gives the median (a shared machine "
                             "moves single runs by a few percent)")
    args = parser.parse_args()
    delays = [0.0, 0.02] if args.quick else [0.0, 0.02, 0.2]
    results: dict[tuple[float, int], list[dict]] = {}
    for delay in delays:
        for modems in (1, 2):
            for _ in range(max(1, args.repeat)):
                result = run(args.people, modems, delay)
                results.setdefault((delay, modems), []).append(result)
                print(json.dumps(result), flush=True)

    def median(delay: float, modems: int, key: str) -> float:
        return statistics.median(r[key] for r in results[(delay, modems)])
    summary = {
        "runs_per_case": max(1, args.repeat),
        "median_ratio_to_ideal": {f"{d}s/{m}": median(d, m, "ratio_to_ideal")
                                  for d in delays if d > 0 for m in (1, 2)},
        "median_parts_per_second_at_zero_delay": {
            str(m): median(0.0, m, "parts_per_second") for m in (1, 2)},
        "speedup_two_modems": {
            str(d): round(median(d, 1, "time_to_last_part_s")
                          / median(d, 2, "time_to_last_part_s"), 2)
            for d in delays if d > 0}}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
