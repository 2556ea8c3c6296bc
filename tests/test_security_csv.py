"""Issue 12, finding 6: a roster file cannot overwrite real names with mojibake or hidden
characters, an update shows old → new before it is confirmed, 0081 numbers are read, a huge
cell is named as such, the terminal never runs what a file holds, and an abandoned preview
does not keep patients' data on disk."""
from __future__ import annotations

import os
import re
import time

import pytest
from click.testing import CliRunner

from appliance import config as config_mod, contacts, import_previews, phone
from appliance.cli import main
from appliance.roster_csv import CsvFileError, read
from tests import web_support
from tests.web_support import csrf_token

web, staff, admin = web_support.web, web_support.staff, web_support.admin  # shared fixtures
office = web_support.office

HEADER = "name,phone\r\n".encode()


def _mixed_file() -> bytes:
    rows = [f"利用者{i} 健一,090-1000-{1000 + i}\r\n".encode("utf-8") for i in range(10)]
    rows.insert(4, "岡田 健一,090-2000-3000\r\n".encode("cp932"))
    return HEADER + b"".join(rows)


def test_a_file_with_utf8_and_shift_jis_lines_is_refused_naming_the_line():
    with pytest.raises(CsvFileError) as info:
        read(_mixed_file())
    assert info.value.row == 6 and "文字コードが混ざっています" in info.value.message_ja
    assert "6行目" in info.value.message_ja


def test_a_mixed_file_imports_nothing_and_overwrites_no_name(db):
    contacts.add_contact(db, name="岡田 健一", phone="090-2000-3000", actor="t")
    with pytest.raises(contacts.ContactImportError):
        contacts.import_contacts(db, _mixed_file(), actor="t")
    assert [c.name for c in contacts.list_contacts(db)] == ["岡田 健一"]


def test_a_plain_shift_jis_or_utf8_file_is_still_read():
    assert read(HEADER + "岡田 健一,090-2000-3000\r\n".encode("cp932")).encoding == "cp932"
    assert read(b"\xef\xbb\xbf" + HEADER + "岡田 健一,090-2000-3000\r\n".encode()).encoding \
        == "utf-8-sig"


@pytest.mark.parametrize("name", ["\ufeff山田 太郎", "山田\u202e 太郎", "山田\u200b 太郎",
                                  "\u2066山田 太郎\u2069"])
def test_boms_and_bidi_controls_are_stripped_from_names(db, name):
    data = b"\xef\xbb\xbf" + HEADER + f"{name},090-1234-5678\r\n".encode("utf-8")
    contacts.import_contacts(db, data, actor="t")
    assert contacts.list_contacts(db)[0].name == "山田 太郎"


def test_a_bom_before_a_row_of_two_pasted_files_does_not_reach_the_name(db):
    data = (b"\xef\xbb\xbf" + HEADER + "山田 太郎,090-1234-5678\r\n".encode()
            + b"\xef\xbb\xbf" + "佐藤 花子,090-2222-3333\r\n".encode())
    contacts.import_contacts(db, data, actor="t")
    assert sorted(c.name for c in contacts.list_contacts(db)) == ["佐藤 花子", "山田 太郎"]


@pytest.mark.parametrize("text", ["0081 90-1234-5678", "0081-90-1234-5678", "00819012345678",
                                  "010-81-90-1234-5678", "＋８１ ９０ １２３４ ５６７８"])
def test_an_international_prefix_written_as_0081_is_read(text):
    assert phone.normalise_mobile(text) == "+819012345678"


def test_0081_with_a_landline_is_still_refused_as_a_landline():
    with pytest.raises(phone.PhoneError) as info:
        phone.normalise_mobile("0081 3-1234-5678")
    assert info.value.reason == "landline"


def test_a_megabyte_cell_is_named_as_too_long_not_an_unclosed_quote():
    data = HEADER + b'"' + "山".encode() * 400_000 + b'",090-1234-5678\r\n'
    with pytest.raises(CsvFileError) as info:
        read(data)
    assert "セルが長すぎます" in info.value.message_ja and "引用符" not in info.value.message_ja
    assert info.value.row == 2


def test_the_preview_shows_old_and_new_values_of_an_update(web, office):
    data = "氏名,携帯電話\n山田 花子,090-1234-5678\n".encode()
    page = office.post("/contacts/import", data={
        "file": (__import__("io").BytesIO(data), "r.csv"),
        "csrf_token": csrf_token(office, "/contacts/import")},
        content_type="multipart/form-data").get_data(as_text=True)
    change = re.search(r'<li data-field="name">(.*?)</li>', page, re.S).group(1)
    assert "<del>山田 太郎</del> → <ins>山田 花子</ins>" in change


def test_the_cli_shows_old_to_new_and_escapes_what_the_file_holds(tmp_path):
    config = tmp_path / "tsunagu.toml"
    config.write_text('database = "t.db"\n[[modem]]\nname = "m0"\nport = "m0"\n')
    runner = CliRunner()
    roster = tmp_path / "r.csv"
    roster.write_bytes("氏名,携帯電話,メモ\x1b[2J\n山田 太郎,090-1234-5678,x\n".encode())
    assert runner.invoke(main, ["contacts", "import", str(roster), "--config", str(config)]
                         ).exit_code == 0
    roster.write_bytes("氏名,携帯電話,メモ\x1b[2J\n山田 花子,090-1234-5678,x\n".encode())
    result = runner.invoke(main, ["contacts", "import", str(roster), "--dry-run",
                                  "--config", str(config)])
    assert "\x1b" not in result.output and "\\x1b[2J" in result.output   # the header, escaped
    assert "氏名: 山田 太郎 → 山田 花子" in result.output
    roster.write_bytes("氏名,携帯電話\n山田\x1b]0;pwned\x07 花子,090-1234-5678\n".encode())
    refused = runner.invoke(main, ["contacts", "import", str(roster), "--config", str(config)])
    assert refused.exit_code == 1 and "\x1b" not in refused.output and "\x07" not in refused.output
    assert "\\x1b]0;pwned\\x07" in refused.output


def test_a_preview_older_than_an_hour_cannot_be_confirmed_and_is_removed(web, office):
    data = (web_support.DATA / "roster_12_utf8_bom.csv").read_bytes()
    office.post("/contacts/import", data={
        "file": (__import__("io").BytesIO(data), "r.csv"),
        "csrf_token": csrf_token(office, "/contacts/import")}, content_type="multipart/form-data")
    (kept,) = list(import_previews.directory(web.config).iterdir())
    old = time.time() - import_previews.MAX_AGE - 60         # file times: the wall clock
    os.utime(kept, (old, old))
    response = office.post("/contacts/import/confirm", data={
        "csrf_token": csrf_token(office, "/contacts/import")}, follow_redirects=True)
    assert "期限" in response.get_data(as_text=True)
    assert web.count("contacts") == 1 and not kept.exists()


def test_the_readiness_checks_timer_removes_abandoned_previews(tmp_path):
    path = tmp_path / "tsunagu.toml"
    path.write_text('database = "t.db"\n[[modem]]\nname = "m0"\nport = "/dev/null"\n')
    config = config_mod.load(path)
    token = import_previews.save(config, b"names and numbers")
    fresh = import_previews.save(config, b"another")
    old = time.time() - import_previews.MAX_AGE - 60
    os.utime(import_previews.directory(config) / token, (old, old))
    CliRunner().invoke(main, ["check", "--config", str(path)])
    assert sorted(p.name for p in import_previews.directory(config).iterdir()) == [fresh]
