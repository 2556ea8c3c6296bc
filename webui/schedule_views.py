"""Recurring broadcasts in the web UI: list with the next run, add, pause, delete."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice as C
from wtforms.validators import DataRequired, Length, Optional

from appliance import schedules, templates, wording
from appliance.db import write

from . import db, lang, now, tsunagu_config
from .auth import actor, staff_required
from .fields import CheckboxesField

bp = Blueprint("schedules", __name__)

DAYS = [("mon", _l("Monday")), ("tue", _l("Tuesday")), ("wed", _l("Wednesday")),
        ("thu", _l("Thursday")), ("fri", _l("Friday")), ("sat", _l("Saturday")),
        ("sun", _l("Sunday"))]
DAY_KEYS = tuple(day for day, _label in DAYS)


class ScheduleForm(FlaskForm):
    name = StringField(_l("Schedule name"), validators=[DataRequired(), Length(max=60)])
    days = CheckboxesField(_l("Days"), choices=[C(v, label) for v, label in DAYS],
                           validators=[DataRequired()])
    at = StringField(_l("Time (HH:MM)"), validators=[DataRequired(), Length(max=5)])
    groups = CheckboxesField(_l("Groups"), validators=[DataRequired()])
    template_id = SelectField(_l("Template"), coerce=int, validators=[Optional()])
    text = TextAreaField(_l("Message (when no template)"), validators=[Optional(), Length(max=2000)])
    priority = RadioField(_l("Priority"), default="routine",
                          choices=[C("routine", _l("Routine")), C("emergency", _l("Emergency"))])


class ActionForm(FlaskForm):
    pass


def _choices(form: ScheduleForm) -> None:
    from .broadcast_views import group_choices
    form.groups.choices = group_choices(value=lambda g: g.name)
    form.template_id.choices = [C(0, _("— write the text below —"))] + [
        C(t.id, t.name) for t in templates.list_templates(db())]


def _message(template_id: int | None, text: str | None, by_id: dict) -> str:
    """What a schedule sends: its template's text, or its own."""
    template = by_id.get(template_id)
    return template.text if template else (text or "")


def _as_sent(message: str) -> str:
    """The text with what is known filled in: the clinic's name, 〇〇 for the patient's."""
    try:
        return templates.render(message, clinic=tsunagu_config().clinic_name,
                                contact_name="〇〇", kana="〇〇")
    except templates.TemplateError:
        return message  # a value such as {date} is filled in at each run: shown as written


def _preview(message: str) -> tuple[str | None, str | None]:
    """(the text as a patient reads it, or None; the problem in words, or None)."""
    if not message.strip():
        return None, None
    try:
        return templates.schedule_preview(message, clinic=tsunagu_config().clinic_name), None
    except templates.TemplateError as exc:
        return None, wording.error_text(exc, lang())


@bp.route("/schedules", methods=["GET", "POST"])
@staff_required
def index():
    form = ScheduleForm()
    _choices(form)
    by_id = {t.id: t for t in templates.list_templates(db())}
    preview = (None, None)
    if request.method == "POST" and "preview" in request.form:
        # The form's preview button (without JavaScript): show the text, save nothing.
        preview = _preview(_message(form.template_id.data, form.text.data, by_id))
    elif form.validate_on_submit():
        hour, _sep, minute = (form.at.data or "").strip().partition(":")
        if not (hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60):
            form.at.errors = [_("Write the time as 17:00.")]
        else:
            days = ','.join(day for day in DAY_KEYS if day in form.days.data)
            cron = f"{int(minute)} {int(hour)} * * {days}"
            try:
                with write(db()) as conn:
                    schedules.add(conn, tsunagu_config(), name=form.name.data, cron=cron,
                                  groups=form.groups.data, text=form.text.data or None,
                                  template_id=form.template_id.data or None,
                                  priority=form.priority.data, actor=actor(), now=now())
            except schedules.ScheduleError as exc:
                field = getattr(form, exc.field or "name", None) or form.name
                field.errors = list(field.errors or []) + [wording.error_text(exc, lang())]
            else:
                flash(_("Schedule saved."), "ok")
                return redirect(url_for("schedules.index"))
    items = schedules.listing(db().conn, tsunagu_config(), now())
    for item in items:
        item["message"] = _as_sent(_message(item["template_id"], item["text"], by_id))
        item["template_name"] = by_id[item["template_id"]].name if item["template_id"] in by_id \
            else None
        item["when"] = wording.schedule_when(item["cron"], lang())
    return render_template("schedules.html", form=form, items=items, action=ActionForm(),
                           preview=preview[0], preview_problem=preview[1])


@bp.route("/schedules/<int:schedule_id>/<what>", methods=["POST"])
@staff_required
def change(schedule_id: int, what: str):
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        with write(db()) as conn:
            if what in ("enable", "disable"):
                schedules.set_enabled(conn, schedule_id, what == "enable", actor=actor(), now=now())
            elif what == "delete":
                schedules.delete(conn, schedule_id, actor=actor())
            else:
                abort(404)
    except schedules.ScheduleError as exc:
        flash(wording.error_text(exc, lang()), "error")
    return redirect(url_for("schedules.index"))
