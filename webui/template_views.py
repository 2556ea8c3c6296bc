"""Message templates: list, create, edit, delete, with a preview and the SMS count."""
from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice as C
from wtforms.validators import DataRequired, Length, Optional

from appliance import templates, wording
from modem.errors import MessageTooLong
from modem.pdu import EmptyMessage

from . import db, lang, tsunagu_config
from .auth import actor, remote, staff_required
from .fields import CheckboxesField

bp = Blueprint("templates", __name__)


class TemplateForm(FlaskForm):
    name = StringField(_l("Template name"), validators=[DataRequired(), Length(max=60)])
    text = TextAreaField(_l("Message"), validators=[DataRequired(), Length(max=2000)])
    priority = RadioField(_l("Priority"), default="routine",
                          choices=[C("emergency", _l("Emergency (sent first)")),
                                   C("routine", _l("Routine"))])
    choices = TextAreaField(_l("Reply choices (one per line, optional)"),
                            validators=[Optional(), Length(max=400)])
    groups = CheckboxesField(_l("Groups chosen when this template is used (optional)"),
                             coerce=int, validators=[Optional()])


def _form(**kwargs) -> TemplateForm:
    from .broadcast_views import group_choices
    form = TemplateForm(**kwargs)
    form.groups.choices = group_choices()
    return form


def _settings(form: TemplateForm) -> dict:
    return {"priority": form.priority.data or "routine",
            "choices": (form.choices.data or "").splitlines(),
            "group_ids": form.groups.data or []}


class DeleteForm(FlaskForm):
    pass


def _preview(text: str) -> tuple[str | None, object]:
    """The text as a patient reads it (ordinary example values), and its count with long
    ones (the most it can take)."""
    clinic = tsunagu_config().clinic_name
    if not text.strip():
        return None, None
    try:
        return templates.preview(text, clinic=clinic), templates.measure(text, clinic=clinic)
    except (templates.TemplateError, MessageTooLong):
        return None, None


@bp.route("/templates")
@staff_required
def index():
    items = [(t, *_preview(t.text)) for t in templates.list_templates(db())]
    return render_template("templates_list.html", items=items, delete=DeleteForm())


def _previewing() -> bool:
    """The form's Preview button: check and show the text, save nothing (works without JS)."""
    return "preview" in request.form


def _save(form: TemplateForm, template_id: int | None):
    clinic = tsunagu_config().clinic_name
    try:
        if _previewing():
            templates.validate(form.name.data, form.text.data, clinic=clinic)
            return None
        if template_id is None:
            return templates.create_template(db(), form.name.data, form.text.data, actor=actor(),
                                             clinic=clinic, remote_addr=remote(),
                                             **_settings(form))
        return templates.update_template(db(), template_id, actor=actor(), clinic=clinic,
                                         name=form.name.data, text=form.text.data,
                                         remote_addr=remote(), **_settings(form))
    except (templates.TemplateError, MessageTooLong, EmptyMessage) as exc:
        field = getattr(form, getattr(exc, "field", None) or "text")
        field.errors = list(field.errors or []) + [wording.error_text(exc, lang())]
        return None


@bp.route("/templates/new", methods=["GET", "POST"])
@staff_required
def new():
    form = _form()
    if form.validate_on_submit() and _save(form, None):
        flash(_("Template saved."), "ok")
        return redirect(url_for("templates.index"))
    sample, count = _preview(form.text.data or "")
    return render_template("template_form.html", form=form, sample=sample, count=count,
                           allowed=templates.allowed_list())


@bp.route("/templates/<int:template_id>", methods=["GET", "POST"])
@staff_required
def edit(template_id: int):
    template = templates.get_template(db(), template_id)
    if template is None:
        abort(404)
    form = _form(obj=None if request.method == "POST" else template)
    if request.method == "GET":
        form.choices.data = "\n".join(template.choices)
        form.groups.data = list(template.group_ids)
    if form.validate_on_submit() and _save(form, template_id):
        flash(_("Template saved."), "ok")
        return redirect(url_for("templates.index"))
    sample, count = _preview(form.text.data or "")
    return render_template("template_form.html", form=form, sample=sample, count=count,
                           allowed=templates.allowed_list(), template=template)


@bp.route("/api/templates/<int:template_id>")
@staff_required
def api_template(template_id: int):
    """A template and how it is sent, for the forms that use one (compose, schedules)."""
    template = templates.get_template(db(), template_id)
    if template is None:
        abort(404)
    clinic = tsunagu_config().clinic_name
    show = templates.schedule_preview if request.args.get("for") == "schedule" \
        else templates.preview
    try:
        sample = show(template.text, clinic=clinic)
    except templates.TemplateError as exc:
        # e.g. {date} with no value yet: say which, the text itself is still shown.
        sample = None
        problem = wording.error_text(exc, lang())
    else:
        problem = None
    return jsonify({"id": template.id, "name": template.name, "text": template.text,
                    "priority": template.priority, "choices": "\n".join(template.choices),
                    "groups": list(template.group_ids), "sample": sample, "problem": problem})


@bp.route("/templates/<int:template_id>/delete", methods=["POST"])
@staff_required
def delete(template_id: int):
    if not DeleteForm().validate_on_submit():
        abort(400)
    if templates.get_template(db(), template_id) is None:
        abort(404)  # already deleted, e.g. by a double click or a colleague
    try:
        templates.delete_template(db(), template_id, actor=actor(), remote_addr=remote())
    except templates.TemplateError as exc:  # a recurring message still uses it
        flash(wording.error_text(exc, lang()), "error")
    else:
        flash(_("Template deleted."), "ok")
    return redirect(url_for("templates.index"))
