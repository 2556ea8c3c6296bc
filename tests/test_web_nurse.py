"""Issue 11 through Flask's test client, on the day of a power cut (tests/nurse_scenario.py):
the words a nurse and an office manager read — Japanese only, one name per thing — and
what the pages must say (findings 5, 6, 7, 8, 10, 13, 14; the inbox, import, contacts
extras). The browser-only findings are in tests/test_browser_nurse.py."""
from __future__ import annotations

import json
import re

import pytest

from appliance import audit, config as config_mod, error_policy, templates, users, wording
from appliance.db import connect
from tests.nurse_scenario import MANAGER, NURSE, build, manager_code
from tests.web_support import csrf_token, field_errors, log_in, post_form
from webui import create_app

JAPANESE_PAGE_ENGLISH = re.compile(r"\b(choose|unknown placeholder|no value|cannot|could not|"
                                   r"network|status|emergency|routine|drill|True|None)\b")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    directory = tmp_path_factory.mktemp("power-cut")
    return directory, build(directory)


@pytest.fixture
def scenario(built, tmp_path):
    """A fresh copy of the module's scenario (built once: the roster import takes a while)."""
    import dataclasses
    import shutil
    directory, original = built
    copy = tmp_path / "appliance"
    shutil.copytree(directory, copy)
    return dataclasses.replace(original, config=config_mod.load(copy / "tsunagu.toml"))


@pytest.fixture
def app(scenario):
    return create_app(scenario.config, testing=True)


@pytest.fixture
def db(scenario):
    database = connect(scenario.config.database)
    yield database
    database.conn.close()


def client_for(app, who, scenario):
    client = app.test_client()
    code = manager_code(scenario.config) if who == MANAGER else None  # an admin: 2nd factor
    response = log_in(client, *who, code=code)
    assert response.status_code == 302 and "/login" not in response.headers["Location"]
    return client


@pytest.fixture
def nurse(app, scenario):
    return client_for(app, NURSE, scenario)


@pytest.fixture
def manager(app, scenario):
    return client_for(app, MANAGER, scenario)


def visible_text(page: str) -> str:
    """The page's text as a reader sees it: no tags, no attributes, no script."""
    body = page.split("<main>", 1)[1]
    return re.sub(r"<[^>]+>", " ", body)


def group_id(db, name: str) -> int:
    return db.conn.execute("SELECT id FROM groups WHERE name = ?", [name]).fetchone()[0]


# -- finding 5: Japanese only ---------------------------------------------------------

def test_a_compose_error_is_in_japanese_only_and_shown_once(nurse):
    page = post_form(nurse, "/send", {"text": "{nmae}様", "template_id": "0",
                                      "groups": ""}).get_data(as_text=True)
    errors = field_errors(page, "text")
    assert errors == ["使えない差し込み項目です: {nmae}（使えるもの: {name}, {kana}, {clinic}, "
                      "{date}, {time}, {original_time}）"]
    assert "unknown placeholder" not in visible_text(page)


def test_no_group_chosen_says_so_in_japanese_at_the_top(nurse):
    page = post_form(nurse, "/send", {"text": "本日は中止です", "template_id": "0"}
                     ).get_data(as_text=True)
    text = visible_text(page)
    assert "送信先を選んでください" in text and "choose" not in text
    assert text.index("送信先を選んでください") < text.index("本文")    # the summary first


def test_a_missing_value_is_asked_for_in_japanese(nurse, db):
    page = post_form(nurse, "/send", {"text": "{time}に再開します", "template_id": "0",
                                      "groups": str(group_id(db, "月水金 午前"))}
                     ).get_data(as_text=True)
    assert any("{time} の値が入力されていません" in e for e in field_errors(page, "text"))
    assert "no value" not in visible_text(page)


def test_a_failed_recipients_note_is_in_the_page_language(nurse, scenario):
    page = nurse.get(f"/broadcasts/{scenario.power_cut}").get_data(as_text=True)
    text = visible_text(page)
    assert error_policy.describe("report:0x41", "ja") in text       # the reason key
    assert error_policy.describe("cms:21", "ja") in text            # a note without one
    assert not JAPANESE_PAGE_ENGLISH.search(text), JAPANESE_PAGE_ENGLISH.search(text)


def test_the_audit_log_names_actions_and_details_in_japanese(manager):
    text = visible_text(manager.get("/admin/audit").get_data(as_text=True))
    assert "定期送信を追加" in text and "一斉送信を作成" in text
    assert "schedule_add" not in text and "parent_id" not in text and "True" not in text
    assert "None" not in text


def test_the_audit_filter_offers_the_actions_by_name(manager):
    page = manager.get("/admin/audit?action=schedule_add").get_data(as_text=True)
    assert '<option value="schedule_add" selected>定期送信を追加</option>' in page


def test_the_security_rows_are_named_in_japanese_too(manager, db):
    """Issue 12's actions and details (second factor, throttle, reads of patient data) read
    like the others on the audit page (issue 11)."""
    audit.record(db.conn, MANAGER[0], "two_factor_reset", user_id=2, username=NURSE[0])
    audit.record(db.conn, NURSE[0], "login_failed", reason="throttled", wait=30)
    audit.record(db.conn, NURSE[0], "login", method="totp")
    audit.record(db.conn, NURSE[0], "contacts_search", query="高橋", shown=16)
    audit.record(db.conn, MANAGER[0], "user_role", user_id=2, role="office", old_role="staff")
    text = visible_text(manager.get("/admin/audit").get_data(as_text=True))
    for shown in ("2段階認証をリセット", "試行が多いため待機中", "パスワードと確認コード",
                  "連絡先を検索", "検索語: 高橋", "役割: 事務", "元の役割: 職員"):
        assert shown in text, shown
    for raw in ("two_factor_reset", "throttled", "totp", "user_id", "old_role", "office"):
        assert raw not in text, raw


def test_every_audit_action_the_code_records_has_a_name():
    """A new action added anywhere (web, CLI, daemon) gets its Japanese name in the one
    wording list, or the audit page would show the raw key."""
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    source = "\n".join(p.read_text(encoding="utf-8") for folder in ("appliance", "webui")
                       for p in (root / folder).rglob("*.py"))
    recorded = set(re.findall(r'audit\.record\(\s*[^,]+,\s*[^,]+,\s*"([a-z_]+)"', source))
    recorded |= set(re.findall(r'\baction\s*=\s*"([a-z]+_[a-z_]+)"', source))
    # argparse's own actions (appliance.hotspot runs before the venv exists: no click there)
    recorded -= {"store", "store_true", "store_false", "store_const", "append", "count"}
    assert len(recorded) > 40
    assert sorted(recorded - set(wording.AUDIT_ACTIONS)) == []


def test_the_last_admin_refusal_is_in_japanese_only(manager, db):
    manager_id = users.get_user(db, MANAGER[0]).id       # users are addressed by id (issue 12)
    page = post_form(manager, f"/admin/users/{manager_id}/staff", form_page="/admin/users",
                     follow_redirects=True).get_data(as_text=True)
    text = visible_text(page)
    assert "最後の管理者の権限は外せません" in text and "cannot demote" not in text


def test_settings_explain_the_uncertain_policy_in_words(manager):
    text = visible_text(manager.get("/admin/settings").get_data(as_text=True))
    assert "緊急の送信だけ自動で送り直す" in text and "emergency" not in text


def test_dates_carry_japanese_weekdays(manager):
    text = visible_text(manager.get("/schedules").get_data(as_text=True))
    assert re.search(r"\d\d/\d\d\([月火水木金土日]\) 17:00", text)
    assert not re.search(r"\((Mon|Tue|Wed|Thu|Fri|Sat|Sun)\)", text)


# -- finding 6: a natural preview -----------------------------------------------------

def test_the_template_preview_reads_like_a_real_message(nurse):
    page = post_form(nurse, "/templates/new", {
        "name": "変更", "text": "【{clinic}】{name}様 {time}開始です", "preview": "1"}
    ).get_data(as_text=True)
    assert "【つなぐ透析クリニック】山田 花子様 14:00開始です" in page
    assert "山田山田" not in page and "23:59" not in page


# -- finding 7: the confirm page ----------------------------------------------------------

def test_the_confirm_page_names_the_groups_and_shows_one_preview_per_distinct_text(nurse, db):
    page = post_form(nurse, "/send", {
        "text": "【{clinic}】停電のため中止です", "template_id": "0",
        "groups": [str(group_id(db, "月水金 午前")), str(group_id(db, "テスト"))]}
    ).get_data(as_text=True)
    text = visible_text(page)
    assert "月水金 午前" in text and "テスト" in text
    assert text.count("停電のため中止です") == 1
    assert "全員に同じ文面" in text


def test_personalised_texts_are_previewed_each(nurse, db):
    page = post_form(nurse, "/send", {"text": "{name}様 中止です", "template_id": "0",
                                      "groups": str(group_id(db, "テスト"))}
                     ).get_data(as_text=True)
    assert len(re.findall(r'<div class="sms">', page)) == 3


# -- finding 8: templates carry their settings ------------------------------------------

def test_a_template_keeps_its_priority_choices_and_groups(nurse, db):
    response = post_form(nurse, "/templates/new", {
        "name": "台風", "text": "【{clinic}】台風のため休診します", "priority": "emergency",
        "choices": "来院できる\n来院できない", "groups": [str(group_id(db, "本院"))]})
    assert response.status_code == 302
    saved = templates.get_template_by_name(db, "台風")
    assert saved.priority == "emergency" and saved.choices == ("来院できる", "来院できない")
    assert saved.group_ids == (group_id(db, "本院"),)
    api = nurse.get(f"/api/templates/{saved.id}").get_json()
    assert api["priority"] == "emergency" and api["choices"] == "来院できる\n来院できない"
    assert api["groups"] == [group_id(db, "本院")]


def test_using_a_template_without_javascript_sets_its_priority_and_choices(nurse, db):
    power_cut = templates.get_template_by_name(db, "停電・透析中止")
    page = post_form(nurse, "/send", {"template_id": str(power_cut.id), "use_template": "1",
                                      "text": ""}).get_data(as_text=True)
    assert re.search(r'value="emergency"[^>]*checked|checked[^>]*value="emergency"', page)
    assert "来院できない" in page


def test_the_choices_box_has_no_grey_example_text(nurse):
    page = nurse.get("/send").get_data(as_text=True)
    box = re.search(r'<textarea[^>]*id="choices"[^>]*>', page).group(0)
    assert "placeholder" not in box


# -- finding 10: variant kanji ----------------------------------------------------------

@pytest.mark.parametrize("query, variant", [("高橋", "髙橋"), ("山崎", "山﨑"), ("髙橋", "高橋")])
def test_search_finds_names_written_with_variant_kanji(nurse, query, variant):
    page = nurse.get(f"/contacts?q={query}").get_data(as_text=True)
    assert variant in page and query in page


# -- finding 13: one meaning per word --------------------------------------------------

def test_history_and_the_broadcast_page_count_with_the_same_words(nurse, scenario):
    history = visible_text(nurse.get("/broadcasts").get_data(as_text=True))
    detail = visible_text(nurse.get(f"/broadcasts/{scenario.power_cut}").get_data(as_text=True))
    assert "送信済み" not in history and "送信済み" not in detail
    assert "個人" not in history
    for word in ("人数", "配達済み", "配達確認待ち", "届かず", "返信あり"):
        assert word in history, word
    for word in ("配達済み", "配達確認待ち", "届かず"):
        assert word in detail, word


# -- finding 14 -------------------------------------------------------------------------

def test_logging_out_says_you_are_logged_out(nurse):
    response = post_form(nurse, "/logout", form_page="/", follow_redirects=True)
    assert "ログアウトしました" in response.get_data(as_text=True)


def test_the_language_switch_returns_to_the_same_page(nurse):
    response = nurse.post("/language", data={"lang": "en", "next": "/contacts?q=高橋",
                                             "csrf_token": csrf_token(nurse, "/contacts")})
    from urllib.parse import unquote
    assert unquote(response.headers["Location"]) == "/contacts?q=高橋"
    elsewhere = nurse.post("/language", data={"lang": "ja", "next": "https://evil.example/",
                                              "csrf_token": csrf_token(nurse, "/contacts")})
    assert elsewhere.headers["Location"] == "/"


def test_a_generated_password_is_shown_large_in_a_clear_font(manager):
    page = post_form(manager, "/admin/users", {"username": "kango2", "role": "staff",
                                               "password": ""}).get_data(as_text=True)
    assert re.search(r'<code class="secret"[^>]*>[^<]{12,}</code>', page)


# -- extras: the inbox, import, contacts ----------------------------------------------

def test_the_menu_and_the_dashboard_count_unhandled_replies(nurse):
    page = nurse.get("/").get_data(as_text=True)
    assert re.search(r'受信箱\s*<span class="count"[^>]*>7</span>', page)
    assert "未対応の返信 7件" in visible_text(page)


def test_the_unhandled_filter_lists_only_what_nobody_has_handled(nurse, db):
    inbound = db.conn.execute("SELECT id FROM inbound_messages ORDER BY id").fetchone()[0]
    post_form(nurse, f"/inbox/{inbound}/handled", form_page="/inbox")
    page = nurse.get("/inbox?unhandled=1").get_data(as_text=True)
    assert page.count('class="unhandled"') == 6 and 'class="handled"' not in page


def test_a_reply_to_one_patient_goes_through_the_queue_and_is_audited(nurse, db):
    inbound = db.conn.execute("SELECT id, number FROM inbound_messages WHERE text LIKE "
                              "'行けません%'").fetchone()
    response = post_form(nurse, f"/inbox/{inbound['id']}/reply", {
        "text": "明日の午前に来てください。"}, form_page="/inbox")
    assert response.status_code == 302
    row = db.conn.execute("SELECT b.id, b.created_by, r.phone, r.text FROM broadcasts b JOIN "
                          "recipients r ON r.broadcast_id = b.id ORDER BY b.id DESC LIMIT 1"
                          ).fetchone()
    assert row["phone"] == inbound["number"] and row["created_by"] == NURSE[0]
    assert row["text"] == "明日の午前に来てください。"
    actions = [r[0] for r in db.conn.execute("SELECT action FROM audit_log ORDER BY id")]
    assert actions[-2:] == ["broadcast_create", "inbound_reply"]
    handled = db.conn.execute("SELECT handled_by FROM inbound_messages WHERE id = ?",
                              [inbound["id"]]).fetchone()[0]
    assert handled == NURSE[0]


def test_an_empty_reply_is_refused_and_nothing_queued(nurse, db):
    inbound = db.conn.execute("SELECT id FROM inbound_messages").fetchone()[0]
    before = db.conn.execute("SELECT count(*) FROM broadcasts").fetchone()[0]
    page = post_form(nurse, f"/inbox/{inbound}/reply", {"text": "  "}, form_page="/inbox",
                     follow_redirects=True).get_data(as_text=True)
    assert "本文が空です" in page
    assert db.conn.execute("SELECT count(*) FROM broadcasts").fetchone()[0] == before


def test_the_import_page_offers_a_sample_csv_that_imports_cleanly(manager, db):
    # The office manager imports the roster (a nurse may not: [web] roster_roles, issue 12).
    page = manager.get("/contacts/import").get_data(as_text=True)
    assert 'href="/contacts/import/sample.csv"' in page
    sample = manager.get("/contacts/import/sample.csv")
    assert sample.headers["Content-Type"].startswith("text/csv")
    from appliance import contacts
    preview = contacts.preview(db, sample.get_data())
    assert preview.error_count == 0 and preview.new >= 2


def test_importing_the_good_rows_lists_the_skipped_ones(manager, db):
    data = ("氏名,携帯電話\n新規 一郎,090-3000-0001\n固定 電話,03-1234-5678\n新規 二郎,"
            "090-3000-0002\n").encode("cp932")
    from io import BytesIO
    page = manager.post("/contacts/import", data={
        "file": (BytesIO(data), "roster.csv"),
        "csrf_token": csrf_token(manager, "/contacts/import")},
        content_type="multipart/form-data").get_data(as_text=True)
    assert "問題のない2行だけ取り込む" in page
    done = post_form(manager, "/contacts/import/confirm", {"skip_errors": "1"},
                     form_page="/contacts/import", follow_redirects=True).get_data(as_text=True)
    assert "取り込みました：新規 2件" in done
    assert "取り込まなかった行" in done and "3行目" in done and "固定 電話" in done
    names = {r[0] for r in db.conn.execute("SELECT name FROM contacts")}
    assert {"新規 一郎", "新規 二郎"} <= names and "固定 電話" not in names


def test_contact_columns_sort_and_numbers_are_tel_links(nurse):
    page = nurse.get("/contacts?sort=phone&dir=desc").get_data(as_text=True)
    phones = re.findall(r'href="tel:(0[789]0-\d{4}-\d{4})"', page)
    assert len(phones) > 100 and phones == sorted(phones, reverse=True)
    assert 'aria-sort="descending"' in page


def test_the_progress_page_explains_each_state(nurse, scenario):
    page = nurse.get(f"/broadcasts/{scenario.power_cut}").get_data(as_text=True)
    assert 'title="携帯電話会社に渡しました。' in page
    assert "状態の意味" in page


def queued_parts(db) -> int:
    """Parts already queued (the scenario's): the queue sends them first."""
    return db.conn.execute("SELECT coalesce(sum(parts_count), 0) FROM recipients "
                           "WHERE state = 'queued'").fetchone()[0]


def test_the_broadcast_api_gives_the_remaining_time(nurse, db):
    from tests.queue_rows import add_broadcast
    ahead = queued_parts(db)
    bid, _ = add_broadcast(db, 60)
    data = nurse.get(f"/api/broadcasts/{bid}").get_json()
    minutes = -(-(ahead + 60) // 30)             # the queue ahead and 60 parts, 30 a minute
    assert data["remaining_minutes"] == minutes
    page = nurse.get(f"/broadcasts/{bid}").get_data(as_text=True)
    assert f"あと約{minutes}分で全員に送り終わります" in page
    assert data["remaining"] == f"あと約{minutes}分で全員に送り終わります。"
    assert json.dumps(data, ensure_ascii=False)


def test_the_remaining_time_counts_the_queue_ahead_and_not_what_waits_for_tomorrow(nurse, db):
    # Found walking the demo: a second broadcast said "about 7 minutes until everyone is
    # sent" while a first one was still sending and 99 of its own waited for tomorrow.
    from tests.queue_rows import add_broadcast
    ahead = queued_parts(db)
    first, _ = add_broadcast(db, 60)
    second, _ = add_broadcast(db, 30)
    assert nurse.get(f"/api/broadcasts/{first}").get_json()["remaining_minutes"] == \
        -(-(ahead + 60) // 30)
    assert nurse.get(f"/api/broadcasts/{second}").get_json()["remaining_minutes"] == \
        -(-(ahead + 90) // 30)                   # behind the first: 30 parts more
    # A broadcast larger than what the SIM's daily limit has left today.
    big, _ = add_broadcast(db, 300)
    data = nurse.get(f"/api/broadcasts/{big}").get_json()
    held = data["counts"]["budget_wait"]
    assert 0 < held < 300
    minutes = -(-(ahead + 90 + 300 - held) // 30)   # the queue ahead, and its own for today
    assert data["remaining_minutes"] == minutes
    assert data["remaining"] == f"本日の送信上限内の分は、あと約{minutes}分で送り終わります。"
    page = nurse.get(f"/broadcasts/{big}").get_data(as_text=True)
    assert data["remaining"] in page and "全員に送り終わります" not in page


def test_the_confirm_page_says_a_one_part_text_would_reach_everyone_now(nurse, app, db,
                                                                       scenario):
    from appliance import budget
    from tests.queue_rows import add_broadcast
    clock = app.extensions["tsunagu_clock"]
    left = sum(budget.capacity(db.conn, scenario.config, clock()).values()) - queued_parts(db)
    add_broadcast(db, left - 40)                # 40 parts of today's room after the queue
    group = group_id(db, "月水金 午前")          # 33 people: 66 parts in two, 33 in one
    two_parts = "停電のため本日の透析は中止です。" + "追って連絡します" * 8    # 80 characters
    page = post_form(nurse, "/send", {"text": two_parts, "template_id": "0",
                                      "groups": [str(group)]}).get_data(as_text=True)
    text = visible_text(page)
    assert "最初の20名（全33名中）に今送り" in text
    assert "本文をあと10文字短くして1通（70文字以内）にすると、今すぐ全員（33名）に送れます" in text
    assert "返信の選択肢を外すだけでも" not in text      # it has none
    # The power-cut text is one part; its reply choices make it two.
    power_cut = "停電のため本日の透析は中止です。追って連絡します。自宅でお待ちください。"
    page = post_form(nurse, "/send", {"text": power_cut,
                                      "choices": "来院できる\n来院できない\n連絡がほしい",
                                      "template_id": "0", "groups": [str(group)]}
                     ).get_data(as_text=True)
    assert "返信の選択肢を外すだけでも1通になります。" in visible_text(page)


def test_the_confirm_page_says_the_room_left_today_goes_first_to_what_is_waiting(nurse, db):
    from tests.queue_rows import add_broadcast
    add_broadcast(db, 300)                       # more than the SIM has left today, waiting
    page = post_form(nurse, "/send", {"text": "本日は中止です", "template_id": "0",
                                      "groups": [str(group_id(db, "月水金 午前"))]}
                     ).get_data(as_text=True)
    text = visible_text(page)
    assert "先に待っている送信に使われます" in text and "今は誰にも送れず" in text
    assert "最初の0名" not in text
    assert "通を使います" not in text   # not "uses N of the M left" when it does not fit
    # The time to send is the clock time the last one can go, not ~1,440 minutes.
    assert "上限のため、最後の方へは" in text and "送信にかかる時間：約" not in text
