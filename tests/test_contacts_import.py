"""CSV import and export of contacts: encodings, headers, every row's problem, all or nothing."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from appliance import audit, contacts, db as db_mod
from appliance.cli import main
from appliance.contacts import ContactImportError, ExportError

DATA = Path(__file__).resolve().parent / "data"
CORPUS = DATA / "csv_corpus"
EXPECTED = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
HEADER = "患者ID,氏名,フリガナ,携帯電話,施設,透析曜日,時間帯,備考\r\n"


def snapshot(db) -> tuple:
    """Everything an import may touch, to prove a refused import touched nothing."""
    queries = ("SELECT * FROM contacts ORDER BY id", "SELECT * FROM groups ORDER BY id",
               "SELECT * FROM contact_groups ORDER BY contact_id, group_id")
    return tuple(tuple(tuple(row) for row in db.execute(sql).fetchall()) for sql in queries)


def read(name: str) -> bytes:
    return (DATA / name).read_bytes()


def load(db, name: str) -> contacts.ImportResult:
    return contacts.import_contacts(db, read(name), actor="tester")


# -- the broken-file corpus ------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_broken_file_is_refused_clearly_and_imports_nothing(db, name):
    load(db, "roster_12_utf8_bom.csv")          # something already there to be left alone
    before = snapshot(db)
    expected = EXPECTED[name]
    with pytest.raises(ContactImportError) as info:
        contacts.import_contacts(db, (CORPUS / name).read_bytes(), actor="tester")
    error = info.value
    assert snapshot(db) == before, "a refused import changes nothing"
    assert "nothing imported" in str(error)
    if "rows" in expected:                      # rows with problems: each named with its row
        found: dict[str, list[str]] = {}
        for p in error.problems:
            found.setdefault(str(p.row), []).append(p.code)
        assert found == expected["rows"]
        for row, words in expected.get("words", {}).items():
            assert any(words in p.en and str(p.row) == row for p in error.problems), words
        assert error.preview is not None and error.preview.error_count == len(expected["rows"])
    else:                                       # the file as a whole
        assert len(error.problems) == 1
        problem = error.problems[0]
        assert problem.row == expected["row"]
        assert expected["words"] in problem.en
        if expected["row"] is not None:
            assert f"row {expected['row']}" in problem.message("en")
    assert audit.entries(db, action="contacts_import_refused")[0].actor == "tester"


def test_the_corpus_on_disk_is_what_its_generator_writes():
    from tests.data.csv_corpus import make_corpus
    for name, (data, outcome) in make_corpus.CORPUS.items():
        assert (CORPUS / name).read_bytes() == data, name
        assert EXPECTED[name] == outcome


def test_a_file_over_5_mb_is_refused_before_it_is_parsed(db):
    data = (HEADER + "P1,山田 太郎,ヤマダ タロウ,090-2000-0001,本院,,," + " " * 6_000_000 + "\r\n")
    with pytest.raises(ContactImportError, match="larger than 5 MB"):
        contacts.import_contacts(db, data.encode("utf-8"), actor="tester")
    assert contacts.count_contacts(db, include_inactive=True) == 0


def test_more_than_10000_rows_is_refused_naming_the_row(db):
    lines = [HEADER] + [f"P{i},患者 {i},,090{i:08d},,,,\r\n" for i in range(10_001)]
    with pytest.raises(ContactImportError) as info:
        contacts.import_contacts(db, "".join(lines).encode("utf-8"), actor="tester")
    assert "more than 10000 rows" in str(info.value)
    assert info.value.problems[0].row == 10_002
    assert contacts.count_contacts(db, include_inactive=True) == 0


# -- the shared samples ----------------------------------------------------------------------

def test_messy_roster_rows_are_accepted_or_refused_as_expected(db):
    expected = json.loads(read("messy_14_expected.json"))["rows"]
    plan = contacts.preview(db, read("messy_14_cp932.csv"))
    assert plan.encoding == "cp932"
    by_row = {r.row: r for r in plan.rows}
    assert sorted(by_row) == list(range(2, 16))
    for row, result in by_row.items():
        outcome = expected.get(str(row), "ok")
        if outcome.startswith("ok"):
            assert result.status == "ok", (row, result.reason)
        else:
            # "error: too few digits", "error: duplicate of row 2", "error: landline (…), …"
            words = outcome.removeprefix("error: ").split(" (")[0].split(",")[0]
            assert result.status == "error", row
            assert any(words in p.en for p in result.problems), (row, words, result.reason)
    assert by_row[12].fields["name"] == "<script>alert(1)</script>", "HTML is kept as data"
    assert by_row[3].fields["phone"] == "+819010009001"
    assert by_row[4].fields["phone"] == "+819010009002"


def test_messy_roster_import_lists_every_problem_and_imports_nothing(db):
    with pytest.raises(ContactImportError) as info:
        load(db, "messy_14_cp932.csv")
    assert sorted({p.row for p in info.value.problems}) == [5, 6, 7, 8, 9, 10, 11]
    assert contacts.count_contacts(db, include_inactive=True) == 0
    assert db.execute("SELECT count(*) FROM groups").fetchone()[0] == 0


def test_the_200_patient_cp932_roster_imports_with_groups(db):
    result = load(db, "roster_200_cp932.csv")
    assert (result.created, result.updated, result.unchanged) == (200, 0, 0)
    assert contacts.count_contacts(db) == 200
    groups = {g.name: g for g in contacts.list_groups(db)}
    assert groups["本院"].kind == "facility" and groups["みなみ分院"].kind == "facility"
    assert groups["本院"].member_count + groups["みなみ分院"].member_count == 200
    shifts = [g for g in groups.values() if g.kind == "shift"]
    assert {g.name for g in shifts} == {f"{d} {t}" for d in ("月水金", "火木土")
                                        for t in ("午前", "午後", "夜間")}
    assert sum(g.member_count for g in shifts) == 200
    names = {c.name for c in contacts.list_contacts(db)}
    assert "山﨑 一郎" in names and "髙橋 節子" in names, "CP932-only characters survive"
    assert {c.phone for c in contacts.list_contacts(db)} == {f"+8190100{i:05d}"
                                                             for i in range(1, 201)}
    entry = audit.entries(db, action="contacts_import")[0]
    assert entry.detail["created"] == 200 and entry.detail["encoding"] == "cp932"
    assert "phone" not in json.dumps(entry.detail), "no patient numbers in the audit log"


def test_non_bmp_names_and_emoji_survive_utf8_bom_import(db):
    result = load(db, "roster_12_utf8_bom.csv")
    assert result.created == 12 and result.preview.encoding == "utf-8-sig"
    yoshida = contacts.find_by_phone(db, "090-1000-0004")
    assert yoshida.name == "𠮷田 花子" and yoshida.patient_id == "P0004"
    hayashi = contacts.find_by_phone(db, "090 1000 0006")
    assert hayashi.note == "耳が遠い。SMSの後に電話も 📞"


# -- upsert rules ----------------------------------------------------------------------------

def test_importing_the_same_file_again_changes_nothing(db):
    load(db, "roster_200_cp932.csv")
    before = snapshot(db)
    result = load(db, "roster_200_cp932.csv")
    assert (result.created, result.updated, result.unchanged) == (0, 0, 200)
    assert snapshot(db) == before


def csv(*rows: str, header: str = HEADER) -> bytes:
    return (header + "".join(r + "\r\n" for r in rows)).encode("utf-8")


def test_a_row_updates_the_contact_with_its_patient_id_even_with_a_new_number(db):
    contacts.import_contacts(db, csv("P1,山田 太郎,ヤマダ タロウ,090-2000-0001,本院,月水金,午前,"),
                             actor="t")
    plan = contacts.preview(db, csv("P1,山田 太郎,ヤマダ タロウ,080-2000-0001,みなみ分院,火木土,午後,耳が遠い"))
    row = plan.rows[0]
    assert row.action == "update" and set(row.changes) == {"phone", "facility", "note", "groups"}
    contacts.import_contacts(db, csv("P1,山田 太郎,ヤマダ タロウ,080-2000-0001,みなみ分院,火木土,午後,耳が遠い"),
                             actor="t")
    (person,) = contacts.list_contacts(db)
    assert person.phone == "+818020000001" and person.facility == "みなみ分院"
    assert set(person.groups) == {"みなみ分院", "火木土 午後"}, "old facility and shift left"


def test_a_row_without_patient_id_updates_the_contact_with_its_number(db):
    contacts.import_contacts(db, csv("P1,山田 太郎,,090-2000-0001,,,,"), actor="t")
    contacts.import_contacts(db, csv("山田 太郎,ヤマダ タロウ,09020000001",
                                     header="氏名,カナ,携帯\r\n"), actor="t")
    (person,) = contacts.list_contacts(db)
    assert person.kana == "ヤマダ タロウ" and person.patient_id == "P1", \
        "an empty or missing patient ID never clears the stored one"


def test_a_number_that_belongs_to_another_patient_is_refused_not_moved(db):
    contacts.import_contacts(db, csv("P1,山田 太郎,,090-2000-0001,,,,",
                                     "P2,佐藤 花子,,090-2000-0002,,,,"), actor="t")
    before = snapshot(db)
    with pytest.raises(ContactImportError) as info:
        contacts.import_contacts(db, csv("P1,山田 太郎,,090-2000-0002,,,,"), actor="t")
    (problem,) = info.value.problems
    assert problem.code == "phone_taken" and problem.row == 2 and "P2" in problem.en
    assert snapshot(db) == before


def test_columns_absent_from_the_file_keep_their_values_and_groups(db):
    contacts.import_contacts(db, csv("P1,山田 太郎,ヤマダ タロウ,090-2000-0001,本院,月水金,午前,メモ"),
                             actor="t")
    contacts.import_contacts(db, csv("P1,山田 太郎,090-2000-0001",
                                     header="患者ID,氏名,携帯電話\r\n"), actor="t")
    (person,) = contacts.list_contacts(db)
    assert (person.kana, person.facility, person.note) == ("ヤマダ タロウ", "本院", "メモ")
    assert set(person.groups) == {"本院", "月水金 午前"}


def test_a_deactivated_contact_in_the_file_is_reactivated(db):
    contacts.import_contacts(db, csv("P1,山田 太郎,,090-2000-0001,,,,"), actor="t")
    person = contacts.list_contacts(db)[0]
    contacts.deactivate_contact(db, person.id, actor="t")
    plan = contacts.preview(db, csv("P1,山田 太郎,,090-2000-0001,,,,"))
    assert plan.rows[0].changes == ("active",)
    contacts.import_contacts(db, csv("P1,山田 太郎,,090-2000-0001,,,,"), actor="t")
    assert contacts.get_contact(db, person.id).active


def test_the_test_group_membership_is_never_removed_by_an_import(db):
    contacts.import_contacts(db, csv("P1,山田 太郎,,090-2000-0001,,,,"), actor="t")
    person = contacts.list_contacts(db)[0]
    test = contacts.create_group(db, "テスト", kind="test", actor="t")
    contacts.add_to_group(db, test.id, [person.id], actor="t")
    contacts.import_contacts(db, csv("P1,山田 太郎,,090-2000-0001,,,,,透析A",
                                     header=HEADER.strip() + ",グループ\r\n"), actor="t")
    assert set(contacts.get_contact(db, person.id).groups) == {"テスト", "透析A"}


def test_english_headers_and_explicit_groups(db):
    data = ("patient_id,name,kana,mobile,facility,days,shift,note,groups\r\n"
            "P1,Taro Yamada,ﾔﾏﾀﾞ ﾀﾛｳ,+81 90 2000 0001,Main,月・水・金,午前,,送迎あり;Aチーム、透析A\r\n"
            ).encode("utf-8")
    contacts.import_contacts(db, data, actor="t")
    (person,) = contacts.list_contacts(db)
    assert person.kana == "ヤマダ タロウ", "half-width kana made full-width"
    assert set(person.groups) == {"Main", "月水金 午前", "送迎あり", "Aチーム", "透析A"}
    assert contacts.get_group_by_name(db, "送迎あり").kind == "custom"


def test_a_mobile_column_wins_over_a_home_phone_column(db):
    data = csv("山田 太郎,082-000-0000,090-2000-0001,1980-01-01",
               header="氏名,電話番号,携帯電話,生年月日\r\n")
    plan = contacts.preview(db, data)
    assert plan.columns["phone"] == "携帯電話"
    assert set(plan.ignored_columns) == {"電話番号", "生年月日"}
    assert plan.rows[0].status == "ok"


def test_the_import_is_planned_again_inside_its_transaction(db):
    data = csv("P1,山田 太郎,,090-2000-0001,,,,")
    assert contacts.preview(db, data).rows[0].action == "new"
    contacts.add_contact(db, name="別の人", phone="090-2000-0001", patient_id="P9", actor="t")
    with pytest.raises(ContactImportError, match="belongs to another contact"):
        contacts.import_contacts(db, data, actor="t")


def test_dry_run_writes_nothing_but_reports_the_outcome(db):
    before = snapshot(db)
    result = contacts.import_contacts(db, read("roster_12_utf8_bom.csv"), actor="t",
                                      dry_run=True)
    assert result.dry_run and result.created == 12
    assert len(result.groups_created) == 8
    assert snapshot(db) == before
    assert audit.count(db) == 0


# -- export ----------------------------------------------------------------------------------

def test_export_then_import_finds_every_contact_unchanged(db):
    load(db, "roster_200_cp932.csv")
    group = contacts.create_group(db, "送迎あり", actor="t")
    contacts.add_to_group(db, group.id, [c.id for c in contacts.list_contacts(db)[:5]],
                          actor="t")
    exported = contacts.export_contacts(db, "cp932", actor="t")
    assert exported.count(b"\r\n") == 201
    result = contacts.import_contacts(db, exported, actor="t", dry_run=True)
    assert (result.created, result.updated, result.unchanged) == (0, 0, 200)
    assert result.preview.encoding == "cp932"


def test_utf8_export_has_a_bom_and_round_trips_non_bmp_names(db):
    load(db, "roster_12_utf8_bom.csv")
    exported = contacts.export_contacts(db, "utf-8", actor="t")
    assert exported.startswith(b"\xef\xbb\xbf\xe6\x82\xa3\xe8\x80\x85ID,")   # BOM + 患者ID
    assert "𠮷田 花子".encode("utf-8") in exported and "📞".encode("utf-8") in exported
    assert b"090-1000-0004" in exported, "numbers as staff write them; Excel keeps the 0"
    result = contacts.import_contacts(db, exported, actor="t", dry_run=True)
    assert result.unchanged == 12


def test_cp932_export_refuses_a_name_it_cannot_hold_and_names_the_contact(db):
    load(db, "roster_12_utf8_bom.csv")
    with pytest.raises(ExportError) as info:
        contacts.export_contacts(db, "cp932", actor="t")
    message = str(info.value)
    assert "𠮷田 花子" in message and "P0004" in message and "UTF-8" in message
    fields = {(p.field, p.code) for p in info.value.problems}
    assert fields == {("name", "not_cp932"), ("note", "not_cp932")}   # 𠮷 and 📞
    assert audit.count(db, action="contacts_export") == 0


def test_cp932_export_writes_the_wave_dash_as_excel_does(db):
    contacts.add_contact(db, name="山田 太郎", phone="090-2000-0001", note="10時〜11時",
                         actor="t")
    exported = contacts.export_contacts(db, "cp932", actor="t")
    assert "10時～11時".encode("cp932") in exported
    assert audit.entries(db, action="contacts_export")[0].detail == {"contacts": 1,
                                                                      "encoding": "cp932"}


# -- the command line ------------------------------------------------------------------------

@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "tsunagu.toml"
    path.write_text('database = "cli.db"\n[[modem]]\nname = "m0"\nport = "modem0"\n',
                    encoding="utf-8")
    return path


def test_cli_import_prints_every_problem_exits_1_and_imports_nothing(config_file):
    result = CliRunner().invoke(main, ["contacts", "import", "--config", str(config_file),
                                       str(DATA / "messy_14_cp932.csv")])
    assert result.exit_code == 1
    for row in (5, 6, 7, 8, 9, 10, 11):
        assert f"{row}行目" in result.output
    assert "082-000-0000" in result.output and "何も取り込んでいません" in result.output
    database = db_mod.connect(config_file.parent / "cli.db")
    assert contacts.count_contacts(database, include_inactive=True) == 0


def test_cli_import_dry_run_then_import_then_list_and_export(config_file, tmp_path,
                                                              monkeypatch):
    monkeypatch.setenv("TSUNAGU_CONFIG", str(config_file))
    runner = CliRunner()
    result = runner.invoke(main, ["contacts", "import", "--dry-run",
                                  str(DATA / "roster_200_cp932.csv")])
    assert result.exit_code == 0, result.output
    assert "新規 200件" in result.output
    database = db_mod.connect(config_file.parent / "cli.db")
    assert contacts.count_contacts(database) == 0
    result = runner.invoke(main, ["contacts", "import", str(DATA / "roster_200_cp932.csv")])
    assert result.exit_code == 0 and contacts.count_contacts(database) == 200
    result = runner.invoke(main, ["contacts", "list", "--search", "090-1000-0199"])
    assert result.exit_code == 0 and "伊藤 陽菜" in result.output
    assert result.stdout.count("\n") == 1 and "1件" in result.stderr
    out = tmp_path / "export.csv"
    result = runner.invoke(main, ["contacts", "export", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_mode & 0o077 == 0, "patients' data is not world-readable"
    assert out.read_bytes().decode("cp932").startswith("患者ID,氏名")


def test_cli_export_refusal_is_one_clear_error(config_file):
    runner = CliRunner()
    runner.invoke(main, ["contacts", "import", "--config", str(config_file),
                         str(DATA / "roster_12_utf8_bom.csv")])
    result = runner.invoke(main, ["contacts", "export", "--config", str(config_file)])
    assert result.exit_code == 1 and "𠮷田 花子" in result.output
    assert "Traceback" not in result.output


def test_cli_without_a_config_says_how_to_give_one(monkeypatch):
    monkeypatch.delenv("TSUNAGU_CONFIG", raising=False)
    result = CliRunner().invoke(main, ["contacts", "list"])
    # In Japanese: no config says which language to speak.
    assert result.exit_code == 1 and "--config ファイル名" in result.output
    assert "TSUNAGU_CONFIG" in result.output


def test_a_name_that_looks_like_a_formula_is_exported_as_text_and_read_back_unchanged(tmp_path):
    from appliance import contacts
    from appliance.db import connect
    db = connect(tmp_path / "a.db")
    contacts.add_contact(db, name="=HYPERLINK(\"http://x\")", phone="090-1234-0001", actor="t",
                         note="+要確認")
    data = contacts.export_contacts(db, "utf-8", actor="t")
    text = data.decode("utf-8-sig")
    assert "'=HYPERLINK" in text and "'+要確認" in text
    other = connect(tmp_path / "b.db")
    contacts.import_contacts(other, data, actor="t")
    [back] = contacts.list_contacts(other)
    assert back.name == "=HYPERLINK(\"http://x\")" and back.note == "+要確認"


# -- 自動電話なし: a patient who asked not to be rung (issue 14, ringing) ----------------------

def _ring_of(db, name: str) -> bool:
    return contacts.list_contacts(db, name)[0].no_ring


def test_the_no_ring_column_sets_and_clears_the_opt_out_and_its_absence_keeps_it(db):
    first = ("患者ID,氏名,携帯電話,自動電話なし\r\nP1,山田 太郎,090-1000-0001,はい\r\n"
             "P2,佐藤 花子,090-1000-0002,\r\n").encode("utf-8")
    contacts.import_contacts(db, first, actor="t")
    assert _ring_of(db, "山田 太郎") is True and _ring_of(db, "佐藤 花子") is False
    without = "患者ID,氏名,携帯電話\r\nP1,山田 太郎,090-1000-0001\r\n".encode("utf-8")
    assert contacts.import_contacts(db, without, actor="t").unchanged == 1
    assert _ring_of(db, "山田 太郎") is True, "a file without the column keeps the opt-out"
    cleared = ("患者ID,氏名,携帯電話,電話しない\r\nP1,山田 太郎,090-1000-0001,いいえ\r\n"
               ).encode("utf-8")
    preview = contacts.import_contacts(db, cleared, actor="t", dry_run=True).preview
    assert preview.rows[0].old == {"no_ring": True} and preview.rows[0].new == {"no_ring": False}
    contacts.import_contacts(db, cleared, actor="t")
    assert _ring_of(db, "山田 太郎") is False


def test_a_no_ring_cell_that_is_neither_yes_nor_empty_is_named_and_nothing_imported(db):
    data = ("患者ID,氏名,携帯電話,自動電話なし\r\nP1,山田 太郎,090-1000-0001,はい\r\n"
            "P2,佐藤 花子,090-1000-0002,たぶん\r\n").encode("utf-8")
    before = snapshot(db)
    with pytest.raises(ContactImportError) as error:
        contacts.import_contacts(db, data, actor="t")
    assert snapshot(db) == before
    [problem] = error.value.problems
    assert problem.field == "no_ring" and problem.row == 3
    assert "「自動電話なし」は「はい」か空欄" in problem.ja and "たぶん" in problem.ja


def test_an_opt_out_survives_export_and_import(db):
    load(db, "roster_200_cp932.csv")
    someone = contacts.list_contacts(db)[3]
    contacts.update_contact(db, someone.id, actor="t", no_ring=True)
    exported = contacts.export_contacts(db, "cp932", actor="t")
    assert "自動電話なし".encode("cp932") in exported.split(b"\r\n")[0]
    result = contacts.import_contacts(db, exported, actor="t", dry_run=True)
    assert (result.created, result.updated, result.unchanged) == (0, 0, 200)
