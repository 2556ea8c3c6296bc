"""Compose → confirm → send, the broadcast page, the call list, history and the inbox.

Nothing is sent before the explicit confirm. The confirm form carries a request key made
when the confirm page was shown, so pressing 送信 twice (or reloading) sends once.
"""
from __future__ import annotations

import datetime as dt
import uuid

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms.fields.choices import SelectChoice as C
from wtforms import (BooleanField, HiddenField, IntegerField, RadioField, SelectField,
                     StringField, TextAreaField)
from wtforms.validators import Length, NumberRange, Optional

from appliance import (broadcasts, budget, calls, contacts, doorbell, replies, templates,
                       wording)
from appliance.db import write

from . import db, lang, now, page_arg, tsunagu_config, when
from .auth import actor, safe_next, staff_required
from .fields import CheckboxesField
from .read_log import record_read

bp = Blueprint("broadcasts", __name__)



class ComposeForm(FlaskForm):
    title = StringField(_l("Title (for the history)"), validators=[Optional(), Length(max=80)])
    template_id = SelectField(_l("Template"), coerce=int, validators=[Optional()])
    text = TextAreaField(_l("Message"), validators=[Length(max=2000)])
    groups = CheckboxesField(_l("Groups"), coerce=int, validators=[Optional()])
    contacts = CheckboxesField(_l("People"), coerce=int, validators=[Optional()])
    everyone = BooleanField(_l("Everyone (all active contacts)"))
    priority = RadioField(_l("Priority"), default="routine",
                          choices=[C("emergency", _l("Emergency (sent first)")),
                                   C("routine", _l("Routine"))])
    drill = BooleanField(_l("Drill: send only to the test group"))
    choices = TextAreaField(_l("Reply choices (one per line, optional)"),
                            validators=[Optional(), Length(max=400)])
    date = StringField(_l("{date}"), validators=[Optional(), Length(max=40)])
    time = StringField(_l("{time}"), validators=[Optional(), Length(max=40)])
    original_time = StringField(_l("{original_time}"), validators=[Optional(), Length(max=40)])
    send_at = StringField(_l("Send later (YYYY-MM-DD HH:MM, optional)"),
                          validators=[Optional(), Length(max=20)])
    followup_after = IntegerField(_l("Resend to those who have not replied after (minutes)"),
                                  validators=[Optional(), NumberRange(min=1, max=1440)])
    followup_max = IntegerField(_l("…up to (times)"),
                                validators=[Optional(), NumberRange(min=1, max=5)])
    ring = RadioField(_l("Ring those who neither received it nor replied (one short call)"),
                      default="auto",
                      choices=[C("auto", _l("For an emergency only (usual)")),
                               C("on", _l("Ring them")), C("off", _l("Do not ring"))])
    request_key = HiddenField()


def _ring_choice(form: ComposeForm) -> bool | None:
    """The compose page's ringing choice for broadcasts.create: None follows the priority."""
    return {"on": True, "off": False}.get(form.ring.data or "auto")


def _choices(form: ComposeForm) -> None:
    form.template_id.choices = [C(0, _("— write freely —"))] + [
        C(t.id, t.name) for t in templates.list_templates(db())]
    form.groups.choices = group_choices()
    form.contacts.choices = [C(c.id, f"{c.name}（{c.kana}）" if c.kana else c.name)
                             for c in contacts.list_contacts(db())]


def group_choices(value=lambda g: g.id) -> list:
    """Every group with its number of active members, the test group last."""
    groups = sorted(contacts.list_groups(db()), key=lambda g: g.kind == "test")
    return [C(value(g), _("%(name)s (%(n)d people)", name=g.name, n=g.member_count))
            for g in groups]


def apply_template(form, template: templates.Template) -> None:
    """Fill a form from a template: its text and how it is sent (priority, reply choices,
    groups). The JavaScript does the same through /api/templates/<id>."""
    form.template_id.data, form.text.data = template.id, template.text
    form.priority.data = template.priority
    if hasattr(form, "choices"):
        form.choices.data = "\n".join(template.choices)
    known = {c.value for c in form.groups.choices}
    if template.group_ids and not form.groups.data:
        form.groups.data = [g for g in template.group_ids if g in known]


def _plan(form: ComposeForm):
    """The plan for the form's values; errors go beside their fields. None when invalid."""
    config = tsunagu_config()
    text = form.text.data or ""
    if form.template_id.data and not text.strip():
        template = templates.get_template(db(), form.template_id.data)
        text = template.text if template else ""
        form.text.data = text
    values = {k: getattr(form, k).data for k in ("date", "time", "original_time")
              if getattr(form, k).data}
    try:
        plan = broadcasts.plan(db().conn, config, text=text, group_ids=form.groups.data or [],
                               contact_ids=form.contacts.data or [], everyone=form.everyone.data,
                               priority=form.priority.data or "routine", drill=form.drill.data,
                               choices=form.choices.data, values=values, now=now())
    except broadcasts.BroadcastError as exc:
        field = {"text": form.text, "groups": form.groups, "choices": form.choices,
                 "priority": form.priority}.get(exc.field or "", form.text)
        field.errors = list(field.errors or []) + [wording.error_text(exc, lang())]
        return None
    return plan


def _send_at(form: ComposeForm) -> float | None | bool:
    """Unix time of a later send, None for now, False (with an error shown) when invalid."""
    if not form.send_at.data:
        return None
    try:
        moment = dt.datetime.strptime(form.send_at.data.strip().replace("T", " "),
                                      "%Y-%m-%d %H:%M").replace(tzinfo=tsunagu_config().zone)
    except ValueError:
        form.send_at.errors = [_("Write the time as 2026-12-01 17:00.")]
        return False
    if moment.timestamp() <= now():
        form.send_at.errors = [_("This time has passed.")]
        return False
    return moment.timestamp()


@bp.route("/send", methods=["GET", "POST"])
@staff_required
def compose():
    form = ComposeForm()
    _choices(form)
    if request.method == "GET" and request.args.get("template", type=int):
        template = templates.get_template(db(), request.args.get("template", type=int))
        if template:
            apply_template(form, template)
    if request.method == "POST" and "edit" in request.form:
        return render_template("compose.html", form=form)  # back from the confirm page
    if request.method == "POST" and "use_template" in request.form:
        # Without JavaScript, "use this template" reloads the page with its text.
        template = templates.get_template(db(), form.template_id.data or 0)
        if template:
            apply_template(form, template)
        return render_template("compose.html", form=form)
    if form.validate_on_submit():
        when = _send_at(form)
        plan = _plan(form) if when is not False else None
        if plan is not None:
            form.request_key.data = uuid.uuid4().hex
            return render_template("confirm.html", form=form, plan=plan, send_at=when,
                                   previews=_distinct_previews(plan),
                                   rings=broadcasts.rings_if_no_answer(plan, _ring_choice(form)),
                                   ring_after=tsunagu_config().ring.after_minutes,
                                   chosen_groups=[c.label for c in form.groups.choices
                                                  if c.value in (form.groups.data or [])],
                                   chosen_people=len(form.contacts.data or []))
    return render_template("compose.html", form=form)


def _distinct_previews(plan, limit: int = 3) -> list[tuple[object, int]]:
    """Up to *limit* different texts, each with one recipient and how many get it."""
    seen: dict[str, list] = {}
    for r in plan.recipients:
        seen.setdefault(r.text, []).append(r)
    return [(people[0], len(people)) for people in list(seen.values())[:limit]]


@bp.route("/send/commit", methods=["POST"])
@staff_required
def commit():
    form = ComposeForm()
    _choices(form)
    if not form.validate_on_submit() or not form.request_key.data:
        return render_template("compose.html", form=form), 400
    when = _send_at(form)
    plan = _plan(form) if when is not False else None
    if plan is None:
        return render_template("compose.html", form=form), 400
    title = form.title.data or ""
    if not title and form.template_id.data:
        template = templates.get_template(db(), form.template_id.data)
        title = template.name if template else ""
    with write(db()) as conn:
        broadcast_id = broadcasts.create(
            conn, plan, title=title, actor=actor(), now=now(),
            template_id=form.template_id.data or None, scheduled_at=when or None,
            request_key=form.request_key.data,
            followup_after_minutes=form.followup_after.data if form.followup_max.data else None,
            followup_max=form.followup_max.data or 0, ring_if_no_answer=_ring_choice(form))
    doorbell.ring(tsunagu_config().database)  # the daemon begins now, not in a moment
    return redirect(url_for("broadcasts.detail", broadcast_id=broadcast_id))


def _get_summary(broadcast_id: int, held: dict[int, float] | None = None) -> dict:
    try:
        return broadcasts.summary(db().conn, broadcast_id, held=held)
    except broadcasts.BroadcastError:
        abort(404)


def _forecast(broadcast_id: int) -> tuple[dict[int, float], str | None, int | None]:
    """(the messages held back, the sentence that says how long the rest takes, its
    minutes): the queue ahead of the broadcast counts, what waits for tomorrow's budget
    does not (the page says when that goes)."""
    from math import ceil
    held, seconds = budget.broadcast_forecast(db().conn, tsunagu_config(), now(), broadcast_id)
    if seconds is None:
        return held, None, None
    minutes = max(1, ceil(seconds / 60))
    if held:
        return held, _("About %(m)s minute(s) until the last one allowed today is sent.",
                       m=minutes), minutes
    return held, _("About %(m)s minute(s) until the last one is sent.", m=minutes), minutes


def _budget_notice(summary: dict) -> str | None:
    """What the page says while the daily limits hold some of its messages back, or None;
    in the live updates too, so it comes and goes with the count beside it."""
    held = summary["counts"]["budget_wait"]
    if not held:
        return None
    if summary["budget_until"] == float("inf"):
        return _("%(n)d message(s) are longer than any SIM's daily limit allows: phone them.",
                 n=held)
    return _("%(n)d message(s) wait for the SIMs' daily limit: they go from %(t)s.", n=held,
             t=when(summary["budget_until"]))


# Recipients per page of the broadcast page: a clinic's whole roster (~200) on one page, as
# always; a 10,000-person broadcast in pages, so the page and its live updates (every 2 s
# while sending) stay quick instead of carrying every row each time (issue 16).
PEOPLE_PER_PAGE = 200


def _page_of_people(broadcast_id: int, total: int, held: dict[int, float]
                    ) -> tuple[list[dict], dict]:
    """This request's page (?page=N) of the recipients, and where it sits among them."""
    pages = max(1, -(-total // PEOPLE_PER_PAGE))
    page = min(max(1, request.args.get("page", 1, type=int)), pages)
    first = (page - 1) * PEOPLE_PER_PAGE
    people = broadcasts.recipients(db().conn, broadcast_id, held=held,
                                   limit=PEOPLE_PER_PAGE, offset=first)
    return people, {"page": page, "pages": pages, "first": first + 1,
                    "last": first + len(people), "total": total}


@bp.route("/broadcasts/<int:broadcast_id>")
@staff_required
def detail(broadcast_id: int):
    held, remaining, _minutes = _forecast(broadcast_id)
    summary = _get_summary(broadcast_id, held)
    people, pager = _page_of_people(broadcast_id, summary["total"], held)
    # The page names the patients and their answers (MHLW guideline: reads are recorded).
    record_read("broadcast_view", key=(broadcast_id, pager["page"]),
                broadcast_id=broadcast_id, page=pager["page"], people=len(people))
    from appliance import ringing
    return render_template("broadcast.html", b=summary, people=people, pager=pager,
                           rings=ringing.for_recipients(db().conn, [r["id"] for r in people]),
                           remaining=remaining, budget_notice=_budget_notice(summary),
                           live=summary["state"] in ("queued", "sending", "scheduled"))


@bp.route("/api/broadcasts/<int:broadcast_id>")
@staff_required
def api_detail(broadcast_id: int):
    held, remaining, minutes = _forecast(broadcast_id)
    summary = _get_summary(broadcast_id, held)
    people, _pager = _page_of_people(broadcast_id, summary["total"], held)
    return jsonify({"state": summary["state"],
                    "state_label": wording.state(summary["state"], lang()),
                    "progress": summary["progress"], "counts": summary["counts"],
                    "acknowledged": summary["acknowledged"], "tally": summary["tally"],
                    "remaining_minutes": minutes, "remaining": remaining,
                    "budget_notice": _budget_notice(summary),
                    "recipients": [{"id": r["id"], "state": r["state"],
                                    "label": wording.state(r["state"], lang()),
                                    "meaning": wording.word(wording.STATE_MEANINGS, r["state"],
                                                            lang()),
                                    "acknowledged": bool(r["acknowledged_at"]),
                                    "choice": r["choice"]} for r in people]})


def _act(broadcast_id: int, change, message, *, go_to_result: bool = False,
         queues: bool = True):
    """Run *change(conn)* in one transaction and say what happened; errors as a message.
    *queues*: the change queues messages, so the daemon is rung to send them now."""
    try:
        with write(db()) as conn:
            result = change(conn)
    except broadcasts.BroadcastError as exc:
        flash(wording.error_text(exc, lang()), "error")
        return redirect(url_for("broadcasts.detail", broadcast_id=broadcast_id))
    if queues:
        doorbell.ring(tsunagu_config().database)
    flash(message(result), "ok")
    target = result if go_to_result and isinstance(result, int) else broadcast_id
    return redirect(url_for("broadcasts.detail", broadcast_id=target))


@bp.route("/broadcasts/<int:broadcast_id>/cancel", methods=["POST"])
@staff_required
def cancel(broadcast_id: int):
    return _act(broadcast_id,
                lambda conn: broadcasts.cancel(conn, broadcast_id, actor=actor(), now=now()),
                lambda n: _("Cancelled: %(n)d not sent.", n=n), queues=False)


@bp.route("/broadcasts/<int:broadcast_id>/retry", methods=["POST"])
@staff_required
def retry(broadcast_id: int):
    return _act(broadcast_id,
                lambda conn: broadcasts.retry_failed(conn, broadcast_id, actor=actor(), now=now()),
                lambda n: _("%(n)d queued again.", n=n))


@bp.route("/broadcasts/<int:broadcast_id>/resend", methods=["POST"])
@staff_required
def resend(broadcast_id: int):
    return _act(broadcast_id,
                lambda conn: broadcasts.resend_unacknowledged(conn, broadcast_id, actor=actor(),
                                                              now=now()),
                lambda new: _("Everyone has replied.") if new is None
                else _("Sent again to those who have not replied."), go_to_result=True)


@bp.route("/broadcasts/<int:broadcast_id>/calls")
@staff_required
def call_list(broadcast_id: int):
    summary = _get_summary(broadcast_id)
    # Those whose SMS the daily limit holds back (perhaps until tomorrow) are phoned first.
    held = budget.held_back(db().conn, tsunagu_config(), now(),
                            broadcast_id=broadcasts.root_of(db().conn, broadcast_id))
    rows = broadcasts.call_list(db().conn, broadcast_id, now=now(), held=held)
    # What the patients were sent, as staff will read it out: one person's text, name hidden.
    first = db().conn.execute("SELECT name, text FROM recipients WHERE broadcast_id = ? "
                              "ORDER BY id LIMIT 1", [broadcast_id]).fetchone()
    message = first["text"].replace(first["name"], "〇〇") if first else summary["text"]
    record_read("call_list_view", key=broadcast_id, broadcast_id=broadcast_id,
                people=len(rows))
    return render_template("calls.html", b=summary, calls=rows, printed_at=now(),
                           message=message, open_count=sum(not r["done"] for r in rows))


@bp.route("/recipients/<int:recipient_id>/call", methods=["POST"])
@staff_required
def record_call(recipient_id: int):
    """What came of a phone call from the call list (a note, undo beside it)."""
    outcome = request.form.get("outcome", "")
    try:
        with write(db()) as conn:
            calls.record(conn, recipient_id, outcome, note=request.form.get("note", ""),
                         actor=actor(), now=now())
            row = conn.execute("SELECT broadcast_id, name FROM recipients WHERE id = ?",
                               [recipient_id]).fetchone()
    except calls.CallError as exc:
        if exc.field == "recipient":
            abort(404)
        if exc.field == "outcome":
            flash(_("Choose what came of the call."), "error")
        else:
            flash(_("The note is too long (500 characters at most)."), "error")
        row = db().conn.execute("SELECT broadcast_id FROM recipients WHERE id = ?",
                                [recipient_id]).fetchone()
        return redirect(url_for("broadcasts.call_list", broadcast_id=row["broadcast_id"],
                                _anchor=f"c{recipient_id}"))
    flash(_("%(name)s: %(outcome)s — recorded.", name=row["name"],
            outcome=wording.word(wording.CALL_OUTCOMES, outcome, lang())), "ok")
    return redirect(url_for("broadcasts.call_list", broadcast_id=row["broadcast_id"],
                            _anchor=f"c{recipient_id}"))


@bp.route("/calls/<int:call_id>/undo", methods=["POST"])
@staff_required
def undo_call(call_id: int):
    try:
        with write(db()) as conn:
            broadcast_id = calls.undo(conn, call_id, actor=actor(), now=now())
    except calls.CallError:
        abort(404)  # already undone, e.g. by a colleague or a double click
    flash(_("The call record was taken back."), "ok")
    return redirect(url_for("broadcasts.call_list", broadcast_id=broadcast_id))


@bp.route("/broadcasts")
@staff_required
def history():
    page = page_arg()
    replies_shown = request.args.get("phone_replies") == "1"
    rows = broadcasts.history(db().conn, limit=50, offset=(page - 1) * 50,
                              phone_replies=replies_shown)
    return render_template("history.html", rows=rows, page=page, replies_shown=replies_shown,
                           phone_replies=broadcasts.phone_replies(db().conn))


@bp.route("/inbox")
@staff_required
def inbox():
    unmatched = request.args.get("unmatched") == "1"
    unhandled = request.args.get("unhandled") == "1"
    messages = replies.inbox(db().conn, unmatched_only=unmatched, unhandled_only=unhandled,
                             limit=200)
    # Replies carry patients' names and what they wrote (MHLW guideline: reads are recorded).
    record_read("inbox_view", key=(unmatched, unhandled), shown=len(messages))
    return render_template("inbox.html", messages=messages, unmatched=unmatched,
                           unhandled=unhandled)


@bp.route("/inbox/<int:inbound_id>/handled", methods=["POST"])
@staff_required
def handled(inbound_id: int):
    # CSRFProtect has checked the token before we get here, as for every POST.
    with write(db()) as conn:
        replies.mark_handled(conn, inbound_id, actor=actor(), now=now())
    back = request.form.get("back")
    return redirect(safe_next(back) if back else url_for("broadcasts.inbox"))


@bp.route("/inbox/<int:inbound_id>/reply", methods=["POST"])
@staff_required
def reply(inbound_id: int):
    """An SMS back to one person, from the inbox: queued like any broadcast, audited."""
    try:
        with write(db()) as conn:
            broadcast_id = broadcasts.reply_to_inbound(
                conn, tsunagu_config(), inbound_id, request.form.get("text", ""),
                actor=actor(), now=now())
    except broadcasts.BroadcastError as exc:
        if exc.field == "id":
            abort(404)
        flash(wording.error_text(exc, lang()), "error")
        return redirect(url_for("broadcasts.inbox", _anchor=f"m{inbound_id}"))
    doorbell.ring(tsunagu_config().database)
    flash(_("Reply queued (broadcast #%(id)d).", id=broadcast_id), "ok")
    return redirect(url_for("broadcasts.inbox"))
