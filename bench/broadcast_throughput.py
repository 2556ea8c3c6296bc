"""Benchmark: a 200-recipient two-part UCS2 broadcast through the whole path.

`tsunagu daemon` and `tsunagu sim` run as subprocesses, exactly as in production and in the
end-to-end tests; the broadcast is written into the database as the web UI writes it and
the daemon is woken by the doorbell as the web UI wakes it. Times come from the simulators'
network logs (when each part reached the "network").

    .venv/bin/python bench/broadcast_throughput.py [--quick] [--repeat N] [--people 200]
        [--case DELAY:MODEMS[:CPU%]]...

A case is a time per SMS, a number of simulated modems and optionally a CPU quota for the
daemon (bench/cpu_quota.py: 33 is a Raspberry Pi 4's share of one core here). Prints one
JSON object per run and a summary of medians with their spread; `bench/performance.py
--report` runs it with the other benchmarks and writes the README's Performance section.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (PRODUCTION, MemoryWatch, cpu_seconds, spread,  # noqa: E402
                          stop_cleanly_on_sigterm)
from bench.cpu_quota import CpuQuota  # noqa: E402

from appliance import broadcasts, config as config_mod, doorbell  # noqa: E402
from appliance.db import connect, write  # noqa: E402
from tests.daemon_harness import (TEXT, DaemonProcess, Sim, seed_patients,  # noqa: E402
                                  wait_until, write_config)

CHOICES = ["来院できる", "来院できない", "連絡がほしい"]   # with them: two UCS2 parts each
PI_SHARE = 33                             # % of one core here: a Raspberry Pi 4 (issue 16)
QUICK_CASES = [(0.0, 1, None), (0.0, 2, None), (0.02, 1, None), (0.02, 2, None)]
FULL_CASES = [*QUICK_CASES,
              (0.2, 1, None), (0.2, 2, None), (0.2, 4, None), (0.2, 8, None),
              (0.0, 1, PI_SHARE), (0.02, 1, PI_SHARE), (0.02, 2, PI_SHARE),
              (0.5, 8, PI_SHARE), (0.5, 8, None)]   # the last: the same without the limit


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


def run(people: int, modems: int, delay: float, cpu_percent: float | None = None) -> dict:
    """One broadcast to *people* over *modems* simulated modems at *delay* s per SMS."""
    quota = CpuQuota(cpu_percent) if cpu_percent else None
    with tempfile.TemporaryDirectory(prefix="tsunagu-bench-") as tmp:
        directory = Path(tmp)
        sims = [Sim(directory, f"modem{i}", send_delay=delay, report_delay=0.05).start()
                for i in range(modems)]
        config_path = write_config(directory, sims, pace=60_000, daemon=PRODUCTION)
        config = config_mod.load(config_path)
        db = connect(config.database)
        group = seed_patients(db, people)
        daemon = DaemonProcess(config_path, directory, prefix=quota.prefix() if quota else [])
        memory = None
        try:
            daemon.start()
            if quota:
                quota.attach(daemon.proc)
            # Wait until every modem is ready, so the figure is the send path, not start-up.
            wait_until(lambda: db.conn.execute("SELECT count(*) FROM modem_status WHERE "
                                               "ready = 1").fetchone()[0] == modems, 60,
                       "modems ready")
            memory = MemoryWatch(daemon.proc.pid).start()
            p = broadcasts.plan(db.conn, config, text=TEXT, group_ids=[group], choices=CHOICES,
                                now=time.time())
            cpu_before = cpu_seconds(daemon.proc.pid)
            queued_at = time.time()
            with write(db) as conn:
                broadcasts.create(conn, p, title="bench", actor="bench", now=queued_at)
            doorbell.ring(config.database)  # as the web UI does after its commit
            total_parts = p.parts
            tails = [SubmitCounter(s.log) for s in sims]
            wait_until(lambda: sum(t.count() for t in tails) >= total_parts,
                       600 + total_parts * delay, "every part on the wire", interval=0.05)
            cpu_used = cpu_seconds(daemon.proc.pid) - cpu_before
            mem = memory.stop()
            throttling = quota.throttling() if quota else {}
        finally:
            if quota:
                quota.release(daemon.proc)
            daemon.stop()
            for sim in sims:
                sim.stop()
            db.conn.close()
            if quota:
                quota.close()
        sent = [(e["t"], sim.name, e["to"]) for sim in sims for e in sim.events("submit")]
        gaps = _gaps([sim.events("submit") for sim in sims], delay)
    submits = sorted(t for t, _modem, _to in sent)
    modems_of: dict[str, set[str]] = defaultdict(set)
    for _t, modem, to in sent:
        modems_of[to].add(modem)
    elapsed = submits[-1] - queued_at
    ideal = total_parts * delay / modems
    return {"people": people, "modems": modems, "send_delay_s": delay,
            "cpu_quota": quota.describe() if quota else None, **throttling,
            "parts": total_parts,
            "parts_per_modem": [sum(1 for _t, m, _to in sent if m == s.name) for s in sims],
            "messages_split_over_modems": sum(1 for used in modems_of.values() if len(used) > 1),
            "time_to_last_part_s": round(elapsed, 3),
            "modem_bound_ideal_s": round(ideal, 3),
            "ratio_to_ideal": round(elapsed / ideal, 4) if ideal else None,
            # The network logs a part when it accepts it, the send delay after the PDU
            # reached the modem: the hand-over is that much earlier.
            "first_part_after_queued_s": round(submits[0] - delay - queued_at, 3),
            "parts_per_second": round(total_parts / elapsed, 1),
            "daemon_cpu_ms_per_part": round(1000 * cpu_used / total_parts, 3), **gaps,
            "daemon_peak_rss_mib": mem["peak_mib"], "daemon_steady_rss_mib": mem["steady_mib"]}


def _gaps(logs: list[list[dict]], delay: float) -> dict:
    """What a modem waited beyond its own time per SMS between two of its parts, in ms
    (median): inside a message (the next part was ready) and between two messages (the
    answer recorded, the next message begun: one commit, and what else the worker does
    there)."""
    within, between = [], []
    for events in logs:
        events = sorted(events, key=lambda e: e["t"])
        for a, b in zip(events, events[1:]):
            (within if b["part"] > 1 else between).append(1000 * (b["t"] - a["t"] - delay))
    return {"wait_inside_a_message_ms": round(statistics.median(within), 2) if within else None,
            "wait_between_messages_ms": round(statistics.median(between), 2) if between else None}


def case_key(result: dict) -> str:
    quota = " pi" if result["cpu_quota"] else ""
    return f"{result['send_delay_s']}s/{result['modems']}{quota}"


def summarise(results: list[dict]) -> dict:
    """Medians with their spread per case, and the speed-up over one modem."""
    by_case: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        by_case[case_key(r)].append(r)
    cases = {}
    for key, runs in by_case.items():
        first = runs[0]
        cases[key] = {
            "send_delay_s": first["send_delay_s"], "modems": first["modems"],
            "cpu_quota": first["cpu_quota"], "runs": len(runs), "parts": first["parts"],
            "time_to_last_part_s": spread([r["time_to_last_part_s"] for r in runs]),
            "modem_bound_ideal_s": first["modem_bound_ideal_s"],
            "ratio_to_ideal": spread([r["ratio_to_ideal"] for r in runs], 4),
            "parts_per_second": spread([r["parts_per_second"] for r in runs], 1),
            "first_part_after_queued_s": spread([r["first_part_after_queued_s"] for r in runs]),
            "daemon_cpu_ms_per_part": spread([r["daemon_cpu_ms_per_part"] for r in runs]),
            "wait_inside_a_message_ms": spread([r["wait_inside_a_message_ms"] for r in runs], 2),
            "wait_between_messages_ms": spread([r["wait_between_messages_ms"] for r in runs], 2),
            "daemon_peak_rss_mib": spread([r["daemon_peak_rss_mib"] for r in runs], 1),
            "daemon_steady_rss_mib": spread([r["daemon_steady_rss_mib"] for r in runs], 1),
            "messages_split_over_modems": sum(r["messages_split_over_modems"] for r in runs),
            "throttled_periods": sum(r.get("throttled_periods", 0) for r in runs)}
    for key, case in cases.items():
        one = cases.get(key.replace(f"/{case['modems']}", "/1", 1))
        if one and case["modems"] > 1 and case["send_delay_s"] > 0:
            case["speedup_over_one_modem"] = round(
                one["time_to_last_part_s"]["median"] / case["time_to_last_part_s"]["median"], 2)
    return {"cases": cases}


def parse_case(text: str) -> tuple[float, int, float | None]:
    try:
        fields = text.split(":")
        delay, modems = float(fields[0]), int(fields[1])
        quota = float(fields[2]) if len(fields) > 2 and fields[2] else None
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"a case is DELAY:MODEMS[:CPU%], got {text!r}") from None
    return delay, modems, quota


def run_cases(cases, people: int, repeat: int, out=sys.stdout) -> list[dict]:
    results = []
    for delay, modems, quota in cases:
        for _ in range(max(1, repeat)):
            result = run(people, modems, delay, quota)
            results.append(result)
            print(json.dumps(result, ensure_ascii=False), file=out, flush=True)
    return results


def main() -> None:
    stop_cleanly_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--quick", action="store_true",
                        help="0 and 0.02 s per SMS with one and two modems only")
    parser.add_argument("--case", action="append", type=parse_case, metavar="DELAY:MODEMS[:CPU%]",
                        help="run these cases instead (repeatable)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per case; the summary gives the median and the spread")
    args = parser.parse_args()
    cases = args.case or (QUICK_CASES if args.quick else FULL_CASES)
    results = run_cases(cases, args.people, args.repeat)
    print(json.dumps(summarise(results), ensure_ascii=False))


if __name__ == "__main__":
    main()
