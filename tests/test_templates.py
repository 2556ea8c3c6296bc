"""Templates: known placeholders only, {{ }} for braces, rendering refuses missing values."""
from __future__ import annotations

import datetime as dt

import pytest

from appliance import audit, templates
from appliance.templates import TemplateError

CLINIC = "つなぐ透析クリニック"


def test_placeholders_and_unknown_placeholders():
    text = "【{clinic}】{name}様 {date} {time}（元は{original_time}）{nmae} {氏名} {nmae}"
    assert templates.placeholders(text) == {"clinic", "name", "date", "time", "original_time",
                                            "nmae", "氏名"}
    assert templates.unknown_placeholders(text) == ["nmae", "氏名"]


def test_double_braces_are_literal_braces():
    text = "{{name}} は {name} に置き換わります"
    assert templates.placeholders(text) == {"name"}
    assert templates.render(text, contact_name="山田") == "{name} は 山田 に置き換わります"


@pytest.mark.parametrize("text", ["a { b", "a } b", "{name", "{}", "{0}", "{name!r}",
                                  "{name:>10}", "{name.upper}", "{name[0]}"])
def test_single_braces_and_python_format_tricks_are_refused(text):
    with pytest.raises(TemplateError) as info:
        templates.placeholders(text)
    assert info.value.field == "text"
    assert "{{" in str(info.value)


def test_render_fills_values_and_formats_dates_and_times():
    text = "【{clinic}】{name}様 {date} {time}に変更（元は{original_time}）"
    out = templates.render(text, contact_name="𠮷田 花子", clinic=CLINIC,
                           date=dt.date(2025, 7, 1), time=dt.time(14, 30),
                           original_time="9:00")
    assert out == "【つなぐ透析クリニック】𠮷田 花子様 7月1日(火) 14:30に変更（元は9:00）"


def test_values_are_inserted_literally_even_with_braces():
    assert templates.render("{name}様", contact_name="{clinic}") == "{clinic}様"


def test_render_refuses_a_used_placeholder_without_a_value_naming_it():
    with pytest.raises(TemplateError) as info:
        templates.render("{time}頃に復旧します。{date}", clinic=CLINIC, time="  ")
    assert "{time}, {date}" in str(info.value)
    # An unused placeholder needs no value.
    assert templates.render("【{clinic}】復旧しました", clinic=CLINIC) == f"【{CLINIC}】復旧しました"


def test_needs_values_lists_what_the_sender_fills_in():
    assert templates.needs_values("【{clinic}】{name}様 {time}頃 {date}") == ["date", "time"]


def test_create_update_delete_with_validation_and_audit(db):
    t = templates.create_template(db, " 停電 ", "【{clinic}】停電のため中止です。", actor="nurse",
                                  clinic=CLINIC)
    assert t.name == "停電" and t.placeholders == {"clinic"}
    with pytest.raises(TemplateError) as info:
        templates.create_template(db, "停電", "別の本文", actor="nurse", clinic=CLINIC)
    assert info.value.field == "name"
    t2 = templates.update_template(db, t.id, actor="nurse", clinic=CLINIC,
                                   text="【{clinic}】{name}様 停電です。")
    assert t2.text.endswith("停電です。") and t2.name == "停電"
    templates.delete_template(db, t.id, actor="nurse")
    assert templates.list_templates(db) == []
    assert [e.action for e in audit.entries(db)] == ["template_delete", "template_update",
                                                     "template_create"]


@pytest.mark.parametrize("name, text, field, words", [
    ("", "本文", "name", "name is empty"),
    ("x" * 51, "本文", "name", "longer than 50"),
    ("空", "   ", "text", "text is empty"),
    ("typo", "{nmae}様", "text", "unknown placeholder"),
    ("brace", "1 { 2", "text", "{{"),
    ("全角", "｛name｝様", "text", "half-width"),
])
def test_bad_templates_are_refused_naming_the_field_and_nothing_is_saved(db, name, text,
                                                                         field, words):
    with pytest.raises(TemplateError) as info:
        templates.create_template(db, name, text, actor="nurse", clinic=CLINIC)
    assert info.value.field == field and words in str(info.value)
    assert templates.list_templates(db) == [] and audit.count(db) == 0


def test_a_template_too_long_for_ten_sms_parts_is_refused(db):
    from modem import pdu
    long_text = "停" * (pdu.MAX_PARTS * 67 + 1)
    with pytest.raises(TemplateError, match="too long for SMS"):
        templates.create_template(db, "長文", long_text[:templates.TEXT_MAX], actor="nurse",
                                  clinic=CLINIC)


def test_the_length_check_counts_the_placeholders_rendered(db):
    from modem import pdu
    # Fits as written, but {name} × many no longer fits once names are filled in.
    text = "{name}" * 80
    assert pdu.count(text).parts <= pdu.MAX_PARTS
    with pytest.raises(TemplateError, match="too long for SMS"):
        templates.create_template(db, "名前だらけ", text, actor="nurse", clinic=CLINIC)


def test_measure_reports_parts_for_a_japanese_template():
    count = templates.measure("【{clinic}】停電のため、本日の透析は中止です。", clinic=CLINIC)
    assert count.encoding == "ucs2" and count.parts == 1
