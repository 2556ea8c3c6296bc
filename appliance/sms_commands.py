"""Commands by SMS from registered staff phones: the door for when the web UI is out of reach.

An inbound SMS is looked at here before it is taken as a patient's reply
(appliance.modem_events). It is a command only when it comes from a staff phone
(appliance.staff_phones) and reads as one; anything else — a patient's "1", a staff phone
answering a drill — is a reply as before. An SMS that reads as a command from any other
number is never obeyed: it goes to the inbox like any message, and is audited.

    状況 (status)                         can it send, each modem, today's budget, the last broadcast
    送信 <template> <group…> <PIN> (send)  a preview and a one-time 4-digit code; the broadcast is
                                          queued only when the same phone answers the code in time
    中止 <broadcast id> <PIN> (cancel)     cancel a broadcast
    ヘルプ (help, ?)                       these lines

Full-width digits and spaces are read as ASCII (NFKC). A group is named in full ("月水金
午前", spaces allowed), by its first word ("月水金": every 月水金 group), or 全員 (everyone);
none: the template's own groups. A template by name or by its number.

Every step is audited as the phone's user and written to sms_commands (the dashboard's
list, with the PIN masked), and answered by SMS — a broadcast of one, sent before any other
message (outbox.RANK_FIRST) so that a code arrives in time during a big broadcast. Each
number may give [sms_commands] per_10_minutes commands in ten minutes; more are refused
(answered once). [sms_commands] wrong_pins wrong PINs in a row disable the number
(staff_phones.check_pin) until an admin enables it.

What a command does goes through the functions every other door uses: broadcasts.plan,
create and cancel, health.read_health, templates — no check of its own.

The same confirmation flow serves the prepared broadcast after an earthquake or tsunami
warning (appliance.etws): each on-call phone gets its own code; the first answer
sends it (one request key for all, so it is sent once).
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
import sqlite3
import unicodedata
from dataclasses import dataclass

from . import audit, broadcasts, health, phone as phone_mod, staff_phones, templates
from .config import Config

WORDS = {
    "status": ("状況", "状態", "じょうきょう", "status"),
    "send": ("送信", "送る", "そうしん", "send"),
    "cancel": ("中止", "キャンセル", "ちゅうし", "cancel", "stop"),
    "help": ("ヘルプ", "へるぷ", "help", "?"),
}
EVERYONE = ("全員", "ぜんいん", "all")
CODE = re.compile(r"[0-9]{4}")
PIN_MASK = "****"
REPLY_TITLE = "スマホ操作への返答"
PREVIEW_CHARS = 60
CODE_TRIES = 3          # wrong codes before a confirmation is void
LATE_CODE_WINDOW = 24 * 3600  # a code this late is answered "expired" (not taken as a reply)
RATE_WINDOW = 600.0
UNKNOWN_AUDITED = 5     # command-looking SMS from one unknown number audited per window


@dataclass(frozen=True)
class Parsed:
    command: str             # status, send, cancel, help, code
    args: tuple[str, ...]


def parse(text: str) -> Parsed | None:
    """The command *text* reads as, or None. A bare 4-digit number is a possible 'code'."""
    folded = unicodedata.normalize("NFKC", text or "").strip()
    tokens = folded.split()
    if not tokens:
        return None
    head = tokens[0].lower()
    for command, words in WORDS.items():
        if head in words:
            return Parsed(command, tuple(tokens[1:]))
    if CODE.fullmatch(folded):
        return Parsed("code", (folded,))
    return None


def masked(parsed: Parsed, text: str) -> str:
    """The command as stored and shown: a PIN (4-8 digits at the end) never is."""
    if parsed.command in ("send", "cancel") and parsed.args and \
            staff_phones.PIN.fullmatch(parsed.args[-1]):
        return " ".join([_head(text), *parsed.args[:-1], PIN_MASK])
    if parsed.command == "code":
        return PIN_MASK
    return unicodedata.normalize("NFKC", text).strip()[:160]


def _head(text: str) -> str:
    return unicodedata.normalize("NFKC", text).split()[0]


class _Refused(Exception):
    """A command refused: *reason* (a key of wording.SMS_REASONS), *reply* for the phone
    (None: no answer), *detail* for the audit row."""

    def __init__(self, reason: str, reply: str | None, **detail) -> None:
        super().__init__(reason)
        self.reason, self.reply, self.detail = reason, reply, detail


@dataclass
class _Context:
    conn: sqlite3.Connection
    config: Config
    number: str
    staff: staff_phones.StaffPhone | None
    parsed: Parsed
    text: str
    now: float
    command_id: int | None = None


def receive(conn: sqlite3.Connection, config: Config, *, sender: str, text: str,
            sent_at: float | None, now: float) -> bool:
    """Inside the caller's write transaction: handle *text* from *sender* if it is a
    command from a staff phone (True: it is not a patient's reply). False for everything
    else, which the caller records as a reply (an unknown number's command-looking SMS is
    audited here first)."""
    if not config.sms_commands.enabled:
        return False
    parsed = parse(text)
    if parsed is None:
        return False
    try:
        number = phone_mod.normalise_mobile(sender)
    except phone_mod.PhoneError:
        return False
    staff = staff_phones.find(conn, number)
    ctx = _Context(conn, config, number, staff, parsed, text, now)
    if staff is None:
        if parsed.command != "code":   # four digits alone are any patient's reply
            _unknown_number(ctx, sent_at)
        return False
    if parsed.command == "code" and not _awaits_code(conn, staff, now):
        return False   # a staff member's "1234" to something else: a reply like any
    digest = _digest(number, text, sent_at)
    if conn.execute("SELECT 1 FROM sms_commands WHERE digest = ?", [digest]).fetchone():
        return True    # read again from the modem's store after a crash: done already
    ctx.command_id = _log(ctx, digest, "done")
    try:
        _admit(ctx)
        broadcast_id, reply = HANDLERS[parsed.command](ctx)
    except _Refused as refused:
        _refused(ctx, refused)
        return True
    conn.execute("UPDATE sms_commands SET broadcast_id = ? WHERE id = ?",
                 [broadcast_id, ctx.command_id])
    _answer(ctx, reply)
    return True


# -- who may command -------------------------------------------------------------------------

def _unknown_number(ctx: _Context, sent_at: float | None) -> None:
    """Never obeyed, never answered (it would tell a stranger the appliance takes commands):
    audited, and counted so that a flood fills neither the log nor the dashboard."""
    digest = _digest(ctx.number, ctx.text, sent_at)
    if ctx.conn.execute("SELECT 1 FROM sms_commands WHERE digest = ?", [digest]).fetchone():
        return
    recent = _recent(ctx.conn, ctx.number, ctx.now)
    ctx.command_id = _log(ctx, digest, "refused", reason="unknown_number")
    if recent < UNKNOWN_AUDITED:
        audit.record(ctx.conn, "sms", "sms_command_refused", phone=ctx.number,
                     command=ctx.parsed.command, reason="unknown_number")


def _awaits_code(conn: sqlite3.Connection, staff: staff_phones.StaffPhone, now: float) -> bool:
    """Whether this phone was given a code lately: four digits from it are that code (a
    late one is answered "expired", not taken for a reply)."""
    return conn.execute("SELECT 1 FROM sms_confirmations WHERE staff_phone_id = ? AND "
                        "(state = 'pending' OR created_at > ?) LIMIT 1",
                        [staff.id, now - LATE_CODE_WINDOW]).fetchone() is not None


def _admit(ctx: _Context) -> None:
    """Refused before anything is done: a disabled number, a deactivated user, too many."""
    staff, limits = ctx.staff, ctx.config.sms_commands
    if staff.disabled_at is not None:
        raise _Refused("disabled", None)  # it was told when it was disabled
    if not staff.user_active:
        raise _Refused("inactive_user", None)
    recent = _recent(ctx.conn, ctx.number, ctx.now, before=ctx.command_id)
    if recent >= limits.per_10_minutes:
        told = ctx.conn.execute(
            "SELECT 1 FROM sms_commands WHERE phone = ? AND received_at > ? AND reason = "
            "'rate_limited' AND id != ?", [ctx.number, ctx.now - RATE_WINDOW,
                                          ctx.command_id]).fetchone()
        raise _Refused("rate_limited", None if told else
                       f"【{_clinic(ctx)}】操作が多すぎます。10分ほど待ってから送ってください。")


def _recent(conn: sqlite3.Connection, number: str, now: float, before: int | None = None) -> int:
    return conn.execute("SELECT count(*) FROM sms_commands WHERE phone = ? AND received_at > ? "
                        "AND id != coalesce(?, -1)",
                        [number, now - RATE_WINDOW, before]).fetchone()[0]


def _pin(ctx: _Context, args: tuple[str, ...]) -> tuple[str, ...]:
    """The arguments before the PIN, once the PIN is right; _Refused otherwise."""
    if not args or not staff_phones.PIN.fullmatch(args[-1]):
        raise _Refused("no_pin", f"【{_clinic(ctx)}】最後に暗証番号（4〜8桁）を付けてください。"
                                 "例: 送信 停電・透析中止 月水金 1234")
    right, left = staff_phones.check_pin(ctx.conn, ctx.staff, args[-1],
                                         limit=ctx.config.sms_commands.wrong_pins, now=ctx.now)
    if right:
        return args[:-1]
    if left == 0:
        raise _Refused("wrong_pin", f"【{_clinic(ctx)}】暗証番号が続けて違ったため、この携帯からの"
                                    "操作を止めました。管理者に再開を頼んでください。", disabled=True)
    raise _Refused("wrong_pin", f"【{_clinic(ctx)}】暗証番号が違います（あと{left}回違うと"
                                "この携帯からの操作を止めます）。", pins_left=left)


# -- the commands ------------------------------------------------------------------------------

def _help(ctx: _Context) -> tuple[None, str]:
    return None, (f"【{_clinic(ctx)}】使える操作:\n状況\n送信 テンプレート名 グループ 暗証番号\n"
                  "中止 送信番号 暗証番号\n送信の後、届いた4桁の確認コードを10分以内に返信すると"
                  "送信が始まります。")


def _status(ctx: _Context) -> tuple[None, str]:
    from . import wording
    h = health.read_health(ctx.conn, ctx.config, ctx.now)
    lines = [f"【{_clinic(ctx)}】" + ("送信できます。" if h.can_send else "いま送信できません。")]
    for m in h.modems:
        state = "送信可能" if m.ready else wording.word(wording.MODEM_REASONS, m.reason or
                                                      "unknown", "ja")
        bars = f" 電波{m.signal_bars}/4" if m.signal_bars is not None else ""
        lines.append(f"{m.name}: {state}{bars} 本日残り{m.remaining}通")
    last = ctx.conn.execute("SELECT id FROM broadcasts WHERE origin IS NULL AND drill = 0 "
                            "ORDER BY id DESC LIMIT 1").fetchone()
    if last is not None:
        s = broadcasts.summary(ctx.conn, last[0])
        c = s["counts"]
        lines.append(f"最新 #{s['id']} {s['title'][:20]}: {wording.state(s['state'], 'ja')} "
                     f"{s['total']}名 配達{c['delivered']} 確認待ち{c['submitted']} "
                     f"未送信{c['queued'] + c['sending'] + c['budget_wait']} 届かず{c['failed']} "
                     f"返信{s['acknowledged']}")
    if h.queue_depth:
        lines.append(f"送信待ち {h.queue_depth}件")
    return None, "\n".join(lines)


def _send(ctx: _Context) -> tuple[None, str]:
    rest = _pin(ctx, ctx.parsed.args)
    if not rest:
        raise _Refused("bad_command", f"【{_clinic(ctx)}】テンプレート名を書いてください。"
                                      "例: 送信 停電・透析中止 月水金 1234")
    template, group_words = _template(ctx, rest)
    args = {"text": template.text, "template_id": template.id, "title": template.name,
            "priority": template.priority, "choices": list(template.choices),
            **_groups(ctx, group_words, template)}
    plan = _plan(ctx, args)
    code = _confirmation(ctx, "send", args, request_key=f"sms:{secrets.token_hex(8)}")
    audit.record(ctx.conn, ctx.staff.username, "sms_send_requested", phone=ctx.number,
                 template_id=template.id, people=plan.people, parts=plan.parts)
    return None, _preview(ctx, plan, args, code, template.name)


def _cancel(ctx: _Context) -> tuple[int, str]:
    rest = _pin(ctx, ctx.parsed.args)
    if len(rest) != 1 or not rest[0].lstrip("#").isdigit():
        raise _Refused("bad_command", f"【{_clinic(ctx)}】中止する送信の番号を書いてください。"
                                      "例: 中止 12 1234")
    broadcast_id = int(rest[0].lstrip("#"))
    try:
        cancelled = broadcasts.cancel(ctx.conn, broadcast_id, actor=ctx.staff.username,
                                      now=ctx.now)
    except broadcasts.BroadcastError as exc:
        raise _Refused("refused_by_broadcast", f"【{_clinic(ctx)}】{exc.ja or exc}",
                       broadcast_id=broadcast_id) from None
    return broadcast_id, (f"【{_clinic(ctx)}】送信 #{broadcast_id} を中止しました"
                          f"（未送信{cancelled}件を止めました）。")


def _code(ctx: _Context) -> tuple[int | None, str]:
    code = ctx.parsed.args[0]
    row = ctx.conn.execute(
        "SELECT * FROM sms_confirmations WHERE staff_phone_id = ? AND state = 'pending' "
        "ORDER BY id DESC LIMIT 1", [ctx.staff.id]).fetchone()
    if row is None:
        done = ctx.conn.execute(
            "SELECT broadcast_id FROM sms_confirmations WHERE staff_phone_id = ? AND "
            "state = 'confirmed' AND answered_at > ? ORDER BY id DESC LIMIT 1",
            [ctx.staff.id, ctx.now - 60 * ctx.config.sms_commands.code_minutes]).fetchone()
        if done is not None:   # the same code twice: once is enough
            return done[0], f"【{_clinic(ctx)}】送信 #{done[0]} はすでに始まっています。"
    if row is None or row["expires_at"] < ctx.now:
        if row is not None:
            ctx.conn.execute("UPDATE sms_confirmations SET state = 'expired' WHERE id = ?",
                             [row["id"]])
        raise _Refused("code_expired", f"【{_clinic(ctx)}】確認コードの期限が切れています。"
                                       "送信していません。もう一度「送信 …」から送ってください。")
    if not secrets.compare_digest(code, row["code"]):
        wrong = row["wrong_codes"] + 1
        void = wrong >= CODE_TRIES
        ctx.conn.execute("UPDATE sms_confirmations SET wrong_codes = ?, state = CASE WHEN ? "
                         "THEN 'failed' ELSE state END WHERE id = ?",
                         [wrong, int(void), row["id"]])
        raise _Refused("wrong_code", f"【{_clinic(ctx)}】確認コードが違います。" + (
            "送信していません。もう一度「送信 …」から送ってください。" if void else
            "届いた4桁をそのまま返信してください。"), confirmation_id=row["id"])
    args = json.loads(row["args"])
    plan = _plan(ctx, args)
    broadcast_id = broadcasts.create(ctx.conn, plan, title=args.get("title") or "",
                                     actor=ctx.staff.username, now=ctx.now,
                                     template_id=args.get("template_id"),
                                     request_key=row["request_key"])
    ctx.conn.execute("UPDATE sms_confirmations SET state = 'confirmed', answered_at = ?, "
                     "broadcast_id = ? WHERE id = ?", [ctx.now, broadcast_id, row["id"]])
    # The others asked for the same broadcast (the on-call phones after a warning) are done.
    ctx.conn.execute("UPDATE sms_confirmations SET state = 'superseded' WHERE request_key = ? "
                     "AND state = 'pending'", [row["request_key"]])
    if row["event_id"] is not None:
        from . import etws
        etws.sent(ctx.conn, row["event_id"], broadcast_id)
    audit.record(ctx.conn, ctx.staff.username, "sms_send_confirmed", phone=ctx.number,
                 broadcast_id=broadcast_id, people=plan.people)
    return broadcast_id, (f"【{_clinic(ctx)}】送信を始めました（#{broadcast_id}、"
                          f"{plan.people}名）。止めるときは「中止 {broadcast_id} 暗証番号」。")


HANDLERS = {"help": _help, "status": _status, "send": _send, "cancel": _cancel, "code": _code}


# -- what a command names ----------------------------------------------------------------------

def _template(ctx: _Context, words: tuple[str, ...]) -> tuple[templates.Template, tuple[str, ...]]:
    """The template the first word(s) name (by name, or by number), and the words after."""
    by_name = {unicodedata.normalize("NFKC", t.name): t
               for t in templates.list_templates(ctx.conn)}
    for end in range(len(words), 0, -1):   # a name with spaces: the longest that is one
        name = " ".join(words[:end])
        if name in by_name:
            return by_name[name], words[end:]
    first = words[0].lstrip("#")
    if first.isdigit():
        found = templates.get_template(ctx.conn, int(first))
        if found is not None:
            return found, words[1:]
    raise _Refused("unknown_template", f"【{_clinic(ctx)}】テンプレート「{words[0]}」がありません。"
                                       f"使えるもの: {'、'.join(list(by_name)[:8])}")


def _groups(ctx: _Context, words: tuple[str, ...], template: templates.Template) -> dict:
    """{"group_ids": […]} or {"everyone": True}: the groups the words name."""
    if not words:
        if template.group_ids:
            return {"group_ids": list(template.group_ids)}
        raise _Refused("unknown_group", f"【{_clinic(ctx)}】送信先のグループを書いてください。"
                                        "例: 送信 停電・透析中止 月水金 1234")
    if len(words) == 1 and words[0].lower() in EVERYONE:
        return {"everyone": True}
    groups = [(g["id"], unicodedata.normalize("NFKC", g["name"])) for g in
              ctx.conn.execute("SELECT id, name FROM groups ORDER BY name")]
    names = {name: gid for gid, name in groups}
    chosen: list[int] = []
    i = 0
    while i < len(words):
        for end in range(len(words), i, -1):     # "月水金 午前" written with its space
            name = " ".join(words[i:end])
            if name in names:
                chosen.append(names[name])
                i = end
                break
        else:
            by_first_word = [gid for gid, name in groups
                             if (name.split() or [""])[0] == words[i]]
            if not by_first_word:
                raise _Refused("unknown_group", f"【{_clinic(ctx)}】グループ「{words[i]}」が"
                                                f"ありません。使えるもの: "
                                                f"{'、'.join(n for _, n in groups[:10])}")
            chosen += by_first_word
            i += 1
    return {"group_ids": sorted(set(chosen))}


def _plan(ctx: _Context, args: dict) -> broadcasts.Plan:
    try:
        return broadcasts.plan(ctx.conn, ctx.config, text=args["text"],
                               group_ids=args.get("group_ids") or [],
                               everyone=bool(args.get("everyone")),
                               priority=args.get("priority") or "routine",
                               choices=args.get("choices") or None, now=ctx.now)
    except broadcasts.BroadcastError as exc:
        raise _Refused("refused_by_broadcast", f"【{_clinic(ctx)}】送れません: {exc.ja or exc}"
                       ) from None


def group_names(conn: sqlite3.Connection, args: dict) -> str:
    if args.get("everyone"):
        return "全員"
    ids = args.get("group_ids") or []
    if not ids:
        return "-"
    marks = ",".join("?" * len(ids))
    return "・".join(r[0] for r in conn.execute(
        f"SELECT name FROM groups WHERE id IN ({marks}) ORDER BY name", ids))


def preview_text(plan: broadcasts.Plan) -> str:
    """The first characters of the message as a patient reads it, no patient's name."""
    first = plan.recipients[0]
    text = first.text.replace(first.name, "〇〇") if first.name else first.text
    text = " ".join(text.split())
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + "…"


def _preview(ctx: _Context, plan: broadcasts.Plan, args: dict, code: str, name: str) -> str:
    left = sum(plan.budget.values())
    minutes = max(1, round(plan.seconds / 60))
    return (f"【{_clinic(ctx)}】確認: {name} を {group_names(ctx.conn, args)} の{plan.people}名に"
            f"送ります（SMS{plan.parts}通、約{minutes}分、本日の残り{left}通）。\n"
            f"「{preview_text(plan)}」\n送るには{_minutes(ctx.config)}分以内に {code} と返信"
            "してください。送らない場合は返信不要です。")


def _minutes(config: Config) -> str:
    minutes = config.sms_commands.code_minutes
    return f"{minutes:g}"


# -- confirmations, answers and the log ---------------------------------------------------------

def _confirmation(ctx: _Context, kind: str, args: dict, *, request_key: str,
                  event_id: int | None = None) -> str:
    """A new one-time code for this phone; its earlier pending one is replaced."""
    ctx.conn.execute("UPDATE sms_confirmations SET state = 'superseded' WHERE "
                     "staff_phone_id = ? AND state = 'pending'", [ctx.staff.id])
    code = f"{secrets.randbelow(10_000):04d}"
    ctx.conn.execute(
        "INSERT INTO sms_confirmations (staff_phone_id, kind, code, args, request_key, "
        "created_at, expires_at, event_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [ctx.staff.id, kind, code, json.dumps(args, ensure_ascii=False), request_key,
         ctx.now, ctx.now + 60 * ctx.config.sms_commands.code_minutes, event_id])
    return code


def prompt(conn: sqlite3.Connection, config: Config, staff: staff_phones.StaffPhone, *,
           args: dict, request_key: str, event_id: int | None, message: str,
           now: float) -> int:
    """Ask *staff* to confirm a prepared broadcast (*args*, as a 送信 command's) with a code:
    *message* is sent with "{code}" filled in. Returns the answer's broadcast id."""
    ctx = _Context(conn, config, staff.phone, staff, Parsed("code", ()), "", now)
    code = _confirmation(ctx, "warning", args, request_key=request_key, event_id=event_id)
    return tell(conn, config, staff.phone, message.replace("{code}", code),
                actor=staff.username, now=now)


def tell(conn: sqlite3.Connection, config: Config, number: str, text: str, *, actor: str,
         now: float) -> int:
    """An SMS to a staff phone, before any other message: a broadcast of one."""
    plan = broadcasts.plan_one(conn, config, number, _escape(text), priority="emergency")
    return broadcasts.create(conn, plan, title=REPLY_TITLE, actor=actor, now=now,
                             origin="sms_reply")


def _escape(text: str) -> str:
    """Literal text through the template renderer (a { in a template's name stays one)."""
    return text.replace("{", "{{").replace("}", "}}")


def _answer(ctx: _Context, reply: str | None) -> None:
    if reply is None:
        return
    reply_id = tell(ctx.conn, ctx.config, ctx.number, reply,
                    actor=ctx.staff.username if ctx.staff else "sms", now=ctx.now)
    ctx.conn.execute("UPDATE sms_commands SET reply_id = ? WHERE id = ?",
                     [reply_id, ctx.command_id])


def _refused(ctx: _Context, refused: _Refused) -> None:
    ctx.conn.execute("UPDATE sms_commands SET outcome = 'refused', reason = ? WHERE id = ?",
                     [refused.reason, ctx.command_id])
    audit.record(ctx.conn, ctx.staff.username, "sms_command_refused", phone=ctx.number,
                 command=ctx.parsed.command, reason=refused.reason, **refused.detail)
    _answer(ctx, refused.reply)


def _log(ctx: _Context, digest: str, outcome: str, *, reason: str | None = None) -> int:
    command_id = ctx.conn.execute(
        "INSERT INTO sms_commands (phone, staff_phone_id, username, command, text, digest, "
        "received_at, outcome, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [ctx.number, ctx.staff.id if ctx.staff else None,
         ctx.staff.username if ctx.staff else None, ctx.parsed.command,
         masked(ctx.parsed, ctx.text), digest, ctx.now, outcome, reason]).lastrowid
    if ctx.staff is not None and outcome == "done":
        audit.record(ctx.conn, ctx.staff.username, "sms_command", phone=ctx.number,
                     command=ctx.parsed.command, text=masked(ctx.parsed, ctx.text))
    return command_id


def _digest(number: str, text: str, sent_at: float | None) -> str:
    return hashlib.sha256(json.dumps([number, text, sent_at]).encode()).hexdigest()


def _clinic(ctx: _Context) -> str:
    return ctx.config.clinic_name


# -- for the dashboard ---------------------------------------------------------------------------

def recent(conn: sqlite3.Connection, now: float, *, hours: float = 24,
           limit: int = 20) -> list[dict]:
    """Commands of the last *hours*, newest first: what the dashboard lists."""
    return [dict(r) for r in conn.execute(
        "SELECT * FROM sms_commands WHERE received_at > ? ORDER BY id DESC LIMIT ?",
        [now - hours * 3600, limit])]

