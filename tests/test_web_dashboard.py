"""The dashboard reads what the daemon last wrote (modem_status, heartbeat, broadcasts) and says
plainly, in Japanese, whether the appliance can send and why not."""
from __future__ import annotations

import pytest

from appliance import broadcasts
from appliance.db import write
from tests import web_support

web, staff, admin = web_support.web, web_support.staff, web_support.admin  # shared fixtures

RED_BANNER = "現在送信できません"


def beat(web, age: float = 1.0) -> None:
    web.db.conn.execute("INSERT OR REPLACE INTO heartbeat (name, pid, started_at, beat_at) "
                        "VALUES ('daemon', 4242, ?, ?)", [web.clock() - 3600, web.clock() - age])


def modem(web, *, ready: bool, reason: str | None = None, bars: int = 3, dbm: int = -71,
          operator: str = "NTT DOCOMO", age: float = 5.0) -> None:
    web.db.conn.execute(
        "INSERT OR REPLACE INTO modem_status (name, port, ready, reason, signal_dbm, signal_bars, "
        "operator, checked_at) VALUES ('m0', '/dev/null', ?, ?, ?, ?, ?, ?)",
        [int(ready), reason, dbm, bars, operator, web.clock() - age])


def dashboard(client) -> str:
    return client.get("/").get_data(as_text=True)


def test_a_healthy_appliance_says_it_can_send_with_signal_and_operator(web, staff):
    beat(web)
    modem(web, ready=True, bars=3)
    page = dashboard(staff)
    assert "送信できます" in page and RED_BANNER not in page
    assert "NTT DOCOMO" in page and 'aria-label="3/4"' in page and "-71 dBm" in page
    assert "180 / 180" in page                         # today's budget, from the config


@pytest.mark.parametrize("reason, japanese", [
    ("no_sim", "SIMカードがありません"),
    ("not_registered", "ネットワークに登録されていません"),
    ("not_answering", "モデムが応答しません"),
    ("port_missing", "モデムが接続されていません"),
    ("sim_pin", "SIMのPINが必要です"),
])
def test_a_modem_that_cannot_send_shows_the_red_banner_and_the_reason_in_japanese(
        web, staff, reason, japanese):
    beat(web)
    modem(web, ready=False, reason=reason, bars=0)
    page = dashboard(staff)
    assert RED_BANNER in page and japanese in page and "送信不可" in page


def test_a_weak_signal_warns_without_the_red_banner(web, staff):
    beat(web)
    modem(web, ready=False, reason="weak_signal", bars=1)
    page = dashboard(staff)
    assert "電波が弱い" in page and RED_BANNER not in page


def test_a_send_waiting_long_for_its_answer_says_so_without_the_red_banner(web, staff):
    # A congested network answers slowly (up to 120 s): slow, not stopped.
    beat(web)
    modem(web, ready=True)
    with write(web.db) as conn:
        bid = conn.execute("INSERT INTO broadcasts (title, text, created_by, created_at) "
                           "VALUES ('t', 't', 't', ?)", [web.clock()]).lastrowid
        rid = conn.execute("INSERT INTO recipients (broadcast_id, name, phone, text, "
                           "parts_count, state, modem) VALUES (?, 'p', '+819000000000', 't', "
                           "1, 'sending', 'm0')", [bid]).lastrowid
        conn.execute("INSERT INTO parts (recipient_id, seq, state, modem, sending_at) "
                     "VALUES (?, 1, 'sending', 'm0', ?)", [rid, web.clock() - 45])
    page = dashboard(staff)
    assert "応答待ち" in page and "送信への応答を待っています" in page
    assert "ネットワークの応答が遅れています" in page and "電波が弱い" not in page
    assert 'class="card modem slow"' in page        # amber, not the red of a stopped modem
    assert RED_BANNER not in page and "送信不可" not in page


def test_a_stale_heartbeat_is_the_red_banner_even_with_a_ready_modem(web, staff):
    beat(web, age=web.config.check.heartbeat_max_age + 5)
    modem(web, ready=True)
    page = dashboard(staff)
    assert RED_BANNER in page and "送信サービスが動いていません" in page
    assert "停止" in page


def test_a_daemon_that_never_ran_is_the_red_banner(web, staff):
    page = dashboard(staff)
    assert RED_BANNER in page and "まだ確認されていません" in page
    assert "not polled yet" not in page                # no English diagnostics in the ja page


def test_broadcasts_in_progress_are_listed_and_finished_ones_are_not(web, staff):
    beat(web)
    modem(web, ready=True)
    with write(web.db) as conn:
        plan = broadcasts.plan(conn, web.config, text="{name}様 本日は休診です。",
                               group_ids=[web.group_id], now=web.clock())
        sending = broadcasts.create(conn, plan, title="休診のお知らせ", actor="test",
                                    now=web.clock())
        done = broadcasts.create(conn, plan, title="先週の訓練", actor="test", now=web.clock())
        conn.execute("UPDATE broadcasts SET state = 'done' WHERE id = ?", [done])
    page = dashboard(staff)
    assert "休診のお知らせ" in page and f"/broadcasts/{sending}" in page
    assert "先週の訓練" not in page


def test_the_count_not_yet_sent_includes_the_message_on_the_air(web, staff):
    beat(web)
    modem(web, ready=True)
    with write(web.db) as conn:
        plan = broadcasts.plan(conn, web.config, text="本日は休診です。",
                               group_ids=[web.group_id], now=web.clock())
        bid = broadcasts.create(conn, plan, title="休診", actor="test", now=web.clock())
        conn.execute("UPDATE recipients SET state = 'sending' WHERE id = "
                     "(SELECT min(id) FROM recipients WHERE broadcast_id = ?)", [bid])
        total = conn.execute("SELECT count(*) FROM recipients WHERE broadcast_id = ?",
                             [bid]).fetchone()[0]
    # One of them is on the air, not waiting: the label says 未送信, and counts it.
    assert f"未送信: {total}" in dashboard(staff)


def test_the_status_feed_agrees_with_the_page(web, staff):
    beat(web)
    modem(web, ready=False, reason="no_sim", bars=0)
    status = staff.get("/api/status").get_json()
    assert status["can_send"] is False and status["modems"][0]["reason"] == "no_sim"


def test_the_dashboard_is_in_english_for_an_english_user(web, staff):
    beat(web)
    modem(web, ready=False, reason="no_sim", bars=0)
    web_support.post_form(staff, "/language", {"lang": "en"}, form_page="/")
    page = dashboard(staff)
    assert "Cannot send right now" in page and "no SIM card" in page


def test_the_dashboard_says_where_the_time_comes_from_and_warns_when_unsynchronised(web, staff):
    beat(web)
    modem(web, ready=True)

    def time_source(source: str) -> None:
        web.db.conn.execute(
            "INSERT OR REPLACE INTO clock_status (name, source, detail, checked_at) "
            "VALUES ('system', ?, '', ?)", [source, web.clock()])
    time_source("network")
    assert "時刻の出どころ: 携帯電話網" in dashboard(staff)
    time_source("unsynchronised")
    assert "同期されていません — インターネット接続かモデムの電波を確認してください" in dashboard(staff)


def test_a_modem_the_recovery_ladder_gave_up_on_gets_a_red_banner_saying_what_to_do(web, staff):
    beat(web)
    modem(web, ready=False, reason="not_answering")
    web.db.conn.execute("INSERT INTO modem_recovery (modem, rung, started_at) "
                        "VALUES ('m0', 'reset', ?)", [web.clock()])
    page = dashboard(staff)
    assert "自動復旧中" in page and "リセット" in page
    web.db.conn.execute("INSERT INTO modem_recovery (modem, rung, started_at, outcome) "
                        "VALUES ('m0', 'gave_up', ?, 'failed')", [web.clock() + 1])
    page = dashboard(staff)
    assert "モデム m0 が応答せず、自動復旧でも直りませんでした。" in page
    assert "USBケーブルを抜いて10秒待ち、差し直してください。" in page
