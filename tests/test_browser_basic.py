"""The web UI alone in Debian's Chromium (no daemon, no modem): the app served by waitress in a
thread, as `tsunagu web` serves it. Screenshots go to test-output/screenshots/basic-*.png.

The full stack (daemon, simulated modem, sending) is driven by tests/test_browser.py.
"""
from __future__ import annotations

import os

import pytest

from appliance import config as config_mod, users
from appliance.db import connect
from tests.nurse_scenario import CHROMIUM, SHOTS, chromium_browser, served
from tests.web_support import CONFIG, DATA
from webui import create_app

PASSWORD = "spring-rain-2026"

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                 reason="Debian's chromium is not installed (./scripts/test installs it)")]


@pytest.fixture
def url(tmp_path):
    """The app on a free port, served by waitress in a thread as `tsunagu web` serves it."""
    path = tmp_path / "tsunagu.toml"
    path.write_text(CONFIG, encoding="utf-8")
    config = config_mod.load(path)
    db = connect(config.database)
    # 事務 (office): imports the roster; no admin pages here, so no second factor needed.
    users.create_user(db, "nurse", "office", password=PASSWORD, actor="test")
    db.conn.close()
    with served(create_app(config)) as address:
        yield address


@pytest.fixture
def browser():
    with chromium_browser() as chromium:
        yield chromium


def open_page(browser, width: int = 1200, height: int = 900):
    context = browser.new_context(viewport={"width": width, "height": height}, locale="ja-JP")
    page = context.new_page()
    page.set_default_timeout(15_000)
    return context, page


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"basic-{name}.png"), full_page=True)


def log_in(page, url: str) -> None:
    page.goto(url + "/")
    assert "/login" in page.url
    page.fill("#username", "nurse")
    page.fill("#password", PASSWORD)
    page.click("button.primary")
    page.wait_for_selector("nav")


def test_a_nurse_imports_a_cp932_roster_and_finds_a_patient(url, browser):
    context, page = open_page(browser)
    try:
        page.goto(url + "/login")
        shot(page, "01-login")
        log_in(page, url)
        assert "現在送信できません" in page.inner_text("[role=alert]")  # no daemon is running
        shot(page, "02-dashboard-cannot-send")

        page.goto(url + "/contacts/import")
        page.set_input_files("#file", str(DATA / "messy_14_cp932.csv"))
        page.click("text=ファイルを確認する")
        page.wait_for_selector("#preview")
        assert page.locator("tr.row-error").count() >= 3
        assert page.locator("text=行を取り込む").count() == 0       # nothing to confirm
        shot(page, "03-import-preview-problems")

        page.set_input_files("#file", str(DATA / "roster_200_cp932.csv"))
        page.click("text=ファイルを確認する")
        page.click("text=200行を取り込む")
        page.wait_for_selector("text=取り込みました")
        page.fill("input[name=q]", "たかはし")                      # kana search, in hiragana
        page.click("form.search button")
        names = page.locator("table.people tbody tr td:first-child").all_inner_texts()
        assert names and all(n[:2] in ("高橋", "髙橋") for n in names)   # 髙: same reading
        shot(page, "04-contacts-search")

        page.goto(url + "/templates/new")
        page.fill("#name", "停電")
        page.fill("#text", "【{clinic}】{name}様 停電のため本日の透析は中止です。")
        page.click("button[name=preview]")
        assert "山田 花子様" in page.inner_text(".sms")      # as a patient reads it
        assert "テンプレート名" in page.inner_text("label[for=name]")
        page.wait_for_selector("#counter:has-text('1通')")         # the live counter (JS)
        shot(page, "05-template-preview")
    finally:
        context.close()


def test_on_a_phone_a_landline_is_refused_beside_its_field(url, browser):
    context, page = open_page(browser, width=390, height=844)
    try:
        log_in(page, url)
        page.goto(url + "/contacts/new")
        page.fill("#name", "固定 電話")
        page.fill("#phone", "03-1234-5678")
        page.click("button.primary")
        error = page.locator(".field.has-error:has(#phone) .error")
        assert "固定電話" in error.inner_text()
        page.wait_for_load_state("load")  # the stylesheet, before measuring the layout
        assert page.evaluate("document.documentElement.scrollWidth") <= 391
        shot(page, "06-phone-contact-error")
    finally:
        context.close()
