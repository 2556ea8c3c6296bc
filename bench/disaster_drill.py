"""Benchmark: the disaster drill — how long until the last patient is reached on a bad day.

200 patients, 2 simulated modems, 1–3 s per SMS (a real modem's time), `+CMS ERROR: 42`
(network congestion, what an earthquake brings) on 20 % of sends on both modems, and one
modem unplugged for 30 s when half the patients have been reached. `tsunagu daemon` runs
with the production settings (retry back-off, health polls) as systemd runs it, and the
emergency broadcast is queued as the web UI queues it.

    .venv/bin/python bench/disaster_drill.py [--patients 200] [--repeat N]

Reported, from the simulators' network logs (what reached the phones) and the database:
- time from queueing to the last patient's message on the phone;
- against two ideals: `clean`, the modems' time with nothing going wrong (patients × mean
  time per SMS ÷ modems), and `given the faults`, the least time the two modems could take
  for the sends this run needed (the refused ones take a modem's time too: the simulator
  answers 42 after the send delay, as a congested network does) plus the 30 s one modem
  was away — what the dispatcher itself can be judged by;
- lost (a patient never reached), duplicates (a patient reached twice), failed and
  uncertain recipients. The goal: ≤ 1.2× the ideal, 0 lost, 0 duplicates.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (PRODUCTION, MemoryWatch, spread,  # noqa: E402
                          stop_cleanly_on_sigterm)

from appliance import broadcasts, config as config_mod, doorbell  # noqa: E402
from appliance.db import connect, write  # noqa: E402
from tests.daemon_harness import (DaemonProcess, Sim, seed_patients,  # noqa: E402
                                  wait_until, write_config)

# One UCS2 part, even with the longest name seed_patients gives ("患者199 𠮷田").
TEXT = "{name}様 つなぐ透析クリニックです。地震のため本日の透析は中止します。ご自宅で待機してください。"


def run(patients: int = 200, modems: int = 2, delay: tuple[float, float] = (1.0, 3.0),
        refusal_rate: float = 0.2, unplug_seconds: float | None = 30.0, seed: int = 0,
        daemon_settings: dict | None = None, timeout: float | None = None) -> dict:
    """One drill; *daemon_settings* override PRODUCTION (the tests' small, fast drill);
    *unplug_seconds* None: no modem is unplugged."""
    mean_delay = sum(delay) / 2
    with tempfile.TemporaryDirectory(prefix="tsunagu-drill-") as tmp:
        directory = Path(tmp)
        sims = [Sim(directory, f"modem{i}", send_delay=f"{delay[0]}-{delay[1]}",
                    report_delay=0.5, seed=seed + i).start() for i in range(modems)]
        config_path = write_config(directory, sims, pace=600,
                                   daemon={**PRODUCTION, **(daemon_settings or {})})
        config = config_mod.load(config_path)
        db = connect(config.database)
        group = seed_patients(db, patients)
        for sim in sims:
            sim.control().fail_sends(code=42, rate=refusal_rate)
        daemon = DaemonProcess(config_path, directory).start()
        unplugged_at = replugged_at = None
        try:
            wait_until(lambda: db.conn.execute("SELECT count(*) FROM modem_status WHERE "
                                               "ready = 1").fetchone()[0] == modems, 60,
                       "modems ready")
            memory = MemoryWatch(daemon.proc.pid, interval=1.0).start()
            plan = broadcasts.plan(db.conn, config, text=TEXT, group_ids=[group],
                                   priority="emergency", now=time.time())
            assert plan.parts == patients, "the drill message must be one part per patient"
            queued_at = time.time()
            with write(db) as conn:
                bid = broadcasts.create(conn, plan, title="訓練: 地震", actor="bench",
                                        now=queued_at)
            doorbell.ring(config.database)

            def reached() -> int:
                return len({m["to"] for s in sims for m in s.events("message")})
            deadline = timeout or 20 * patients * mean_delay / modems + 120
            wait_until(lambda: reached() >= patients // 2, deadline, "half the patients",
                       interval=0.2)
            if unplug_seconds is not None:
                sims[0].control().unplug()
                unplugged_at = time.time()
                # Away until the daemon has seen it gone, and for unplug_seconds at least.
                wait_until(lambda: db.conn.execute(
                    "SELECT reason FROM modem_status WHERE name = ?", [sims[0].name]
                ).fetchone()[0] == "port_missing", 60, "the daemon to see the modem gone")
                away = unplug_seconds - (time.time() - unplugged_at)
                if away > 0:
                    time.sleep(away)  # the fault's length, not a wait for a result
                sims[0].control().replug()
                replugged_at = time.time()
            wait_until(lambda: db.conn.execute(
                "SELECT count(*) FROM recipients WHERE broadcast_id = ? AND state IN "
                "('queued', 'sending')", [bid]).fetchone()[0] == 0 or not daemon.alive(),
                deadline, "every patient reached or given up", interval=0.2)
            mem = memory.stop()
            alive = daemon.alive()
        finally:
            daemon.stop()
            for sim in sims:
                sim.stop()
        whole = [m for s in sims for m in s.events("message")]
        states = Counter({r[0]: r[1] for r in db.conn.execute(
            "SELECT state, count(*) FROM recipients WHERE broadcast_id = ? GROUP BY state",
            [bid])})
        sends = db.conn.execute("SELECT coalesce(sum(attempts), 0) FROM recipients WHERE "
                                "broadcast_id = ?", [bid]).fetchone()[0]
        db.conn.close()
        stderr_tail = daemon.stderr()[-2000:] if not alive else ""
    per_number = Counter(m["to"] for m in whole)
    last = max(m["t"] for m in whole) if whole else float("nan")
    took = last - queued_at
    clean = patients * mean_delay / modems
    away = (replugged_at - unplugged_at) if unplugged_at else 0.0
    given_faults = (sends * mean_delay + away) / modems
    return {"patients": patients, "modems": modems, "send_delay_s": list(delay),
            "refusal_rate": refusal_rate, "unplugged_s": round(away, 1),
            "unplugged_after_s": round(unplugged_at - queued_at, 1) if unplugged_at else None,
            "replugged_after_s": round(replugged_at - queued_at, 1) if replugged_at else None,
            "time_to_last_patient_s": round(took, 1),
            "ideal_clean_s": round(clean, 1), "ratio_to_clean_ideal": round(took / clean, 3),
            "sends": sends, "refused_or_lost_sends": sends - patients,
            "ideal_given_faults_s": round(given_faults, 1),
            "ratio_to_ideal_given_faults": round(took / given_faults, 3),
            "reached": len(per_number), "lost": patients - len(per_number),
            "duplicates": sum(n - 1 for n in per_number.values() if n > 1),
            "failed": states["failed"], "uncertain": states["uncertain"],
            "daemon_alive": alive, "daemon_peak_rss_mib": mem["peak_mib"],
            "daemon_steady_rss_mib": mem["steady_mib"],
            **({"daemon_stderr": stderr_tail} if stderr_tail else {})}


def summarise(results: list[dict]) -> dict:
    return {"runs": len(results),
            "time_to_last_patient_s": spread([r["time_to_last_patient_s"] for r in results], 1),
            "ratio_to_clean_ideal": spread([r["ratio_to_clean_ideal"] for r in results]),
            "ratio_to_ideal_given_faults": spread([r["ratio_to_ideal_given_faults"]
                                                   for r in results]),
            "ideal_clean_s": results[0]["ideal_clean_s"],
            "ideal_given_faults_s": spread([r["ideal_given_faults_s"] for r in results], 1),
            "sends": spread([r["sends"] for r in results], 0),
            "lost": sum(r["lost"] for r in results),
            "duplicates": sum(r["duplicates"] for r in results),
            "failed": sum(r["failed"] for r in results),
            "uncertain": sum(r["uncertain"] for r in results),
            "daemon_peak_rss_mib": spread([r["daemon_peak_rss_mib"] for r in results], 1)}


def main() -> None:
    stop_cleanly_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--unplug", type=float, default=30.0, help="seconds modem0 is away")
    args = parser.parse_args()
    results = []
    for i in range(max(1, args.repeat)):
        results.append(run(args.patients, unplug_seconds=args.unplug, seed=100 * i))
        print(json.dumps(results[-1], ensure_ascii=False), flush=True)
    print(json.dumps(summarise(results), ensure_ascii=False))


if __name__ == "__main__":
    main()
