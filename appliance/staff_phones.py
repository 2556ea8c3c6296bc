"""Staff phones that may command the appliance by SMS, each with its command PIN.

A number is registered for one user (the web UI's account and users pages, `tsunagu user
phone`), with a PIN of 4 to 8 digits hashed like a password (werkzeug's scrypt): never
stored or logged as typed. SMS from any other number is never obeyed (appliance.sms_commands).

A wrong PIN is counted per number; [sms_commands] wrong_pins in a row disable commands from
that number (audited, shown to admins) until an admin enables it again — someone holding a
nurse's lost phone gets three guesses at a PIN of 10 000 and more, not a hundred. A number
whose user is deactivated is not obeyed either. `on_call` numbers are the ones asked to
confirm the prepared broadcast after an earthquake or tsunami warning (appliance.etws).
"""
from __future__ import annotations

import re
import sqlite3
import unicodedata
from dataclasses import dataclass

import sqlite_utils
from werkzeug.security import check_password_hash, generate_password_hash

from . import audit, phone as phone_mod
from .db import write
from .users import HASH_METHOD, UserError, require

PIN = re.compile(r"[0-9]{4,8}")


class StaffPhoneError(UserError):
    """A staff phone cannot be registered or changed as asked; `.field` names the field.
    `en` and `ja` are the message in each language (wording.error_text picks one)."""

    def __init__(self, ja: str, en: str, *, field: str | None = None) -> None:
        super().__init__(f"{ja} ({en})", field=field)
        self.ja, self.en = ja, en


@dataclass(frozen=True)
class StaffPhone:
    id: int
    user_id: int
    username: str
    user_active: bool
    role: str
    phone: str
    on_call: bool
    wrong_pins: int
    disabled_at: float | None
    created_at: float

    @property
    def obeyed(self) -> bool:
        """Its commands are taken: not disabled, and its user is active."""
        return self.disabled_at is None and self.user_active


_SELECT = ("SELECT p.*, u.username, u.active AS user_active, u.role FROM staff_phones p "
           "JOIN users u ON u.id = p.user_id")


def _phone(row: sqlite3.Row) -> StaffPhone:
    return StaffPhone(id=row["id"], user_id=row["user_id"], username=row["username"],
                      user_active=bool(row["user_active"]), role=row["role"],
                      phone=row["phone"], on_call=bool(row["on_call"]),
                      wrong_pins=row["wrong_pins"], disabled_at=row["disabled_at"],
                      created_at=row["created_at"])


def _conn(db) -> sqlite3.Connection:
    return db.conn if isinstance(db, sqlite_utils.Database) else db


def clean_pin(pin: str | None) -> str:
    """The PIN as typed on any keyboard (full-width digits too), or StaffPhoneError."""
    value = unicodedata.normalize("NFKC", pin or "").strip()
    if not PIN.fullmatch(value):
        raise StaffPhoneError("暗証番号は4〜8桁の数字にしてください",
                              "the command PIN is 4 to 8 digits", field="pin")
    return value


def _number(text: str) -> str:
    try:
        return phone_mod.normalise_mobile(text)
    except phone_mod.PhoneError as exc:
        raise StaffPhoneError(exc.message_ja, exc.message_en, field="phone") from None


def find(conn: sqlite3.Connection, number: str) -> StaffPhone | None:
    """The staff phone registered for *number* (E.164), if any."""
    row = _conn(conn).execute(f"{_SELECT} WHERE p.phone = ?", [number]).fetchone()
    return _phone(row) if row else None


def get(conn, phone_id: int) -> StaffPhone | None:
    row = _conn(conn).execute(f"{_SELECT} WHERE p.id = ?", [phone_id]).fetchone()
    return _phone(row) if row else None


def for_user(conn, user_id: int) -> list[StaffPhone]:
    return [_phone(r) for r in _conn(conn).execute(
        f"{_SELECT} WHERE p.user_id = ? ORDER BY p.id", [user_id])]


def all_phones(conn) -> list[StaffPhone]:
    return [_phone(r) for r in _conn(conn).execute(f"{_SELECT} ORDER BY u.username, p.id")]


def on_call(conn) -> list[StaffPhone]:
    """The numbers asked after a warning: on call, not disabled, their user active."""
    return [p for p in all_phones(conn) if p.on_call and p.obeyed]


def add(db: sqlite_utils.Database, who: int | str, number: str, pin: str, *, actor: str,
        on_call: bool = True, now: float, remote_addr: str | None = None) -> StaffPhone:
    """Register *number* for the user *who* (an id or a user name) with its command PIN."""
    number, pin = _number(number), clean_pin(pin)
    pin_hash = generate_password_hash(pin, method=HASH_METHOD)
    with write(db) as conn:
        user = require(conn, who)
        taken = find(conn, number)
        if taken is not None:
            raise StaffPhoneError(f"この番号は「{taken.username}」の携帯として登録済みです",
                                  f"this number is already registered for {taken.username}",
                                  field="phone")
        phone_id = conn.execute(
            "INSERT INTO staff_phones (user_id, phone, pin_hash, on_call, created_by, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [user["id"], number, pin_hash, int(on_call), actor, now, now]).lastrowid
        audit.record(conn, actor, "staff_phone_add", remote_addr, user_id=user["id"],
                     username=user["username"], phone=number, on_call=on_call)
    return get(db, phone_id)


def _require(conn: sqlite3.Connection, phone_id: int) -> StaffPhone:
    found = get(conn, phone_id)
    if found is None:
        raise StaffPhoneError("その携帯は登録されていません", "no such staff phone", field="phone")
    return found


def remove(db: sqlite_utils.Database, phone_id: int, *, actor: str,
           remote_addr: str | None = None) -> StaffPhone:
    with write(db) as conn:
        found = _require(conn, phone_id)
        conn.execute("UPDATE sms_confirmations SET state = 'superseded' WHERE "
                     "staff_phone_id = ? AND state = 'pending'", [phone_id])
        conn.execute("DELETE FROM staff_phones WHERE id = ?", [phone_id])
        audit.record(conn, actor, "staff_phone_remove", remote_addr, user_id=found.user_id,
                     username=found.username, phone=found.phone)
    return found


def set_pin(db: sqlite_utils.Database, phone_id: int, pin: str, *, actor: str, now: float,
            remote_addr: str | None = None) -> StaffPhone:
    """A new command PIN; the count of wrong ones starts again (a disabled number stays
    disabled: only an admin enables it)."""
    pin_hash = generate_password_hash(clean_pin(pin), method=HASH_METHOD)
    with write(db) as conn:
        found = _require(conn, phone_id)
        conn.execute("UPDATE staff_phones SET pin_hash = ?, wrong_pins = 0, updated_at = ? "
                     "WHERE id = ?", [pin_hash, now, phone_id])
        audit.record(conn, actor, "staff_phone_pin", remote_addr, username=found.username,
                     phone=found.phone)
    return get(db, phone_id)


def set_on_call(db: sqlite_utils.Database, phone_id: int, value: bool, *, actor: str,
                now: float, remote_addr: str | None = None) -> StaffPhone:
    with write(db) as conn:
        found = _require(conn, phone_id)
        conn.execute("UPDATE staff_phones SET on_call = ?, updated_at = ? WHERE id = ?",
                     [int(value), now, phone_id])
        audit.record(conn, actor, "staff_phone_on_call", remote_addr, username=found.username,
                     phone=found.phone, on_call=value)
    return get(db, phone_id)


def enable(db: sqlite_utils.Database, phone_id: int, *, actor: str, now: float,
           remote_addr: str | None = None) -> StaffPhone:
    """An admin lets a number disabled by wrong PINs command again."""
    with write(db) as conn:
        found = _require(conn, phone_id)
        conn.execute("UPDATE staff_phones SET disabled_at = NULL, wrong_pins = 0, "
                     "updated_at = ? WHERE id = ?", [now, phone_id])
        audit.record(conn, actor, "staff_phone_enable", remote_addr, username=found.username,
                     phone=found.phone)
    return get(db, phone_id)


def check_pin(conn: sqlite3.Connection, found: StaffPhone, pin: str, *, limit: int,
              now: float) -> tuple[bool, int]:
    """Inside the caller's write transaction: (whether *pin* is the number's PIN, wrong
    PINs left before it is disabled). The *limit*-th wrong one in a row disables it."""
    row = conn.execute("SELECT pin_hash, wrong_pins FROM staff_phones WHERE id = ?",
                       [found.id]).fetchone()
    typed = unicodedata.normalize("NFKC", pin or "").strip()
    if row is not None and PIN.fullmatch(typed) and check_password_hash(row["pin_hash"], typed):
        conn.execute("UPDATE staff_phones SET wrong_pins = 0 WHERE id = ?", [found.id])
        return True, limit
    wrong = (row["wrong_pins"] if row else 0) + 1
    disabled = wrong >= limit
    conn.execute("UPDATE staff_phones SET wrong_pins = ?, disabled_at = CASE WHEN ? THEN ? "
                 "ELSE disabled_at END WHERE id = ?", [wrong, int(disabled), now, found.id])
    if disabled:
        audit.record(conn, found.username, "staff_phone_disabled", phone=found.phone,
                     wrong_pins=wrong)
    return False, max(0, limit - wrong)
