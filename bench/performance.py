"""Every benchmark in one run, and the README's Performance section written from it.

    .venv/bin/python bench/performance.py --report      # about 25 minutes on 2 cores

runs, in order: the queue depth (bench/queue_depth.py), the send path with 1, 2, 4 and 8
simulated modems and on a Raspberry Pi's share of CPU (bench/broadcast_throughput.py),
the disaster drill (bench/disaster_drill.py) and ten thousand recipients
(bench/ten_thousand.py, and the same at a clinic's 200 for the memory of both processes).
It prints every figure (JSON lines), saves them all to bench/report.json, and with
--report replaces the README's Performance section with a table of medians and their
spread, the machine (cores, load average before and after) and the date. Figures taken
on a busy machine say so. --smoke runs everything at a toy size (for the tests).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import broadcast_throughput, disaster_drill, queue_depth, ten_thousand  # noqa: E402
from bench.common import ROOT, machine, stop_cleanly_on_sigterm  # noqa: E402

BEGIN = "<!-- performance: written by bench/performance.py --report; edit that, not this -->"
END = "<!-- performance: end -->"
COMMAND = ".venv/bin/python bench/performance.py --report"


def collect(repeat: int, drill_repeat: int, smoke: bool = False, log=sys.stdout) -> dict:
    """Run every benchmark; returns everything the section needs (and more)."""
    def say(kind: str, item: dict) -> None:
        print(json.dumps({"bench": kind, **item}, ensure_ascii=False), file=log, flush=True)

    started = time.time()
    report: dict = {"machine_before": machine(), "repeat": repeat, "drill_repeat": drill_repeat,
                    "smoke": smoke}
    depths = [30] if smoke else [30, 200, 1000, 10_000]
    runs = []
    for _ in range(repeat):
        for depth in depths:
            runs.append(queue_depth.run(depth))
            say("queue_depth", runs[-1])
    report["queue_depth"] = queue_depth.summarise(runs)

    cases = [(0.02, 1, None), (0.02, 2, 50)] if smoke else broadcast_throughput.FULL_CASES
    people = 4 if smoke else 200
    runs = []
    for delay, modems, quota in cases:
        for _ in range(repeat):
            runs.append(broadcast_throughput.run(people, modems, delay, quota))
            say("throughput", runs[-1])
    report["throughput"] = broadcast_throughput.summarise(runs)

    runs = []
    for i in range(drill_repeat):
        if smoke:
            runs.append(disaster_drill.run(
                patients=8, delay=(0.02, 0.06), unplug_seconds=0.3, seed=100 * i,
                daemon_settings={"retry_backoff": 0.1, "retry_backoff_max": 2.4,
                                 "heartbeat_interval": 0.5, "poll_interval": 2}, timeout=60))
        else:
            runs.append(disaster_drill.run(seed=100 * i))
        say("drill", runs[-1])
    report["drill"] = {**disaster_drill.summarise(runs), "settings": {
        k: runs[0][k] for k in ("patients", "modems", "send_delay_s", "refusal_rate")},
        "unplugged_s": runs[0]["unplugged_s"]}

    report["ten_thousand"] = ten_thousand.run(100 if smoke else 10_000)
    say("ten_thousand", report["ten_thousand"])
    report["clinic"] = ten_thousand.run(20 if smoke else 200)
    say("clinic", report["clinic"])
    report["machine_after"] = machine()
    report["minutes"] = round((time.time() - started) / 60, 1)
    return report


# -- the README section ----------------------------------------------------------------------

def _s(figure: dict | None, unit: str = "", digits: int | None = None) -> str:
    """"median (min–max)" of a spread, or the one value of a single run."""
    if not figure or figure.get("median") is None:
        return "–"

    def fmt(x):
        return f"{x:.{digits}f}" if digits is not None else f"{x:g}"
    if figure["n"] == 1 or figure["min"] == figure["max"]:
        return f"{fmt(figure['median'])}{unit}"
    return f"{fmt(figure['median'])}{unit} ({fmt(figure['min'])}–{fmt(figure['max'])})"


def _goal(met: bool | None) -> str:
    return "–" if met is None else ("met" if met else "**not met**")


def _runs(n: int) -> str:
    return "one run" if n == 1 else f"{n} runs"


def _busy(m: dict) -> bool:
    """Whether other work was running when the bench began. Only the load *before* says so:
    the last minute's average *after* is mostly the benchmarks' own work (the ten thousand
    end with two processes busy)."""
    return m["load_average"][0] > 0.5 * (m["cores"] or 1)


def render(report: dict) -> str:
    """The Performance section (without its heading), from collect()'s report."""
    before, after = report["machine_before"], report["machine_after"]
    lines = [BEGIN, ""]
    lines.append(
        f"Measured {before['date']} on {before['cores']} cores ({before['cpu'] or 'CPU'}, "
        f"{before['memory_gib']} GiB, Linux {before['kernel']}, Python {before['python']}); "
        f"load average {'/'.join(map(str, before['load_average']))} before and "
        f"{'/'.join(map(str, after['load_average']))} after (1/5/15 minutes). Each figure is the "
        f"median of {_runs(report['repeat'])} (the disaster drill: "
        f"{_runs(report['drill_repeat'])}), with the lowest and highest in brackets where "
        f"they differ. Reproduce with `{COMMAND}` "
        f"({report['minutes']:g} minutes here); every figure of the run is in "
        f"`bench/report.json`.")
    if _busy(before):
        lines += ["", "**These figures were taken on a busy machine** (the load average was "
                  "above half the cores: other work shared the CPUs), so times are longer and "
                  "spread wider than on a quiet one; the CPU-time figures move least."]
    if report.get("smoke"):
        lines += ["", "**A smoke run at toy sizes, not a measurement.**"]

    qd = report["queue_depth"]
    lines += ["", "### The claim and the queue's depth", "",
              "One modem at no send delay, two-part messages queued before the daemon starts; "
              "the first 60 parts timed (`bench/queue_depth.py`).", "",
              "| queued messages | claim query | time per part | daemon CPU per part |",
              "|---|---|---|---|"]
    for depth, d in qd["depths"].items():
        lines.append(f"| {int(depth):,} | {_s(d['claim_query_ms'], ' ms')} | "
                     f"{_s(d['ms_per_part'], ' ms', 2)} | {_s(d['daemon_cpu_ms_per_part'], ' ms', 2)} |")
    lines += ["", f"From the fewest to the most queued, the time per part changes by "
              f"{100 * qd['growth_per_part']:+.0f} % and the daemon's CPU per part by "
              f"{100 * qd['growth_cpu_per_part']:+.0f} % (goal: within 10 %: "
              f"{_goal(abs(qd['growth_cpu_per_part']) <= 0.10)} for the CPU, "
              f"{_goal(abs(qd['growth_per_part']) <= 0.10)} for the wall clock). The claim "
              f"follows the `recipients_claim` index (no temporary B-tree: "
              f"`tests/test_query_plans.py`)."]

    cases = report["throughput"]["cases"]
    first = next(iter(cases.values()))
    lines += ["", "### The send path: one to eight modems, and a Raspberry Pi's CPU", "",
              f"A {first['parts'] // 2}-person broadcast of a two-part UCS2 message "
              f"({first['parts']} parts) through `tsunagu "
              "daemon` and `tsunagu sim` processes, queued as the web UI queues it; times from "
              "the simulators' network logs (`bench/broadcast_throughput.py`). \"Pi\": the "
              "daemon limited to a third of one core here (about a Raspberry Pi 4's), the "
              "simulated modems not.", "",
              "| per SMS | modems | CPU | time to last part | modem-bound ideal | ratio | "
              "speed-up | parts/s | first part at the modem after queueing | "
              "daemon CPU per part | wait inside / between messages |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for case in cases.values():
        cpu = "Pi" if case["cpu_quota"] else "free"
        ideal = f"{case['modem_bound_ideal_s']:g} s" if case["send_delay_s"] else "–"
        ratio = _s(case["ratio_to_ideal"], "", 3) if case["send_delay_s"] else "–"
        lines.append(
            f"| {case['send_delay_s']:g} s | {case['modems']} | {cpu} | "
            f"{_s(case['time_to_last_part_s'], ' s', 2)} | {ideal} | {ratio} | "
            f"{case.get('speedup_over_one_modem', '–')}{'×' if 'speedup_over_one_modem' in case else ''} | "
            f"{_s(case['parts_per_second'], '', 0)} | {_s(case['first_part_after_queued_s'], ' s', 3)} | "
            f"{_s(case['daemon_cpu_ms_per_part'], ' ms', 2)} | "
            f"{_s(case['wait_inside_a_message_ms'], ' ms', 1)} / "
            f"{_s(case['wait_between_messages_ms'], ' ms', 1)} |")
    split = sum(c["messages_split_over_modems"] for c in cases.values())
    quota = next((c["cpu_quota"] for c in cases.values() if c["cpu_quota"]), None)
    throttled = sum(c["throttled_periods"] for c in cases.values())
    pi8 = next((c for c in cases.values() if c["cpu_quota"] and c["modems"] == 8), None)
    free8 = next((c for c in cases.values() if pi8 and not c["cpu_quota"] and c["modems"] == 8
                  and c["send_delay_s"] == pi8["send_delay_s"]), None)
    four = next((c for c in cases.values() if not c["cpu_quota"] and c["modems"] == 4
                 and c["send_delay_s"] > 0), None)
    eight = next((c for c in cases.values() if not c["cpu_quota"] and c["modems"] == 8
                  and c["send_delay_s"] > 0), None)
    lines += [""]
    if pi8:
        lines.append(f"- On a Pi's CPU with eight modems at {pi8['send_delay_s']:g} s per SMS: "
                     f"{_s(pi8['ratio_to_ideal'], '', 3)} of the ideal's time (goal ≤ 1/0.99 = "
                     f"1.010: {_goal(pi8['ratio_to_ideal']['median'] <= 1 / 0.99)})"
                     + (f"; with the CPU free, {_s(free8['ratio_to_ideal'], '', 3)}: what the "
                        f"limit itself costs is the difference." if free8 else "."))
        lines.append(f"- Where the time goes: a modem waits "
                     f"{_s(pi8['wait_inside_a_message_ms'], ' ms', 1)} beyond its time per SMS "
                     f"between two parts of one message, and "
                     f"{_s(pi8['wait_between_messages_ms'], ' ms', 1)} between two messages "
                     f"(medians; one modem at 0.2 s: "
                     f"{_s(cases.get('0.2s/1', {}).get('wait_inside_a_message_ms'), ' ms', 1)} "
                     f"and {_s(cases.get('0.2s/1', {}).get('wait_between_messages_ms'), ' ms', 1)}"
                     f"). Between two messages the worker records the last answer and begins "
                     f"the next message in one commit; every 2 s or 8 reports it also reads "
                     f"the delivery reports the modem stored meanwhile (one AT+CMGL, then an "
                     f"AT+CMGD each), and eight workers in one process wait for each other "
                     f"there. The daemon runs with the shipped settings "
                     f"(docs/config.example.toml: a health poll every 30 s).")
    if four and eight:
        lines.append(f"- Speed-up over one modem at {four['send_delay_s']:g} s per SMS: "
                     f"{four.get('speedup_over_one_modem')}× with four (goal ≥ 3.9×: "
                     f"{_goal(four.get('speedup_over_one_modem', 0) >= 3.9)}), "
                     f"{eight.get('speedup_over_one_modem')}× with eight (goal ≥ 7.6×: "
                     f"{_goal(eight.get('speedup_over_one_modem', 0) >= 7.6)}).")
    lines.append(f"- Every message's parts went through one modem: {split} messages split "
                 f"over two modems in all runs (must be 0).")
    if quota:
        lines.append(f"- The CPU limit: {quota}; the kernel throttled the daemon in "
                     f"{throttled} periods of 100 ms over the Pi runs.")

    dr = report["drill"]
    st = dr["settings"]
    lines += ["", "### The disaster drill", "",
              f"{st['patients']} patients, {st['modems']} modems at "
              f"{st['send_delay_s'][0]:g}–{st['send_delay_s'][1]:g} s per SMS, `+CMS ERROR: 42` "
              f"(congestion) on {100 * st['refusal_rate']:.0f} % of sends, modem0 unplugged for "
              f"{dr['unplugged_s']:g} s once half the patients were reached; an emergency "
              f"broadcast of one part each, the daemon with its production settings "
              f"(`bench/disaster_drill.py`).", "",
              "| time to the last patient | clean ideal | ratio | ratio to the least time "
              "the faults allow | sends | lost | duplicates | failed | uncertain |",
              "|---|---|---|---|---|---|---|---|---|",
              f"| {_s(dr['time_to_last_patient_s'], ' s', 1)} | {dr['ideal_clean_s']:g} s | "
              f"{_s(dr['ratio_to_clean_ideal'], '', 3)} | "
              f"{_s(dr['ratio_to_ideal_given_faults'], '', 3)} | {_s(dr['sends'], '', 0)} | "
              f"{dr['lost']} | {dr['duplicates']} | {dr['failed']} | {dr['uncertain']} |", "",
              f"Goal ≤ 1.2× the ideal with 0 lost and 0 duplicates: "
              f"{_goal(dr['ratio_to_ideal_given_faults']['median'] <= 1.2 and not dr['lost'] and not dr['duplicates'])}"
              f" against this drill's ideal, the least time its faults allow "
              f"({_s(dr['ideal_given_faults_s'], ' s', 0)}: every send the run needed at the "
              f"modems' mean time per SMS, plus the time modem0 was away, over two modems). "
              f"The clean ideal (nothing refused, nothing unplugged) is no sender's to reach: "
              f"a refused send takes a modem's full time per SMS (the simulator answers 42 after "
              f"the send delay, as a congested network does), so one refusal in five needs "
              f"about 1.25 sends per patient, and the unplugged modem's "
              f"{dr['unplugged_s']:g} s add the rest — the least time is "
              f"{dr['ideal_given_faults_s']['median'] / dr['ideal_clean_s']:.2f}× the clean "
              f"ideal. The clean ratio measures the network, the other the dispatcher."]

    tk, clinic = report["ten_thousand"], report["clinic"]
    ws, bl = tk["while_sending"], tk["behind_the_daily_limit"]
    lines += ["", "### Ten thousand recipients", "",
              f"A {tk['people']:,}-row CP932 roster, a broadcast to everyone sent by two "
              f"simulated modems at {tk['send_delay_s']:g} s per SMS (as fast as they go, the "
              f"heaviest load the web process meets), then a second {tk['people']:,} waiting "
              f"behind the used-up daily limits (上限待ち for every one). Pages over HTTP from "
              f"`tsunagu web` on 127.0.0.1, logged in (`bench/ten_thousand.py`). One run.", "",
              "| what | p50 | p95 | goal |", "|---|---|---|---|"]

    def row(label: str, f: dict, goal: str = "") -> str:
        return f"| {label} | {f.get('p50_ms', '–')} ms | {f.get('p95_ms', '–')} ms | {goal} |"
    p95 = max(ws["page"].get("p95_ms", 0), ws["page_middle"].get("p95_ms", 0))
    lines += [
        f"| `tsunagu contacts import` of {tk['people']:,} rows (whole command) | "
        f"{tk['contacts_import_s']} s | | < 10 s: {_goal(tk['contacts_import_s'] < 10)} |",
        f"| plan (every door's `broadcasts.plan`) | {1000 * tk['plan_s']:.0f} ms | | |",
        f"| create (one transaction) | {1000 * tk['create_s']:.0f} ms | | |",
        row(f"broadcast page while sending ({ws['page']['n']} loads)", ws["page"],
            f"p95 ≤ 300 ms: {_goal(p95 <= 300)}"),
        row("…its middle page while sending", ws["page_middle"]),
        row("…its live update (every 2 s in the browser) while sending", ws["live_update"]),
        row("`tsunagu broadcast show` while sending (whole command, every recipient)",
            ws["broadcast_show"]),
        row(f"broadcast page, {tk['people']:,} waiting for the daily limit", bl["page"]),
        row("…its live update", bl["live_update"]),
        row("`tsunagu broadcast show`, waiting for the daily limit", bl["broadcast_show"]),
        row(f"`budget.held_back()` over {tk['people']:,} waiting", tk["held_back"]),
        "", f"Sending the {tk['people']:,} took {tk['sending_s']:g} s ({tk['parts_per_second']:g} "
        f"parts/s, the web pages loading meanwhile)."]

    dm, dmc = tk["daemon_memory_while_sending"], clinic["daemon_memory_while_sending"]
    wm, wmc = tk["web_memory"], clinic["web_memory"]
    lines += ["", "### Memory (resident, MiB)", "",
              "Peak is the kernel's high-water mark (VmHWM); steady the median of the second "
              "half of the samples; growth the last quarter's median minus the second's.", "",
              "| process | while | peak | steady | growth |", "|---|---|---|---|---|",
              f"| daemon | a {first['parts'] // 2}-person broadcast | "
              f"{_s(first['daemon_peak_rss_mib'], '', 1)} | "
              f"{_s(first['daemon_steady_rss_mib'], '', 1)} | |",
              f"| daemon | sending {clinic['people']:,} | {dmc['peak_mib']} | "
              f"{dmc['steady_mib']} | {dmc['growth_mib']} |",
              f"| daemon | sending {tk['people']:,} | {dm['peak_mib']} | {dm['steady_mib']} | "
              f"{dm['growth_mib']} |",
              f"| web | {clinic['people']:,} people: log-in, pages | {wmc['peak_mib']} | "
              f"{wmc['steady_mib']} | {wmc['growth_mib']} |",
              f"| web | {tk['people']:,} people: log-in, pages | {wm['peak_mib']} | "
              f"{wm['steady_mib']} | {wm['growth_mib']} |", "",
              "The web process's peak comes at log-in: the password hash (scrypt) takes its "
              "memory for a moment, and the kernel counts it in the high-water mark.", "",
              "### How it is measured", "",
              "- The simulated modem (`tsunagu sim`) answers AT like a Quectel EC25 on a "
              "pseudo-terminal, with a set time per SMS counted from when the PDU reached its "
              "port; the \"network\" log says when each part was accepted. The modem-bound "
              "ideal is parts × time per SMS ÷ modems: what the modems alone would take.",
              "- The CPU limit (`bench/cpu_quota.py`): systemd-run's CPUQuota where systemd "
              "runs; else a cgroup (v2 `cpu.max` or v1 `cpu.cfs_quota_us`) made for the run, "
              "the same kernel bandwidth control; else stopping and continuing the daemon "
              "(SIGSTOP/SIGCONT) for the share of every 100 ms, harsher than a quota (it also "
              "stops the daemon when it would be idle). The table says which was used.",
              "- Times on a shared machine move with what else runs: compare medians, look at "
              "the spread, and prefer the CPU-time columns, which move least.",
              "", END]
    return "\n".join(lines)


def write_readme(section: str, readme: Path) -> None:
    """Replace the Performance section's body (between its heading and the next one)."""
    text = readme.read_text(encoding="utf-8")
    match = re.search(r"^## Performance\n(.*?)(?=^## )", text, re.S | re.M)
    if not match:
        raise SystemExit(f"{readme}: no '## Performance' section followed by another section")
    readme.write_text(text[:match.start(1)] + "\n" + section + "\n\n" + text[match.end(1):],
                      encoding="utf-8")


def main() -> None:
    stop_cleanly_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", action="store_true",
                        help="write the README's Performance section and bench/report.json")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (medians)")
    parser.add_argument("--drill-repeat", type=int, default=2, help="runs of the drill")
    parser.add_argument("--smoke", action="store_true", help="toy sizes: checks, not figures")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "report.json")
    args = parser.parse_args()
    report = collect(max(1, args.repeat), max(1, args.drill_repeat), smoke=args.smoke)
    section = render(report)
    if args.report:
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n",
                             encoding="utf-8")
        write_readme(section, args.readme)
        print(f"wrote {args.readme} and {args.json}", file=sys.stderr)
    else:
        print(section)


if __name__ == "__main__":
    main()
