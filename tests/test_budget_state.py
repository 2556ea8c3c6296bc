"""The daily limit as a state staff can see (issue 10, finding 7): with 1 part left today and
3-part messages waiting, nothing says 'ready'; every page says 上限待ち and until when."""
from __future__ import annotations

import datetime as dt

import pytest

from appliance import broadcasts, budget, check, health
from appliance.db import write
from tests import web_support
from tests.web_support import START

web, staff = web_support.web, web_support.staff  # shared fixtures

LONG = "停電のため本日の透析は中止です。" * 9   # 3 SMS parts (UCS2, 67 per part)
HOUR = 3600.0


def _spend(web, parts: int, *, first_at: float) -> None:
    """*parts* parts handed over by m0, one a minute from *first_at* (a day's sending)."""
    with write(web.db) as conn:
        bid = conn.execute("INSERT INTO broadcasts (title, text, created_by, created_at, state) "
                           "VALUES ('朝', '朝', 'test', ?, 'done')", [first_at]).lastrowid
        rid = conn.execute("INSERT INTO recipients (broadcast_id, name, phone, text, "
                           "parts_count, state) VALUES (?, '済', '+819000000000', '朝', ?, "
                           "'delivered')", [bid, parts]).lastrowid
        conn.executemany("INSERT INTO parts (recipient_id, seq, state, modem, sending_at) "
                         "VALUES (?, ?, 'delivered', 'm0', ?)",
                         [(rid, i + 1, first_at + 60 * i) for i in range(parts)])


def _alive(web) -> None:
    """A daemon beating and m0 ready, as the daemon writes them."""
    now = web.clock()
    with write(web.db) as conn:
        conn.execute("INSERT INTO heartbeat (name, pid, started_at, beat_at) "
                     "VALUES ('daemon', 1, ?, ?)", [now - 60, now])
        health.write_status(conn, health.ModemHealth(
            name="m0", port="/dev/null", ready=True, reason=None, checked_at=now,
            signal_dbm=-70, signal_bars=4, operator="NTT DOCOMO"))


@pytest.fixture
def blocked(web):
    """m0 (limit 180) spent 179 parts since 10 hours ago; a 3-part broadcast is queued."""
    _spend(web, 179, first_at=START - 10 * HOUR)
    _alive(web)
    plan = broadcasts.plan(web.db.conn, web.config, text=LONG, group_ids=[web.group_id],
                           now=web.clock())
    assert plan.recipients[0].parts == 3
    with write(web.db) as conn:
        bid = broadcasts.create(conn, plan, title="停電", actor="test", now=web.clock())
    # Two old parts must leave the 24 hours: the second is 10 h - 1 min ago.
    return bid, START - 10 * HOUR + 60 + 24 * HOUR


def _local(at: float, web) -> str:
    return dt.datetime.fromtimestamp(at, web.config.zone).strftime("%m/%d %H:%M")


def test_waiting_work_that_no_sim_can_take_today_is_not_ready(web, blocked):
    _bid, until = blocked
    h = health.read_health(web.db.conn, web.config, web.clock())
    assert h.remaining_budget == 1 and h.budget_blocked and h.budget_blocked_until == until
    assert not h.can_send
    [line] = [r for r in check.run_checks(web.db, web.config, web.clock()) if r.name == "budget"]
    assert line.status == check.CRITICAL
    assert "上限待ち" in line.message and _local(until, web) in line.message


def test_a_single_part_message_still_fits_so_the_appliance_is_ready(web):
    _spend(web, 179, first_at=START - 10 * HOUR)
    _alive(web)
    plan = broadcasts.plan(web.db.conn, web.config, text="中止です", group_ids=[web.group_id],
                           now=web.clock())
    with write(web.db) as conn:
        broadcasts.create(conn, plan, title="停電", actor="test", now=web.clock())
    h = health.read_health(web.db.conn, web.config, web.clock())
    assert not h.budget_blocked and h.can_send


def test_the_dashboard_says_so_in_the_red_banner(web, blocked, staff):
    _bid, until = blocked
    page = staff.get("/").get_data(as_text=True)
    assert "送信上限に達した" in page and _local(until, web) in page
    assert "送信できます" not in page


def test_the_broadcast_page_shows_who_waits_for_the_limit_and_until_when(web, blocked, staff):
    bid, until = blocked
    page = staff.get(f"/broadcasts/{bid}").get_data(as_text=True)
    assert "上限待ち" in page and f"{_local(until, web)} から" in page
    api = staff.get(f"/api/broadcasts/{bid}").get_json()
    assert api["counts"]["budget_wait"] == 1 and api["counts"]["queued"] == 0
    assert api["recipients"][0]["label"] == "上限待ち"
    assert api["budget_notice"] == f"1件がSIMの1日の送信上限のため待っています。" \
        f"{_local(until, web)} から送信されます。"


def test_the_call_list_puts_those_held_by_the_limit_first_with_when_their_sms_goes(
        web, blocked, staff):
    bid, until = blocked
    page = staff.get(f"/broadcasts/{bid}").get_data(as_text=True)
    assert "早く伝えるには電話してください" in page and f"/broadcasts/{bid}/calls" in page
    calls = staff.get(f"/broadcasts/{bid}/calls").get_data(as_text=True)
    assert "<strong>上限待ち</strong>" in calls
    assert f"SMSは {_local(until, web)} ごろ送られます" in calls


def test_broadcast_show_says_it_waits_for_the_limit(web, blocked):
    from click.testing import CliRunner

    from appliance.cli import main
    bid, until = blocked
    out = CliRunner().invoke(main, ["broadcast", "show", str(bid), "--config",
                                    str(web.config.path)])
    # The CLI reads the real clock, which is before the test's START: the parts spent
    # "today" are all within its 24 hours, and the wait ends at the same moment.
    assert out.exit_code == 0, out.output
    # The state in the configured language's words (issue 11), the note with from when.
    assert "上限待ち 1" in out.output and f"上限待ち: {_local(until, web)} から" in out.output
    held = budget.held_back(web.db.conn, web.config, web.clock())
    assert held == {broadcasts.recipients(web.db.conn, bid)[0]["id"]: until}


def test_the_plan_counts_the_wait_for_the_limit_in_its_time(web):
    _spend(web, 179, first_at=START - 10 * HOUR)
    plan = broadcasts.plan(web.db.conn, web.config, text=LONG, group_ids=[web.group_id],
                           now=web.clock())
    until = START - 10 * HOUR + 60 + 24 * HOUR
    assert plan.budget_until == until
    assert plan.seconds >= until - web.clock()          # about 14 hours, not "0.0 minutes"
    [note] = [v for code, v in plan.notes if code == "over_budget"]
    assert note["until"] == until


def test_the_forecast_spends_the_room_in_order_over_two_sims(web):
    from appliance.config import ModemConfig
    sims = [ModemConfig(name="a", port="/dev/null", daily_limit=4),
            ModemConfig(name="b", port="/dev/null", daily_limit=4)]

    class Config:
        modems = sims
    now = 100_000.0
    times = budget.forecast(web.db.conn, Config, now, [(1, 3, now), (2, 3, now), (3, 3, now)])
    # Each SIM takes one 3-part message now; the third waits a day for either to clear.
    assert times[1] == times[2] == now and times[3] == now + budget.DAY
    assert budget.forecast(web.db.conn, Config, now, [(9, 5, now)]) == {9: float("inf")}
