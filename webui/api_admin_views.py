"""Admin pages for the API: tokens (made, shown once, revoked) and each token's webhook, with
its deliveries — what went, what waits, what failed — and a button to send them again."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import BooleanField, IntegerField, SelectMultipleField, StringField, widgets
from wtforms.fields.choices import SelectChoice as C
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from appliance import api_tokens, webhooks, wording
from appliance.db import write

from . import db, lang, now, tsunagu_config, words
from .auth import actor, admin_required, remote

bp = Blueprint("api_admin", __name__, url_prefix="/admin/api")

# A scope's and an event's own name is what the other system's vendor configures (shown as
# code); the words beside it (appliance.wording, as the CLI and the audit page name them) say
# what it means, in the page's language.


class Checkboxes(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


def _coded(code: str, label) -> Markup:
    """A choice's label: its name as code, then what it means (made per request, so the
    meaning is in the page's language)."""
    return Markup("<code>{}</code> {}").format(code, str(label))


class TokenForm(FlaskForm):
    name = StringField(_l("Name (the system that uses it)"),
                       validators=[DataRequired(), Length(max=api_tokens.NAME_MAX)])
    scopes = Checkboxes(_l("What it may do"), validators=[DataRequired()],
                        choices=list(api_tokens.SCOPES))
    rate = IntegerField(_l("Requests a minute"), validators=[Optional(),
                                                            NumberRange(min=1, max=100_000)])

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.scopes.choices = [C(s, _coded(s, wording.word(wording.API_SCOPES, s, lang()))) for s in api_tokens.SCOPES]


class WebhookForm(FlaskForm):
    url = StringField(_l("Address (URL) that receives the events"),
                      validators=[DataRequired(), Length(max=webhooks.URL_MAX)],
                      render_kw={"placeholder": "http://192.168.1.20:8000/tsunagu"})
    events = Checkboxes(_l("Events"), validators=[DataRequired()],
                        choices=list(webhooks.EVENTS))
    new_secret = BooleanField(_l("Make a new signing secret"))

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.events.choices = [C(e, _coded(e, wording.word(wording.WEBHOOK_EVENTS, e, lang()))) for e in webhooks.EVENTS]


class ActionForm(FlaskForm):
    pass


@bp.route("/", methods=["GET", "POST"])
@admin_required
def index():
    form = TokenForm()
    created = None
    if form.validate_on_submit():
        try:
            with write(db()) as conn:
                token, secret = api_tokens.create(
                    conn, form.name.data, form.scopes.data, actor=actor(), now=now(),
                    rate_per_minute=form.rate.data or tsunagu_config().api.rate_per_minute,
                    remote_addr=remote())
        except api_tokens.TokenError as exc:
            target = getattr(form, exc.field or "name", form.name)
            target.errors = list(target.errors or []) + [str(exc)]
        else:
            # Shown in this answer only: never flashed (the session cookie is not secret).
            created = (token, secret)
            form = TokenForm(formdata=None)
    conn = db().conn
    tokens = api_tokens.listing(conn)
    return render_template("api_tokens.html", form=form, tokens=tokens, created=created,
                           hooks={t.id: webhooks.for_token(conn, t.id) for t in tokens},
                           counts=webhooks.counts(conn), scope_labels=words(wording.API_SCOPES),
                           action=ActionForm(),
                           config_rate=tsunagu_config().api.rate_per_minute)


def _token_or_404(token_id: int) -> api_tokens.ApiToken:
    token = api_tokens.get(db().conn, token_id)
    if token is None:
        abort(404)
    return token


@bp.route("/<int:token_id>", methods=["GET", "POST"])
@admin_required
def token_page(token_id: int):
    token = _token_or_404(token_id)
    conn = db().conn
    hook = webhooks.for_token(conn, token_id)
    form = WebhookForm(data={"url": hook.url, "events": list(hook.events)} if hook else
                       {"events": list(webhooks.EVENTS)})
    secret = None
    if form.validate_on_submit():
        try:
            with write(db()) as c:
                hook, secret = webhooks.set_webhook(c, token_id, url=form.url.data,
                                                    events=form.events.data, actor=actor(),
                                                    now=now(), new_secret=form.new_secret.data,
                                                    remote_addr=remote())
        except webhooks.WebhookError as exc:
            target = getattr(form, exc.field or "url", form.url)
            target.errors = list(target.errors or []) + [str(exc)]
        else:
            if not secret:
                flash(_("Webhook saved."), "ok")
                return redirect(url_for("api_admin.token_page", token_id=token_id))
    items = webhooks.deliveries(conn, webhook_id=hook.id, limit=200) if hook else []
    return render_template("api_token.html", token=token, hook=hook, form=form, secret=secret,
                           deliveries=items, labels=words(wording.WEBHOOK_STATES),
                           events=words(wording.WEBHOOK_EVENTS),
                           scope_labels=words(wording.API_SCOPES), action=ActionForm(),
                           config_give_up=f"{tsunagu_config().api.webhook_give_up_hours:g}")


@bp.route("/<int:token_id>/<what>", methods=["POST"])
@admin_required
def token_action(token_id: int, what: str):
    if not ActionForm().validate_on_submit():
        abort(400)
    token = _token_or_404(token_id)
    config = tsunagu_config()
    try:
        with write(db()) as conn:
            if what == "revoke":
                api_tokens.revoke(conn, token.id, actor=actor(), now=now(), remote_addr=remote())
                flash(_("Token revoked: it no longer works."), "ok")
                return redirect(url_for("api_admin.index"))
            if what == "remove-webhook":
                webhooks.remove_webhook(conn, token.id, actor=actor(), remote_addr=remote())
                flash(_("Webhook removed."), "ok")
            elif what == "resend-failed":
                hook = webhooks.for_token(conn, token.id)
                count = webhooks.resend(conn, config, webhooks.failed_ids(conn, hook.id)
                                        if hook else [], actor=actor(), now=now(),
                                        remote_addr=remote())
                flash(_("%(n)d delivery(ies) will be sent again.", n=count), "ok")
            else:
                abort(404)
    except (api_tokens.TokenError, webhooks.WebhookError) as exc:
        flash(str(exc), "error")
    return redirect(url_for("api_admin.token_page", token_id=token_id))


@bp.route("/deliveries/<int:delivery_id>/resend", methods=["POST"])
@admin_required
def resend(delivery_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    with write(db()) as conn:
        token_id = webhooks.token_of_delivery(conn, delivery_id)
        if token_id is None:
            abort(404)
        webhooks.resend(conn, tsunagu_config(), [delivery_id], actor=actor(), now=now(),
                        remote_addr=remote())
    flash(_("It will be sent again."), "ok")
    return redirect(url_for("api_admin.token_page", token_id=token_id))
