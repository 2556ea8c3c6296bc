"""The readiness check: could the appliance send an emergency broadcast right now?

Every check reads the same health record the dashboard and the LEDs read
(appliance.health.read_health), so they never disagree. Each result is ok (0), warning (1)
or critical (2) — the Nagios convention, so cron, systemd and monitoring tools can act on
the exit status — with a one-line message in the configured language. Every run is stored
in check_runs for the dashboard.
"""
from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from . import clock as clock_mod
from . import health as health_mod
from . import jobs, modem_link, reminders, schedules, storage, timekeeping, webhooks, wording
from .config import Config
from .db import write

OK, WARNING, CRITICAL = 0, 1, 2
# The words come from the one wording list the web UI and the CLI use too.
STATUS_WORDS = {lang: tuple(wording.word(wording.CHECK_STATUS, n, lang) for n in (0, 1, 2))
                for lang in wording.LANGS}
# A Raspberry Pi has no battery clock: before NTP it may believe it is 1970 (or its last
# shutdown). Schedules and "today's budget" would then be wrong.
EARLIEST_SANE_TIME = 1_767_225_600  # 2026-01-01T00:00Z, after this release was made
TEST_MAX_AGE_DAYS = 31

REASON_TEXT = {lang: {key: wording.word(wording.MODEM_REASONS, key, lang)
                      for key in wording.MODEM_REASONS} for lang in wording.LANGS}


@dataclass(frozen=True)
class Result:
    name: str
    status: int
    message: str


def _t(lang: str, ja: str, en: str) -> str:
    return ja if lang == "ja" else en


def _not_yet_sent(lang: str) -> str:
    return wording.word(wording.COUNTS, "not_yet_sent", lang)


def check_daemon(h: health_mod.Health, lang: str) -> Result:
    if h.heartbeat is None:
        return Result("daemon", CRITICAL, _t(lang, "デーモンが一度も動いていません",
                                             "the daemon has never run on this database"))
    age = round(h.heartbeat.age)
    if not h.daemon_alive:
        return Result("daemon", CRITICAL, _t(lang, f"デーモンが{age}秒間応答していません",
                                             f"no daemon heartbeat for {age} s"))
    if h.storage_fault is not None:
        return _daemon_cannot_write(lang)
    return Result("daemon", OK, _t(lang, f"デーモン稼働中（{age}秒前に応答）",
                                   f"daemon running (heartbeat {age} s ago)"))


def check_modems(h: health_mod.Health, lang: str) -> list[Result]:
    """A modem that cannot send is critical when no other can; a warning when one still can."""
    ready = [m for m in h.modems if m.ready]
    out = []
    for m in h.modems:
        bars = f"{m.signal_bars}/4" if m.signal_bars is not None else "-"
        if m.ready and m.failing_often:
            percent = round(100 * m.error_rate)
            out.append(Result(f"modem:{m.name}", WARNING, _t(
                lang, f"{m.name}: 送信の失敗が多い（最近の送信の{percent}%）— 送り直しは自動です。"
                      "続く場合はアンテナの位置とSIMを確認してください",
                f"{m.name}: many sends fail ({percent}% of recent sends) — they are retried; "
                "if it goes on, check the antenna's position and the SIM")))
            continue
        if m.ready:
            out.append(Result(f"modem:{m.name}", OK, _t(
                lang, f"{m.name}: 送信可能（{m.operator or '-'}、電波 {bars}）",
                f"{m.name}: ready ({m.operator or '-'}, signal {bars})")))
            continue
        why = REASON_TEXT[lang].get(m.reason or "unknown", m.reason or "")
        status = WARNING if (ready or m.reason in ("weak_signal", "awaiting_answer")) \
            else CRITICAL
        out.append(Result(f"modem:{m.name}", status, _t(
            lang, f"{m.name}: 送信できません — {why}", f"{m.name}: cannot send — {why}")
            + (f" ({m.detail})" if m.detail else "")))
    return out


RUNG_TEXT = {
    "ja": {"resync": "再同期", "reset": "リセット", "power_cycle": "USB電源の入れ直し"},
    "en": {"resync": "resync", "reset": "reset", "power_cycle": "USB power cycle"},
}


def check_recovery(conn: sqlite3.Connection, config: Config, lang: str) -> list[Result]:
    """The recovery ladder (appliance.modem_link): critical when it gave up on a modem,
    a warning while a rung is being tried."""
    out = []
    for modem in config.modems:
        state = modem_link.latest(conn, modem.name)
        if state is None or state["outcome"] == "recovered":
            continue
        if state["rung"] == "gave_up":
            out.append(Result(f"recovery:{modem.name}", CRITICAL, _t(
                lang, f"{modem.name}: モデムが応答せず、自動復旧（再同期・リセット・USB電源の入れ直し）"
                      "でも直りませんでした。モデムのUSBケーブルを抜いて10秒待ち、差し直してください",
                f"{modem.name}: the modem does not answer and automatic recovery (resync, reset, "
                "USB power cycle) did not help: unplug its USB cable, wait 10 s, plug it in "
                f"again ({state['detail']})")))
        elif state["outcome"] is None:
            rung = RUNG_TEXT[lang].get(state["rung"], state["rung"])
            out.append(Result(f"recovery:{modem.name}", WARNING, _t(
                lang, f"{modem.name}: モデムが応答しないため自動復旧中（{rung}）",
                f"{modem.name}: the modem does not answer; recovering ({rung})")))
    return out


def check_budget(h: health_mod.Health, config: Config, lang: str) -> Result:
    if h.budget_blocked:
        if h.budget_blocked_until == float("inf"):
            when_ja = "どのSIMの上限にも収まらないため送れません"
            when_en = "it does not fit any SIM's daily limit"
        else:
            when = _local(h.budget_blocked_until, config)
            when_ja, when_en = f"{when}から送れます", f"it can go from {when}"
        return Result("budget", CRITICAL, _t(
            lang, f"本日の送信上限に達したため、未送信のメッセージを送れません（上限待ち。{when_ja}）"
                  " — 急ぐ方には電話で連絡するか、別のSIMのモデムをつないでください",
            f"the daily SMS limit is reached: the messages waiting cannot be sent today "
            f"({when_en}) — phone those in a hurry, or connect a modem with another SIM"))
    left = h.remaining_budget
    status = CRITICAL if left == 0 else WARNING if left < config.check.budget_warning else OK
    return Result("budget", status, _t(lang, f"本日の残り送信可能数: {left}通",
                                       f"SMS parts left today: {left}"))


def check_queue(h: health_mod.Health, config: Config, lang: str) -> list[Result]:
    out = []
    waited = (h.now - h.oldest_queued_at) / 60 if h.oldest_queued_at else 0
    if waited > config.check.stuck_queue_minutes:
        out.append(Result("queue", WARNING, _t(
            lang, f"{_not_yet_sent(lang)} {h.queue_depth}件、最も古いものは{waited:.0f}分待っています",
            f"{h.queue_depth} not yet sent; the oldest for {waited:.0f} minutes")))
    else:
        # "Not yet sent", not "waiting": the count includes a message on the air now.
        out.append(Result("queue", OK, _t(lang, f"{_not_yet_sent(lang)} {h.queue_depth}件",
                                          f"{h.queue_depth} not yet sent")))
    if h.uncertain:
        out.append(Result("uncertain", WARNING, _t(
            lang, f"{h.uncertain}件が送信済みか不明です（画面で確認してください）",
            f"{h.uncertain} message(s) may or may not have been sent: staff to decide")))
    return out


def _daemon_cannot_write(lang: str) -> Result:
    return Result("daemon", CRITICAL, _t(
        lang, "デーモンは動いていますが、記録できないため送信していません（理由は下）",
        "the daemon is running but sends nothing, as it cannot record (see below)"))


def check_daemon_without_database(config: Config, now: float, lang: str) -> Result:
    """The daemon seen through its status file alone (the database cannot be read)."""
    beat = health_mod.daemon_heartbeat(config, now)
    if beat is not None and beat.age <= config.check.heartbeat_max_age:
        return _daemon_cannot_write(lang)
    return Result("daemon", CRITICAL, _t(lang, "デーモンが動いていません",
                                         "the daemon is not running"))


def check_database(conn: sqlite3.Connection, config: Config, lang: str) -> Result:
    try:
        answer = conn.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        fault = storage.fault_of(exc, Path(config.database).parent)
        if fault is None:
            raise
        return storage_result(fault.kind, config, lang)
    if answer != "ok":
        return Result("database", CRITICAL, storage.advice(storage.DAMAGED, lang, config)
                      + f" ({answer})")
    return Result("database", OK, _t(lang, "データベース正常", "database ok"))


def storage_result(kind: str, config: Config, lang: str,
                   disk: storage.Disk | None = None) -> Result:
    name = "database" if kind == storage.DAMAGED else "storage"
    return Result(name, CRITICAL, storage.advice(kind, lang, config, disk))


def check_storage(config: Config, now: float, lang: str,
                  met: Iterable[storage.Fault] = ()) -> list[Result]:
    """The disk, and what writes meet: the daemon's (its status file) and this check's own
    (*met*). One line per fault, each with what to do."""
    disk = storage.disk(config)
    kinds: list[str] = []
    status = storage.read_daemon_status(config)
    if status is not None and status.alive(now, config.check.heartbeat_max_age) and \
            status.fault is not None:
        kinds.append(status.fault.kind)
    kinds += [f.kind for f in met]
    if disk.read_only:
        kinds.append(storage.READ_ONLY)
    if disk.full:
        kinds.append(storage.FULL)
    elif disk.reserve_used:
        kinds.append(storage.RESERVE_USED)
    results = [storage_result(kind, config, lang, disk)
               for kind in dict.fromkeys(kinds)]  # each once, in the order met
    if not {storage.FULL, storage.RESERVE_USED} & set(kinds):
        low = disk.free_mb < config.check.min_free_disk_mb
        results.append(Result("disk", WARNING if low else OK, _t(
            lang, f"空き容量 {disk.free_mb} MB", f"{disk.free_mb} MB free")))
    return results


def check_clock(now: float, lang: str, synchronised: bool | None = None,
                conn: sqlite3.Connection | None = None) -> Result:
    """Critical when the time is impossible; otherwise where it comes from: NTP, the cellular
    network (appliance.timekeeping set it while NTP could not), or nowhere — a warning, as
    the second factor's codes, schedules, the daily budget and the audit log's times need
    the right time."""
    if now < EARLIEST_SANE_TIME:
        return Result("clock", CRITICAL, _t(lang, "時計が合っていません（NTPを確認してください）",
                                            "the clock is wrong (check NTP)"))
    try:
        status = timekeeping.read_status(conn) if conn is not None else None
    except sqlite3.DatabaseError:
        status = None  # a damaged database is the storage check's to report
    source = status["source"] if status else None
    if synchronised is True:
        return Result("clock", OK, _t(lang, "時計正常（同期済み）", "clock sane and synchronised"))
    if source == "network":
        return Result("clock", OK, _t(
            lang, "時刻の出どころ: 携帯電話網（NTPに届かないため）",
            f"time source: the cellular network (NTP unreachable): {status['detail']}"))
    if source == "unsynchronised":
        return Result("clock", WARNING, _t(
            lang, "時刻が同期されていません。インターネット接続（NTP）かモデムの電波を確認してください"
            "（2段階認証のコード・予約送信・1日の上限・ログの時刻に影響します）",
            f"time source: unsynchronised: {status['detail']} (two-step codes, schedules, the "
            "daily budget and the logs depend on it)"))
    if synchronised is False:
        return Result("clock", WARNING, _t(
            lang, "時計が同期していません。ネットワーク（NTP）の設定を確認してください。"
                  "ずれると2段階認証のコードが通らなくなります",
            "the clock is not synchronised (check NTP): two-step verification codes fail "
            "when it drifts"))
    if source == "ntp":
        return Result("clock", OK, _t(lang, "時刻の出どころ: NTP（インターネット）",
                                      "time source: NTP"))
    return Result("clock", OK, _t(lang, "時計正常（同期状態は確認できません）",
                                  "clock sane (synchronisation unknown)"))


def check_last_test(conn: sqlite3.Connection, now: float, lang: str) -> Result:
    row = conn.execute("SELECT id, created_at FROM broadcasts WHERE drill = 1 AND "
                       "state != 'cancelled' ORDER BY id DESC LIMIT 1").fetchone()
    if row is None or now - row["created_at"] > TEST_MAX_AGE_DAYS * 86400:
        return Result("last_test", WARNING, _t(
            lang, f"{TEST_MAX_AGE_DAYS}日以内に送信テストがありません（訓練をしてください）",
            f"no test message in the last {TEST_MAX_AGE_DAYS} days: run a drill"))
    counts = dict(conn.execute("SELECT state, count(*) FROM recipients WHERE broadcast_id = ? "
                               "GROUP BY state", [row["id"]]).fetchall())
    bad = counts.get("failed", 0) + counts.get("uncertain", 0)
    if bad:
        return Result("last_test", WARNING, _t(
            lang, f"前回の送信テストで{bad}件届きませんでした", f"the last test: {bad} not delivered"))
    return Result("last_test", OK, _t(lang, "前回の送信テストは正常でした",
                                      "the last test went through"))


JOB_LABELS = {
    "ja": {"heartbeat": "稼働記録", "requests": "画面やコマンドからの依頼",
           "scheduled_broadcasts": "予約送信", "schedules": "定期送信", "followups": "返信のない人への再送",
           "webhooks": "外部システムへの通知（Webhook）", "reminders": "個別のお知らせ（リマインダー）"},
    "en": {"heartbeat": "heartbeat", "requests": "requests from the web UI and commands",
           "scheduled_broadcasts": "scheduled broadcasts", "schedules": "recurring schedules",
           "followups": "follow-ups to the silent", "webhooks": "webhook deliveries",
           "reminders": "personal reminders"},
}


def _job_label(name: str, lang: str) -> str:
    kind, _sep, item = name.partition(":")
    if kind == "followup" and item:
        return _t(lang, f"一斉送信 #{item} の再送", f"the follow-up of broadcast #{item}")
    return JOB_LABELS[lang].get(name, name)


def check_jobs(conn: sqlite3.Connection, config: Config, lang: str) -> list[Result]:
    """Recurring schedules whose last run failed, and the daemon's jobs failing now: the
    sending goes on, but something staff expect is not happening."""
    out = []
    for s in schedules.failed(conn):
        when = _local(s["last_error_at"], config)
        paused = not s["enabled"]
        # The stored error is written in both languages: the reader's half.
        error = {lang_: wording.in_language(s["last_error"] or "", lang_) for lang_ in ("ja", "en")}
        out.append(Result(f"schedule:{s['id']}", WARNING, _t(
            lang, f"定期送信「{s['name']}」が{when}に送れませんでした{'（停止中）' if paused else ''}"
                  f": {error['ja']} — 定期送信の画面で本文と送信先を直してください",
            f"recurring schedule 「{s['name']}」 could not run at {when}"
            f"{' (paused)' if paused else ''}: {error['en']} — fix its text or groups "
            "on the schedules page")))
    out += check_reminders(conn, config, lang)
    out += check_webhooks(conn, config, lang)
    for p in jobs.problems(conn):
        label = _job_label(p.name, lang)
        out.append(Result(f"job:{p.name}", WARNING, _t(
            lang, f"デーモンの処理「{label}」が失敗しています（{p.failures}回連続）: {p.error}"
                  " — 続く場合は管理者に連絡してください（送信は続いています）",
            f"the daemon's job 「{label}」 is failing ({p.failures} times in a row): "
            f"{p.error} — tell the administrator if it goes on (sending goes on)")))
    return out


def check_reminders(conn: sqlite3.Connection, config: Config, lang: str,
                    now: float | None = None) -> list[Result]:
    """Reminders that could not go in time, or failed, in the last day: reported, never sent
    late (appliance.reminders)."""
    now = time.time() if now is None else now
    bad = reminders.missed(conn, now - 86400)
    if not bad:
        return []
    first = bad[0]
    who = f"{first['contact_name']}（{first['kind_name']} {_local(first['appointment_at'], config)}）"
    return [Result("reminders", WARNING, _t(
        lang, f"リマインダー{len(bad)}件を送れませんでした（{who}ほか）— リマインダーの画面で確かめ、"
              "必要なら電話で連絡してください",
        f"{len(bad)} reminder(s) could not be sent in time ({who} …) — see the reminders "
        "page and phone those patients if needed"))]


def check_webhooks(conn: sqlite3.Connection, config: Config, lang: str,
                   now: float | None = None) -> list[Result]:
    """A clinic system's webhook receiver that does not answer (sending goes on)."""
    now = time.time() if now is None else now
    out = []
    for w in webhooks.failing(conn, now):
        out.append(Result(f"webhook:{w['id']}", WARNING, _t(
            lang, f"「{w['token']}」への通知が届いていません（待ち{w['pending']}件、失敗{w['failed']}件）: "
                  f"{w['last_error'] or ''} — 受け手のシステムを確かめ、API画面から再送できます",
            f"webhook of 「{w['token']}」 is not delivered ({w['pending']} waiting, "
            f"{w['failed']} failed): {w['last_error'] or ''} — check the receiving system; "
            "re-send from the API page")))
    return out


def _local(at: float | None, config: Config) -> str:
    return dt.datetime.fromtimestamp(at or 0, config.zone).strftime("%m/%d %H:%M")


def run_checks(db, config: Config, now: float, *,
               met: Iterable[storage.Fault] = (),
               clock_sync: Callable[[], bool | None] = clock_mod.synchronised) -> list[Result]:
    """Every check. *db* is None when the database could not be opened at all (*met* says
    why); a database that cannot be read gives what can be known without it. *clock_sync*
    says whether the system clock is synchronised (a seam: tests inject the answer, the
    appliance asks timedatectl, then the kernel)."""
    conn = db.conn if hasattr(db, "conn") else db
    lang = config.language
    met = list(met)
    results: list[Result] = []
    tail: list[Result] = []
    if conn is not None:
        try:
            h = health_mod.read_health(conn, config, now)
            results = [check_daemon(h, lang), *check_modems(h, lang),
                       check_budget(h, config, lang), *check_queue(h, config, lang),
                       check_database(conn, config, lang)]
            tail = [check_last_test(conn, now, lang), *check_jobs(conn, config, lang),
                    *check_recovery(conn, config, lang)]
        except sqlite3.DatabaseError as exc:
            fault = storage.fault_of(exc, Path(config.database).parent)
            if fault is None:
                raise
            met.append(fault)
            results, tail = [], []
    if not results:
        results = [check_daemon_without_database(config, now, lang)]
    every = [*results, *check_storage(config, now, lang, met),
             check_clock(now, lang, clock_sync(), conn), *tail]
    return list({(r.name, r.message): r for r in every}.values())  # a fault said once


def overall(results: list[Result]) -> int:
    return max((r.status for r in results), default=OK)


def record(db, results: list[Result], *, now: float, live: bool) -> int:
    with write(db) as conn:
        return conn.execute("INSERT INTO check_runs (at, status, live, results) VALUES (?,?,?,?)",
                            [now, overall(results), int(live), json.dumps(
                                [asdict(r) for r in results], ensure_ascii=False)]).lastrowid


def last_run(conn: sqlite3.Connection) -> dict | None:
    row = conn.execute("SELECT * FROM check_runs ORDER BY id DESC LIMIT 1").fetchone()
    if row is None:
        return None
    return {"at": row["at"], "status": row["status"], "live": bool(row["live"]),
            "results": json.loads(row["results"])}


# -- asking the daemon (only it opens ports) -------------------------------------------------

class DaemonDidNotAnswer(RuntimeError):
    pass


def ask_daemon(db, kind: str, *, actor: str, args: dict | None = None, timeout: float,
               clock: Callable[[], float] = time.time,
               wait: Callable[[float], None] = time.sleep) -> dict:
    """Put a request in daemon_requests and wait for the daemon's answer."""
    with write(db) as conn:
        request_id = conn.execute(
            "INSERT INTO daemon_requests (kind, args, requested_by, requested_at) "
            "VALUES (?,?,?,?)", [kind, json.dumps(args or {}), actor, clock()]).lastrowid
    deadline = clock() + timeout
    while clock() < deadline:
        row = db.conn.execute("SELECT state, result FROM daemon_requests WHERE id = ?",
                              [request_id]).fetchone()
        if row["state"] != "pending":
            result = json.loads(row["result"] or "{}")
            if row["state"] == "failed":
                raise DaemonDidNotAnswer(result.get("error", "the daemon refused the request"))
            return result
        wait(0.2)
    raise DaemonDidNotAnswer(f"the daemon did not answer within {timeout:.0f} s")
