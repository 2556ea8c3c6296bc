"""The device API: what a modem is and does, as plain methods over one AT session.

No I/O hides in properties; every method is one or a few AT commands and raises the typed
errors of modem.errors. Events the modem reports unprompted (replies, delivery reports,
registration changes) come out of `next_event()` already parsed, so the caller (the daemon's
worker) never sees AT syntax.
"""
from __future__ import annotations

import collections
import queue
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from . import cbs, pdu, profiles
from .at import CALL_RESULTS, ATSession
from .errors import CMS_INVALID_INDEX, CmeError, CmsError, CommandError, PortGone
from .transport import open_port

# How long an AT+CMGS may wait for the network's answer. Quectel's EC25/EC21 AT manual gives
# AT+CMGS and AT+QCMGS a maximum response time of 120 s, "determined by network": on the
# day of an earthquake a congested network takes that long, and giving up sooner would mark
# a message that is on its way as uncertain (an emergency is then sent twice) and, at the
# second, reset a modem that was only waiting. Usually it answers in seconds.
SEND_TIMEOUT = 120.0

REGISTRATION_STATES = {0: "not_registered", 1: "registered_home", 2: "searching", 3: "denied",
                       4: "unknown", 5: "registered_roaming"}
SIM_STATES = {"READY": "ready", "SIM PIN": "pin_required", "SIM PUK": "puk_required"}


@dataclass(frozen=True)
class Identity:
    manufacturer: str
    model: str
    revision: str
    imei: str
    imsi: str | None      # None while the SIM is missing or locked
    iccid: str | None


@dataclass(frozen=True)
class Registration:
    """Circuit-switched (+CREG), packet (+CGREG) and LTE EPS (+CEREG) registration.

    An LTE-only network registers a modem on EPS while +CREG still says not registered, so
    "registered" means any of them says home or roaming (SMS over IMS/SGs works then).
    """
    cs: str
    ps: str
    eps: str

    @property
    def registered(self) -> bool:
        return any(s in ("registered_home", "registered_roaming") for s in (self.cs, self.ps, self.eps))

    @property
    def state(self) -> str:
        """The best of the three, for people: registered_home, …, searching, not_registered."""
        order = ["registered_home", "registered_roaming", "searching", "denied",
                 "not_registered", "unknown"]
        return min((self.cs, self.ps, self.eps), key=order.index)


@dataclass(frozen=True)
class Signal:
    csq: int | None       # raw AT+CSQ <rssi>; None when the modem says 99 (unknown)
    dbm: int | None
    bars: int             # 0-4, for the dashboard and the LEDs

    @classmethod
    def from_csq(cls, rssi: int) -> Signal:
        if rssi == 99 or not 0 <= rssi <= 31:
            return cls(None, None, 0)
        dbm = -113 + 2 * rssi  # TS 27.007 8.5: 0 → -113 dBm or less, 31 → -51 or more
        bars = 4 if dbm >= -75 else 3 if dbm >= -85 else 2 if dbm >= -95 else 1 if dbm >= -105 else 0
        return cls(rssi, dbm, bars)


@dataclass(frozen=True)
class Inbound:
    """A whole SMS that reached the SIM; `locations` are its parts in the modem's store
    (empty when routed directly with +CMT), to delete once it is safely saved."""
    sender: str
    text: str
    sent_at: datetime | None
    locations: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class StatusReport:
    mr: int
    recipient: str
    status: int
    outcome: str          # delivered | pending | failed
    discharge_at: datetime | None
    location: tuple[str, int] | None


@dataclass(frozen=True)
class StateChange:
    """The modem says, unasked, that its state changed: *kind* is 'registration' (+CREG,
    +CGREG, +CEREG; *value* the new state), 'sim' (+CPIN; *value* as sim_state() says it),
    'restarted' (RDY: it booted and has forgotten our settings) or 'ready' (a notice that
    SMS works again after a boot: +QIND: SMS DONE, SMS DONE…)."""
    kind: str
    value: str | None
    line: str


# What modems say when they have booted, and when SMS is usable after that: each family's
# own (modem.profiles), recognised whichever modem this is — they never mean anything else.
RESTARTED_NOTICES = tuple(sorted({n for p in profiles.PROFILES for n in p.restarted_notices}))
READY_NOTICES = tuple(sorted({n for p in profiles.PROFILES for n in p.ready_notices}))


# A cell broadcast (an ETWS warning), whole: modem.cbs.Broadcast.
CellBroadcast = cbs.Broadcast
CBS_PAGE_WAIT = 30.0   # seconds the pages of a warning wait for the one still missing


@dataclass(frozen=True)
class Call:
    """One call as AT+CLCC lists it (TS 27.007 7.18)."""
    id: int
    incoming: bool
    stat: int          # 0 active, 1 held, 2 dialing, 3 alerting, 4 incoming, 5 waiting
    number: str

    ACTIVE, DIALING, ALERTING = 0, 2, 3


@dataclass(frozen=True)
class Unsolicited:
    """Any other unsolicited line (+CREG: 2, RING, +QIND…), for the log."""
    line: str


_CSQ = re.compile(r"\+CSQ:\s*(\d+),")
_REG = re.compile(r"\+C(?:E|G)?REG:\s*(?:\d+,)?(\d+)")
_COPS = re.compile(r'\+COPS:\s*\d+,\d+,"([^"]*)"')
_CNUM = re.compile(r'\+CNUM:\s*"[^"]*","([^"]+)"')
_CMGS = re.compile(r"\+CMGS:\s*(\d+)")
# +QLTS: "2026/12/02,02:46:47+36,0" (UTC, then the zone in quarter hours, then DST) and
# +CCLK: "26/12/02,11:46:47+36" (local time and its zone).
_QLTS = re.compile(r'"(\d{4})/(\d\d)/(\d\d),(\d\d):(\d\d):(\d\d)([+-]\d+)')
_CCLK = re.compile(r'"(\d\d)/(\d\d)/(\d\d),(\d\d):(\d\d):(\d\d)([+-]\d+)"')
EARLIEST_NETWORK_TIME = datetime(2024, 1, 1, tzinfo=timezone.utc)  # before: never set
_STORED = re.compile(r'\+(CMTI|CDSI):\s*"(\w+)",(\d+)')
_CLCC = re.compile(r'\+CLCC:\s*(\d+),(\d),(\d)(?:,\d+,\d+,"([^"]*)")?')
_CSCB = re.compile(r'\+CSCB:\s*(\d),"([^"]*)"')


def cnmi_setting(request_status_reports: bool, cell_broadcasts: bool = True) -> str:
    """AT+CNMI's arguments: what the modem does with what it receives.

    mt=1: replies are stored, then announced (+CMTI); ds=2: delivery reports likewise
    (+CDSI). Both wait in the modem's storage until we have saved them and delete them, so
    neither is lost while the daemon is stopped, starting or killed. A report routed whole
    to the port (ds=1, +CDS) is acknowledged by the modem at once and gone if nobody reads
    it then. ds=0 when no report was asked for. bm=2: cell broadcasts (ETWS warnings) are
    routed to the port as +CBM, whole pages — a warning is news only while it is new.
    """
    return f"2,1,{2 if cell_broadcasts else 0},{2 if request_status_reports else 0},0"


def mids_cover(mids: str, first: int, last: int) -> bool:
    """Whether AT+CSCB's <mids> ("0,50,4352-4359") takes every id from *first* to *last*."""
    wanted = set(range(first, last + 1))
    for item in mids.split(","):
        low, _, high = item.strip().partition("-")
        if low.strip().isdigit():
            wanted -= set(range(int(low), int(high or low) + 1))
    return not wanted


def _state_change(line: str) -> StateChange | None:
    """The StateChange an unsolicited *line* announces, if any."""
    if line in RESTARTED_NOTICES:
        return StateChange("restarted", None, line)
    if line in READY_NOTICES:
        return StateChange("ready", None, line)
    if line.startswith(("+CREG:", "+CGREG:", "+CEREG:")):
        match = _REG.search(line)
        state = REGISTRATION_STATES.get(int(match.group(1)), "unknown") if match else "unknown"
        return StateChange("registration", state, line)
    if line.startswith("+CPIN:"):
        answer = line.split(":", 1)[1].strip()
        return StateChange("sim", SIM_STATES.get(answer, answer.lower().replace(" ", "_")), line)
    return None


class Modem:
    def __init__(self, session: ATSession, *, path: str | None = None) -> None:
        self.session = session
        self.path = path
        self._partial: dict[tuple[str, int, int], dict[int, tuple[pdu.Deliver, tuple]]] = {}
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        # Announcements of stored messages (+CMTI/+CDSI) seen while the modem was busy
        # sending: reading them takes a command, so they wait for the next chance.
        self._announced: collections.deque[str] = collections.deque()
        self._store: str | None = None  # the modem's current read/delete store (CPMS mem1)
        self.profile: profiles.Profile = profiles.GENERIC  # known once initialise() asked
        self._cnmi: str | None = None   # what initialise() set AT+CNMI to
        self._cbs = cbs.Reassembler()
        # ETWS: 'subscribed', 'refused' (with why in cell_broadcast_detail) or 'off'.
        self.cell_broadcasts = "off"
        self.cell_broadcast_detail = ""
        # How long a send waits for the network's answer (the daemon's [daemon] send_timeout).
        self.send_timeout = SEND_TIMEOUT

    @classmethod
    def open(cls, path: str, *, baudrate: int = 115200) -> Modem:
        """Open the port at *path*; PortGone when it is not there (yet)."""
        return cls(ATSession(open_port(path, baudrate=baudrate)), path=path)

    def reset(self, *, timeout: float = 5.0) -> None:
        """AT+CFUN=1,1: the modem restarts (its port may vanish and return). A hung modem may
        not answer; ATTimeout then."""
        self.session.command("AT+CFUN=1,1", timeout=timeout)

    def close(self) -> None:
        port = getattr(self.session, "_port", None)
        if port is not None:
            try:
                port.close()
            except OSError:
                pass  # the port is already gone (unplugged); nothing left to release

    def reopen(self) -> Modem:
        """A new Modem on the same path, after an unplug (PortGone until it is back)."""
        self.close()
        return Modem.open(self.path)

    # -- set-up --------------------------------------------------------------------------
    def initialise(self, *, pin: str | None = None, request_status_reports: bool = True,
                   cell_broadcasts: bool = True) -> Identity:
        """Bring a just-opened (or just-rebooted) modem into the state the sender needs;
        with *cell_broadcasts*, also subscribed to ETWS warnings (subscribe_warnings)."""
        self.session.resync()  # a killed daemon may have left it at the AT+CMGS prompt
        self.profile = self._choose_profile()
        for command in self.profile.init:  # the family's own first steps (its quirks)
            self.session.command(command, timeout=5)
        self.session.command("ATE0", timeout=3)  # echo is on after power-up; off is clearer
        self.session.command("AT+CMEE=1")       # numeric errors: we map codes to policies
        if self.sim_state() == "pin_required" and pin:
            self.enter_pin(pin)
        self.session.command("AT+CMGF=0")       # PDU mode: UCS2 and concatenation in our hands
        if self.sim_state() == "ready":
            # Service 0: the modem acknowledges to the network what it receives. Nothing is
            # routed to us whole (see CNMI below), so nothing waits for our +CNMA; a modem
            # left in service 1 by another program would hold every report until +CNMA
            # and, with none in time, turn routing off (TS 27.005 3.4.1).
            self.session.command("AT+CSMS=0")
            self._pending_from_store("SM")  # where a modem keeps replies by default
            self._use_store("ME")  # the modem's own store: larger than the SIM's
            self._set_cnmi(request_status_reports, cell_broadcasts)
            self._pending_from_store("ME")
            if cell_broadcasts:
                self.subscribe_warnings()
        self._report_state_changes()
        return self.identify()

    def _set_cnmi(self, request_status_reports: bool, cell_broadcasts: bool) -> None:
        """AT+CNMI, with cell broadcasts routed to us when the modem takes that; a modem that
        refuses bm=2 still announces replies and reports (they matter more)."""
        wanted = cnmi_setting(request_status_reports, cell_broadcasts)
        try:
            self.session.command(f"AT+CNMI={wanted}")
        except CommandError as exc:
            if not cell_broadcasts:
                raise
            self.cell_broadcasts, self.cell_broadcast_detail = "refused", f"AT+CNMI bm=2: {exc}"
            wanted = cnmi_setting(request_status_reports, False)
            self.session.command(f"AT+CNMI={wanted}")
        self._cnmi = wanted

    def subscribe_warnings(self) -> bool:
        """Subscribe to the ETWS message identifiers (AT+CSCB=0,"4352-4359"); whether the
        modem took it (`cell_broadcasts` says so, and why not). Whether the network then
        passes warnings to the AT port can only be seen by receiving one (4355, the test)."""
        if self._cnmi is not None and self._cnmi.split(",")[2] != "2":
            return False  # +CNMI would not route them to us: said by _set_cnmi
        try:
            self.session.command(f'AT+CSCB=0,"{cbs.SUBSCRIPTION}"')
        except CommandError as exc:
            self.cell_broadcasts, self.cell_broadcast_detail = "refused", f"AT+CSCB: {exc}"
            return False
        self.cell_broadcasts, self.cell_broadcast_detail = "subscribed", ""
        return True

    def warning_subscription(self) -> tuple[bool, str]:
        """(whether the modem says now that it routes ETWS warnings to us, what it says):
        AT+CSCB? covering 4352-4359 and AT+CNMI? with bm=2 — for `modem doctor`."""
        try:
            scb = self.session.command("AT+CSCB?")
            nmi = self.session.command("AT+CNMI?")
        except CommandError as exc:
            return False, f"the modem refuses AT+CSCB?: {exc}"
        match = _CSCB.search(scb[0]) if scb else None
        fields = nmi[0].split(":", 1)[-1].strip().split(",") if nmi else []
        said = f"{scb[0] if scb else '-'}; {nmi[0] if nmi else '-'}"
        if not match or match.group(1) != "0" or not mids_cover(
                match.group(2), cbs.ETWS_FIRST, cbs.ETWS_LAST):
            return False, said
        return len(fields) > 2 and fields[2].strip() in ("2", "3"), said

    def _choose_profile(self) -> profiles.Profile:
        """The profile of the modem that answers AT+CGMI / AT+CGMM (generic if it will not)."""
        try:
            maker = self.session.command("AT+CGMI")
            model = self.session.command("AT+CGMM")
        except CommandError:
            return profiles.GENERIC
        return profiles.choose(maker[0] if maker else None, model[0] if model else None)

    def network_time(self) -> datetime | None:
        """The time the network gave the modem (NITZ), as an aware datetime; None when it has
        not given any (not registered yet, or a network that sends none)."""
        try:
            if self.profile.network_time == "qlts":
                lines = self.session.command("AT+QLTS=1")  # UTC, from the last NITZ
                match = _QLTS.search(lines[0]) if lines else None
                if not match:
                    return None
                y, mo, d, h, mi, sec, _zone = match.groups()
                moment = datetime(int(y), int(mo), int(d), int(h), int(mi), int(sec),
                                  tzinfo=timezone.utc)
            else:
                lines = self.session.command("AT+CCLK?")  # local, set from NITZ (+CTZU=1)
                match = _CCLK.search(lines[0]) if lines else None
                if not match:
                    return None
                y, mo, d, h, mi, sec, zone = match.groups()
                offset = timezone(timedelta(minutes=15 * int(zone)))
                moment = datetime(2000 + int(y), int(mo), int(d), int(h), int(mi), int(sec),
                                  tzinfo=offset)
        except (CommandError, ValueError):
            return None  # a modem without the command, or a date it cannot have meant
        return moment if moment >= EARLIEST_NETWORK_TIME else None

    def _report_state_changes(self) -> None:
        """Ask the modem to say when registration changes (+CREG/+CGREG/+CEREG: <stat>), so
        the sender resumes the moment the network is back rather than at its next poll."""
        for name in ("CREG", "CGREG", "CEREG"):
            try:
                self.session.command(f"AT+{name}=1")
            except CommandError:
                continue  # a 3G-only modem has no +CEREG; the poll still asks the others
        try:
            self.session.command("AT+CTZU=1")  # take the time and zone from the network
        except CommandError:
            pass  # a modem without +CTZU: network_time() then finds no time, and says so

    def settings_intact(self, *, request_status_reports: bool = True) -> bool:
        """Whether the modem still has our settings. A modem that rebooted on its own (a
        brown-out, a firmware watchdog) keeps its port but forgets them, and would then
        neither announce replies nor route delivery reports."""
        self._store = None  # a reboot also forgets the message store in use
        lines = self.session.command("AT+CNMI?")
        wanted = self._cnmi or cnmi_setting(request_status_reports)
        return bool(lines) and lines[0].split(":", 1)[-1].strip().startswith(wanted)

    def _pending_from_store(self, store: str) -> None:
        """Messages that arrived while we were not listening (or before a crash)."""
        self._use_store(store)
        for index, decoded in self.read_stored():
            self._accept_stored(decoded, (store, index))

    def _use_store(self, store: str) -> None:
        """Make *store* the one AT+CMGR/CMGL/CMGD work on; new messages always go to ME."""
        if self._store != store:
            self.session.command(f'AT+CPMS="{store}","ME","ME"')
            self._store = store

    # -- queries ---------------------------------------------------------------------------
    def identify(self) -> Identity:
        def one(cmd: str) -> str:
            return self.session.command(cmd)[0].strip()

        def optional(cmd: str) -> str | None:
            try:
                lines = self.session.command(cmd)
            except CommandError:
                return None  # no SIM, or a locked one: the modem refuses, which is normal
            return lines[0].split(":", 1)[-1].strip() if lines else None
        revision = one("AT+CGMR")
        if revision.startswith("+CGMR:"):  # SIMCom prefixes it
            revision = revision.split(":", 1)[1].strip()
        return Identity(one("AT+CGMI"), one("AT+CGMM"), revision, one("AT+CGSN"),
                        optional("AT+CIMI"),
                        optional(self.profile.iccid_command) or optional("AT+CCID"))

    def sim_state(self) -> str:
        """ready, pin_required, puk_required or not_inserted."""
        try:
            lines = self.session.command("AT+CPIN?")
        except CmeError as exc:
            if exc.code in (10, 13):  # not inserted, SIM failure
                return "not_inserted"
            if exc.code == 14:
                return "busy"
            raise
        answer = lines[0].split(":", 1)[1].strip() if lines else ""
        return SIM_STATES.get(answer, answer.lower().replace(" ", "_"))

    def enter_pin(self, pin: str) -> None:
        self.session.command(f'AT+CPIN="{pin}"')

    def registration(self) -> Registration:
        def stat(name: str) -> str:
            try:
                lines = self.session.command(f"AT+{name}?")
            except CommandError:
                return "unknown"  # a 3G modem has no +CEREG
            match = _REG.search(lines[0]) if lines else None
            return REGISTRATION_STATES.get(int(match.group(1)), "unknown") if match else "unknown"
        return Registration(stat("CREG"), stat("CGREG"), stat("CEREG"))

    def signal(self) -> Signal:
        lines = self.session.command("AT+CSQ")
        match = _CSQ.search(lines[0]) if lines else None
        return Signal.from_csq(int(match.group(1))) if match else Signal(None, None, 0)

    def operator(self) -> str | None:
        lines = self.session.command("AT+COPS?")
        match = _COPS.search(lines[0]) if lines else None
        return match.group(1) if match else None

    def own_number(self) -> str | None:
        try:
            lines = self.session.command("AT+CNUM")
        except CommandError:
            return None  # many SIMs do not store their own number
        match = _CNUM.search(lines[0]) if lines else None
        return match.group(1) if match else None

    # -- sending ---------------------------------------------------------------------------
    def send_pdu(self, submit: pdu.SubmitPdu, *,
                 meanwhile: Callable[[], None] | None = None) -> int:
        """Submit one part; returns its TP-MR (the key of its status report).

        *meanwhile* runs while the modem is sending (see ATSession.command_with_prompt).
        """
        lines = self.session.command_with_prompt(f"AT+CMGS={submit.tpdu_length}", submit.hex,
                                                 timeout=self.send_timeout,
                                                 meanwhile=meanwhile)
        for line in lines:
            match = _CMGS.search(line)
            if match:
                return int(match.group(1))
        raise CommandError(f"AT+CMGS answered OK without +CMGS: {lines!r}")

    def send_text(self, number: str, text: str, *, reference: int = 0,
                  request_status_report: bool = True) -> list[int]:
        """Every part of *text* to *number*; MessageTooLong/EmptyMessage before any is sent."""
        parts = pdu.encode_submit(number, text, reference=reference,
                                  request_status_report=request_status_report)
        return [self.send_pdu(part) for part in parts]

    # -- voice calls ------------------------------------------------------------------------
    def dial(self, number: str, *, timeout: float = 15.0) -> str | None:
        """Call *number* (a voice call: ATD<number>;). None while the call goes on (follow it
        with calls()); the call's end when the modem says it at once (BUSY, NO CARRIER…)."""
        try:
            self.session.command("AT+CVHU=0")  # ATH ends a voice call (Quectel's default)
        except CommandError:
            pass  # a modem without +CVHU hangs up voice calls with ATH anyway
        lines = self.session.command(f"ATD{number};", timeout=timeout)
        return lines[0] if lines and lines[0] in CALL_RESULTS else None

    def calls(self) -> list[Call]:
        """The calls going on now (AT+CLCC)."""
        out = []
        for line in self.session.command("AT+CLCC"):
            match = _CLCC.match(line)
            if match:
                out.append(Call(int(match.group(1)), match.group(2) == "1",
                                int(match.group(3)), match.group(4) or ""))
        return out

    def hang_up(self) -> None:
        """End every call (ATH)."""
        self.session.command("ATH")

    def call_results(self, timeout: float = 0.0) -> list[str]:
        """How calls ended, as the modem said it unasked (NO CARRIER, BUSY…), reading the
        port up to *timeout*; every other notice is kept for next_event()."""
        self.session.poll(timeout)
        found: list[str] = []
        while True:
            try:
                line = self.session.urcs.get_nowait()
            except queue.Empty:
                return found
            if line in CALL_RESULTS:
                found.append(line)
            elif _STORED.match(line):
                self._announced.append(line)  # read between two sends, as during a send
            else:
                self._parse_urc(line)

    # -- storage ---------------------------------------------------------------------------
    def read_stored(self) -> list[tuple[int, pdu.Deliver | pdu.StatusReport | pdu.Submit]]:
        """Every message in the current store (AT+CMGL=4), decoded, lowest index first."""
        lines = self.session.command("AT+CMGL=4", timeout=15)
        out = []
        for header, body in zip(lines[::2], lines[1::2]):
            index = int(header.split(":", 1)[1].split(",", 1)[0])
            try:
                out.append((index, pdu.decode(body)))
            except pdu.PduError:
                continue  # a PDU we cannot read is left in the store for a person to see
        return out

    def delete_stored(self, index: int, store: str = "ME") -> None:
        self._use_store(store)
        self.session.command(f"AT+CMGD={index}")

    # -- events ----------------------------------------------------------------------------
    def next_event(self, timeout: float, *, read_stored: bool = True, wake: int | None = None
                   ) -> Inbound | StatusReport | CellBroadcast | StateChange | Unsolicited | None:
        """The next parsed event, waiting up to *timeout* seconds; None when there is none.

        Reads stored messages announced by +CMTI/+CDSI (so call it from the thread that
        sends: the session does one command at a time). With read_stored=False — while the
        modem is busy with a send, when no command can be given — those announcements are
        kept for a later call and only what came whole in the URC (+CDS, +CMT) is returned.
        *wake*: a file descriptor that ends the wait early when readable (the caller's
        "there is work" signal); it is not read here.
        """
        try:
            return self._events.get_nowait()
        except queue.Empty:
            pass
        for partial in self._cbs.stale(time.monotonic(), CBS_PAGE_WAIT):
            self._events.put(partial)  # a page was lost: the warning is still worth telling
        if self.session.gone.is_set():
            raise PortGone(f"{self.path or 'the port'} vanished (USB unplugged?)")
        if read_stored and len(self._announced) > 1:
            self._read_announced()
            try:
                return self._events.get_nowait()
            except queue.Empty:
                return None  # parts of longer messages; the rest will follow
        if read_stored and self._announced:
            line = self._announced.popleft()
        else:
            try:
                line = self._next_urc(timeout, wake=wake)
                while not read_stored and _STORED.match(line):
                    self._announced.append(line)
                    line = self._next_urc(0.0)
            except queue.Empty:
                return None
        self._parse_urc(line)
        try:
            return self._events.get_nowait()
        except queue.Empty:
            return None  # a part of a longer message; the rest will follow

    def _next_urc(self, timeout: float, *, wake: int | None = None) -> str:
        """The next unsolicited line, reading the port up to *timeout*; queue.Empty if none."""
        try:
            return self.session.urcs.get_nowait()
        except queue.Empty:
            self.session.poll(timeout, wake=wake)
            return self.session.urcs.get_nowait()

    @property
    def has_announced(self) -> bool:
        """Whether stored messages were announced that next_event() has not read yet."""
        return bool(self._announced)

    @property
    def announced(self) -> int:
        """How many stored messages were announced that next_event() has not read yet."""
        return len(self._announced)

    def _parse_urc(self, line: str) -> None:
        if line.startswith("+CBM:") and "\n" in line:
            try:
                page = cbs.decode_page(line.split("\n", 1)[1])
            except cbs.CbsError:
                self._events.put(Unsolicited(line))
                return
            whole = self._cbs.add(page, time.monotonic())
            if whole is not None:
                self._events.put(whole)
            return
        if line.startswith(("+CMT:", "+CDS:")) and "\n" in line:
            body = line.split("\n", 1)[1].strip()
            try:
                decoded = pdu.decode(body)
            except pdu.PduError:
                self._events.put(Unsolicited(line))
                return
            self._accept_stored(decoded, None)
            return
        stored = _STORED.match(line)
        if stored:
            store, index = stored.group(2), int(stored.group(3))
            self._use_store(store)
            try:
                lines = self.session.command(f"AT+CMGR={index}")
            except CmsError as exc:
                if exc.code != CMS_INVALID_INDEX:
                    raise
                lines = []   # deleted meanwhile: nothing there (some modems just say OK)
            if len(lines) >= 2:
                try:
                    self._accept_stored(pdu.decode(lines[1]), (store, index))
                    return
                except pdu.PduError:
                    pass
            self._events.put(Unsolicited(line))
            return
        self._events.put(_state_change(line) or Unsolicited(line))

    def _read_announced(self) -> None:
        """Every stored message announced so far, read with one AT+CMGL=4 per store instead
        of an AT+CMGR each: each command is a pause between two sends, tens of milliseconds
        on a real modem, and a busy modem announces a report for every part it sent.

        Only the announced indexes are taken from the listing: a message stored after the
        announcements were read is taken when its own announcement is (the listing marks
        it read, which changes nothing for AT+CMGR). An announced index the listing lacks
        (deleted meanwhile, or a PDU we cannot decode) is told as the notice itself, as an
        empty or undecodable AT+CMGR is."""
        wanted: dict[str, dict[int, str]] = {}
        for line in self._announced:
            stored = _STORED.match(line)
            wanted.setdefault(stored.group(2), {}).setdefault(int(stored.group(3)), line)
        for store, lines in wanted.items():
            self._use_store(store)
            listed = dict(self.read_stored())
            # Forgotten once listed (a failed listing leaves them announced).
            self._announced = collections.deque(
                a for a in self._announced if _STORED.match(a).group(2) != store)
            for index, line in lines.items():   # in the order they were announced
                decoded = listed.get(index)
                if decoded is None:
                    self._events.put(Unsolicited(line))
                else:
                    self._accept_stored(decoded, (store, index))

    def _accept_stored(self, decoded, location: tuple[str, int] | None) -> None:
        if isinstance(decoded, pdu.StatusReport):
            self._events.put(StatusReport(decoded.mr, decoded.recipient, decoded.status,
                                          decoded.outcome, decoded.discharge_at, location))
        elif isinstance(decoded, pdu.Deliver):
            self._add_part(decoded, location)

    def _add_part(self, deliver: pdu.Deliver, location: tuple[str, int] | None) -> None:
        if deliver.concat is None:
            self._events.put(Inbound(deliver.sender, deliver.text, deliver.sent_at,
                                     (location,) if location else ()))
            return
        key = (deliver.sender, deliver.concat.reference, deliver.concat.total)
        parts = self._partial.setdefault(key, {})
        parts[deliver.concat.seq] = (deliver, location)
        if len(parts) < deliver.concat.total:
            return
        del self._partial[key]
        ordered = [parts[seq] for seq in sorted(parts)]
        text = "".join(d.text for d, _ in ordered)
        self._events.put(Inbound(deliver.sender, text, ordered[0][0].sent_at,
                                 tuple(loc for _, loc in ordered if loc)))
