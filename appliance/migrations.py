"""Named migrations for the appliance database.

Rules: a migration is applied once, in a transaction, in order. Never DROP a table or a
column that holds a device's queue or patients' data; add columns and tables instead.
All *_at columns are Unix seconds (UTC, REAL); the UI renders them in the clinic's zone.
"""
from __future__ import annotations

from sqlite_utils.migrations import Migrations

migrations = Migrations("tsunagu")


@migrations(name="0001_initial")
def m0001_initial(db) -> None:
    db.executescript(SCHEMA_0001)


@migrations(name="0002_parts_pace_index")
def m0002_parts_pace_index(db) -> None:
    # The pace and the daily budget are read before every part a modem sends; without this
    # index both walk the modem's whole history, which grows by ~400 rows a broadcast.
    db.execute("CREATE INDEX IF NOT EXISTS parts_pace ON parts(modem, sending_at)")


@migrations(name="0003_never_stop_sending")
def m0003_never_stop_sending(db) -> None:
    db.executescript(SCHEMA_0003)


@migrations(name="0004_error_policy")
def m0004_error_policy(db) -> None:
    db.executescript(SCHEMA_0004)


@migrations(name="0005_resume_long_messages")
def m0005_resume_long_messages(db) -> None:
    db.executescript(SCHEMA_0005)


@migrations(name="0006_security_accounts")
def m0006_security_accounts(db) -> None:
    # users is rebuilt (SQLite cannot change a CHECK): the 'office' role (事務) joins, the
    # per-account lockout goes (anyone on the LAN could lock every account; logins are now
    # throttled by client address instead), and each account gets a session version and
    # its second factor. Nothing references users by key, so the rebuild moves no data.
    db.executescript(SCHEMA_SECURITY_ACCOUNTS)


SCHEMA_SECURITY_ACCOUNTS = r"""
CREATE TABLE users_new (
    id              INTEGER PRIMARY KEY,
    username        TEXT NOT NULL UNIQUE,
    password_hash   TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('admin','office','staff')),
    locale          TEXT NOT NULL DEFAULT 'ja' CHECK (locale IN ('ja','en')),
    active          INTEGER NOT NULL DEFAULT 1,
    created_at      REAL NOT NULL,
    last_login_at   REAL,
    -- Checked on every request against the one in the session: bumped by logout, a
    -- password change or reset, a role change, deactivation and a second-factor reset, it
    -- ends every session of the account at once (a copied cookie included).
    session_version INTEGER NOT NULL DEFAULT 1,
    password_changed_at REAL,
    totp_secret     TEXT,                  -- base32; NULL: no second factor
    totp_pending    TEXT,                  -- during enrolment, until a code confirms it
    totp_enabled_at REAL,
    totp_last_step  INTEGER                -- the last accepted 30 s step: no code twice
);
INSERT INTO users_new (id, username, password_hash, role, locale, active, created_at,
                       last_login_at)
    SELECT id, username, password_hash, role, locale, active, created_at, last_login_at
    FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;

-- One-time recovery codes for the second factor (hashes only).
CREATE TABLE recovery_codes (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash       TEXT NOT NULL,
    created_at      REAL NOT NULL,
    used_at         REAL
);
CREATE INDEX recovery_codes_user ON recovery_codes(user_id);

-- Every login attempt, for the throttle by client address and the admins' dashboard.
-- outcome: ok, password_ok (the second factor awaited), bad_credentials, bad_code,
-- throttled, emergency, bad_emergency, cleared (an admin let the address try again).
CREATE TABLE login_attempts (
    id              INTEGER PRIMARY KEY,
    at              REAL NOT NULL,
    remote_addr     TEXT NOT NULL,
    username        TEXT,
    outcome         TEXT NOT NULL
);
CREATE INDEX login_attempts_addr ON login_attempts(remote_addr, at);
CREATE INDEX login_attempts_at ON login_attempts(at);

-- Sealed one-time emergency codes (break-glass), hashes only; printed at install.
CREATE TABLE emergency_codes (
    id              INTEGER PRIMARY KEY,
    code_hash       TEXT NOT NULL,
    created_at      REAL NOT NULL,
    created_by      TEXT NOT NULL,
    used_at         REAL,
    used_from       TEXT,
    revoked_at      REAL
);
"""


@migrations(name="0007_security_audit_chain")
def m0007_security_audit_chain(db) -> None:
    # Each audit row's hash covers the row and the previous row's hash (appliance.audit);
    # the rows already there are chained now, in id order. The update trigger is lifted for
    # this one statement and put back in the same transaction.
    from .audit import GENESIS, row_hash
    conn = db.conn
    conn.execute("ALTER TABLE audit_log ADD COLUMN hash TEXT")
    conn.execute("DROP TRIGGER audit_log_no_update")
    previous = GENESIS
    for r in conn.execute("SELECT * FROM audit_log ORDER BY id").fetchall():
        previous = row_hash(previous, r["id"], r["at"], r["actor"], r["action"], r["detail"],
                            r["remote_addr"])
        conn.execute("UPDATE audit_log SET hash = ? WHERE id = ?", [previous, r["id"]])
    conn.execute("CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
                 "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END")


@migrations(name="0008_ui_call_outcomes")
def m0008_ui_call_outcomes(db) -> None:
    # What came of each phone call from the call list, kept (not overwritten) so a wrong tap
    # can be undone and the list shows who called whom, when, and what they noted.
    db.executescript("""
    CREATE TABLE call_outcomes (
        id              INTEGER PRIMARY KEY,
        recipient_id    INTEGER NOT NULL REFERENCES recipients(id),
        broadcast_id    INTEGER NOT NULL REFERENCES broadcasts(id),
        outcome         TEXT NOT NULL CHECK (outcome IN ('reached','no_answer','message_left')),
        note            TEXT NOT NULL DEFAULT '',
        called_by       TEXT NOT NULL,
        called_at       REAL NOT NULL,
        undone_by       TEXT,
        undone_at       REAL
    );
    CREATE INDEX call_outcomes_recipient ON call_outcomes(recipient_id, id);
    """)


@migrations(name="0009_ui_template_defaults")
def m0009_ui_template_defaults(db) -> None:
    # A template carries how it is sent: 停電・透析中止 is an emergency with reply choices,
    # to the same groups each time. choices and group_ids are JSON lists (NULL: none).
    db.executescript("""
    ALTER TABLE templates ADD COLUMN priority TEXT NOT NULL DEFAULT 'routine'
        CHECK (priority IN ('emergency','routine'));
    ALTER TABLE templates ADD COLUMN choices TEXT;
    ALTER TABLE templates ADD COLUMN group_ids TEXT;
    """)


@migrations(name="0010_modem_recovery_and_time")
def m0010_modem_recovery_and_time(db) -> None:
    db.executescript(SCHEMA_MODEM_RECOVERY_AND_TIME)


@migrations(name="0011_api_tokens_webhooks")
def m0011_api_tokens_webhooks(db) -> None:
    db.executescript(SCHEMA_API_0008)


@migrations(name="0012_api_reminders")
def m0012_api_reminders(db) -> None:
    db.executescript(SCHEMA_API_0009)


@migrations(name="0013_phone_staff_commands")
def m0013_phone_staff_commands(db) -> None:
    db.executescript(SCHEMA_PHONE_COMMANDS)


@migrations(name="0014_phone_cell_broadcasts")
def m0014_phone_cell_broadcasts(db) -> None:
    db.executescript(SCHEMA_PHONE_WARNINGS)


@migrations(name="0015_phone_ring_calls")
def m0015_phone_ring_calls(db) -> None:
    db.executescript(SCHEMA_PHONE_RING)


SCHEMA_0001 = r"""
-- People we may text. phone is E.164 (+819012345678); unique so an import cannot
-- create two rows that would each receive the same broadcast.
CREATE TABLE contacts (
    id          INTEGER PRIMARY KEY,
    patient_id  TEXT UNIQUE,               -- the clinic's own ID (患者ID), optional
    name        TEXT NOT NULL,
    kana        TEXT NOT NULL DEFAULT '',
    phone       TEXT NOT NULL UNIQUE,
    facility    TEXT NOT NULL DEFAULT '',
    note        TEXT NOT NULL DEFAULT '',
    active      INTEGER NOT NULL DEFAULT 1,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
);

-- Facility (本院, みなみ分院), dialysis shift (月水金 午前), the test group for drills, or free.
CREATE TABLE groups (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL DEFAULT 'custom' CHECK (kind IN ('facility','shift','test','custom')),
    note        TEXT NOT NULL DEFAULT ''
);

CREATE TABLE contact_groups (
    contact_id  INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    group_id    INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    PRIMARY KEY (contact_id, group_id)
);

CREATE TABLE templates (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    text        TEXT NOT NULL,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
);

-- Web UI accounts. password_hash is a werkzeug scrypt hash; never the password.
CREATE TABLE users (
    id              INTEGER PRIMARY KEY,
    username        TEXT NOT NULL UNIQUE,
    password_hash   TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('admin','staff')),
    locale          TEXT NOT NULL DEFAULT 'ja' CHECK (locale IN ('ja','en')),
    active          INTEGER NOT NULL DEFAULT 1,
    failed_logins   INTEGER NOT NULL DEFAULT 0,
    locked_until    REAL,
    created_at      REAL NOT NULL,
    last_login_at   REAL
);

-- One send to many people. state: scheduled → queued → sending → done | cancelled.
-- choices: JSON list of reply choices, e.g. ["来院できる","来院できない","連絡がほしい"];
-- a reply "1" (or "１") picks choices[0].
CREATE TABLE broadcasts (
    id              INTEGER PRIMARY KEY,
    title           TEXT NOT NULL,
    text            TEXT NOT NULL,         -- as written, placeholders unrendered
    template_id     INTEGER REFERENCES templates(id) ON DELETE SET NULL,
    priority        TEXT NOT NULL DEFAULT 'routine' CHECK (priority IN ('emergency','routine')),
    drill           INTEGER NOT NULL DEFAULT 0,
    choices         TEXT,                  -- JSON list or NULL
    created_by      TEXT NOT NULL,
    created_at      REAL NOT NULL,
    scheduled_at    REAL,                  -- NULL: send now
    started_at      REAL,
    finished_at     REAL,
    cancelled_at    REAL,
    state           TEXT NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('scheduled','queued','sending','done','cancelled')),
    followup_after_minutes INTEGER,        -- resend to the silent after N minutes…
    followup_max    INTEGER NOT NULL DEFAULT 0,  -- …up to K times
    followup_done   INTEGER NOT NULL DEFAULT 0,
    parent_id       INTEGER REFERENCES broadcasts(id),  -- a retry/resend of another broadcast
    schedule_id     INTEGER,               -- created by a recurring schedule
    request_key     TEXT UNIQUE            -- idempotency: a double submit sends once
);

-- One recipient message: a snapshot of who and what, so editing a contact or template
-- later never changes what was sent. state: queued → sending → submitted → delivered |
-- failed, uncertain (crash while sending), cancelled (broadcast cancelled before claim).
CREATE TABLE recipients (
    id              INTEGER PRIMARY KEY,
    broadcast_id    INTEGER NOT NULL REFERENCES broadcasts(id),
    contact_id      INTEGER REFERENCES contacts(id) ON DELETE SET NULL,
    name            TEXT NOT NULL,
    phone           TEXT NOT NULL,
    text            TEXT NOT NULL,         -- rendered
    parts_count     INTEGER NOT NULL,
    state           TEXT NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued','sending','submitted','delivered','failed','uncertain','cancelled')),
    priority_rank   INTEGER NOT NULL DEFAULT 1,   -- 0 emergency, 1 routine: claim order
    modem           TEXT,                  -- the modem that claimed it; all parts go through it
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    last_error      TEXT,
    claimed_at      REAL,
    submitted_at    REAL,
    delivered_at    REAL,
    failed_at       REAL,
    acknowledged_at REAL,
    choice          INTEGER,               -- 1-based index into broadcasts.choices
    reply_id        INTEGER,
    round           INTEGER NOT NULL DEFAULT 0   -- 0 first send, 1.. follow-ups
);
CREATE INDEX recipients_claim ON recipients(state, priority_rank, next_attempt_at, id);
CREATE INDEX recipients_broadcast ON recipients(broadcast_id, state);
CREATE INDEX recipients_phone ON recipients(phone, id);

-- Segments of a recipient message. mr is the TP-MR the modem returned (+CMGS: mr).
CREATE TABLE parts (
    id              INTEGER PRIMARY KEY,
    recipient_id    INTEGER NOT NULL REFERENCES recipients(id),
    seq             INTEGER NOT NULL,      -- 1-based
    state           TEXT NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued','sending','submitted','delivered','failed','uncertain')),
    modem           TEXT,
    mr              INTEGER,
    sending_at      REAL,
    submitted_at    REAL,
    report_at       REAL,
    report_status   INTEGER,               -- TP-ST from the status report
    error           TEXT,
    UNIQUE (recipient_id, seq)
);
CREATE INDEX parts_report_match ON parts(modem, mr, submitted_at);
CREATE INDEX parts_daily ON parts(modem, submitted_at);

CREATE TABLE delivery_reports (
    id              INTEGER PRIMARY KEY,
    modem           TEXT NOT NULL,
    mr              INTEGER NOT NULL,
    number          TEXT,
    status          INTEGER NOT NULL,      -- TP-ST
    outcome         TEXT NOT NULL CHECK (outcome IN ('delivered','pending','failed')),
    discharge_at    REAL,
    received_at     REAL NOT NULL,
    part_id         INTEGER REFERENCES parts(id)   -- NULL: unmatched
);

-- Every SMS that reached us. recipient_id set when matched as a reply.
CREATE TABLE inbound_messages (
    id              INTEGER PRIMARY KEY,
    modem           TEXT NOT NULL,
    number          TEXT NOT NULL,
    text            TEXT NOT NULL,
    sent_at         REAL,                  -- SMSC timestamp
    received_at     REAL NOT NULL,
    recipient_id    INTEGER REFERENCES recipients(id),
    broadcast_id    INTEGER REFERENCES broadcasts(id),
    choice          INTEGER,
    handled_by      TEXT,                  -- staff who marked it handled (inbox)
    handled_at      REAL
);
CREATE INDEX inbound_received ON inbound_messages(received_at);

-- The latest health of each configured modem, written by the daemon's poll.
-- ready=1 only when it answers, SIM READY, registered, signal above threshold.
CREATE TABLE modem_status (
    name            TEXT PRIMARY KEY,
    port            TEXT NOT NULL,
    ready           INTEGER NOT NULL DEFAULT 0,
    reason          TEXT,                  -- why not ready: not_answering, no_sim, sim_pin, not_registered, weak_signal, port_missing
    detail          TEXT,
    manufacturer    TEXT, model TEXT, revision TEXT, imei TEXT, imsi TEXT, iccid TEXT,
    sim_state       TEXT,
    registration    TEXT,                  -- registered_home, registered_roaming, searching, denied, not_registered, unknown
    signal_dbm      INTEGER,               -- NULL when unknown (CSQ 99)
    signal_bars     INTEGER,
    operator        TEXT,
    pace_per_minute INTEGER,
    daily_limit     INTEGER,
    checked_at      REAL NOT NULL
);

CREATE TABLE heartbeat (
    name            TEXT PRIMARY KEY,      -- 'daemon'
    pid             INTEGER NOT NULL,
    started_at      REAL NOT NULL,
    beat_at         REAL NOT NULL,
    version         TEXT
);

-- Requests from other processes to the daemon (only the daemon opens ports):
-- kind 'probe' (fresh modem check), 'send_test'. The daemon answers in result (JSON).
CREATE TABLE daemon_requests (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL,
    args            TEXT,                  -- JSON
    requested_by    TEXT NOT NULL,
    requested_at    REAL NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','done','failed')),
    answered_at     REAL,
    result          TEXT                   -- JSON
);

CREATE TABLE check_runs (
    id              INTEGER PRIMARY KEY,
    at              REAL NOT NULL,
    status          INTEGER NOT NULL,      -- 0 ok, 1 warning, 2 critical
    live            INTEGER NOT NULL DEFAULT 0,
    results         TEXT NOT NULL          -- JSON list of {name, status, message}
);

-- Recurring sends ("every Monday 17:00, blood-test notice to 月水金").
CREATE TABLE schedules (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL,
    cron            TEXT NOT NULL,         -- crontab fields: minute hour day month day_of_week
    template_id     INTEGER REFERENCES templates(id),
    text            TEXT,
    groups          TEXT NOT NULL,         -- JSON list of group names
    priority        TEXT NOT NULL DEFAULT 'routine',
    enabled         INTEGER NOT NULL DEFAULT 1,
    created_by      TEXT NOT NULL,
    created_at      REAL NOT NULL,
    last_run_at     REAL
);

CREATE TABLE settings (
    key             TEXT PRIMARY KEY,
    value           TEXT NOT NULL
);

-- Append-only: who did what, when. Triggers refuse UPDATE and DELETE.
CREATE TABLE audit_log (
    id              INTEGER PRIMARY KEY,
    at              REAL NOT NULL,
    actor           TEXT NOT NULL,         -- username, 'cli:<user>', 'daemon', 'button'
    action          TEXT NOT NULL,         -- login, login_failed, broadcast_create, contacts_import…
    detail          TEXT,                  -- JSON
    remote_addr     TEXT
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
"""

SCHEMA_0003 = r"""
-- A recurring schedule that could not run is shown failed, with why, until a run succeeds.
ALTER TABLE schedules ADD COLUMN last_error TEXT;
ALTER TABLE schedules ADD COLUMN last_error_at REAL;
ALTER TABLE schedules ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;

-- The daemon's jobs (heartbeat, requests, timers…) that failed: written when one fails and
-- when it works again, never on every run. A job failing again and again is paused.
CREATE TABLE daemon_jobs (
    name            TEXT PRIMARY KEY,
    failures        INTEGER NOT NULL DEFAULT 0,  -- in a row; 0 once it works again
    last_error      TEXT,
    last_error_at   REAL,
    paused_until    REAL,
    recovered_at    REAL
);
"""

SCHEMA_0004 = r"""
-- Why a recipient is failed, waiting or was resent, as a key of appliance.error_policy
-- ("cms:42", "report:0x41", "no_prompt"…) that each page words in its own language;
-- last_error keeps the technical detail.
ALTER TABLE recipients ADD COLUMN reason TEXT;
-- The share of this modem's recent sends that failed for reasons of the modem or the
-- network (not of the recipient); a modem at or above 0.5 is flagged and takes less work.
ALTER TABLE modem_status ADD COLUMN error_rate REAL;
"""

SCHEMA_0005 = r"""
-- A long message stopped half-way goes on where it stopped, with the same concatenation
-- reference through the same modem, so the phone joins it to the parts it has
-- (outbox.stop_half_way); after resume_until, or when that modem is down, it is sent whole.
ALTER TABLE recipients ADD COLUMN concat_ref INTEGER;     -- this attempt's reference
ALTER TABLE recipients ADD COLUMN resume_from INTEGER;    -- the first part still to send
ALTER TABLE recipients ADD COLUMN resume_modem TEXT;
ALTER TABLE recipients ADD COLUMN resume_until REAL;
"""

SCHEMA_MODEM_RECOVERY_AND_TIME = """
-- Where the system clock's time comes from (appliance.timekeeping): one row, 'system'.
CREATE TABLE clock_status (
    name            TEXT PRIMARY KEY,
    source          TEXT NOT NULL,         -- ntp, network, unsynchronised
    offset_seconds  REAL,                  -- the network's time minus the clock, when known
    detail          TEXT,
    modem           TEXT,                  -- whose network time was read
    checked_at      REAL NOT NULL
);

-- The recovery ladder of a modem that stopped answering (appliance.modem_link): each rung
-- climbed, and whether it helped. The latest row per modem is its state.
CREATE TABLE modem_recovery (
    id              INTEGER PRIMARY KEY,
    modem           TEXT NOT NULL,
    rung            TEXT NOT NULL,         -- resync, reset, power_cycle, gave_up
    started_at      REAL NOT NULL,
    outcome         TEXT,                  -- recovered, failed; NULL while it is being tried
    detail          TEXT
);
CREATE INDEX modem_recovery_by_modem ON modem_recovery(modem, started_at);
"""

SCHEMA_API_0008 = r"""
-- Tokens for the clinic's other systems (/api/v1). Only a SHA-256 of the token is kept: the
-- token itself is shown once when it is made. A revoked token is kept (the audit log names
-- it). scopes: comma-separated, of appliance.api_tokens.SCOPES.
CREATE TABLE api_tokens (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,      -- the audit log's actor is 'api:<name>'
    token_hash      TEXT NOT NULL UNIQUE,
    prefix          TEXT NOT NULL,             -- the token's first characters, to recognise it
    scopes          TEXT NOT NULL,
    rate_per_minute INTEGER NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      REAL NOT NULL,
    last_used_at    REAL,
    revoked_at      REAL,
    revoked_by      TEXT
);

-- Idempotency-Key: a POST repeated with the same key (a retry after a timeout) gets the
-- first answer again instead of doing it twice; the same key with another request is refused.
CREATE TABLE api_idempotency (
    token_id        INTEGER NOT NULL REFERENCES api_tokens(id),
    key             TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,             -- SHA-256 of method, path and body
    status          INTEGER NOT NULL,
    body            TEXT NOT NULL,             -- the JSON answered the first time
    location        TEXT,
    created_at      REAL NOT NULL,
    PRIMARY KEY (token_id, key)
);

-- A token's webhook: events are POSTed to url, signed with secret (HMAC-SHA256). events is
-- ',message.sent,reply.received,' (commas around each, for instr()). A receiver that fails
-- holds the webhook's queue (failures, retry_at) with a doubling back-off.
CREATE TABLE api_webhooks (
    id              INTEGER PRIMARY KEY,
    token_id        INTEGER NOT NULL UNIQUE REFERENCES api_tokens(id),
    url             TEXT NOT NULL,
    secret          TEXT NOT NULL,
    events          TEXT NOT NULL,
    enabled         INTEGER NOT NULL DEFAULT 1,
    failures        INTEGER NOT NULL DEFAULT 0,  -- failed tries in a row
    retry_at        REAL,
    last_error      TEXT,
    last_error_at   REAL,
    last_success_at REAL,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL
);

-- What happened, written by the triggers below in the same transaction as the change itself
-- (so an event can never be lost, whichever code made the change), only while a webhook
-- wants that event. The daemon renders body once and fans it out to api_deliveries.
CREATE TABLE api_events (
    id              INTEGER PRIMARY KEY,
    type            TEXT NOT NULL,
    subject         TEXT NOT NULL,             -- recipient, inbound message, broadcast id; modem name
    at              REAL NOT NULL,
    data            TEXT,                      -- JSON taken when it happened
    body            TEXT                       -- the payload, made once: a re-send sends it unchanged
);
CREATE INDEX api_events_new ON api_events(id) WHERE body IS NULL;

-- The durable outbox of webhook deliveries: pending until the receiver answers 2xx.
CREATE TABLE api_deliveries (
    id              INTEGER PRIMARY KEY,
    webhook_id      INTEGER NOT NULL REFERENCES api_webhooks(id) ON DELETE CASCADE,
    event_id        INTEGER NOT NULL REFERENCES api_events(id),
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      REAL NOT NULL,
    give_up_at      REAL NOT NULL,             -- still failing then: failed (re-sendable)
    last_attempt_at REAL,
    last_status     INTEGER,                   -- the receiver's HTTP status
    last_error      TEXT,
    delivered_at    REAL,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX api_deliveries_queue ON api_deliveries(webhook_id, state, id);

-- Now, as every *_at column has it (the triggers' fallback when the row has no time).
CREATE VIEW api_now AS SELECT (julianday('now') - 2440587.5) * 86400.0 AS at;

CREATE TRIGGER api_event_message AFTER UPDATE OF state ON recipients
WHEN NEW.state IS NOT OLD.state AND NEW.state IN ('submitted', 'delivered', 'failed')
 AND EXISTS (SELECT 1 FROM api_webhooks WHERE enabled = 1 AND instr(events,
     ',message.' || CASE NEW.state WHEN 'submitted' THEN 'sent' ELSE NEW.state END || ','))
BEGIN
    INSERT INTO api_events (type, subject, at, data) VALUES (
        'message.' || CASE NEW.state WHEN 'submitted' THEN 'sent' ELSE NEW.state END,
        NEW.id,
        coalesce(CASE NEW.state WHEN 'submitted' THEN NEW.submitted_at
                 WHEN 'delivered' THEN NEW.delivered_at ELSE NEW.failed_at END,
                 (SELECT at FROM api_now)),
        json_object('reason', NEW.reason, 'attempts', NEW.attempts, 'modem', NEW.modem));
END;

CREATE TRIGGER api_event_reply AFTER INSERT ON inbound_messages
WHEN EXISTS (SELECT 1 FROM api_webhooks WHERE enabled = 1
             AND instr(events, ',reply.received,'))
BEGIN
    INSERT INTO api_events (type, subject, at) VALUES ('reply.received', NEW.id,
                                                       NEW.received_at);
END;

CREATE TRIGGER api_event_broadcast AFTER UPDATE OF state ON broadcasts
WHEN NEW.state IN ('done', 'cancelled') AND OLD.state NOT IN ('done', 'cancelled')
 AND EXISTS (SELECT 1 FROM api_webhooks WHERE enabled = 1
             AND instr(events, ',broadcast.finished,'))
BEGIN
    INSERT INTO api_events (type, subject, at, data) VALUES ('broadcast.finished', NEW.id,
        coalesce(NEW.finished_at, (SELECT at FROM api_now)), json_object('state', NEW.state));
END;

CREATE TRIGGER api_event_modem_new AFTER INSERT ON modem_status
WHEN EXISTS (SELECT 1 FROM api_webhooks WHERE enabled = 1 AND instr(events, ',modem.state,'))
BEGIN
    INSERT INTO api_events (type, subject, at, data) VALUES ('modem.state', NEW.name,
        NEW.checked_at, json_object('ready', NEW.ready, 'reason', NEW.reason,
                                    'detail', NEW.detail, 'operator', NEW.operator,
                                    'signal_bars', NEW.signal_bars));
END;

CREATE TRIGGER api_event_modem AFTER UPDATE ON modem_status
WHEN (NEW.ready IS NOT OLD.ready OR NEW.reason IS NOT OLD.reason)
 AND EXISTS (SELECT 1 FROM api_webhooks WHERE enabled = 1 AND instr(events, ',modem.state,'))
BEGIN
    INSERT INTO api_events (type, subject, at, data) VALUES ('modem.state', NEW.name,
        NEW.checked_at, json_object('ready', NEW.ready, 'reason', NEW.reason,
                                    'detail', NEW.detail, 'operator', NEW.operator,
                                    'signal_bars', NEW.signal_bars));
END;
"""

SCHEMA_API_0009 = r"""
-- Personal reminders (appointments, blood tests): a kind says what is sent and when.
-- Timing: days_before + send_time ('HH:MM', the clinic's time), or hours_before. Nothing is
-- sent in the quiet hours ('HH:MM'-'HH:MM', may wrap midnight) unless the kind is an
-- emergency, nor later than latest_minutes before the appointment.
CREATE TABLE reminder_kinds (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    template_id     INTEGER REFERENCES templates(id),
    text            TEXT,                      -- when no template
    changed_text    TEXT,                      -- sent instead when a sent appointment moved
    days_before     INTEGER,
    send_time       TEXT,
    hours_before    REAL,
    quiet_start     TEXT,
    quiet_end       TEXT,
    latest_minutes  INTEGER NOT NULL DEFAULT 60,
    choices         TEXT,                      -- JSON list, e.g. ["はい", "変更したい"]
    priority        TEXT NOT NULL DEFAULT 'routine' CHECK (priority IN ('emergency', 'routine')),
    enabled         INTEGER NOT NULL DEFAULT 1,
    created_by      TEXT NOT NULL,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL
);

-- One appointment of one patient. state: pending → queued (its one-person broadcast made)
-- → sent | failed; withdrawn (cancelled), missed (could not go in time: reported, never
-- sent late). A change of a sent appointment makes it pending again with announced_at, the
-- time the patient was told. revision counts the sends made, for the broadcast's request key.
CREATE TABLE reminders (
    id              INTEGER PRIMARY KEY,
    external_id     TEXT UNIQUE,               -- the clinic system's appointment ID
    contact_id      INTEGER NOT NULL REFERENCES contacts(id),
    kind_id         INTEGER NOT NULL REFERENCES reminder_kinds(id),
    appointment_at  REAL NOT NULL,
    announced_at    REAL,
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'queued', 'sent', 'failed', 'withdrawn', 'missed')),
    revision        INTEGER NOT NULL DEFAULT 0,
    broadcast_id    INTEGER REFERENCES broadcasts(id),
    reason          TEXT,                      -- why missed, failed, withdrawn, or still waiting
    source          TEXT NOT NULL,             -- 'csv' or 'api'
    created_by      TEXT NOT NULL,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL,
    sent_at         REAL
);
CREATE INDEX reminders_state ON reminders(state, appointment_at);
CREATE INDEX reminders_contact ON reminders(contact_id, kind_id, appointment_at);
CREATE INDEX reminders_broadcast ON reminders(broadcast_id);
"""

SCHEMA_PHONE_COMMANDS = r"""
-- Staff phones that may command the appliance by SMS (appliance.staff_phones). The command
-- PIN is hashed like a password; three wrong PINs disable the number until an admin
-- enables it again. on_call: it is asked to confirm the draft after an ETWS warning.
CREATE TABLE staff_phones (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users(id),
    phone           TEXT NOT NULL UNIQUE,      -- E.164
    pin_hash        TEXT NOT NULL,
    on_call         INTEGER NOT NULL DEFAULT 1,
    wrong_pins      INTEGER NOT NULL DEFAULT 0,  -- in a row
    disabled_at     REAL,
    created_by      TEXT NOT NULL,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL
);

-- Every SMS taken as a command (appliance.sms_commands), from a staff phone or not: what
-- the dashboard shows and what the rate limit counts. text has the PIN masked. digest
-- (the sender, the text and its SMSC time) makes a command read twice from the modem's
-- store (a crash before it was deleted) handled once.
CREATE TABLE sms_commands (
    id              INTEGER PRIMARY KEY,
    phone           TEXT NOT NULL,
    staff_phone_id  INTEGER REFERENCES staff_phones(id),
    username        TEXT,
    command         TEXT NOT NULL,             -- status, send, cancel, help, code
    text            TEXT NOT NULL,
    digest          TEXT NOT NULL UNIQUE,
    received_at     REAL NOT NULL,
    outcome         TEXT NOT NULL CHECK (outcome IN ('done', 'refused')),
    reason          TEXT,                      -- why refused (a key of appliance.wording)
    broadcast_id    INTEGER,                   -- queued or cancelled by it
    reply_id        INTEGER                    -- the answer's broadcast
);
CREATE INDEX sms_commands_phone ON sms_commands(phone, received_at);
CREATE INDEX sms_commands_received ON sms_commands(received_at);

-- A broadcast waiting for a staff phone to answer its one-time code: a 送信 command's, or
-- the draft prompted after an ETWS warning. args: what to plan again once confirmed.
-- request_key is the broadcast's: confirmed twice, or by two phones, it is sent once.
CREATE TABLE sms_confirmations (
    id              INTEGER PRIMARY KEY,
    staff_phone_id  INTEGER NOT NULL REFERENCES staff_phones(id),
    kind            TEXT NOT NULL CHECK (kind IN ('send', 'warning')),
    code            TEXT NOT NULL,
    args            TEXT NOT NULL,             -- JSON
    request_key     TEXT NOT NULL,
    created_at      REAL NOT NULL,
    expires_at      REAL NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'confirmed', 'expired', 'superseded', 'failed')),
    wrong_codes     INTEGER NOT NULL DEFAULT 0,
    answered_at     REAL,
    broadcast_id    INTEGER REFERENCES broadcasts(id),
    event_id        INTEGER                    -- warning_events.id for kind 'warning'
);
CREATE INDEX sms_confirmations_phone ON sms_confirmations(staff_phone_id, state);

-- Where a broadcast came from when not from staff's own compose: 'sms_reply' (an answer to
-- a command; sent ahead of everything, appliance.outbox.RANK_FIRST).
ALTER TABLE broadcasts ADD COLUMN origin TEXT;
"""

SCHEMA_PHONE_WARNINGS = r"""
-- ETWS warnings the modems heard (appliance.etws). One row per message (serial number
-- and id); the network repeats a warning: repeats counts those.
CREATE TABLE warnings (
    id              INTEGER PRIMARY KEY,
    event_id        INTEGER REFERENCES warning_events(id),  -- NULL: a type not acted on
    modem           TEXT NOT NULL,
    message_id      INTEGER NOT NULL,
    serial          INTEGER NOT NULL,
    warning_type    TEXT NOT NULL,             -- earthquake, tsunami, earthquake_tsunami, test, other
    text            TEXT NOT NULL,
    complete        INTEGER NOT NULL DEFAULT 1,   -- 0: a page never came
    received_at     REAL NOT NULL,
    repeats         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX warnings_received ON warnings(received_at);

-- Warnings of the types staff act on, within [etws] event_hours of the first: one event,
-- one banner, one prompt to the on-call staff phones (at prompt_at), one broadcast.
-- Whether each modem took the ETWS subscription: subscribed, refused, off (the dashboard).
ALTER TABLE modem_status ADD COLUMN cell_broadcasts TEXT;

CREATE TABLE warning_events (
    id              INTEGER PRIMARY KEY,
    warning_type    TEXT NOT NULL,             -- of the latest warning
    first_at        REAL NOT NULL,
    last_at         REAL NOT NULL,
    prompt_at       REAL NOT NULL,
    prompted_at     REAL,
    prompt_detail   TEXT,                      -- who was asked, or why nobody could be
    auto_send       INTEGER NOT NULL DEFAULT 0,  -- [etws] auto_send took this type
    broadcast_id    INTEGER REFERENCES broadcasts(id),
    closed_at       REAL,                      -- staff: nothing (more) to send
    closed_by       TEXT
);
"""

SCHEMA_PHONE_RING = r"""
-- Ring the patients who did not read (appliance.ringing): a broadcast says whether its
-- silent recipients get one short call; a contact may say never.
ALTER TABLE broadcasts ADD COLUMN ring_if_no_answer INTEGER NOT NULL DEFAULT 0;
ALTER TABLE contacts ADD COLUMN no_ring INTEGER NOT NULL DEFAULT 0;

-- One call per number per broadcast (its root: a resend is the same broadcast), written
-- 'ringing' before the ATD and 'done' with the outcome after: a crash mid-call leaves it
-- 'unknown', never rung twice.
CREATE TABLE ring_calls (
    id              INTEGER PRIMARY KEY,
    recipient_id    INTEGER NOT NULL REFERENCES recipients(id),
    broadcast_id    INTEGER NOT NULL REFERENCES broadcasts(id),
    phone           TEXT NOT NULL,
    modem           TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('ringing', 'done')),
    outcome         TEXT CHECK (outcome IN ('rang', 'busy', 'no_carrier', 'answered', 'unknown')),
    started_at      REAL NOT NULL,
    ended_at        REAL,
    detail          TEXT,
    UNIQUE (broadcast_id, phone)
);
CREATE INDEX ring_calls_recipient ON ring_calls(recipient_id);
"""
