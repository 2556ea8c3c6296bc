"""Message templates: list, create, edit, delete, with a preview and the SMS count."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from appliance import templates
from modem.errors import MessageTooLong
from modem.pdu import EmptyMessage

from . import db, tsunagu_config
from .auth import actor, remote, staff_required

bp = Blueprint("templates", __name__)


class TemplateForm(FlaskForm):
    name = StringField(_l("Template name"), validators=[DataRequired(), Length(max=60)])
    text = TextAreaField(_l("Message"), validators=[DataRequired(), Length(max=2000)])


class DeleteForm(FlaskForm):
    pass


def _preview(text: str) -> tuple[str | None, object]:
    clinic = tsunagu_config().clinic_name
    if not text.strip():
        return None, None
    try:
        sample = templates.render(text, clinic=clinic, **{
            ("contact_name" if k == "name" else k): v for k, v in templates.SAMPLE_VALUES.items()})
        return sample, templates.measure(text, clinic=clinic)
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
                                             clinic=clinic, remote_addr=remote())
        return templates.update_template(db(), template_id, actor=actor(), clinic=clinic,
                                         name=form.name.data, text=form.text.data,
                                         remote_addr=remote())
    except (templates.TemplateError, MessageTooLong, EmptyMessage) as exc:
        field = getattr(form, getattr(exc, "field", None) or "text")
        field.errors = list(field.errors or []) + [str(exc)]
        return None


@bp.route("/templates/new", methods=["GET", "POST"])
@staff_required
def new():
    form = TemplateForm()
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
    form = TemplateForm(obj=template)
    if form.validate_on_submit() and _save(form, template_id):
        flash(_("Template saved."), "ok")
        return redirect(url_for("templates.index"))
    sample, count = _preview(form.text.data or "")
    return render_template("template_form.html", form=form, sample=sample, count=count,
                           allowed=templates.allowed_list(), template=template)


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
        flash(str(exc), "error")
    else:
        flash(_("Template deleted."), "ok")
    return redirect(url_for("templates.index"))
