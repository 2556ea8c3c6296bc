"""The broadcast page of a large broadcast (issue 16, ten thousand recipients): the
recipients come a page at a time, and the live update carries only the page shown, so the
page stays quick while thousands are sent. A clinic's usual ~200 fit on one page."""
from __future__ import annotations

import re

from tests import web_support
from tests.queue_rows import add_broadcast
from webui.broadcast_views import PEOPLE_PER_PAGE

web, staff = web_support.web, web_support.staff  # shared fixtures


def _rows(page: str) -> list[str]:
    return re.findall(r'<tr id="r(\d+)"', page)


def test_a_clinic_broadcast_shows_everyone_on_one_page(web, staff):
    bid, ids = add_broadcast(web.db, PEOPLE_PER_PAGE)
    page = staff.get(f"/broadcasts/{bid}").get_data(as_text=True)
    assert _rows(page) == [str(i) for i in ids]
    assert 'class="pager"' not in page


def test_a_large_broadcast_is_shown_a_page_at_a_time_with_its_live_counts_whole(web, staff):
    total = 2 * PEOPLE_PER_PAGE + 50
    bid, ids = add_broadcast(web.db, total)
    first = staff.get(f"/broadcasts/{bid}").get_data(as_text=True)
    assert _rows(first) == [str(i) for i in ids[:PEOPLE_PER_PAGE]]
    assert f"{total}人中 1〜{PEOPLE_PER_PAGE}人目" in first
    assert f'href="/broadcasts/{bid}?page=2"' in first and "次のページ" in first
    counts = re.findall(r'<strong data-count="(\w+)">(\d+)</strong>', first)
    assert sum(int(n) for key, n in counts if key != "acknowledged") == total  # everyone

    last = staff.get(f"/broadcasts/{bid}?page=3").get_data(as_text=True)
    assert _rows(last) == [str(i) for i in ids[2 * PEOPLE_PER_PAGE:]]
    assert "前のページ" in last and "次のページ" not in last
    # The live update asks for the page shown, and gets that page's recipients only.
    assert f'data-url="/api/broadcasts/{bid}?page=3"' in last
    live = staff.get(f"/api/broadcasts/{bid}?page=3").get_json()
    assert [r["id"] for r in live["recipients"]] == ids[2 * PEOPLE_PER_PAGE:]
    assert sum(live["counts"].values()) == total


def test_a_page_past_the_end_shows_the_last_page(web, staff):
    bid, ids = add_broadcast(web.db, PEOPLE_PER_PAGE + 1)
    page = staff.get(f"/broadcasts/{bid}?page=99").get_data(as_text=True)
    assert _rows(page) == [str(ids[-1])]
