"""Contacts and groups edited one at a time (the web UI's API): same rules as the import."""
from __future__ import annotations

import pytest

from appliance import audit, contacts
from appliance.contacts import ContactValidationError, NotFound


def add(db, name="山田 太郎", phone="090-2000-0001", **kw):
    return contacts.add_contact(db, name=name, phone=phone, actor="nurse", **kw)


def test_add_contact_normalises_the_number_and_joins_the_facility_group(db):
    person = add(db, kana="ﾔﾏﾀﾞ", facility="本院", patient_id="P1")
    assert person.phone == "+819020000001" and person.display_phone == "090-2000-0001"
    assert person.kana == "ヤマダ" and person.groups == ("本院",)
    assert contacts.get_group_by_name(db, "本院").kind == "facility"
    entry = audit.entries(db)[0]
    assert (entry.actor, entry.action, entry.detail) == ("nurse", "contact_add",
                                                         {"contact_id": person.id})


def test_add_contact_reports_every_bad_field_and_saves_nothing(db):
    with pytest.raises(ContactValidationError) as info:
        add(db, name="  ", phone="082-000-0000", note="x" * 501)
    assert info.value.by_field("en") == {
        "name": "name missing",
        "phone": "a landline number, which cannot receive SMS",
        "note": "note is longer than 500 characters"}
    assert contacts.count_contacts(db, include_inactive=True) == 0
    assert audit.count(db) == 0


@pytest.mark.parametrize("number, code", [("0120-000-000", "toll_free"),
                                          ("090-1234-5678 (自宅)", "trailing_text"),
                                          ("090-12", "too_short"), ("", "phone_missing")])
def test_add_contact_refuses_numbers_that_cannot_get_sms(db, number, code):
    with pytest.raises(ContactValidationError) as info:
        add(db, phone=number)
    assert info.value.field == "phone" and info.value.problems[0].code == code


def test_a_number_or_patient_id_already_used_is_refused(db):
    add(db, patient_id="P1")
    with pytest.raises(ContactValidationError) as info:
        add(db, name="別人", phone="０９０２００００００１", patient_id="P1")
    assert {p.code for p in info.value.problems} == {"phone_taken", "patient_id_taken"}
    assert contacts.count_contacts(db) == 1


def test_html_in_a_name_is_kept_as_data(db):
    person = add(db, name="<script>alert(1)</script>")
    assert contacts.get_contact(db, person.id).name == "<script>alert(1)</script>"


def test_a_line_break_in_a_name_is_refused_but_allowed_in_a_note(db):
    with pytest.raises(ContactValidationError, match="line break"):
        add(db, name="山田\n太郎")
    assert add(db, note="1行目\n2行目").note == "1行目\n2行目"


def test_update_contact_changes_fields_moves_the_facility_group_and_audits(db):
    person = add(db, facility="本院")
    updated = contacts.update_contact(db, person.id, actor="nurse", phone="080-2000-0001",
                                      facility="みなみ分院", name="山田 太郎")
    assert updated.phone == "+818020000001" and updated.groups == ("みなみ分院",)
    entry = audit.entries(db)[0]
    assert entry.action == "contact_update" and entry.detail["fields"] == ["facility", "phone"]


def test_update_contact_validates_like_add(db):
    person = add(db)
    add(db, name="別人", phone="090-2000-0002")
    with pytest.raises(ContactValidationError) as info:
        contacts.update_contact(db, person.id, actor="nurse", phone="090-2000-0002")
    assert info.value.problems[0].code == "phone_taken"
    with pytest.raises(ContactValidationError):
        contacts.update_contact(db, person.id, actor="nurse", name="")
    with pytest.raises(NotFound):
        contacts.update_contact(db, 999, actor="nurse", name="誰か")
    with pytest.raises(TypeError):
        contacts.update_contact(db, person.id, actor="nurse", created_at=0)
    assert contacts.get_contact(db, person.id).phone == "+819020000001"


def test_deactivated_contacts_leave_lists_and_groups_but_keep_their_row(db):
    person = add(db, facility="本院")
    contacts.deactivate_contact(db, person.id, actor="nurse")
    assert contacts.list_contacts(db) == []
    assert [c.id for c in contacts.list_contacts(db, include_inactive=True)] == [person.id]
    group = contacts.get_group_by_name(db, "本院")
    assert group.member_count == 0 and contacts.group_members(db, [group.id]) == []
    assert audit.entries(db)[0].action == "contact_deactivate"
    assert contacts.update_contact(db, person.id, actor="nurse", active=True).active


@pytest.mark.parametrize("query", ["山田", "山田太郎", "やまだ", "ヤマダ", "ﾔﾏﾀﾞ", "090-2000-0001",
                                   "09020000001", "+81 90 2000", "0001", "P00"])
def test_search_by_name_kana_number_or_patient_id(db, query):
    add(db, kana="ヤマダ タロウ", patient_id="P001")
    add(db, name="佐藤 花子", phone="080-3000-0002", kana="サトウ ハナコ")
    assert [c.name for c in contacts.list_contacts(db, query)] == ["山田 太郎"]


def test_find_by_phone_accepts_the_forms_people_type(db):
    person = add(db)
    assert contacts.find_by_phone(db, "０９０－２０００－０００１").id == person.id
    assert contacts.find_by_phone(db, "082-000-0000") is None


def test_group_crud_and_memberships(db):
    a, b = add(db), add(db, name="佐藤 花子", phone="090-2000-0002")
    group = contacts.create_group(db, "送迎あり", actor="nurse", note="車いす")
    assert (group.kind, group.member_count) == ("custom", 0)
    assert contacts.add_to_group(db, group.id, [a.id, b.id], actor="nurse") == 2
    assert contacts.add_to_group(db, group.id, [a.id], actor="nurse") == 0
    renamed = contacts.update_group(db, group.id, actor="nurse", name="送迎")
    assert renamed.name == "送迎" and renamed.member_count == 2
    contacts.set_contact_groups(db, a.id, [], actor="nurse")
    assert [c.id for c in contacts.group_members(db, [group.id])] == [b.id]
    contacts.delete_group(db, group.id, actor="nurse")
    assert contacts.get_contact(db, b.id).groups == ()
    assert [e.action for e in audit.entries(db, limit=5)][:4] == [
        "group_delete", "contact_groups", "group_update", "group_add_members"]


def test_group_names_are_checked(db):
    contacts.create_group(db, "送迎", actor="nurse")
    for name, code in [("送迎", "group_exists"), ("", "group_name_missing"),
                       ("A・B", "separator"), ("x" * 51, "too_long")]:
        with pytest.raises(ContactValidationError) as info:
            contacts.create_group(db, name, actor="nurse")
        assert info.value.problems[0].code == code
    with pytest.raises(ContactValidationError):
        contacts.set_contact_groups(db, add(db).id, [999], actor="nurse")


def test_renaming_a_facility_group_renames_the_facility_of_its_members(db):
    person = add(db, facility="本院")
    group = contacts.get_group_by_name(db, "本院")
    contacts.update_group(db, group.id, actor="nurse", name="中央本院")
    assert contacts.get_contact(db, person.id).facility == "中央本院"


def test_group_members_counts_each_person_once(db):
    person = add(db, facility="本院")
    other = contacts.create_group(db, "送迎", actor="nurse")
    contacts.add_to_group(db, other.id, [person.id], actor="nurse")
    facility = contacts.get_group_by_name(db, "本院")
    assert [c.id for c in contacts.group_members(db, [facility.id, other.id])] == [person.id]


def test_shift_group_names_are_canonical():
    assert contacts.shift_group_name("金・水・月", "午前") == "月水金 午前"
    assert contacts.shift_group_name("月曜・水曜・金曜", "") == "月水金"
    assert contacts.shift_group_name("", "夜間") == "夜間"
    assert contacts.shift_group_name(" ", None) is None
    assert contacts.split_shift_group("月水金 午前") == ("月水金", "午前")
    assert contacts.split_shift_group("火木土") == ("火木土", "")


@pytest.mark.parametrize("days, shift, group", [
    ("Mon/Wed/Fri", "AM", "月水金 午前"), ("tue thu sat", "evening", "火木土 夜間"),
    ("Friday, Monday, Wednesday", "pm", "月水金 午後"), ("月・水・金", "午前", "月水金 午前"),
])
def test_english_day_and_shift_names_map_to_the_same_shift_groups(days, shift, group):
    from appliance.contacts import shift_group_name
    assert shift_group_name(days, shift) == group
