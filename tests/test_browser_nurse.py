"""Issue 11 in Debian's Chromium: the web UI as a stressed nurse and an office manager meet it
on the day of a power cut (tests/nurse_scenario.py), at a reception PC's 1280×800 and a
phone's 390×844. One browser for the whole module; each test opens its own context.

The walk of every page (test_walk_…) fails on horizontal overflow, on Latin-script words
in the Japanese pages outside an allowed list, and on axe-core serious or critical
violations, and saves a screenshot of each page at both widths under
test-output/screenshots/walk-*.png for people to look at.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.nurse_scenario import (CHROMIUM, MANAGER, NURSE, SHOTS, build, chromium_browser,
                                  manager_code, served)
from webui import create_app

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SHOT_HEIGHT = 6000

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                 reason="Debian's chromium is not installed (./scripts/test installs it)")]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    return build(tmp_path_factory.mktemp("nurse"))


@pytest.fixture(scope="module")
def url(scenario):
    with served(create_app(scenario.config)) as address:
        yield address


@pytest.fixture(scope="module")
def chromium():
    with chromium_browser() as browser:
        yield browser


def log_in(page, url: str, who, code=None) -> None:
    """The login form as a person fills it; then the second factor's page when *code*."""
    page.goto(url + "/login")
    page.fill("#username", who[0])
    page.fill("#password", who[1])
    page.click("button.primary")
    if code is not None:
        page.wait_for_selector("#code")
        page.fill("#code", code())
        page.click("button.primary")
    page.wait_for_selector("nav")


@pytest.fixture(scope="module")
def manager_session(chromium, url, scenario):
    """The office manager logged in once, with her password and then her authenticator's
    code (an admin has a second factor, and a code is accepted once): each of her tabs
    opens with this session."""
    context = chromium.new_context(viewport=DESKTOP, locale="ja-JP")
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        log_in(page, url, MANAGER, code=lambda: manager_code(scenario.config))
        return context.storage_state()
    finally:
        context.close()


class Visit:
    """One person's browser tab, logged in; page errors (uncaught JS) are collected."""

    def __init__(self, chromium, url: str, who=NURSE, viewport=DESKTOP, *,
                 manager_session=None) -> None:
        session = manager_session if who == MANAGER else None
        self.context = chromium.new_context(viewport=viewport, locale="ja-JP",
                                            storage_state=session)
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.url = url
        if who and session is None:
            log_in(self.page, url, who)

    def go(self, path: str):
        self.page.goto(self.url + path)
        return self.page

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(chromium, url, manager_session):
    opened = []

    def open_(who=NURSE, viewport=DESKTOP) -> Visit:
        opened.append(Visit(chromium, url, who, viewport, manager_session=manager_session))
        return opened[-1]
    yield open_
    for v in opened:
        v.close()


def in_viewport(page, selector: str) -> bool:
    box = page.locator(selector).first.bounding_box()
    size = page.viewport_size
    # A pixel of slack: scrolled to the top, a box can sit at y = -0.03 (sub-pixel layout).
    return box is not None and -1 <= box["y"] and box["y"] + box["height"] <= size["height"] + 1


# -- finding 3: the schedules page ------------------------------------------------------------

def test_choosing_a_template_on_the_schedule_form_shows_its_text_without_a_script_error(visit):
    v = visit()
    page = v.go("/schedules")
    page.select_option("#template_id", label="復旧・通常どおり")
    page.wait_for_selector("#schedule-preview:has-text('本日の透析は通常どおり')")
    assert "つなぐ透析クリニック" in page.inner_text("#schedule-preview")
    # A template a schedule cannot fill ({date}) says so, in Japanese, before it is saved.
    page.select_option("#template_id", label="採血日のお知らせ")
    page.wait_for_selector("#schedule-problem:has-text('{date}')")
    assert "定期送信" in page.inner_text("#schedule-problem")
    assert not page.is_visible("#schedule-preview")
    page.select_option("#template_id", index=0)
    page.fill("#text", "【{clinic}】{name}様 明日は採血日です。")
    page.wait_for_selector("#schedule-preview:has-text('山田 花子様 明日は採血日です')")
    assert v.errors == []


def test_the_schedule_list_says_when_and_what_in_words(visit):
    page = visit().go("/schedules")
    row = page.inner_text("table.schedules tbody tr:first-child")
    assert "火・日 17:00" in row and "明日は採血日です" in row
    assert "tue" not in row and "* *" not in row


# -- finding 4: an error sits where the eye is -------------------------------------------

def test_a_compose_error_is_shown_where_the_nurse_is_looking(visit):
    page = visit().go("/send")
    page.select_option("#template_id", label="停電・透析中止")
    expect(page.locator("#text")).to_have_value(re.compile("停電"))
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.click("text=送信前の確認へ")
    page.wait_for_selector(".error-summary")
    assert in_viewport(page, ".error-summary")
    summary = page.inner_text(".error-summary")
    assert "送信先を選んでください" in summary and "choose" not in summary


# -- findings 8 and 9: templates carry their settings; groups are check boxes -------------

def test_choosing_the_power_cut_template_sets_emergency_choices_and_groups(visit):
    page = visit().go("/send")
    page.select_option("#template_id", label="停電・透析中止")
    expect(page.locator("#text")).to_have_value(re.compile("停電"))
    assert page.is_checked("input[name=priority][value=emergency]")
    assert page.input_value("#choices") == "来院できる\n来院できない\n連絡がほしい"


def test_the_counter_counts_the_message_as_the_confirm_page_shows_it(visit):
    """{clinic} counted as the clinic's name, with the reply choices: the same number of
    characters on both pages (finding 14: 66 on one, 68 on the other)."""
    page = visit().go("/send")
    page.select_option("#template_id", label="停電・透析中止")
    expect(page.locator("#text")).to_have_value(re.compile("停電"))
    expect(page.locator("#counter")).to_have_text(re.compile(r"^[1-9]\d*文字"))
    counted = int(re.match(r"(\d+)文字", page.inner_text("#counter")).group(1))
    page.check("input[name=groups] >> nth=2")
    page.click("text=送信前の確認へ")
    page.wait_for_selector("#confirm-form")
    shown = int(re.search(r"(\d+)文字", page.inner_text(".sms .to")).group(1))
    assert counted == shown
    assert "{clinic}" not in page.inner_text(".sms pre")


@pytest.mark.parametrize("path", ["/send", "/contacts/new", "/schedules"])
def test_groups_are_check_boxes_and_every_group_can_be_seen(visit, path):
    page = visit().go(path)
    assert page.locator("select[multiple]").count() == 0
    boxes = page.locator("input[type=checkbox][name=groups]")
    assert boxes.count() >= 7
    last = boxes.nth(boxes.count() - 1)
    assert last.is_visible()
    label = page.locator(f"label[for='{last.get_attribute('id')}']").inner_text()
    assert label.strip()


# -- finding 11: a phone ----------------------------------------------------------------

def test_on_a_phone_buttons_fit_numbers_call_and_the_menu_is_short(visit, scenario):
    v = visit(viewport=PHONE)
    page = v.go("/inbox")
    button = page.locator("text=対応済みにする").first
    box = button.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert box["height"] < 60, "the button's text wraps"
    message = page.locator("td.msg").first.bounding_box()
    assert message["width"] > 150, "the message wraps every two characters"
    assert page.locator("header.top").bounding_box()["height"] < 130, "the menu takes many lines"
    page = v.go(f"/broadcasts/{scenario.power_cut}/calls")
    rows = page.locator("table.calls tbody tr")
    assert page.locator("table.calls a[href^='tel:']").count() == rows.count()
    record = page.locator("table.calls button:has-text('記録する')").first.bounding_box()
    assert record["height"] < 60 and record["width"] > 60
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1


# -- finding 14 ---------------------------------------------------------------------------

def test_the_daily_limit_notice_comes_and_goes_with_the_live_counts(visit, scenario):
    # The page showed 上限待ち and its notice only as they were when it loaded: an emergency
    # queued ahead that spends today's room left it saying nothing was held back.
    from appliance import budget
    from appliance.db import connect, write
    from tests.queue_rows import add_broadcast
    db = connect(scenario.config.database)
    mine, _ = add_broadcast(db, 5, first_number=900)
    page = visit().go(f"/broadcasts/{mine}")
    notice = page.locator("#budget-notice")
    expect(notice).to_be_hidden()
    left = sum(budget.capacity(db.conn, scenario.config, time.time()).values())
    queued = db.conn.execute("SELECT sum(parts_count) FROM recipients WHERE state = 'queued' "
                             "AND priority_rank = 0").fetchone()[0] or 0
    ahead, _ = add_broadcast(db, left - queued, priority="emergency", first_number=1000)
    try:
        expect(notice).to_be_visible(timeout=10_000)
        expect(notice).to_contain_text("5件がSIMの1日の送信上限のため待っています")
        expect(page.locator('[data-count="budget_wait"]')).to_have_text("5")
        with write(db) as conn:   # the emergency is cancelled: the room is this one's again
            conn.execute("UPDATE broadcasts SET state = 'cancelled' WHERE id = ?", [ahead])
        expect(notice).to_be_hidden(timeout=10_000)
        expect(page.locator("li.s-budget_wait")).to_be_hidden()
    finally:
        with write(db) as conn:
            for bid in (mine, ahead):
                conn.execute("DELETE FROM recipients WHERE broadcast_id = ?", [bid])
                conn.execute("DELETE FROM broadcasts WHERE id = ?", [bid])
        db.conn.close()


def test_the_language_switch_stays_on_the_page(visit):
    page = visit(who=MANAGER).go("/contacts?q=高橋")
    page.click("header button:has-text('English')")
    page.wait_for_selector("html[lang=en]")
    assert page.url.endswith("/contacts?q=%E9%AB%98%E6%A9%8B") or "/contacts" in page.url
    assert "/contacts" in page.url
    page.click("header button:has-text('日本語')")
    page.wait_for_selector("html[lang=ja]")


def test_logging_out_says_so(visit):
    page = visit().go("/")
    page.click("header button:has-text('ログアウト')")
    page.wait_for_selector("text=ログアウトしました")


# -- keyboard only ------------------------------------------------------------------------

def tab_to(page, selector: str, limit: int = 120) -> None:
    """Press Tab until *selector* has the focus, as a keyboard user would."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_the_send_flow_works_with_the_keyboard_alone(visit):
    page = visit().go("/send")
    tab_to(page, "#template_id")
    page.keyboard.press("ArrowDown")          # the first template, by keyboard
    tab_to(page, "#text")
    page.keyboard.type("【訓練】キーボードだけで送ります。")
    tab_to(page, "input[name=drill]")
    page.keyboard.press("Space")
    tab_to(page, "button.primary.big")
    page.keyboard.press("Enter")
    page.wait_for_selector("#confirm-form")
    tab_to(page, "#confirm-form button")
    page.keyboard.press("Enter")
    page.wait_for_selector("#progress")
    assert "/broadcasts/" in page.url


# -- the walk of every page ---------------------------------------------------------------

# Words in Latin script that belong in a Japanese page: names of things, units, formats.
ALLOWED_LATIN = {
    "SMS", "SIM", "SIMs", "CSV", "Excel", "UTF", "Shift_JIS", "ID", "MB", "dBm", "English",
    "LAN", "USB", "PIN", "A4", "HH", "MM", "YYYY", "DD", "No", "Asia", "Tokyo", "HTTPS",
    "NTT", "DOCOMO", "KDDI", "SoftBank", "Quectel", "EC25", "JP",
    MANAGER[0], NURSE[0], "modem0", "test", "seed", "daemon", "cli",
    "sms",   # the audit log's actor for an SMS command from an unregistered number
    "reminders", "api",   # the audit log's actors: the reminders job, an API token (api:NAME)
    # What the clinic's other systems are configured with (the admin's API pages).
    "API", "URL", "JSON", "POST", "Webhook",
}
LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# Not words: placeholders as typed ({name}), addresses and paths, error codes (0x41), file
# names, and the commands an administrator types at the appliance (tsunagu emergency-codes new).
NOT_WORDS = re.compile(r"\{[a-z_]+\}|https?://\S*|(?:/[\w.-]+)+|0x[0-9A-Fa-f]+|#\d+|\bP\d{4}\b|"
                       r"[\w.-]+\.(?:csv|toml|db)\b|\btsunagu(?: [a-z][\w-]*)+")


# Table cells squeezed so narrow that their words stand one or two characters a line (the
# issue's "buttons wrap one character per line" at 390 px): a few examples.
SQUEEZED = """() => {
  const found = [];
  for (const cell of document.querySelectorAll("td, th")) {
    const box = cell.getBoundingClientRect();
    const text = cell.innerText.trim();
    if (box.width === 0 || text.length < 6) continue;
    const head = cell.closest("thead");   // a stacked table's header: hidden off the page
    if (head && head.getBoundingClientRect().width <= 1) continue;
    const line = parseFloat(getComputedStyle(cell).lineHeight) || 24;
    if (box.width < 64 && box.height > 4 * line) found.push(text.slice(0, 12));
  }
  return found.slice(0, 3);
}"""


# Visible text set in less than 16 px (the floor for older eyes): a few examples.
SMALL_TEXT = """() => {
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode() && found.length < 5) {
    const node = walker.currentNode, el = node.parentElement;
    if (!node.textContent.trim() || !el || !el.getClientRects().length) continue;
    if (el.closest('.visually-hidden')) continue;
    const size = parseFloat(getComputedStyle(el).fontSize);
    if (size < 15.95) found.push(`${el.tagName.toLowerCase()} ${size}px「${node.textContent.trim().slice(0, 12)}」`);
  }
  return found;
}"""


def latin_words(text: str) -> set[str]:
    return {w for w in LATIN_WORD.findall(NOT_WORDS.sub(" ", text)) if w not in ALLOWED_LATIN}


def pages(scenario) -> list[tuple[str, str]]:
    b = scenario.power_cut
    return [("dashboard", "/"), ("compose", "/send"), ("history", "/broadcasts"),
            ("broadcast", f"/broadcasts/{b}"), ("calls", f"/broadcasts/{b}/calls"),
            ("inbox", "/inbox"), ("inbox-unhandled", "/inbox?unhandled=1"),
            ("contacts", "/contacts"), ("contact-search", "/contacts?q=高橋"),
            ("contact-new", "/contacts/new"), ("contact-edit", f"/contacts/{scenario.a_contact}"),
            ("import", "/contacts/import"), ("templates", "/templates"),
            ("template-new", "/templates/new"), ("template-edit", "/templates/1"),
            ("schedules", "/schedules"), ("users", "/admin/users"), ("audit", "/admin/audit"),
            ("settings", "/admin/settings"), ("account", "/account"), ("ca", "/ca"),
            ("warning", f"/warnings/{scenario.warning}"),
            ("reminders", "/reminders"), ("reminders-import", "/reminders/import"),
            ("reminder-kinds", "/reminders/kinds"),
            ("reminder-kind", f"/reminders/kinds/{scenario.reminder_kind}"),
            ("api", "/admin/api/"), ("api-token", f"/admin/api/{scenario.api_token}"),
            ("not-found", "/no-such-page")]


def check_page(page, name: str, width: int, problems: list[str], *, axe) -> None:
    # A page reached by submitting a form (the confirm page, the import preview) has its
    # elements before its stylesheet: measuring then finds the browser's default 13 px text
    # and an unstyled, too-wide layout. The load event waits for the stylesheet.
    page.wait_for_load_state("load")
    overflow = page.evaluate("document.documentElement.scrollWidth") - width
    if overflow > 1:
        problems.append(f"{name} @{width}: {overflow}px wider than the screen")
    squeezed = page.evaluate(SQUEEZED)
    if squeezed:
        problems.append(f"{name} @{width}: table cells squeezed to a few characters a line "
                        f"{squeezed}")
    small = page.evaluate(SMALL_TEXT)
    if small:
        problems.append(f"{name} @{width}: text under 16 px {small}")
    # Text in <code> is a name typed or configured as it is (an API scope, a token's prefix).
    text = page.inner_text("body")
    for code in page.eval_on_selector_all("code", "els => els.map(e => e.innerText)"):
        text = text.replace(code, " ", 1)
    words = latin_words(text)
    if words:
        problems.append(f"{name} @{width}: Latin-script words {sorted(words)}")
    if axe is not None:
        found = axe.run(page).response["violations"]
        for v in found:
            if v["impact"] in ("serious", "critical"):
                targets = [n["target"] for n in v["nodes"][:3]]
                problems.append(f"{name} @{width}: axe {v['id']} ({v['impact']}): {targets}")
    shot(page, f"walk-{width}-{name}")


def shot(page, name: str) -> None:
    """The page from its top, at most SHOT_HEIGHT tall (200 contacts as cards on a phone
    are 80 000 px: the top shows what there is to see, at a fraction of the time)."""
    height = min(page.evaluate("document.documentElement.scrollHeight"), SHOT_HEIGHT)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True,
                    clip={"x": 0, "y": 0, "width": page.viewport_size["width"], "height": height})


def test_walk_every_page_in_japanese_at_desktop_and_phone_width(visit, url, scenario):
    from axe_playwright_python.sync_playwright import Axe
    axe = Axe()
    problems: list[str] = []
    for viewport in (DESKTOP, PHONE):
        width = viewport["width"]
        v = visit(who=None, viewport=viewport)
        check_page(v.go("/login"), "login", width, problems, axe=axe)
        v.close()
        v = visit(who=MANAGER, viewport=viewport)
        for name, path in pages(scenario):
            v.go(path)
            check_page(v.page, name, width, problems, axe=axe if width == 1280 else None)
        page = v.go("/send")
        page.select_option("#template_id", label="停電・透析中止")
        expect(page.locator("#text")).to_have_value(re.compile("停電"))
        page.check("input[name=groups] >> nth=2")
        page.click("text=送信前の確認へ")
        page.wait_for_selector("#confirm-form")
        check_page(page, "confirm", width, problems, axe=axe if width == 1280 else None)
        page.evaluate("window.scrollTo(0, 0)")
        page = v.go("/contacts/import")
        page.set_input_files("#file", str(Path(__file__).parent / "data" / "csv_corpus" /
                                          "landlines.csv"))
        page.click("text=ファイルを確認する")
        page.wait_for_selector("#preview")
        check_page(page, "import-preview", width, problems, axe=axe if width == 1280 else None)
        page = v.go(f"/broadcasts/{scenario.power_cut}/calls")
        page.emulate_media(media="print")
        shot(page, f"walk-{width}-calls-print")
        page.emulate_media(media="screen")
        assert v.errors == [], v.errors
        v.close()
    assert problems == [], "\n".join(problems)
