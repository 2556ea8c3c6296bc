"""The web UI in Debian's Chromium, driven by Playwright, against the real stack: `tsunagu web`,
`tsunagu daemon` and a simulated modem as subprocesses. Screenshots of the main pages are
saved under test-output/screenshots/ for people to look at."""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import expect

from appliance import config as config_mod, contacts, templates, users
from appliance.db import connect
from tests.daemon_harness import (ROOT, DaemonProcess, Sim, stop_process, tsunagu_command,
                                  wait_until, write_config)
from tests.helpers import free_port
from tests.web_support import enrol_two_factor

CHROMIUM = "/usr/bin/chromium"
SHOTS = ROOT / "test-output" / "screenshots"
ROSTER = Path(__file__).parent / "data" / "roster_200_cp932.csv"

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                 reason="Debian's chromium is not installed (./scripts/test installs it)")]


@pytest.fixture
def stack(tmp_path):
    sim = Sim(tmp_path, "modem0", send_delay=0.02, report_delay=0.1).start()
    path = write_config(tmp_path, [sim], pace=6000)
    with open(path, "a", encoding="utf-8") as f:
        f.write('\n[test]\ngroup = "テスト"\n')
    config = config_mod.load(path)
    db = connect(config.database)
    _, password = users.create_user(db, "nurse", "admin", actor="test")
    enrol_two_factor(db, "nurse", time.time())  # an admin must have a second factor
    for t in json.loads((ROOT / "appliance" / "seed" / "templates_ja.json").read_text("utf-8")):
        templates.create_template(db, t["name"], t["text"], actor="test",
                                  clinic=config.clinic_name)
    test_group = contacts.create_group(db, "テスト", actor="test", kind="test")
    contacts.add_contact(db, name="受付の携帯", phone="090-1111-0001", actor="test",
                         group_ids=[test_group.id])
    totp = pyotp.TOTP(db.conn.execute(
        "SELECT totp_secret FROM users WHERE username = 'nurse'").fetchone()[0])
    db.conn.close()
    daemon = DaemonProcess(path, tmp_path).start()
    port = free_port()
    web_log = open(tmp_path / "web.stderr", "wb")
    web = subprocess.Popen([*tsunagu_command(), "web", "--config", str(path), "--port", str(port)],
                           stdout=subprocess.DEVNULL, stderr=web_log, cwd=ROOT)

    def up() -> bool:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2)
            return True
        except OSError:
            return False
    try:
        wait_until(up, 30, "the web UI to answer")
        yield {"url": f"http://127.0.0.1:{port}", "password": password, "sim": sim,
               "config": config, "totp": totp}
    finally:
        stop_process(web)
        web_log.close()
        daemon.stop()
        sim.stop()


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1200, "height": 900}, locale="ja-JP")
        page = context.new_page()
        page.set_default_timeout(20_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()


def enter_code(page, stack) -> None:
    """The second factor's page, as the nurse types the code her app shows."""
    page.wait_for_selector("#code")
    page.fill("#code", stack["totp"].now())
    page.click("button.primary")


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_a_nurse_imports_the_roster_sends_a_broadcast_and_sees_replies(stack, page):
    url = stack["url"]
    page.goto(url + "/")
    assert "/login" in page.url
    shot(page, "01-login")
    page.fill("#username", "nurse")
    page.fill("#password", stack["password"])
    page.click("button.primary")
    enter_code(page, stack)
    page.wait_for_selector("text=送信サービス")
    shot(page, "02-dashboard")

    page.goto(url + "/contacts/import")
    page.set_input_files("#file", str(ROSTER))
    page.click("text=ファイルを確認する")
    page.wait_for_selector("#preview")
    assert "問題なし 200行" in page.inner_text("#preview")
    shot(page, "03-import-preview")
    page.click("text=200行を取り込む")
    page.wait_for_selector("text=取り込みました")
    shot(page, "04-contacts")

    page.goto(url + "/send")
    page.select_option("#template_id", label="停電・透析中止")
    expect(page.locator("#text")).to_have_value(re.compile("停電"))
    page.get_by_label(re.compile("^月水金 夜間")).check()     # groups are check boxes
    page.fill("#choices", "来院できる\n来院できない\n連絡がほしい")
    page.check("#priority-0")
    page.wait_for_selector("#counter:has-text('文字')")
    shot(page, "05-compose")
    page.click("text=送信前の確認へ")
    page.wait_for_selector("#confirm-form")
    confirm_text = page.inner_text("main")
    assert "名" in confirm_text and "プレビュー" in confirm_text
    shot(page, "06-confirm")
    page.click("#confirm-form button")
    page.wait_for_selector("#progress")
    for state in ("queued", "sending"):
        expect(page.locator(f'[data-count="{state}"]')).to_have_text("0", timeout=120_000)
    shot(page, "07-broadcast-done")

    people = page.locator("table.people tbody tr")
    first_number = people.nth(0).locator("td").nth(1).inner_text().strip()
    stack["sim"].control().inject_sms(sender="+81" + first_number.replace("-", "")[1:],
                                      text="１ 行けます")
    expect(page.locator('[data-count="acknowledged"]')).to_have_text("1", timeout=30_000)
    page.reload()
    assert "来院できる: 1" in page.inner_text(".tally")
    shot(page, "08-acknowledged")

    page.click("text=電話リスト（印刷）")
    page.wait_for_selector(".calllist")
    rows = page.locator(".calllist tbody tr").count()
    assert rows >= 1 and first_number not in page.inner_text(".calllist tbody")
    shot(page, "09-call-list")
    page.emulate_media(media="print")
    shot(page, "10-call-list-print")
    page.emulate_media(media="screen")

    page.goto(url + "/inbox")
    assert "行けます" in page.inner_text("main")
    shot(page, "11-inbox")
    for path, name in [("/templates", "12-templates"), ("/broadcasts", "13-history"),
                       ("/admin/audit", "14-audit"), ("/admin/settings", "15-settings")]:
        page.goto(url + path)
        shot(page, name)


def test_the_ui_fits_a_phone_screen_and_switches_to_english(stack, page):
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(stack["url"] + "/login?lang=en")
    assert page.locator("h1").inner_text() == "Log in"
    page.fill("#username", "nurse")
    page.fill("#password", stack["password"])
    page.click("button.primary")
    enter_code(page, stack)
    page.wait_for_selector("text=Sending service")
    page.wait_for_load_state("load")  # the stylesheet, before measuring the layout
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1
    shot(page, "20-phone-dashboard-en")


def test_the_send_path_works_without_javascript(stack):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(java_script_enabled=False, locale="ja-JP")
        page = context.new_page()
        page.set_default_timeout(20_000)
        try:
            page.goto(stack["url"] + "/login")
            page.fill("#username", "nurse")
            page.fill("#password", stack["password"])
            page.click("button.primary")
            enter_code(page, stack)
            page.goto(stack["url"] + "/send")
            page.select_option("#template_id", label="訓練")
            page.click("text=このテンプレートを使う")     # a plain form post without JS
            assert "訓練" in page.input_value("#text")
            page.check("#drill")
            page.click("text=送信前の確認へ")
            page.wait_for_selector("#confirm-form")
            page.click("#confirm-form button")
            page.wait_for_selector("#progress")
            assert "/broadcasts/" in page.url
        finally:
            context.close()
            browser.close()
