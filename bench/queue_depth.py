"""Benchmark: the time per part does not grow with the queue (issue 16, finding 1).

The claim once sorted every queued recipient in a temporary B-tree, twice per claim, so a
part took 3.0 ms with 30 queued and 4.3 ms with 1,000. Now the claim follows the
recipients_claim index (tests/test_query_plans.py holds it there). Measured here:

- the claim query itself (outbox._CLAIM_NEXT, in-process, median of 200 runs) with 30,
  200, 1,000 and 10,000 queued;
- the whole path (`tsunagu daemon` and one `tsunagu sim` at no send delay) with that many
  two-part messages queued: the time per part over the first 60 parts (while the queue
  is that deep; the median interval between two parts on the wire) and the daemon's CPU
  time per part over them (all threads, from the
  scheduler's nanosecond count: steadier than the wall clock on a shared machine). The
  SIM's daily limit is a real one's (200 parts), so the budget's count is as on the box.

    .venv/bin/python bench/queue_depth.py [--depths 30,200,1000,10000] [--repeat N]

Goal: time per part within 10 % from 30 to 10,000 queued.
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

from bench.broadcast_throughput import CHOICES, SubmitCounter  # noqa: E402
from bench.common import PRODUCTION, cpu_ns, spread, stop_cleanly_on_sigterm  # noqa: E402

from appliance import broadcasts, config as config_mod, outbox  # noqa: E402
from appliance.db import connect, write  # noqa: E402
from tests.daemon_harness import (TEXT, DaemonProcess, Sim, seed_patients,  # noqa: E402
                                  wait_until, write_config)

WINDOW = 60   # parts timed (the smallest queue, 30 two-part messages, has 60)
LIMIT = 200   # parts a day: a real SIM's, so the budget is counted as on the box


def claim_query_ms(conn, now: float, runs: int = 200) -> float:
    params = {"now": now, "max_parts": 10, "modem": "modem0", "daily_limit": LIMIT}
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        conn.execute(outbox._CLAIM_NEXT, params).fetchone()
        times.append(time.perf_counter() - started)
    return round(1000 * statistics.median(times), 4)


def run(queued: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="tsunagu-depth-") as tmp:
        directory = Path(tmp)
        sim = Sim(directory, "modem0", send_delay=0.0, report_delay=0.05).start()
        config_path = write_config(directory, [sim], pace=60_000, daily_limit=LIMIT,
                                   daemon=PRODUCTION)
        config = config_mod.load(config_path)
        db = connect(config.database)
        group = seed_patients(db, queued)
        plan = broadcasts.plan(db.conn, config, text=TEXT, group_ids=[group], choices=CHOICES,
                               now=time.time())
        with write(db) as conn:
            broadcasts.create(conn, plan, title="depth", actor="bench", now=time.time())
        query_ms = claim_query_ms(db.conn, time.time())
        daemon = DaemonProcess(config_path, directory)
        try:
            # Queued before the daemon starts (it waits for the modem first), so sending
            # begins with the whole queue there.
            daemon.start()
            tail = SubmitCounter(sim.log)
            wait_until(lambda: tail.count() >= 1 or not daemon.alive(), 60, "the first part")
            cpu_before = cpu_ns(daemon.proc.pid)
            wait_until(lambda: tail.count() >= WINDOW or not daemon.alive(), 120,
                       f"{WINDOW} parts")
            cpu_used = cpu_ns(daemon.proc.pid) - cpu_before
        finally:
            daemon.stop()
            sim.stop()
            db.conn.close()
        times = sorted(e["t"] for e in sim.events("submit"))[:WINDOW]
    intervals = [b - a for a, b in zip(times, times[1:])]
    # The median interval: a stall of the shared machine moves the mean, not the median.
    return {"queued_messages": queued, "claim_query_ms": query_ms,
            "ms_per_part": round(1000 * statistics.median(intervals), 3),
            "mean_ms_per_part": round(1000 * (times[-1] - times[0]) / (len(times) - 1), 3),
            "daemon_cpu_ms_per_part": round(cpu_used / 1e6 / (len(times) - 1), 3)}


def summarise(results: list[dict]) -> dict:
    depths = sorted({r["queued_messages"] for r in results})
    out = {}
    for depth in depths:
        runs = [r for r in results if r["queued_messages"] == depth]
        out[str(depth)] = {key: spread([r[key] for r in runs], 4)
                           for key in ("claim_query_ms", "ms_per_part",
                                       "daemon_cpu_ms_per_part")}
    first, last = out[str(depths[0])], out[str(depths[-1])]
    return {"depths": out, "growth_per_part": round(
        last["ms_per_part"]["median"] / first["ms_per_part"]["median"] - 1, 3),
        "growth_cpu_per_part": round(
        last["daemon_cpu_ms_per_part"]["median"] / first["daemon_cpu_ms_per_part"]["median"] - 1,
        3)}


def main() -> None:
    stop_cleanly_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", default="30,200,1000,10000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results = []
    for _ in range(max(1, args.repeat)):
        for depth in (int(d) for d in args.depths.split(",")):
            results.append(run(depth))
            print(json.dumps(results[-1]), flush=True)
    print(json.dumps(summarise(results)))


if __name__ == "__main__":
    main()
