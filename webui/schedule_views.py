"""Recurring broadcasts in the web UI: list with the next run, add, pause, delete."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice as C
from wtforms.validators import DataRequired, Length, Optional

from appliance import contacts, schedules, templates
from appliance.db import write

from . import db, now, tsunagu_config
from .auth import actor, staff_required

bp = Blueprint("schedules", __name__)

DAYS = [("mon", _l("Monday")), ("tue", _l("Tuesday")), ("wed", _l("Wednesday")),
        ("thu", _l("Thursday")), ("fri", _l("Friday")), ("sat", _l("Saturday")),
        ("sun", _l("Sunday"))]


class ScheduleForm(FlaskForm):
    name = StringField(_l("Schedule name"), validators=[DataRequired(), Length(max=60)])
    days = SelectMultipleField(_l("Days"), choices=[C(v, label) for v, label in DAYS],
                               validators=[DataRequired()])
    at = StringField(_l("Time (HH:MM)"), validators=[DataRequired(), Length(max=5)])
    groups = SelectMultipleField(_l("Groups"), validators=[DataRequired()])
    template_id = SelectField(_l("Template"), coerce=int, validators=[Optional()])
    text = TextAreaField(_l("Message (when no template)"), validators=[Optional(), Length(max=2000)])
    priority = RadioField(_l("Priority"), default="routine",
                          choices=[C("routine", _l("Routine")), C("emergency", _l("Emergency"))])


class ActionForm(FlaskForm):
    pass


def _choices(form: ScheduleForm) -> None:
    form.groups.choices = [C(g.name, g.name) for g in contacts.list_groups(db())]
    form.template_id.choices = [C(0, "—")] + [C(t.id, t.name) for t in templates.list_templates(db())]


@bp.route("/schedules", methods=["GET", "POST"])
@staff_required
def index():
    form = ScheduleForm()
    _choices(form)
    if form.validate_on_submit():
        hour, _sep, minute = (form.at.data or "").strip().partition(":")
        if not (hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60):
            form.at.errors = [_("Write the time as 17:00.")]
        else:
            cron = f"{int(minute)} {int(hour)} * * {','.join(form.days.data)}"
            try:
                with write(db()) as conn:
                    schedules.add(conn, tsunagu_config(), name=form.name.data, cron=cron,
                                  groups=form.groups.data, text=form.text.data or None,
                                  template_id=form.template_id.data or None,
                                  priority=form.priority.data, actor=actor(), now=now())
            except schedules.ScheduleError as exc:
                field = getattr(form, exc.field or "name", None) or form.name
                field.errors = list(field.errors or []) + [str(exc)]
            else:
                flash(_("Schedule saved."), "ok")
                return redirect(url_for("schedules.index"))
    items = schedules.listing(db().conn, tsunagu_config(), now())
    return render_template("schedules.html", form=form, items=items, action=ActionForm())


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
        flash(str(exc), "error")
    return redirect(url_for("schedules.index"))
