"""The day of a power cut, as a database: what the nurse and the office manager meet.

The demo's roster (200 patients, facilities and dialysis shifts, the test group), an
emergency broadcast to 月水金 午前 whose recipients ended in every state, with the replies
of the demo's walk-through (「1」, 「3 連絡がほしい」, 「はい」, a question), an SMS from an
unknown number, a drill, a recurring schedule and a call already made. The send results
are written as the daemon writes them (recipient states and notes), so the pages can be
looked at without a modem; the replies go through replies.record like the daemon's.

Also serves a Flask app with waitress in a thread, as `tsunagu web` does, and opens
Debian's Chromium for the browser tests.
"""
from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from appliance import broadcasts, calls, config as config_mod, contacts, replies, schedules
from appliance import api_tokens, reminders, seed, users, webhooks
from appliance.db import connect, write
from tests.web_support import Clock, enrol_two_factor, totp_code

NURSE = ("kango", "nurse-pass-2026-spring")
MANAGER = ("jimucho", "office-pass-2026-spring")
CHOICES = ["来院できる", "来院できない", "連絡がほしい"]
REPLIES = ["1", "１ 行けます", "2", "3 連絡がほしい", "はい", "行けません。どうしたらいいですか"]

CONFIG = """\
database = "tsunagu.db"
clinic_name = "つなぐ透析クリニック"
timezone = "Asia/Tokyo"
language = "ja"
[web]
session_timeout_minutes = 60
[test]
group = "テスト"
[[modem]]
name = "modem0"
port = "/dev/null"
pace = 30
daily_limit = 200
"""


def manager_code(config: config_mod.Config) -> str:
    """The code the office manager's authenticator shows now (she is an admin: a second
    factor). A code is accepted once: when this step's was used, the next step's (the
    appliance allows a step of clock drift)."""
    db = connect(config.database)
    try:
        return totp_code(db, Clock(time.time()), MANAGER[0])
    finally:
        db.conn.close()


@dataclass
class Scenario:
    config: config_mod.Config
    power_cut: int            # the emergency broadcast's id
    drill: int
    schedule: int
    a_contact: int            # 高橋 陽菜
    warning: int = 0          # the earthquake warning's event id
    reminder_kind: int = 0    # 採血 (personal reminders)
    api_token: int = 0        # 電子カルテ, with a webhook


def build(directory: Path, now: float | None = None) -> Scenario:
    now = time.time() if now is None else now
    path = directory / "tsunagu.toml"
    path.write_text(CONFIG, encoding="utf-8")
    config = config_mod.load(path)
    db = connect(config.database)
    seed.seed_demo(db, config.clinic_name)
    users.create_user(db, MANAGER[0], "admin", password=MANAGER[1], actor="test")
    enrol_two_factor(db, MANAGER[0], now)   # an admin must have a second factor
    users.create_user(db, NURSE[0], "staff", password=NURSE[1], actor="test")
    group = contacts.get_group_by_name(db, "月水金 午前")
    template = db.conn.execute("SELECT text FROM templates WHERE name = '停電・透析中止'"
                               ).fetchone()[0]
    with write(db) as conn:
        plan = broadcasts.plan(conn, config, text=template, group_ids=[group.id],
                               priority="emergency", choices=CHOICES, now=now - 1800)
        power_cut = broadcasts.create(conn, plan, title="停電・透析中止", actor=NURSE[0],
                                      now=now - 1800)
        ids = [r[0] for r in conn.execute("SELECT id FROM recipients WHERE broadcast_id = ? "
                                          "ORDER BY id", [power_cut])]
        conn.execute("UPDATE broadcasts SET state = 'done', started_at = ?, finished_at = ? "
                     "WHERE id = ?", [now - 1790, now - 1500, power_cut])
        conn.execute("UPDATE recipients SET state = 'delivered', submitted_at = ?, "
                     "delivered_at = ?, modem = 'modem0' WHERE broadcast_id = ?",
                     [now - 1700, now - 1690, power_cut])
        # As the daemon records them: a reason key (appliance.error_policy) and the
        # technical note; one older row with a note only, as written before reason keys.
        notes = {ids[-1]: ("failed", "report:0x41", "the network could not deliver it "
                                                   "(status 0x41)"),
                 ids[-2]: ("failed", None, "modem0: +CMS ERROR: 21"),
                 ids[-3]: ("uncertain", None, "uncertain (part 1/1: modem0: timed out) — may "
                                              "or may not have been sent; not resent"),
                 ids[-4]: ("submitted", None, None)}
        for rid, (state, reason, note) in notes.items():
            conn.execute("UPDATE recipients SET state = ?, reason = ?, last_error = ?, "
                         "delivered_at = NULL WHERE id = ?", [state, reason, note, rid])
        phones = [r[0] for r in conn.execute("SELECT phone FROM recipients WHERE id IN "
                                             f"({','.join('?' * 6)}) ORDER BY id", ids[:6])]
        for i, (phone, text) in enumerate(zip(phones, REPLIES)):
            replies.record(conn, "modem0", sender=phone, text=text, sent_at=now - 1500 + i,
                           now=now - 1400 + i)
        replies.record(conn, "modem0", sender="+819099998888", text="停電はいつ直りますか？",
                       sent_at=now - 900, now=now - 900)
        calls.record(conn, ids[6], "no_answer", note="留守番電話", actor=NURSE[0],
                     now=now - 600)
        drill = broadcasts.create_test_broadcast(conn, config, actor=MANAGER[0],
                                                 now=now - 86400 * 3)
        conn.execute("UPDATE recipients SET state = 'delivered' WHERE broadcast_id = ?",
                     [drill])
        conn.execute("UPDATE broadcasts SET state = 'done' WHERE id = ?", [drill])
        schedule = schedules.add(conn, config, name="採血日のお知らせ", cron="0 17 * * tue,sun",
                                 groups=["月水金 午前"], text="【{clinic}】明日は採血日です。",
                                 actor=MANAGER[0], now=now)
        # A reminder whose last run could not be sent, as the daemon records it
        # (schedules' failure columns): shown on the schedules page and the dashboard.
        failed = schedules.add(conn, config, name="透析日の確認", cron="30 7 * * mon,wed,fri",
                               groups=["テスト"], text="【{clinic}】本日は透析日です。",
                               actor=MANAGER[0], now=now)
        conn.execute("UPDATE schedules SET failures = 1, last_error_at = ?, last_error = ? "
                     "WHERE id = ?", [now - 3600, "the test group 「テスト」 has no active members"
                                      " / テストグループに連絡先がありません（「テスト」）。連絡先の画面で"
                                      "スタッフの携帯を入れてください", failed])
    warning = _beyond_the_lan(db, config, group.id, ids[-4], now)
    contact = contacts.list_contacts(db, "高橋 陽菜")[0].id
    reminder_kind, api_token = _integrations(db, config, contact, now)
    db.conn.close()
    return Scenario(config=config, power_cut=power_cut, drill=drill, schedule=schedule,
                    a_contact=contact, warning=warning, reminder_kind=reminder_kind,
                    api_token=api_token)


def _beyond_the_lan(db, config, group_id: int, silent: int, now: float) -> int:
    """Issue 14's traces on the pages: a nurse's registered phone and its commands (and a
    stranger's), an earthquake warning with its prepared message, a silent patient rung.
    Returns the warning event's id."""
    from appliance import etws, ringing, sms_commands, staff_phones, templates
    from modem import cbs
    templates.create_template(db, "地震・安否確認", "【{clinic}】{name}様 地震がありました。ご無事ですか。",
                              actor=MANAGER[0], clinic=config.clinic_name, priority="emergency",
                              choices=["無事", "けがをした"], group_ids=[group_id])
    staff_phones.add(db, NURSE[0], "090-1111-2222", "1234", actor=MANAGER[0], now=now)
    with write(db) as conn:
        sms_commands.receive(conn, config, sender="+819011112222", text="状況",
                             sent_at=now - 300, now=now - 300)
        sms_commands.receive(conn, config, sender="+819055556666", text="送信 停電 全員 0000",
                             sent_at=now - 240, now=now - 240)
        etws.record(conn, config, "modem0", cbs.Broadcast(
            message_id=cbs.TYPE_IDS["earthquake"], serial=1, dcs=0x48, pages=1,
            text="緊急地震速報 強い揺れに備えてください（気象庁）"), now - 120)
        recipient = conn.execute("SELECT id, broadcast_id, phone FROM recipients WHERE id = ?",
                                 [silent]).fetchone()
        call = ringing.start(conn, recipient, "modem0", now - 800)
        ringing.finish(conn, call, "rang", now=now - 775)
    return etws.open_events(db.conn, config, now)[0]["id"]


CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parent.parent / "test-output" / "screenshots"


@contextlib.contextmanager
def chromium_browser():
    """Debian's Chromium through Playwright (no browser is downloaded), closed after."""
    from playwright.sync_api import sync_playwright
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def served(app):
    """The app on a free port, served by waitress in a thread; stopped and joined after."""
    import waitress
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, name="waitress", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        def stop():
            # Runs in the server's own loop: close every connection, then the listener and
            # its trigger; the loop's map empties and run() returns.
            for channel in list(server._map.values()):
                if channel not in (server, server.trigger):
                    channel.handle_close()
            server.close()
        server.trigger.pull_trigger(stop)
        thread.join(15)
        server.task_dispatcher.shutdown()
        assert not thread.is_alive(), "waitress did not stop"


def _integrations(db, config, contact_id: int, now: float) -> tuple[int, int]:
    """What the clinic's other systems leave: a reminder kind with an appointment that was
    sent and one that could not go in time, and an API token with a webhook whose receiver
    was down once."""
    with write(db) as conn:
        kind = reminders.save_kind(conn, config, name="採血", actor=MANAGER[0], now=now,
                                   text="【{clinic}】{name}様、{date} {time} は採血です。",
                                   days_before=1, send_time="17:00", quiet_start="21:00",
                                   quiet_end="08:00", choices="はい / 変更したい")
        reminders.upsert(conn, contact_id=contact_id, kind_id=kind,
                         appointment_at=now + 3 * 86400, actor="api:電子カルテ", now=now,
                         source="api", external_id="A-1001")
        reminders.upsert(conn, contact_id=contact_id, kind_id=kind,
                         appointment_at=now + 1800, actor="api:電子カルテ",
                         now=now - 86400 * 2, source="api", external_id="A-1000")
        reminders.run_due(conn, config, now)   # its latest moment has passed: missed
        token, _secret = api_tokens.create(conn, "電子カルテ", "read,reminders",
                                           actor=MANAGER[0], now=now, rate_per_minute=120)
        webhooks.set_webhook(conn, token.id, url="http://192.168.1.50:8000/tsunagu",
                             events=webhooks.EVENTS, actor=MANAGER[0], now=now)
    return kind, token.id
