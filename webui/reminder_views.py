"""Personal reminders in the web UI: what goes when, the replies, those that could not go in
time; the appointments file (preview, then import all or nothing); the kinds and their rules.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (BooleanField, IntegerField, RadioField, SelectField, StringField,
                     TextAreaField)
from wtforms.fields.choices import SelectChoice as C
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from appliance import import_previews, reminders, reminders_csv, templates, wording
from appliance.db import write

from . import db, now, tsunagu_config, words
from .auth import actor, remote, staff_required

bp = Blueprint("reminders", __name__)

MISSED_DAYS = 7


def _lang() -> str:
    return str(get_locale() or "ja")


@bp.app_template_filter("reminder_reason")
def reminder_reason(key: str | None) -> str:
    if not key:
        return ""
    if key in wording.REMINDER_REASONS:
        return wording.word(wording.REMINDER_REASONS, key, _lang())
    return key   # an error's own text (it names the problem)


@bp.route("/reminders")
@staff_required
def index():
    conn, config, at = db().conn, tsunagu_config(), now()
    show_all = request.args.get("all") == "1"
    items = reminders.listing(conn, config, at, since=None if show_all else at - 86400)
    bad = [r for r in reminders.listing(conn, config, at, states=("missed", "failed"),
                                        since=at - MISSED_DAYS * 86400)]
    return render_template("reminders.html", items=items, bad=bad,
                           labels=words(wording.REMINDER_STATES),
                           kinds=reminders.kinds(conn), show_all=show_all)


# -- the appointments file ------------------------------------------------------------------

class ImportForm(FlaskForm):
    file = FileField(_l("CSV file (UTF-8 or Shift_JIS)"), validators=[FileRequired()])


class ConfirmForm(FlaskForm):
    pass


@bp.route("/reminders/import", methods=["GET", "POST"])
@staff_required
def import_upload():
    form = ImportForm()
    config = tsunagu_config()
    args = dict(form=form, preview=None, problems=[], lang=_lang(),
                actions=words(wording.REMINDER_IMPORT_ACTIONS))
    if form.validate_on_submit():
        data = form.file.data.read()
        try:
            preview = reminders_csv.preview(db(), config, data, now=now())
        except reminders_csv.ReminderImportError as exc:
            return render_template("reminders_import.html", **{**args, "problems": exc.problems})
        import_previews.forget(config, session.pop("reminders_import", None))
        args["preview"] = preview
        if not preview.error_count:
            session["reminders_import"] = import_previews.save(config, data)
            session["reminders_import_name"] = form.file.data.filename
            args["confirm"] = ConfirmForm()
    return render_template("reminders_import.html", **args)


@bp.route("/reminders/import/confirm", methods=["POST"])
@staff_required
def import_confirm():
    if not ConfirmForm().validate_on_submit():
        abort(400)
    config = tsunagu_config()
    data = import_previews.take(config, session.pop("reminders_import", None))
    if data is None:
        flash(_("Upload the file again: the preview has expired."), "error")
        return redirect(url_for("reminders.import_upload"))
    try:
        result = reminders_csv.import_reminders(
            db(), config, data, actor=actor(), now=now(), remote_addr=remote(),
            filename=session.pop("reminders_import_name", None))
    except reminders_csv.ReminderImportError as exc:
        flash(_("Nothing was imported: the data changed since the preview. %(n)d problem(s).",
                n=len(exc.problems)), "error")
        return redirect(url_for("reminders.import_upload"))
    flash(_("Imported: %(new)d new, %(changed)d changed, %(withdrawn)d withdrawn, "
            "%(same)d unchanged, %(past)d past.", new=result.new, changed=result.changed,
            withdrawn=result.withdrawn, same=result.unchanged, past=result.past), "ok")
    return redirect(url_for("reminders.index"))


# -- kinds ----------------------------------------------------------------------------------

class KindForm(FlaskForm):
    name = StringField(_l("Kind (e.g. 透析予約, 採血)"),
                       validators=[DataRequired(), Length(max=reminders.NAME_MAX)])
    template_id = SelectField(_l("Template"), coerce=int, validators=[Optional()])
    text = TextAreaField(_l("Message (when no template)"),
                         validators=[Optional(), Length(max=1000)])
    changed_text = TextAreaField(_l("Message when an announced appointment moved (optional)"),
                                 validators=[Optional(), Length(max=1000)])
    timing = RadioField(_l("When to send"), default="days",
                        choices=[C("days", _l("days before, at a time")),
                                 C("hours", _l("hours before"))])
    days_before = IntegerField(_l("Days before"), default=1,
                               validators=[Optional(), NumberRange(min=0, max=reminders.DAYS_MAX)])
    send_time = StringField(_l("At (HH:MM)"), default="17:00",
                            validators=[Optional(), Length(max=5)])
    hours_before = IntegerField(_l("Hours before"),
                                validators=[Optional(), NumberRange(min=1, max=reminders.HOURS_MAX)])
    quiet_start = StringField(_l("No SMS from (HH:MM)"), default="21:00",
                              validators=[Optional(), Length(max=5)])
    quiet_end = StringField(_l("…until (HH:MM)"), default="08:00",
                            validators=[Optional(), Length(max=5)])
    latest_minutes = IntegerField(_l("Not later than this many minutes before the appointment"),
                                  default=60, validators=[NumberRange(min=0, max=1440)])
    choices = StringField(_l("Reply choices (separated by /)"), default="はい / 変更したい",
                          validators=[Optional(), Length(max=200)])
    priority = RadioField(_l("Priority"), default="routine",
                          choices=[C("routine", _l("Routine")),
                                   C("emergency", _l("Emergency (sent first, even in quiet hours)"))])
    enabled = BooleanField(_l("In use"), default=True)


def _kind_choices(form: KindForm) -> None:
    form.template_id.choices = [C(0, "—")] + [C(t.id, t.name)
                                             for t in templates.list_templates(db())]


def _save(form: KindForm, kind_id: int | None) -> bool:
    try:
        with write(db()) as conn:
            reminders.save_kind(
                conn, tsunagu_config(), kind_id=kind_id, name=form.name.data,
                template_id=form.template_id.data or None, text=form.text.data,
                changed_text=form.changed_text.data,
                days_before=form.days_before.data if form.timing.data == "days" else None,
                send_time=form.send_time.data if form.timing.data == "days" else None,
                hours_before=form.hours_before.data if form.timing.data == "hours" else None,
                quiet_start=form.quiet_start.data, quiet_end=form.quiet_end.data,
                latest_minutes=form.latest_minutes.data, choices=form.choices.data,
                priority=form.priority.data, enabled=form.enabled.data, actor=actor(),
                now=now(), remote_addr=remote())
    except reminders.ReminderError as exc:
        target = {"days_before": form.days_before}.get(exc.field or "") or \
            getattr(form, exc.field or "name", None) or form.name
        if exc.field == "days_before" and form.timing.data == "hours":
            target = form.hours_before
        target.errors = list(target.errors or []) + [str(exc)]
        return False
    return True


@bp.route("/reminders/kinds", methods=["GET", "POST"])
@staff_required
def kinds():
    return _kind_page(KindForm(), None)


def _kind_page(form: KindForm, editing: reminders.Kind | None):
    _kind_choices(form)
    if form.validate_on_submit() and _save(form, editing.id if editing else None):
        flash(_("Reminder kind saved."), "ok")
        return redirect(url_for("reminders.kinds"))
    return render_template("reminder_kinds.html", form=form, kinds=reminders.kinds(db().conn),
                           editing=editing)


@bp.route("/reminders/kinds/<int:kind_id>", methods=["GET", "POST"])
@staff_required
def edit_kind(kind_id: int):
    current = reminders.kind(db().conn, kind_id)
    if current is None:
        abort(404)
    if request.method == "GET":
        form = KindForm(data={
            "name": current.name, "template_id": current.template_id or 0,
            "text": current.text, "changed_text": current.changed_text,
            "timing": "days" if current.days_before is not None else "hours",
            "days_before": current.days_before,
            "send_time": current.send_time.strftime("%H:%M") if current.send_time else "",
            "hours_before": int(current.hours_before) if current.hours_before else None,
            "quiet_start": current.quiet_start.strftime("%H:%M") if current.quiet_start else "",
            "quiet_end": current.quiet_end.strftime("%H:%M") if current.quiet_end else "",
            "latest_minutes": current.latest_minutes, "choices": " / ".join(current.choices),
            "priority": current.priority, "enabled": current.enabled})
    else:
        form = KindForm()
    return _kind_page(form, current)
