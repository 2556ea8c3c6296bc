"""Contacts and groups: list, search, add, edit, deactivate; CSV import with a preview of
every row's problem before anything is saved (all or nothing); CSV export."""
from __future__ import annotations

from flask import (Blueprint, Response, abort, flash, redirect, render_template, request,
                   session, url_for)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms.fields.choices import SelectChoice as C
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from appliance import contacts, import_previews, wording

from . import db, lang, tsunagu_config
from .auth import actor, remote, roster_required, staff_required
from .fields import CheckboxesField
from .read_log import record_read

bp = Blueprint("contacts", __name__)


class ContactForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=100)])
    kana = StringField(_l("Kana"), validators=[Optional(), Length(max=100)])
    phone = StringField(_l("Mobile number"), validators=[DataRequired(), Length(max=40)])
    patient_id = StringField(_l("Patient ID"), validators=[Optional(), Length(max=40)])
    facility = StringField(_l("Facility"), validators=[Optional(), Length(max=100)])
    groups = CheckboxesField(_l("Groups"), coerce=int, validators=[Optional()])
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=500)])
    active = BooleanField(_l("Active (receives broadcasts)"), default=True)
    no_ring = BooleanField(_l("Never ring this person when they do not answer"), default=False)


class GroupForm(FlaskForm):
    name = StringField(_l("Group name"), validators=[DataRequired(), Length(max=60)])
    kind = SelectField(_l("Kind"), choices=[C("shift", _l("Dialysis shift")),
                                            C("facility", _l("Facility")),
                                            C("custom", _l("Other")), C("test", _l("Test"))])


class ImportForm(FlaskForm):
    file = FileField(_l("CSV file (UTF-8 or Shift_JIS)"), validators=[FileRequired()])


class ConfirmImportForm(FlaskForm):
    pass


def _lang() -> str:
    return str(get_locale() or "ja")


def _field_labels() -> dict[str, str]:
    """Field names as the import preview shows them (old → new of an update)."""
    index = 1 if _lang() == "en" else 0
    return {key: names[index] for key, names in contacts.LABELS.items()}


def _group_choices(form: ContactForm) -> None:
    # Facility groups follow the facility field; offering them here as well would let the
    # two disagree (the patient moved, the old facility still ticked).
    form.groups.choices = [C(g.id, g.name) for g in contacts.list_groups(db())
                           if g.kind != "facility"]


def _apply_problems(form: FlaskForm, error: contacts.ContactValidationError) -> None:
    for field, message in error.by_field(_lang()).items():
        target = getattr(form, field, None) or form.name
        target.errors = list(target.errors or []) + [message]


@bp.route("/contacts")
@staff_required
def index():
    query = request.args.get("q", "")
    group_id = request.args.get("group", type=int)
    inactive = request.args.get("inactive") == "1"
    sort = request.args.get("sort") if request.args.get("sort") in contacts.SORT_KEYS else "kana"
    descending = request.args.get("dir") == "desc"
    people = contacts.list_contacts(db(), query, group_id=group_id, include_inactive=inactive,
                                    sort=sort, descending=descending)
    # Who looked at or searched patients' data is part of the evidence (MHLW guideline).
    record_read("contacts_search" if query else "contacts_view",
                key=(query, group_id, inactive), query=query or None, group_id=group_id,
                shown=len(people))
    return render_template("contacts.html", people=people, query=query, group_id=group_id,
                           inactive=inactive, groups=contacts.list_groups(db()),
                           group_form=GroupForm(), sort=sort, descending=descending)


@bp.route("/contacts/new", methods=["GET", "POST"])
@staff_required
def new():
    form = ContactForm()
    _group_choices(form)
    if form.validate_on_submit():
        try:
            contact = contacts.add_contact(
                db(), name=form.name.data, phone=form.phone.data, kana=form.kana.data or "",
                patient_id=form.patient_id.data or None, facility=form.facility.data or "",
                note=form.note.data or "", group_ids=form.groups.data or [], actor=actor(),
                remote_addr=remote())
        except contacts.ContactValidationError as exc:
            _apply_problems(form, exc)
        else:
            flash(_("Saved %(name)s.", name=contact.name), "ok")
            return redirect(url_for("contacts.index"))
    return render_template("contact_form.html", form=form, contact=None)


@bp.route("/contacts/<int:contact_id>", methods=["GET", "POST"])
@staff_required
def edit(contact_id: int):
    contact = contacts.get_contact(db(), contact_id)
    if contact is None:
        abort(404)
    form = ContactForm(obj=None if request.method == "POST" else contact)
    _group_choices(form)
    if request.method == "GET":
        record_read("contact_view", key=contact_id, contact_id=contact_id)
        names = set(contact.groups)
        form.groups.data = [g.id for g in contacts.list_groups(db()) if g.name in names]
        form.phone.data = contact.display_phone
    if form.validate_on_submit():
        try:
            contacts.edit_contact(
                db(), contact_id, group_ids=form.groups.data or [], actor=actor(),
                remote_addr=remote(), name=form.name.data, kana=form.kana.data or "",
                phone=form.phone.data, patient_id=form.patient_id.data or None,
                facility=form.facility.data or "", note=form.note.data or "",
                active=form.active.data, no_ring=form.no_ring.data)
        except contacts.ContactValidationError as exc:
            _apply_problems(form, exc)
        else:
            flash(_("Saved %(name)s.", name=form.name.data), "ok")
            return redirect(url_for("contacts.index"))
    return render_template("contact_form.html", form=form, contact=contact)


@bp.route("/contacts/<int:contact_id>/deactivate", methods=["POST"])
@staff_required
def deactivate(contact_id: int):
    if not ConfirmImportForm().validate_on_submit():
        abort(400)
    try:
        contact = contacts.deactivate_contact(db(), contact_id, actor=actor(), remote_addr=remote())
    except contacts.NotFound:
        abort(404)
    flash(_("%(name)s will no longer receive broadcasts.", name=contact.name), "ok")
    return redirect(url_for("contacts.index"))


@bp.route("/groups", methods=["POST"])
@staff_required
def new_group():
    form = GroupForm()
    if form.validate_on_submit():
        try:
            contacts.create_group(db(), form.name.data, kind=form.kind.data, actor=actor(),
                                  remote_addr=remote())
        except contacts.ContactValidationError as exc:
            flash(" / ".join(exc.by_field(_lang()).values()), "error")
        else:
            flash(_("Group %(name)s created.", name=form.name.data), "ok")
    else:
        flash(_("Give the group a name."), "error")
    return redirect(url_for("contacts.index"))


# -- import ----------------------------------------------------------------------------------

def _forget_upload() -> None:
    session.pop("import_name", None)
    import_previews.forget(tsunagu_config(), session.pop("import_token", None))


@bp.route("/contacts/import", methods=["GET", "POST"])
@roster_required
def import_upload():
    form = ImportForm()
    if form.validate_on_submit():
        data = form.file.data.read()
        try:
            preview = contacts.preview(db(), data)
        except contacts.ContactImportError as exc:
            return render_template("import.html", labels=_field_labels(), form=form, preview=exc.preview,
                                   problems=exc.problems, lang=_lang())
        _forget_upload()  # a new file replaces any earlier preview
        if not preview.ok_count:
            # Nothing to confirm: the patient data in the file is not kept on disk.
            return render_template("import.html", labels=_field_labels(), form=form, preview=preview, problems=[],
                                   lang=_lang())
        session["import_token"] = import_previews.save(tsunagu_config(), data)
        session["import_name"] = form.file.data.filename
        return render_template("import.html", labels=_field_labels(), form=form, preview=preview, problems=[],
                               confirm=ConfirmImportForm(), lang=_lang())
    return render_template("import.html", labels=_field_labels(), form=form, preview=None, problems=[], lang=_lang())


@bp.route("/contacts/import/confirm", methods=["POST"])
@roster_required
def import_confirm():
    if not ConfirmImportForm().validate_on_submit():
        abort(400)
    data = import_previews.take(tsunagu_config(), session.pop("import_token", None))
    if data is None:
        flash(_("Upload the file again: the preview has expired."), "error")
        return redirect(url_for("contacts.import_upload"))
    try:
        result = contacts.import_contacts(db(), data, actor=actor(), remote_addr=remote(),
                                          filename=session.pop("import_name", None),
                                          skip_errors=request.form.get("skip_errors") == "1")
    except contacts.ContactImportError as exc:
        flash(_("Nothing was imported: the data changed since the preview. %(n)d problem(s).",
                n=len(exc.problems)), "error")
        return redirect(url_for("contacts.import_upload"))
    flash(_("Imported: %(new)d new, %(updated)d updated, %(same)d unchanged.",
            new=result.created, updated=result.updated, same=result.unchanged), "ok")
    if result.skipped:
        # The rows left out stay in view, with why, so they can be fixed and sent again.
        return render_template("import.html", form=ImportForm(), preview=None, problems=[],
                               skipped=result.skipped, lang=_lang())
    return redirect(url_for("contacts.index"))


# A roster with every column the import reads; names and numbers are made up.
SAMPLE_ROWS = [
    ["見本1", "山田 花子", "ヤマダ ハナコ", "090-9000-0001", "本院", "月水金", "午前", "", "", ""],
    ["見本2", "髙橋 一郎", "タカハシ イチロウ", "080-9000-0002", "みなみ分院", "火木土", "午後",
     "送迎あり", "耳が遠いので大きな声で", ""],
    ["", "佐藤 次郎", "サトウ ジロウ", "070-9000-0003", "本院", "月水金", "夜間", "", "",
     "はい"],
]


@bp.route("/contacts/import/sample.csv")
@staff_required
def import_sample():
    """A sample roster (Excel's CSV, Shift_JIS) to fill in: the columns the import reads."""
    from appliance import roster_csv
    from appliance.contacts_csv import EXPORT_FIELDS
    data = roster_csv.write([roster_csv.HEADERS_JA[f] for f in EXPORT_FIELDS], SAMPLE_ROWS,
                            "cp932")
    return Response(data, content_type="text/csv; charset=shift_jis", headers={
        "Content-Disposition": "attachment; filename=roster-sample.csv"})


@bp.route("/contacts/export")
@roster_required
def export():
    encoding = request.args.get("encoding", "cp932")
    if encoding not in ("cp932", "utf-8"):
        abort(400)
    try:
        data = contacts.export_contacts(db(), encoding, actor=actor(), remote_addr=remote())
    except contacts.ExportError as exc:
        flash(wording.error_text(exc, lang()), "error")
        return redirect(url_for("contacts.index"))
    charset = "shift_jis" if encoding == "cp932" else "utf-8"
    return Response(data, content_type=f"text/csv; charset={charset}", headers={
        "Content-Disposition": f"attachment; filename=contacts-{encoding}.csv"})
