"""Broadcasts: who gets what, and how it went. Used alike by the CLI, the web UI and the daemon.

A broadcast is planned first (`plan`: audience, each person's rendered text and parts, the
time it takes and the budget it uses), then created in one transaction (`create`): one
recipient row per person, a snapshot of number and text, so a later edit of a contact or
a template never changes what was sent. The daemon's workers take it from there (outbox).

Retry (the failed, again, in place), resend (a new child broadcast to everyone who has not
replied), follow-ups (resend automatically after N minutes, up to K times), scheduled sends
and the drill/test broadcast all live here, as does everything the pages show: summary,
per-recipient table, call list, history.
"""
from __future__ import annotations

import json
import re
import sqlite3
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from modem import pdu

from . import audit, budget, outbox, templates, wording
from .config import Config

PRIORITIES = ("emergency", "routine")
MAX_CHOICES = 9
# A recipient is finished when in one of these; 'submitted' still waits for its report.
FINAL = ("delivered", "failed", "uncertain", "cancelled")
ACTIVE = ("queued", "sending")


class BroadcastError(ValueError):
    """A broadcast cannot be planned or changed as asked; `field` names the form field.

    `en` and `ja` are the message in each language (wording.error_text picks one for the
    reader); str() gives both, for logs.
    """

    def __init__(self, message: str, *, field: str | None = None,
                 ja: str | None = None) -> None:
        super().__init__(f"{message} / {ja}" if ja else message)
        self.field = field
        self.en, self.ja = message, ja


@dataclass(frozen=True)
class PlannedRecipient:
    contact_id: int | None
    name: str
    phone: str
    text: str
    parts: int


@dataclass
class Plan:
    """What a broadcast will do, for the confirm page and `broadcast send`."""
    text: str                                   # as written, placeholders unrendered
    recipients: list[PlannedRecipient]
    priority: str
    drill: bool
    choices: list[str]
    parts: int = 0
    seconds: float = 0.0                        # at the SIMs' configured pace
    budget: dict[str, int] = field(default_factory=dict)   # parts left per modem
    budget_until: float = 0.0                   # when the daily limits let the last go
    # How many recipients go now, in send order, and the parts already queued that the
    # SIMs' room goes to first (budget.planned_times): None when not forecast (plan_one).
    going_now: int | None = None
    queued_ahead: int = 0
    warnings: list[str] = field(default_factory=list)      # in English, for the CLI
    notes: list[tuple[str, dict]] = field(default_factory=list)  # (code, values) for the UI

    @property
    def people(self) -> int:
        return len(self.recipients)

    @property
    def fits(self) -> bool:
        """Whether every message goes now, within what the daily limits leave after the
        messages already queued ahead of it."""
        return self.parts_that_fit == self.people

    @property
    def parts_that_fit(self) -> int:
        """How many recipients go now, in send order (the rest wait for the budget); all
        of them when the plan was not forecast (plan_one: a single answer)."""
        return self.people if self.going_now is None else self.going_now


# -- planning -----------------------------------------------------------------------------

def parse_choices(text: str | list[str] | None) -> list[str]:
    """"来院できる / 来院できない" or a list → the reply choices, numbered from 1."""
    if text is None:
        return []
    items = text if isinstance(text, list) else \
        [c for line in str(text).splitlines() for c in line.split("/")]
    choices = [c.strip() for c in items if c and c.strip()]
    if len(choices) > MAX_CHOICES:
        raise BroadcastError(f"at most {MAX_CHOICES} reply choices (a reply is one digit), "
                             f"got {len(choices)}", field="choices",
                             ja=f"返信の選択肢は{MAX_CHOICES}個までです（{len(choices)}個あります）")
    return choices


def choices_block(choices: list[str]) -> str:
    """The lines appended to the message so the phone's owner knows how to answer."""
    if not choices:
        return ""
    lines = [f"{i} {c}" for i, c in enumerate(choices, start=1)]
    return "\n番号で返信してください\n" + "\n".join(lines)


def audience(conn: sqlite3.Connection, config: Config, *, group_ids: list[int] = (),
             contact_ids: list[int] = (), everyone: bool = False,
             drill: bool = False, phones: list[str] = ()) -> list[sqlite3.Row | dict]:
    """Active contacts chosen by group, by person or everyone, and numbers; each number once.

    A number (the API's `phones`) is its contact when it has one — refused when that contact
    is deactivated — else a recipient without a name. A drill goes only to the test group,
    whatever else was picked, so practising can never alarm a patient.
    """
    if drill:
        rows = conn.execute(
            "SELECT DISTINCT c.* FROM contacts c JOIN contact_groups cg ON cg.contact_id = c.id "
            "JOIN groups g ON g.id = cg.group_id WHERE g.name = ? AND c.active = 1 "
            "ORDER BY c.kana, c.name, c.id", [config.test.group]).fetchall()
        if not rows:
            raise BroadcastError(f"the test group 「{config.test.group}」 has no active members",
                                 field="groups", ja=f"テストグループに連絡先がありません（「"
                                 f"{config.test.group}」）。連絡先の画面でスタッフの携帯を入れてください")
        return rows
    if everyone:
        return conn.execute("SELECT * FROM contacts WHERE active = 1 "
                            "ORDER BY kana, name, id").fetchall()
    group_ids, contact_ids = list(group_ids), list(contact_ids)
    wanted: dict[int, sqlite3.Row] = {}
    if group_ids:
        marks = ",".join("?" * len(group_ids))
        known = {r[0] for r in conn.execute(f"SELECT id FROM groups WHERE id IN ({marks})",
                                            group_ids)}
        if missing := sorted(set(group_ids) - known):
            raise BroadcastError(f"no such group: {missing}", field="groups",
                                 ja="選んだグループがありません（削除された可能性があります）")
        for row in conn.execute(
                f"SELECT c.* FROM contacts c JOIN contact_groups cg ON cg.contact_id = c.id "
                f"WHERE cg.group_id IN ({marks}) AND c.active = 1", group_ids):
            wanted[row["id"]] = row
    if contact_ids:
        marks = ",".join("?" * len(contact_ids))
        for row in conn.execute(f"SELECT * FROM contacts WHERE id IN ({marks}) AND active = 1",
                                contact_ids):
            wanted[row["id"]] = row
    numbers = _numbers(conn, phones, {r["phone"] for r in wanted.values()})
    for row in numbers:
        if row.get("id") is not None:
            wanted[row["id"]] = row
    unnamed = [r for r in numbers if r.get("id") is None]
    if not wanted and not unnamed:
        raise BroadcastError("choose at least one group or person with an active contact",
                             field="groups", ja="送信先を選んでください（グループか個人を1つ以上）")
    return sorted(wanted.values(), key=lambda r: (r["kana"], r["name"], r["id"])) + unnamed


def _numbers(conn: sqlite3.Connection, phones: list[str], taken: set[str]) -> list[dict]:
    """The recipients that numbers name, each number once (and not one already chosen)."""
    from . import phone as phone_mod
    out, seen = [], set(taken)
    for i, text in enumerate(phones or ()):
        try:
            number = phone_mod.normalise_mobile(text)
        except phone_mod.PhoneError as exc:
            raise BroadcastError(f"phones[{i}] {text!r}: {exc.message_en}", field="phones",
                                 ja=f"phones[{i}] {text!r}: {exc.message_ja}") from None
        if number in seen:
            continue
        seen.add(number)
        row = conn.execute("SELECT * FROM contacts WHERE phone = ?", [number]).fetchone()
        if row is not None and not row["active"]:
            raise BroadcastError(f"phones[{i}]: this number belongs to a deactivated contact "
                                 f"(#{row['id']})", field="phones",
                                 ja=f"phones[{i}]: 送信停止中の連絡先（#{row['id']}）の番号です")
        out.append(dict(row) if row is not None else
                   {"id": None, "name": "", "kana": "", "phone": number})
    return out


def plan(conn: sqlite3.Connection, config: Config, *, text: str, group_ids: list[int] = (),
         contact_ids: list[int] = (), everyone: bool = False, priority: str = "routine",
         drill: bool = False, choices: list[str] | str | None = None,
         values: dict[str, Any] | None = None, now: float, phones: list[str] = ()) -> Plan:
    """Everything a broadcast would do, checked; BroadcastError names the field at fault."""
    if priority not in PRIORITIES:
        raise BroadcastError(f"priority must be one of {', '.join(PRIORITIES)}, got {priority!r}",
                             field="priority", ja="優先度を選んでください")
    if not text or not text.strip():
        raise BroadcastError("the message is empty", field="text", ja="本文が空です")
    values = values or {}
    try:
        # The same check a schedule and a template pass when they are saved.
        templates.check_text(text, clinic=config.clinic_name,
                             supplied=[k for k, v in values.items() if _given(v)],
                             length=False)
    except templates.TemplateError as exc:
        raise BroadcastError(exc.en, field="text", ja=exc.ja) from None
    choice_list = parse_choices(choices)
    rows = audience(conn, config, group_ids=group_ids, contact_ids=contact_ids,
                    everyone=everyone, drill=drill, phones=phones)
    planned = []
    for row in rows:
        if row["id"] is None and templates.placeholders(text) & templates.PER_CONTACT:
            raise BroadcastError(f"{row['phone']} is not in the contacts: nothing fills "
                                 "{name} or {kana} for it / 連絡先にない番号には氏名を差し込めません",
                                 field="phones")
        try:
            body = templates.render(text, contact_name=row["name"], kana=row["kana"],
                                    clinic=config.clinic_name, **values)
        except templates.TemplateError as exc:
            raise BroadcastError(exc.en, field="text", ja=exc.ja) from None
        body += choices_block(choice_list)
        parts = pdu.count(body).parts
        if parts > pdu.MAX_PARTS:
            raise BroadcastError(
                f"the message for {row['name']} needs {parts} SMS parts; at most "
                f"{pdu.MAX_PARTS} (670 full-width characters) can be sent", field="text",
                ja=f"本文が長すぎます（{row['name']}さんへは{parts}通必要です。"
                   f"送れるのは{pdu.MAX_PARTS}通＝全角670文字まで）")
        planned.append(PlannedRecipient(row["id"], row["name"], row["phone"], body, parts))
    result = Plan(text=text, recipients=planned, priority=priority, drill=drill,
                  choices=choice_list)
    result.parts = sum(r.parts for r in planned)
    result.budget = budget.capacity(conn, config, now)
    result.seconds = budget.seconds_for(result.parts, config)
    # The daily limits may hold some back (上限待ち), after the messages already queued
    # ahead of these have spent the SIMs' room: the estimate waits for them too.
    times = budget.planned_times(conn, config, now, [r.parts for r in planned],
                                 emergency=priority == "emergency")
    result.budget_until = times.last(now)
    result.going_now, result.queued_ahead = times.going_now(now), times.ahead
    if result.budget_until > now:
        result.seconds = max(result.seconds, result.budget_until - now
                             + budget.seconds_for(max(r.parts for r in planned), config))
    if not result.fits or result.budget_until > now:
        result.notes.append(("over_budget", {"left": sum(result.budget.values()),
                                             "parts": result.parts,
                                             "fit": result.parts_that_fit,
                                             "people": result.people,
                                             "ahead": result.queued_ahead,
                                             "until": result.budget_until}))
        shorter = _shorter(conn, config, now, result)
        if shorter:
            result.notes.append(("shorter", shorter))
    if any(r.parts > 1 for r in planned):
        result.notes.append(("multipart", {"parts": max(r.parts for r in planned)}))
    result.warnings = note_texts(result, "en", config)
    return result


def _shorter(conn: sqlite3.Connection, config: Config, now: float, p: Plan) -> dict | None:
    """When the daily limits hold people back and the message takes several parts: how
    many characters shorter makes it one part for everyone, and how many people would then
    go now — or None when one part would send nobody more. On the shipped settings (one SIM,
    200 parts a day) a two-part message reaches 100 of 200 patients today, one part all 200."""
    if all(r.parts <= 1 for r in p.recipients):
        return None
    one_part = budget.planned_times(conn, config, now, [1] * p.people,
                                    emergency=p.priority == "emergency").going_now(now)
    if one_part <= p.parts_that_fit:
        return None
    # Each distinct text once: 10,000 people sent the same words are one text.
    texts = {r.text for r in p.recipients}
    counts = [pdu.count(t) for t in texts]
    longest = max(counts, key=lambda c: c.units - pdu.SINGLE[c.encoding])
    # The reply choices add about 35 characters: without them the text alone may fit, a
    # change a nurse in a hurry can make with one click rather than by rewriting.
    block = len(choices_block(p.choices))
    return {"cut": longest.units - pdu.SINGLE[longest.encoding],
            "chars": pdu.SINGLE[longest.encoding], "people": one_part,
            "everyone": one_part == p.people,
            "without_choices": bool(block) and all(
                pdu.count(t[:-block]).parts == 1 for t in texts)}


def note_texts(p: Plan, lang: str, config: Config) -> list[str]:
    """The plan's notes (over the daily limit, in several parts) as sentences in *lang*,
    for `broadcast send` and the API; the confirm page words them in its own template."""
    out = []
    for code, v in p.notes:
        if code == "over_budget":
            if v["until"] == float("inf"):
                when = ("1通がSIMの1日の上限より長いため、送れません",
                        "never: a message is longer than a SIM's daily limit")
            else:
                at = clock_time(v["until"], config)
                when = (f"最後の方へは {at} ごろ", f"the last at about {at}")
            ahead = (f"（そのうち{v['ahead']}通は先に待っている送信に使われます）",
                     f", {v['ahead']} of them for messages already queued ahead of these") \
                if v["ahead"] else ("", "")
            now = (f"最初の{v['fit']}名（全{v['people']}名中）に今送り、残りは",
                   f"the first {v['fit']} of {v['people']} people are sent now, the rest") \
                if v["fit"] else ("今は誰にも送れず、全員に", "nobody is sent it now, everyone")
            out.append(wording.say(lang, f"本日のSIMの残りは{v['left']}通{ahead[0]}、この送信には"
                                         f"{v['parts']}通必要です。{now[0]}上限が戻りしだい送ります"
                                         f"（{when[0]}）",
                                   f"the SIMs have {v['left']} SMS parts left today{ahead[1]}, "
                                   f"and this needs {v['parts']}: {now[1]} when the daily limit "
                                   f"allows ({when[1]})"))
        elif code == "shorter":
            who = ((f"今すぐ全員（{v['people']}名）に送れます", f"everyone ({v['people']})")
                   if v["everyone"] else
                   (f"今すぐ{v['people']}名に送れます", f"{v['people']} people"))
            choices = ("（返信の選択肢を外すだけでも1通になります）",
                       " (leaving out the reply choices is enough)") \
                if v["without_choices"] else ("", "")
            out.append(wording.say(lang, f"本文をあと{v['cut']}文字短くして1通（{v['chars']}文字"
                                         f"以内）にすると、{who[0]}{choices[0]}",
                                   f"{v['cut']} characters shorter, as one SMS ({v['chars']} "
                                   f"characters), it would go to {who[1]} now{choices[1]}"))
        elif code == "multipart":
            out.append(wording.say(lang, f"1通（70文字）を超えるため、最大{v['parts']}通に分けて"
                                         "送り、携帯電話で1つにつながります",
                                   "longer than one SMS: it is sent in parts that the phone joins"))
    return out


def clock_time(at: float, config: Config) -> str:
    import datetime as dt
    return dt.datetime.fromtimestamp(at, config.zone).strftime("%m/%d %H:%M")


def _given(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


# -- creating and changing ----------------------------------------------------------------

def rings_if_no_answer(p: Plan, chosen: bool | None = None, origin: str | None = None) -> bool:
    """Whether a broadcast's silent recipients get one short call (appliance.ringing): as
    staff chose, else an emergency's do — never a drill's, nor an answer to a phone."""
    if chosen is not None:
        return chosen
    return p.priority == "emergency" and not p.drill and origin is None


def create(conn: sqlite3.Connection, p: Plan, *, title: str, actor: str,
           now: float, template_id: int | None = None, scheduled_at: float | None = None,
           request_key: str | None = None, followup_after_minutes: int | None = None,
           followup_max: int = 0, parent_id: int | None = None, round_: int = 0,
           schedule_id: int | None = None, ring_if_no_answer: bool | None = None,
           origin: str | None = None) -> int:
    """Insert the broadcast and its recipients (inside the caller's write transaction).

    With a *request_key* already used, returns that broadcast instead: a double submit of
    the confirm form sends once. *ring_if_no_answer*: its silent recipients get one short
    call (appliance.ringing); by default an emergency's do. *origin* 'sms_reply': the answer
    to a staff phone's command, sent ahead of everything (outbox.RANK_FIRST).
    """
    if request_key:
        row = conn.execute("SELECT id FROM broadcasts WHERE request_key = ?",
                           [request_key]).fetchone()
        if row:
            return row[0]
    # Default: the first line as written, placeholders shown as 〇〇 — never one patient's
    # name, and no "。さん、" left where a name was. (A line that is only "{name}様" says
    # nothing: the first line with some words in it.)
    written = [line.strip() for line in re.sub(r"\{[a-z_]+\}", "〇〇", p.text).splitlines()
               if len(line.strip()) >= 4] or ["一斉送信"]
    title = (title or "").strip() or written[0][:40]
    if followup_after_minutes is not None and (followup_after_minutes < 1 or followup_max < 1):
        raise BroadcastError("a follow-up needs at least 1 minute and 1 time",
                             field="followup_after_minutes",
                             ja="再送は1分以上あけて、1回以上にしてください")
    state = "scheduled" if scheduled_at and scheduled_at > now else "queued"
    ring_if_no_answer = rings_if_no_answer(p, ring_if_no_answer, origin)
    cursor = conn.execute(
        "INSERT INTO broadcasts (title, text, template_id, priority, drill, choices, created_by, "
        "created_at, scheduled_at, state, followup_after_minutes, followup_max, parent_id, "
        "schedule_id, request_key, ring_if_no_answer, origin) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [title, p.text, template_id, p.priority, int(p.drill),
         json.dumps(p.choices, ensure_ascii=False) if p.choices else None, actor, now,
         scheduled_at, state, followup_after_minutes, followup_max, parent_id, schedule_id,
         request_key, int(bool(ring_if_no_answer)), origin])
    broadcast_id = cursor.lastrowid
    rank = outbox.RANK_FIRST if origin == "sms_reply" else \
        outbox.RANK_EMERGENCY if p.priority == "emergency" else outbox.RANK_ROUTINE
    conn.executemany(
        "INSERT INTO recipients (broadcast_id, contact_id, name, phone, text, parts_count, "
        "priority_rank, next_attempt_at, round) VALUES (?,?,?,?,?,?,?,?,?)",
        [(broadcast_id, r.contact_id, r.name, r.phone, r.text, r.parts, rank, now, round_)
         for r in p.recipients])
    audit.record(conn, actor, "broadcast_create", broadcast_id=broadcast_id, title=title,
                 people=p.people, parts=p.parts, priority=p.priority, drill=p.drill,
                 scheduled_at=scheduled_at, parent_id=parent_id,
                 ring_if_no_answer=bool(ring_if_no_answer), origin=origin)
    return broadcast_id


def get(conn: sqlite3.Connection, broadcast_id: int) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM broadcasts WHERE id = ?", [broadcast_id]).fetchone()
    if row is None:
        raise BroadcastError(f"no broadcast with id {broadcast_id}", field="id",
                             ja=f"一斉送信 #{broadcast_id} はありません")
    return row


def cancel(conn: sqlite3.Connection, broadcast_id: int, *, actor: str, now: float) -> int:
    """Stop a broadcast: nothing more is sent (a message already on the air finishes).

    Returns how many recipients were cancelled.
    """
    row = get(conn, broadcast_id)
    if row["state"] in ("done", "cancelled"):
        raise BroadcastError(f"broadcast {broadcast_id} is already {row['state']}", field="id",
                             ja=f"一斉送信 #{broadcast_id} はすでに「"
                                f"{wording.state(row['state'], 'ja')}」です")
    conn.execute("UPDATE broadcasts SET state = 'cancelled', cancelled_at = ?, finished_at = ? "
                 "WHERE id = ?", [now, now, broadcast_id])
    # Queued messages, and those a modem claimed ahead but has not begun (no part handed
    # over: see outbox.part_in_flight) — the worker checks before it begins one.
    cancelled = conn.execute(
        "UPDATE recipients SET state = 'cancelled' WHERE broadcast_id = ? AND (state = 'queued' "
        f"OR (state = 'sending' AND {outbox.NOT_BEGUN}))", [broadcast_id]).rowcount
    audit.record(conn, actor, "broadcast_cancel", broadcast_id=broadcast_id,
                 cancelled=cancelled)
    return cancelled


def retry_failed(conn: sqlite3.Connection, broadcast_id: int, *, actor: str, now: float,
                 include_uncertain: bool = True) -> int:
    """Queue the failed (and uncertain) recipients of a broadcast again, in place."""
    get(conn, broadcast_id)
    states = ("failed", "uncertain") if include_uncertain else ("failed",)
    marks = ",".join("?" * len(states))
    count = conn.execute(
        f"UPDATE recipients SET state = 'queued', attempts = 0, next_attempt_at = ?, "
        f"last_error = coalesce(last_error, '') || ' — retried by ' || ? "
        f"WHERE broadcast_id = ? AND state IN ({marks})",
        [now, actor, broadcast_id, *states]).rowcount
    if count:
        conn.execute("UPDATE broadcasts SET state = 'queued', finished_at = NULL "
                     "WHERE id = ?", [broadcast_id])
    audit.record(conn, actor, "broadcast_retry", broadcast_id=broadcast_id, recipients=count)
    return count


def family(conn: sqlite3.Connection, broadcast_id: int) -> list[int]:
    """The broadcast and all its resends/follow-ups (and theirs)."""
    ids, frontier = [broadcast_id], [broadcast_id]
    while frontier:
        marks = ",".join("?" * len(frontier))
        frontier = [r[0] for r in conn.execute(
            f"SELECT id FROM broadcasts WHERE parent_id IN ({marks})", frontier)]
        ids += frontier
    return ids


def root_of(conn: sqlite3.Connection, broadcast_id: int) -> int:
    while True:
        parent = conn.execute("SELECT parent_id FROM broadcasts WHERE id = ?",
                              [broadcast_id]).fetchone()
        if parent is None or parent[0] is None:
            return broadcast_id
        broadcast_id = parent[0]


def _silent_contacts(conn: sqlite3.Connection, broadcast_id: int) -> list[sqlite3.Row]:
    """The first-round recipients of the family with no reply yet, one row per number."""
    ids = family(conn, root_of(conn, broadcast_id))
    marks = ",".join("?" * len(ids))
    return conn.execute(
        f"SELECT * FROM recipients WHERE broadcast_id = ? AND state != 'cancelled' AND phone NOT IN "
        f"(SELECT phone FROM recipients WHERE broadcast_id IN ({marks}) "
        f"AND acknowledged_at IS NOT NULL) ORDER BY id",
        [ids[0], *ids]).fetchall()


def resend_unacknowledged(conn: sqlite3.Connection, broadcast_id: int, *, actor: str,
                          now: float) -> int | None:
    """A new broadcast (child of this one) to everyone who has not replied; None if nobody."""
    root = get(conn, root_of(conn, broadcast_id))
    silent = _silent_contacts(conn, root["id"])
    if not silent:
        return None
    rounds = len(family(conn, root["id"]))
    p = Plan(text=root["text"], priority=root["priority"], drill=bool(root["drill"]),
             choices=json.loads(root["choices"]) if root["choices"] else [],
             recipients=[PlannedRecipient(r["contact_id"], r["name"], r["phone"], r["text"],
                                          r["parts_count"]) for r in silent])
    p.parts = sum(r.parts for r in p.recipients)
    # A resend rings nobody itself: the ring belongs to the first broadcast (ringing.due).
    return create(conn, p, title=f"再送{rounds}: {root['title']}", actor=actor, now=now,
                  template_id=root["template_id"], parent_id=root["id"], round_=rounds,
                  ring_if_no_answer=False)


def due_followups(conn: sqlite3.Connection, now: float) -> list[int]:
    """Broadcasts whose next automatic follow-up is due."""
    rows = conn.execute(
        "SELECT id, created_at, followup_after_minutes, followup_done FROM broadcasts "
        "WHERE followup_after_minutes IS NOT NULL AND followup_done < followup_max "
        "AND state IN ('sending', 'done')").fetchall()
    return [r["id"] for r in rows
            if now >= r["created_at"] + 60 * r["followup_after_minutes"] * (r["followup_done"] + 1)]


def create_followup(conn: sqlite3.Connection, broadcast_id: int, now: float) -> int | None:
    conn.execute("UPDATE broadcasts SET followup_done = followup_done + 1 WHERE id = ?",
                 [broadcast_id])
    return resend_unacknowledged(conn, broadcast_id, actor="daemon", now=now)


def reply_to_inbound(conn: sqlite3.Connection, config: Config, inbound_id: int, text: str, *,
                     actor: str, now: float) -> int:
    """Answer one inbound SMS from the inbox: a broadcast of one, through the same queue
    and checks as any other, audited; the inbound message is then handled. Returns the
    new broadcast's id."""
    from . import phone
    row = conn.execute("SELECT id, number FROM inbound_messages WHERE id = ?",
                       [inbound_id]).fetchone()
    if row is None:
        raise BroadcastError(f"no inbound message {inbound_id}", field="id",
                             ja="返信するメッセージが見つかりません")
    if not (text or "").strip():
        raise BroadcastError("the message is empty", field="text", ja="本文が空です")
    try:
        number = phone.normalise_mobile(row["number"])
    except phone.PhoneError:
        raise BroadcastError(f"{row['number']} cannot receive SMS", field="number",
                             ja="この番号にはSMSを送れません（携帯電話の番号ではありません）") from None
    p = plan_one(conn, config, number, text.strip(), shown=row["number"])
    name = p.recipients[0].name
    broadcast_id = create(conn, p, title=f"返信: {name}", actor=actor, now=now)
    conn.execute("UPDATE inbound_messages SET handled_by = coalesce(handled_by, ?), "
                 "handled_at = coalesce(handled_at, ?) WHERE id = ?", [actor, now, inbound_id])
    audit.record(conn, actor, "inbound_reply", inbound_id=inbound_id,
                 broadcast_id=broadcast_id)
    return broadcast_id


def set_ring(conn: sqlite3.Connection, broadcast_id: int, value: bool, *, actor: str,
             remote_addr: str | None = None) -> None:
    """Whether the broadcast's silent recipients get one short call (appliance.ringing);
    staff may change it while it goes (inside the caller's write transaction)."""
    if get(conn, broadcast_id) is None:
        raise BroadcastError(f"no broadcast {broadcast_id}", field="id", ja="この送信はありません")
    conn.execute("UPDATE broadcasts SET ring_if_no_answer = ? WHERE id = ?",
                 [int(value), broadcast_id])
    audit.record(conn, actor, "broadcast_ring", remote_addr, broadcast_id=broadcast_id,
                 ring_if_no_answer=value)


def plan_one(conn: sqlite3.Connection, config: Config, number: str, text: str, *,
             shown: str | None = None, priority: str = "routine") -> Plan:
    """The plan of one message to one number (E.164): an answer from the inbox, or to a
    staff phone's command. {name} is the contact's (else *shown*, else the number)."""
    contact = conn.execute("SELECT id, name, kana FROM contacts WHERE phone = ?",
                           [number]).fetchone()
    name = contact["name"] if contact else (shown or number)
    try:
        body = templates.render(text, contact_name=name, clinic=config.clinic_name,
                                kana=contact["kana"] if contact else None)
    except templates.TemplateError as exc:
        raise BroadcastError(exc.en, field="text", ja=exc.ja) from None
    parts = pdu.count(body).parts
    if parts > pdu.MAX_PARTS:
        raise BroadcastError("the message is too long for SMS", field="text",
                             ja="本文が長すぎます（全角670文字まで）")
    p = Plan(text=body, priority=priority, drill=False, choices=[],
             recipients=[PlannedRecipient(contact["id"] if contact else None, name, number,
                                          body, parts)])
    p.parts = parts
    return p


def promote_scheduled(conn: sqlite3.Connection, now: float) -> list[int]:
    """Scheduled broadcasts whose time has come become queued; returns their ids."""
    ids = [r[0] for r in conn.execute("SELECT id FROM broadcasts WHERE state = 'scheduled' "
                                      "AND scheduled_at <= ?", [now])]
    for broadcast_id in ids:
        conn.execute("UPDATE broadcasts SET state = 'queued' WHERE id = ?", [broadcast_id])
        conn.execute("UPDATE recipients SET next_attempt_at = ? WHERE broadcast_id = ? "
                     "AND state = 'queued'", [now, broadcast_id])
    return ids


def create_test_broadcast(conn: sqlite3.Connection, config: Config, *, actor: str,
                          now: float) -> int:
    """The test message to the test group (the hardware button, `tsunagu check --send-test`)."""
    p = plan(conn, config, text=config.test.message, drill=True, now=now)
    return create(conn, p, title="送信テスト", actor=actor, now=now)


def refresh_state(conn: sqlite3.Connection, broadcast_id: int, now: float) -> str:
    """Done once nobody is waiting to be sent; a retried broadcast is queued again."""
    row = conn.execute("SELECT state FROM broadcasts WHERE id = ?", [broadcast_id]).fetchone()
    if row is None or row["state"] in ("cancelled", "scheduled"):
        return row["state"] if row else "missing"
    # Whether anyone is left, not how many: this runs after every batch of delivery
    # reports, and counting 10,000 queued each time made each part cost more the longer
    # the queue (issue 16).
    waiting = conn.execute("SELECT EXISTS (SELECT 1 FROM recipients WHERE broadcast_id = ? "
                           "AND state IN ('queued', 'sending'))", [broadcast_id]).fetchone()[0]
    if not waiting and row["state"] != "done":
        conn.execute("UPDATE broadcasts SET state = 'done', finished_at = ? WHERE id = ?",
                     [now, broadcast_id])
        return "done"
    return row["state"]


# -- reading --------------------------------------------------------------------------------

def summary(conn: sqlite3.Connection, broadcast_id: int, *,
            held: dict[int, float] | None = None) -> dict:
    """Counts per state, acknowledgements and the tally of reply choices.

    *held*: budget.held_back() — queued messages the daily limits hold back are counted
    'budget_wait' (上限待ち), and `budget_until` says when the first of them may go.
    """
    b = get(conn, broadcast_id)
    counts = {s: 0 for s in ("queued", "budget_wait", "sending", "submitted", "delivered",
                             "failed", "uncertain", "cancelled")}
    for state, n in conn.execute(f"SELECT {outbox.SHOWN_STATE} AS shown, count(*) FROM "
                                 "recipients WHERE broadcast_id = ? GROUP BY shown",
                                 [broadcast_id]):
        counts[state] = n
    budget_until = None
    if held and counts["queued"]:
        mine = [held[r[0]] for r in conn.execute(
            "SELECT id FROM recipients WHERE broadcast_id = ? AND state = 'queued'",
            [broadcast_id]) if r[0] in held]
        counts["budget_wait"], counts["queued"] = len(mine), counts["queued"] - len(mine)
        budget_until = min(mine) if mine else None
    total = sum(counts.values())
    acknowledged = conn.execute("SELECT count(*) FROM recipients WHERE broadcast_id = ? AND "
                                "acknowledged_at IS NOT NULL", [broadcast_id]).fetchone()[0]
    choices = json.loads(b["choices"]) if b["choices"] else []
    tally = {c: 0 for c in choices}
    # Replies that picked no choice are counted too, and listed: 「はい」 or a question.
    other_replies = [dict(r) for r in conn.execute(
        "SELECT r.id AS recipient_id, r.name, r.phone, i.text, i.received_at FROM recipients r "
        "JOIN inbound_messages i ON i.id = r.reply_id WHERE r.broadcast_id = ? AND "
        "(r.choice IS NULL OR r.choice NOT BETWEEN 1 AND ?) ORDER BY i.received_at, i.id",
        [broadcast_id, len(choices)])] if choices else []
    by_phone = conn.execute("SELECT count(*) FROM recipients WHERE broadcast_id = ? AND "
                            "acknowledged_at IS NOT NULL AND reply_id IS NULL",
                            [broadcast_id]).fetchone()[0]
    for choice, n in conn.execute("SELECT choice, count(*) FROM recipients WHERE "
                                  "broadcast_id = ? AND choice IS NOT NULL GROUP BY choice",
                                  [broadcast_id]):
        if 1 <= choice <= len(choices):
            tally[choices[choice - 1]] = n
    parts = conn.execute("SELECT coalesce(sum(parts_count), 0) FROM recipients WHERE "
                         "broadcast_id = ?", [broadcast_id]).fetchone()[0]
    finished = sum(counts[s] for s in FINAL)
    return {"id": b["id"], "title": b["title"], "text": b["text"], "state": b["state"],
            "priority": b["priority"], "drill": bool(b["drill"]), "created_by": b["created_by"],
            "created_at": b["created_at"], "scheduled_at": b["scheduled_at"],
            "started_at": b["started_at"], "finished_at": b["finished_at"],
            "parent_id": b["parent_id"], "choices": choices, "tally": tally,
            "ring_if_no_answer": bool(b["ring_if_no_answer"]), "origin": b["origin"],
            "other_replies": other_replies, "by_phone": by_phone,
            "total": total, "parts": parts, "counts": counts,
            "acknowledged": acknowledged, "budget_until": budget_until,
            "sent": counts["submitted"] + counts["delivered"],
            "progress": round(100 * (finished + counts["submitted"]) / total) if total else 100}


def recipients(conn: sqlite3.Connection, broadcast_id: int, *,
               held: dict[int, float] | None = None, limit: int | None = None,
               offset: int = 0, after_id: int = 0) -> list[dict]:
    """Every recipient as staff see it (or *limit* of them from *offset*, or after the
    recipient *after_id*, in the same order: a page of a large broadcast); with *held*
    (budget.held_back()), a queued one the daily limits hold back is 'budget_wait' with
    `budget_until`."""
    rows = conn.execute(f"SELECT recipients.*, {outbox.SHOWN_STATE} AS shown_state, "
                        "i.text AS reply_text FROM recipients LEFT JOIN inbound_messages i ON "
                        "i.id = recipients.reply_id WHERE recipients.broadcast_id = ? "
                        "AND recipients.id > ? ORDER BY recipients.id LIMIT ? OFFSET ?",
                        [broadcast_id, after_id, -1 if limit is None else limit,
                         offset]).fetchall()
    held = held or {}
    out = []
    for r in rows:
        item = {k: r[k] for k in r.keys() if k != "shown_state"}
        item["state"], item["budget_until"] = r["shown_state"], None
        if item["state"] == "queued" and r["id"] in held:
            item["state"], item["budget_until"] = "budget_wait", held[r["id"]]
        out.append(item)
    return out


# The order of the call list: those who heard nothing or asked for a call first.
# Held back by the daily limit (budget_wait) next: their SMS may go only tomorrow, while
# "not sent" ones are going out within minutes.
CALL_ORDER = ("not_reached", "budget_wait", "not_sent", "asked", "free_text", "uncertain",
              "no_reply")


def call_list(conn: sqlite3.Connection, broadcast_id: int, *, now: float | None = None,
              held: dict[int, float] | None = None) -> list[dict]:
    """Everyone to phone, and why: not reached (failed, uncertain, never sent), no reply
    yet, or a reply that asks for a call — any choice but the first ("1" is the answer
    that needs nothing more) or words that match no choice.

    Counted over the whole family, so a patient who answered a resend is judged by that
    answer. Each row carries the latest call made from the list (`call`) and `done` once
    the person was reached by phone; done rows stay, below the others; `ring`: the short
    call the appliance made itself (appliance.ringing), if any. With *now*, a
    silent person's row says how many minutes ago the message went. With *held*
    (budget.held_back() of the broadcast), one the daily limits hold back is 'budget_wait'
    with `budget_until`: its SMS goes only then, so staff phone them before the rest.
    """
    held = held or {}
    from . import calls, ringing
    root_row = get(conn, root_of(conn, broadcast_id))
    root = root_row["id"]
    choices = json.loads(root_row["choices"]) if root_row["choices"] else []
    ids = family(conn, root)
    marks = ",".join("?" * len(ids))
    latest_reply: dict[str, sqlite3.Row] = {}
    for r in conn.execute(f"SELECT r.phone, r.choice, i.text FROM recipients r JOIN "
                          f"inbound_messages i ON i.id = r.reply_id WHERE r.broadcast_id IN "
                          f"({marks}) ORDER BY r.reply_id", ids):
        latest_reply[r["phone"]] = r
    reached = {r[0]: r[1] for r in conn.execute(
        f"SELECT phone, max(coalesce(submitted_at, delivered_at)) FROM recipients "
        f"WHERE broadcast_id IN ({marks}) AND state IN ('submitted', 'delivered') "
        f"GROUP BY phone", ids)}
    rows = conn.execute("SELECT r.*, c.note AS contact_note, c.facility, c.kana FROM "
                        "recipients r LEFT JOIN contacts c ON c.id = r.contact_id "
                        "WHERE r.broadcast_id = ? ORDER BY r.id", [root]).fetchall()
    called = calls.latest(conn, [r["id"] for r in rows])
    rung = ringing.for_recipients(conn, [r["id"] for r in rows])
    out = []
    for r in rows:
        reason, answer = _call_reason(r, latest_reply.get(r["phone"]), choices, reached)
        call = called.get(r["id"])
        if reason is None:
            continue
        sent_at = reached.get(r["phone"])
        until = held.get(r["id"]) if reason == "not_sent" and r["state"] == "queued" else None
        if until is not None:
            reason = "budget_wait"
        done = bool(call and call["outcome"] == "reached") or bool(
            call is None and r["acknowledged_at"] and not r["reply_id"])
        # "reason" is why to phone; the send's own reason key (error_policy) is reason_key.
        out.append({**dict(r), "reason_key": r["reason"], "reason": reason, "answer": answer,
                    "call": call, "ring": rung.get(r["id"]), "budget_until": until,
                    "done": done, "minutes_since_sent":
                        int((now - sent_at) // 60) if now and sent_at and reason == "no_reply"
                        else None})
    out.sort(key=lambda x: (x["done"], CALL_ORDER.index(x["reason"]), x["kana"] or "",
                            x["name"]))
    return out


def _call_reason(r: sqlite3.Row, reply: sqlite3.Row | None, choices: list[str],
                 reached: dict[str, float]) -> tuple[str | None, str | None]:
    """(why this person is to be phoned, their answer) or (None, None): nothing to do."""
    if reply is not None:
        if reply["choice"] is not None and 1 <= reply["choice"] <= len(choices):
            if reply["choice"] == 1:
                return None, None
            return "asked", f"{reply['choice']} {choices[reply['choice'] - 1]}"
        if not choices:
            return None, None   # no choices offered: any reply says they have it
        return "free_text", reply["text"]
    if r["phone"] in reached:
        return "no_reply", None
    if r["state"] == "uncertain":
        return "uncertain", None    # may have arrived: ask before reading it out again
    if r["state"] in ("queued", "sending", "cancelled"):
        return "not_sent", None
    return "not_reached", None


# The answers to staff phones' commands (appliance.sms_commands.tell): one-person broadcasts
# that are not what staff look for among the clinic's broadcasts.
NOT_A_PHONE_REPLY = "coalesce(b.origin, '') != 'sms_reply'"


def history(conn: sqlite3.Connection, *, limit: int = 50, offset: int = 0,
            phone_replies: bool = False) -> list[dict]:
    """The broadcasts, newest first; the answers to staff phones only with *phone_replies*."""
    where = "" if phone_replies else f"WHERE {NOT_A_PHONE_REPLY} "
    rows = conn.execute(
        "SELECT b.*, count(r.id) AS people, "
        "sum(r.state IN ('submitted','delivered')) AS sent, "
        "sum(r.state = 'delivered') AS delivered, sum(r.state = 'submitted') AS submitted, "
        "sum(r.state = 'failed') AS failed, sum(r.state = 'uncertain') AS uncertain, "
        "sum(r.acknowledged_at IS NOT NULL) AS acknowledged "
        f"FROM broadcasts b LEFT JOIN recipients r ON r.broadcast_id = b.id {where}"
        "GROUP BY b.id ORDER BY b.id DESC LIMIT ? OFFSET ?", [limit, offset]).fetchall()
    return [dict(r) for r in rows]


def phone_replies(conn: sqlite3.Connection) -> int:
    """How many answers to staff phones history() leaves out by default."""
    return conn.execute("SELECT count(*) FROM broadcasts WHERE origin = 'sms_reply'"
                        ).fetchone()[0]


def fold_digits(text: str) -> str:
    """Full-width digits and spaces as ASCII (NFKC), for parsing a reply."""
    return unicodedata.normalize("NFKC", text)
