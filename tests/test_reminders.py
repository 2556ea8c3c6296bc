"""Personal reminders: the kinds' timing and quiet hours, the appointments file (previewed and
refused like the roster), changes and cancellations, and a week of 200 appointments sent
through a simulated modem on a real pty at the right local times with an injected clock —
within quiet hours and the daily limit, a moved appointment sending its new time."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from appliance import audit, config as config_mod, reminders, reminders_csv
from appliance.db import connect, write
from appliance.dispatcher import Worker
from tests.daemon_harness import write_config

TOKYO = ZoneInfo("Asia/Tokyo")
MONDAY = dt.datetime(2027, 1, 11, 9, 0, tzinfo=TOKYO)   # the simulated week starts here


def local(day: int, hour: int, minute: int = 0) -> float:
    """Unix time of day *day* after MONDAY (0 = Monday) at hour:minute, Tokyo."""
    moment = dt.datetime.combine(MONDAY.date() + dt.timedelta(days=day),
                                 dt.time(hour, minute), TOKYO)
    return moment.timestamp()


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)


@pytest.fixture
def setup(tmp_path):
    (tmp_path / "t.toml").write_text(
        'database = "t.db"\nclinic_name = "つなぐ透析クリニック"\n[reminders]\nreserve = 5\n'
        '[[modem]]\nname = "m0"\nport = "/dev/null"\ndaily_limit = 200\n', encoding="utf-8")
    config = config_mod.load(tmp_path / "t.toml")
    db = connect(config.database)
    yield config, db
    db.conn.close()


def add_kinds(db, config, **overrides) -> dict[str, int]:
    with write(db) as conn:
        dialysis = reminders.save_kind(
            conn, config, name="透析予約", text="{name}様 {date} {time}から透析です",
            changed_text="{name}様 透析の予約が{date} {time}に変わりました（元は{original_time}）",
            days_before=1, send_time="17:00", quiet_start="21:00", quiet_end="08:00",
            choices="はい / 変更したい", actor="t", now=0.0)
        blood = reminders.save_kind(
            conn, config, name="採血", text="{name}様 本日{time}から採血です", hours_before=3,
            quiet_start="21:00", quiet_end="08:00", latest_minutes=30, actor="t", now=0.0,
            **overrides)
    return {"透析予約": dialysis, "採血": blood}


def add_patients(db, count: int) -> None:
    with write(db) as conn:   # setting up, not under test: direct rows
        for i in range(count):
            conn.execute("INSERT INTO contacts (patient_id, name, kana, phone, created_at, "
                         "updated_at) VALUES (?,?,?,?,0,0)",
                         [f"P{i:03d}", f"患者{i:03d}", f"カンジャ{i:03d}", f"+81901{i:07d}"])


def csv(rows: list[tuple], encoding: str = "cp932",
        header: str = "患者ID,種類,予約日,時刻,予約ID") -> bytes:
    lines = [header] + [",".join(str(c) for c in row) for row in rows]
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


def day_text(at: float) -> tuple[str, str]:
    moment = dt.datetime.fromtimestamp(at, TOKYO)
    return moment.strftime("%Y/%m/%d"), f"{moment.hour}:{moment.minute:02d}"


# -- timing -------------------------------------------------------------------------------------

def test_the_kinds_timing_quiet_hours_and_latest_moment(setup):
    config, db = setup
    ids = add_kinds(db, config)
    dialysis, blood = (reminders.kind(db.conn, ids[n]) for n in ("透析予約", "採血"))
    start, end = reminders.window(dialysis, local(2, 9), TOKYO)
    assert (start, end) == (local(1, 17), local(2, 8))          # day before 17:00; 60 min
    assert reminders.quiet(blood, local(1, 22), TOKYO) and reminders.quiet(blood, local(2, 7, 59), TOKYO)
    assert not reminders.quiet(blood, local(2, 8), TOKYO) and not reminders.quiet(blood, local(1, 20, 59), TOKYO)
    assert reminders.planned_at(blood, local(2, 14), TOKYO) == local(2, 11)
    assert reminders.planned_at(blood, local(2, 9), TOKYO) == local(2, 8)     # 6:00 is quiet
    assert reminders.planned_at(blood, local(2, 8), TOKYO) is None            # none left
    emergency = reminders.Kind(**{**blood.__dict__, "priority": "emergency"})
    assert reminders.planned_at(emergency, local(2, 8), TOKYO) == local(2, 5)  # no quiet hours


@pytest.mark.parametrize("change, field", [
    ({"text": "{nmae}様"}, "text"),
    ({"text": "{name}様", "template_id": 1}, "text"),
    ({"hours_before": 3}, "days_before"),            # both timings
    ({"days_before": None}, "days_before"),          # neither
    ({"send_time": "25:00"}, "send_time"),
    ({"quiet_end": None}, "quiet_start"),
    ({"choices": " / ".join(str(i) for i in range(10))}, "choices"),
    ({"name": " "}, "name"),
])
def test_a_kind_that_could_not_be_sent_is_refused_when_saved_naming_the_field(
        setup, change, field):
    config, db = setup
    values = dict(name="採血", text="{name}様 {date} {time}", days_before=1, send_time="17:00",
                  quiet_start="21:00", quiet_end="08:00")
    values.update(change)
    with pytest.raises(reminders.ReminderError) as refused, write(db) as conn:
        reminders.save_kind(conn, config, actor="t", now=0.0, **values)
    assert refused.value.field == field


# -- the appointments file -------------------------------------------------------------------

def test_the_file_in_cp932_or_utf8_matches_patients_by_id_or_number(setup):
    config, db = setup
    add_kinds(db, config)
    add_patients(db, 3)
    now = local(0, 9)
    rows = [("P000", "", "採血", "2027/01/12", "10:30"),
            ("", "090-1000-0001", "透析予約", "令和9年1月13日", "9時00分"),
            ("P002", "０９０１０００００２", "採血", "2027-01-14（木）", "14:00")]
    for encoding in ("cp932", "utf-8-sig"):
        data = csv(rows, encoding, header="患者ID,携帯電話,種別,受診日,開始時刻")
        preview = reminders_csv.preview(db, config, data, now=now)
        assert preview.error_count == 0, preview.problems
        assert [r.action for r in preview.rows] == ["new", "new", "new"]
        assert [r.contact_name for r in preview.rows] == ["患者000", "患者001", "患者002"]
        assert preview.rows[1].appointment_at == local(2, 9)
    reminders_csv.import_reminders(db, config, data, actor="staff", now=now)
    again = reminders_csv.preview(db, config, data, now=now)
    assert [r.action for r in again.rows] == ["unchanged"] * 3


def test_a_file_with_any_bad_row_is_refused_whole_with_every_problem_by_row(setup):
    config, db = setup
    add_kinds(db, config)
    add_patients(db, 2)
    data = csv([("P000", "採血", "2027/01/12", "10:30", "A1"),
                ("P999", "採血", "2027/01/12", "10:30", "A2"),
                ("P001", "歯科", "2027/01/12", "10:30", "A3"),
                ("P001", "採血", "2027/13/40", "10:30", "A4"),
                ("P001", "採血", "2027/01/12", "11:00", "A1")])
    with pytest.raises(reminders_csv.ReminderImportError) as refused:
        reminders_csv.import_reminders(db, config, data, actor="staff", now=local(0, 9))
    found = [(p.row, p.field) for p in refused.value.problems]
    assert found == [(3, "patient_id"), (4, "kind"), (5, "date"), (6, "external_id")]
    assert "歯科" in refused.value.problems[1].ja and "採血" in refused.value.problems[1].ja
    assert db.conn.execute("SELECT count(*) FROM reminders").fetchone()[0] == 0
    assert audit.count(db, action="reminders_import_refused") == 1
    with pytest.raises(reminders_csv.ReminderImportError) as no_column:
        reminders_csv.preview(db, config, "氏名,種類,予約日,時刻\n山田,採血,2027/1/12,9:00\n"
                              .encode(), now=local(0, 9))
    assert no_column.value.problems[0].row == 1


def test_a_moved_appointment_changes_its_reminder_and_a_cancelled_one_is_withdrawn(setup):
    config, db = setup
    add_kinds(db, config)
    add_patients(db, 2)
    now = local(0, 9)
    reminders_csv.import_reminders(db, config, csv([("P000", "採血", "2027/01/12", "10:30", "A1"),
                                                    ("P001", "採血", "2027/01/12", "11:00", "A2"),
                                                    ("P001", "採血", "2027/01/10", "9:00", "A0")]),
                                   actor="staff", now=now)
    header = "患者ID,種類,予約日,時刻,予約ID,状態"
    moved = csv([("P000", "採血", "2027/01/12", "15:00", "A1", ""),
                 ("P001", "採血", "2027/01/12", "11:00", "A2", "キャンセル")], header=header)
    preview = reminders_csv.preview(db, config, moved, now=now)
    assert [(r.action, r.previous_at) for r in preview.rows] == [("changed", local(1, 10, 30)),
                                                                 ("withdraw", None)]
    result = reminders_csv.import_reminders(db, config, moved, actor="staff", now=now)
    assert (result.changed, result.withdrawn) == (1, 1)
    rows = {r["external_id"]: r for r in reminders.listing(db.conn, config, now)}
    assert rows["A1"]["appointment_at"] == local(1, 15) and rows["A1"]["state"] == "pending"
    assert rows["A2"]["state"] == "withdrawn" and rows["A2"]["reason"] == "cancelled"
    assert "A0" not in rows    # past appointments are not imported


# -- a week of reminders through a modem --------------------------------------------------------

def _week(count: int) -> list[tuple]:
    """200 appointments over the week after MONDAY: half dialysis, half blood tests."""
    rows, times = [], [(7, 0), (8, 0), (9, 0), (10, 30), (13, 0), (14, 30), (16, 0), (18, 0)]
    for i in range(count):
        day, (hour, minute) = 1 + i % 7, times[i % len(times)]
        kind = "透析予約" if i % 2 == 0 else "採血"
        date, clock = day_text(local(day, hour, minute))
        rows.append((f"P{i // 2:03d}", kind, date, clock, f"W{i:03d}"))
    return rows


def _expected(kind: str, at: float) -> float | None:
    """When it should go, from the kinds' rules written out here (not the code's)."""
    moment = dt.datetime.fromtimestamp(at, TOKYO)
    if kind == "透析予約":
        send = dt.datetime.combine(moment.date() - dt.timedelta(days=1), dt.time(17), TOKYO)
        latest = moment - dt.timedelta(minutes=60)
    else:
        send = moment - dt.timedelta(hours=3)
        latest = moment - dt.timedelta(minutes=30)
    if send.hour >= 21 or send.hour < 8:
        day = send.date() + dt.timedelta(days=1 if send.hour >= 21 else 0)
        send = dt.datetime.combine(day, dt.time(8), TOKYO)
    return send.timestamp() if send < latest else None


def _simulate(db, config, worker, clock, until: float, step: float = 300.0,
              on_step=None) -> None:
    """The daemon's reminders job and one modem worker, on the injected clock."""
    while clock.t < until:
        if on_step:
            on_step(clock.t)
        with write(db) as conn:
            reminders.run_due(conn, config, clock.t)
        while worker.process_one():
            clock.t += 1.0            # a real modem's second per SMS
        worker.record_accepted()
        clock.t = (clock.t // step + 1) * step


@pytest.fixture
def modem_rig(tmp_path, sim_modem):
    def make(daily_limit: int = 200, reserve: int = 50):
        class Modem0:
            name, link, pin = "m0", sim_modem.link, None
        path = write_config(tmp_path, [Modem0()], pace=60_000, daily_limit=daily_limit)
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"\n[reminders]\nreserve = {reserve}\n")
        config = config_mod.load(path)
        db = connect(config.database)
        clock = Clock(MONDAY.timestamp())
        worker = Worker(config, config.modems[0], db=db, clock=clock)
        assert worker.connect()
        made.append(worker)
        return config, db, clock, worker
    made: list = []
    yield make
    for worker in made:
        worker._close()
        worker.events.close()


def test_a_week_of_200_appointments_goes_at_the_right_local_times_within_quiet_hours(
        modem_rig, sim_modem):
    config, db, clock, worker = modem_rig()
    add_kinds(db, config)
    add_patients(db, 100)
    rows = _week(200)
    reminders_csv.import_reminders(db, config, csv(rows), actor="staff", now=clock.t)
    moved = {"W010": (local(3, 15), None), "W020": (None, local(7, 15))}   # before / after sent

    def changes(now: float) -> None:
        """The scheduling system's next export moves two appointments."""
        for external_id, (before, after) in moved.items():
            row = reminders.by_external_id(db.conn, external_id)
            if before and row["state"] == "pending" and now >= local(1, 12):
                new_at = before
            elif after and row["state"] == "sent" and row["announced_at"] == row["appointment_at"]:
                new_at = after
            else:
                continue
            if new_at == row["appointment_at"]:
                continue
            patient, kind = next(r[:2] for r in rows if r[4] == external_id)
            reminders_csv.import_reminders(db, config, csv([(patient, kind, *day_text(new_at),
                                                             external_id)]),
                                           actor="staff", now=now)

    _simulate(db, config, worker, clock, local(8, 9), on_step=changes)

    sent = {r["external_id"]: r for r in reminders.listing(db.conn, config, clock.t)}
    texts = {m["text"] for m in sim_modem.network.messages()}
    late = 0
    for patient, kind, date, time_, external_id in rows:
        r = sent[external_id]
        at = r["appointment_at"]
        expected = _expected(kind, at)
        if expected is None:
            assert r["state"] == "missed" and r["reason"] == "no_time", external_id
            late += 1
            continue
        assert r["state"] == "sent", (external_id, r)
        if external_id == "W020":
            continue          # sent twice: checked below
        assert expected <= r["sent_at"] < expected + 60, (external_id, r["sent_at"] - expected)
        local_time = dt.datetime.fromtimestamp(r["sent_at"], TOKYO)
        assert 8 <= local_time.hour < 21            # never in the quiet hours
        day_of = dt.datetime.fromtimestamp(at, TOKYO)
        expected_text = (f"{r['contact_name']}様 {day_of.month}月{day_of.day}日"
                         if kind == "透析予約" else f"{r['contact_name']}様 本日")
        assert any(t.startswith(expected_text) and f"{day_of.hour}:{day_of.minute:02d}" in t
                   for t in texts), external_id
    assert late == 25              # the 8:00 blood tests: 5:00 is quiet, 8:00 is past 7:30
    # Each sent once: one message per reminder, two for the one moved after it was sent.
    assert len(sim_modem.network.messages()) == 200 - late + 1
    # Moved before it went: only the new time was ever sent.
    w010 = sent["W010"]
    assert w010["appointment_at"] == local(3, 15)
    w010_texts = [m["text"] for m in sim_modem.network.messages() if m["to"] == "+819010000005"
                  and "透析です" in m["text"]]
    assert len(w010_texts) == 1 and "15:00" in w010_texts[0] and "1月14日" in w010_texts[0]
    # Moved after it went: sent again with the new time, saying what it was.
    changed = [m["text"] for m in sim_modem.network.messages() if "変わりました" in m["text"]]
    assert changed == ["患者010様 透析の予約が1月18日(月) 15:00に変わりました（元は13:00）\n"
                       "番号で返信してください\n1 はい\n2 変更したい"]
    missed = reminders.missed(db.conn, 0)
    assert len(missed) == late and {m["reason"] for m in missed} == {"no_time"}


def test_the_daily_limit_is_kept_and_what_cannot_go_in_time_is_reported_not_sent_late(
        modem_rig, sim_modem):
    config, db, clock, worker = modem_rig(daily_limit=30, reserve=5)
    add_kinds(db, config)
    add_patients(db, 40)
    rows = [(f"P{i:03d}", "透析予約", *day_text(local(1, 9 + i % 4)), f"D{i:03d}")
            for i in range(40)]
    reminders_csv.import_reminders(db, config, csv(rows), actor="staff", now=clock.t)
    _simulate(db, config, worker, clock, local(2, 12))
    states = {r["external_id"]: (r["state"], r["reason"])
              for r in reminders.listing(db.conn, config, clock.t)}
    sent = [k for k, (s, _r) in states.items() if s == "sent"]
    assert len(sent) == 25                   # 30 a day, 5 left for emergencies
    assert {states[k] for k in states if k not in sent} == {("missed", "late")}
    times = sorted(r[0] for r in db.conn.execute("SELECT sending_at FROM parts"))
    assert len(times) == 25 and times[-1] - times[0] < 24 * 3600
    assert len(sim_modem.network.messages()) == 25
    # Emergencies still had room: the reserve was kept.
    from appliance import budget
    assert budget.remaining(db.conn, config.modems[0], local(0, 18)) == 5


@pytest.mark.slow
def test_the_real_daemon_sends_a_due_reminder_personalised_under_its_job_guard(rig_factory):
    import time
    from tests.daemon_harness import wait_until
    rig = rig_factory(1)
    add_kinds(rig.db, rig.config)
    with write(rig.db) as conn:
        contact = conn.execute("INSERT INTO contacts (patient_id, name, phone, created_at, "
                               "updated_at) VALUES ('P1', '山田 太郎', '+819012345678', 0, 0)"
                               ).lastrowid
        # In two hours: its 3-hours-before moment has passed, its latest has not. Whatever
        # the wall clock's hour, quiet hours would hold it: the kind has none here.
        conn.execute("UPDATE reminder_kinds SET quiet_start = NULL, quiet_end = NULL")
        at = time.time() + 2 * 3600
        reminders.upsert(conn, contact_id=contact, kind_id=2, appointment_at=at, actor="t",
                         now=time.time(), source="api", external_id="X1")
    rig.daemon.start()
    wait_until(lambda: any(m["to"] == "+819012345678" for m in rig.sims[0].events("message"))
               or not rig.daemon.alive(), 30, "the reminder on the network")
    moment = dt.datetime.fromtimestamp(at, TOKYO)
    text = next(m["text"] for m in rig.sims[0].events("message"))
    assert text == f"山田 太郎様 本日{moment.hour}:{moment.minute:02d}から採血です"
    wait_until(lambda: reminders.by_external_id(rig.db.conn, "X1")["state"] == "sent", 30,
               "the reminder recorded as sent")
    assert rig.db.conn.execute("SELECT count(*) FROM daemon_jobs WHERE failures > 0"
                               ).fetchone()[0] == 0


def test_emergency_reminders_go_first_even_in_quiet_hours_and_routine_ones_leave_the_reserve(
        setup):
    config, db = setup                      # one SIM, 200 a day, reserve 5
    ids = add_kinds(db, config)
    with write(db) as conn:
        urgent = reminders.save_kind(conn, config, name="休診", text="{name}様 {date}は休診です",
                                     hours_before=12, priority="emergency", actor="t", now=0.0)
        conn.execute("UPDATE reminder_kinds SET hours_before = 12 WHERE id = ?", [ids["採血"]])
    add_patients(db, 8)
    # 193 parts already sent today: 7 left, of which routine reminders may use 2.
    with write(db) as conn:
        b = conn.execute("INSERT INTO broadcasts (title, text, created_by, created_at, state) "
                         "VALUES ('x', 'x', 't', 0, 'done')").lastrowid
        r = conn.execute("INSERT INTO recipients (broadcast_id, name, phone, text, parts_count, "
                         "state) VALUES (?, 'x', '+819000000000', 'x', 193, 'submitted')",
                         [b]).lastrowid
        conn.executemany("INSERT INTO parts (recipient_id, seq, state, modem, sending_at) "
                         "VALUES (?, ?, 'submitted', 'm0', ?)",
                         [(r, i + 1, local(2, 6)) for i in range(193)])
        for i in range(7):
            reminders.upsert(conn, contact_id=i + 1, kind_id=ids["採血"], actor="t", now=0.0,
                             appointment_at=local(2, 18), source="api", external_id=f"R{i}")
        reminders.upsert(conn, contact_id=8, kind_id=urgent, appointment_at=local(2, 18),
                         actor="t", now=0.0, source="api", external_id="E1")
        assert reminders.run_due(conn, config, local(2, 6, 30)) != []     # 6:30: quiet hours
    state = {r["external_id"]: r["state"] for r in reminders.listing(db.conn, config, 0)}
    assert state["E1"] == "queued" and {state[f"R{i}"] for i in range(7)} == {"pending"}
    with write(db) as conn:
        reminders.run_due(conn, config, local(2, 8))
    state = {r["external_id"]: (r["state"], r["reason"])
             for r in reminders.listing(db.conn, config, 0)}
    queued = [k for k, (s, _r) in state.items() if s == "queued" and k != "E1"]
    assert len(queued) == 1     # 7 left: the emergency took 1, routine may use 6 - 5
    assert {state[k] for k in state if k not in queued and k != "E1"} == {("pending", "budget")}
