"""The AT session: one command at a time over an injected serial port, with a deadline.

The session reads the port only in the thread that uses it — while a command waits for its
answer, or in `poll()` when nothing is in flight — so the modem's answer reaches the
command without a hand-over between threads (each cost about a tenth of a millisecond
between two sends). Final result codes end the command in flight; unsolicited result codes
go to `urcs`, even when they arrive in the middle of a command's response. The port is
injected, never opened here, so tests and the daemon decide what it is.

Nothing is lost while nobody reads: what the modem says waits in the kernel's buffer (a
tty holds kilobytes; a USB modem is throttled beyond that) until the next command or poll.
"""
from __future__ import annotations

import collections
import os
import queue
import select
import threading
import time
from collections.abc import Callable

import serial

from .errors import ATTimeout, CommandError, ModemError, PortGone, error_from

__all__ = ["ATSession", "ATTimeout", "CommandError", "PortGone"]

PROMPT = object()  # the "> " of AT+CMGS, which has no line ending
READ_SIZE = 4096
# Always unsolicited, whatever command is in flight.
URC_PREFIXES = ("+CMTI:", "+CDSI:", "RING", "+QIND:", "+CUSD:", "+CMT:", "+CDS:", "+CBM:",
                "NO CARRIER", "BUSY", "NO ANSWER", "NO DIALTONE",
                "RDY",  # a Quectel or SIMCom announcing it has (re)started
                "SMS DONE", "PB DONE",  # SIMCom: SMS and phonebook ready after a boot
                "+QUSIM:", "+CTZV:", "+CTZE:", "+CRING:")
# Unsolicited unless the command in flight asked for them (AT+CREG? answers +CREG: too).
QUERY_PREFIXES = ("+CREG:", "+CGREG:", "+CEREG:", "+CPIN:", "+CFUN:", "+CLIP:")
TWO_LINE = ("+CMT:", "+CDS:", "+CBM:")  # header, then the PDU on the next line
# How a voice call ends (V.250 6.3.1): unsolicited while a call goes on, but also the final
# result of ATD itself on a modem that waits for the call to be set up.
CALL_RESULTS = ("BUSY", "NO CARRIER", "NO ANSWER", "NO DIALTONE")


def _is_final(line: str) -> bool:
    return line == "OK" or line == "ERROR" or line.startswith(("+CMS ERROR:", "+CME ERROR:"))


def _fileno(port: serial.SerialBase) -> int | None:
    """The port's file descriptor, when it has one (a device, a pty); None for URL ports."""
    try:
        fd = port.fileno()
    except (AttributeError, OSError, ValueError, serial.SerialException):
        return None
    return fd if isinstance(fd, int) and fd >= 0 else None


class ATSession:
    def __init__(self, port: serial.SerialBase) -> None:
        self._port = port
        self._fd = _fileno(port)
        self._responses: collections.deque = collections.deque()  # lines and PROMPT
        self.urcs: queue.Queue[str] = queue.Queue()
        # One command, and so one reader, at a time. Re-entrant: the work a caller does
        # while the modem sends (command_with_prompt's *meanwhile*) may poll for URCs.
        self._lock = threading.RLock()
        self._in_flight = ""
        self._buffer = b""
        self._pending_two_line: str | None = None
        self.gone = threading.Event()  # set when the port vanished; every command fails then

    # -- reading -------------------------------------------------------------------------
    def poll(self, timeout: float, *, wake: int | None = None) -> None:
        """Read what the modem said unprompted (URCs go to `urcs`), waiting up to *timeout*
        seconds for something to arrive, or until *wake* (a file descriptor) is readable;
        PortGone when the port vanished."""
        with self._lock:
            if self._read(timeout, wake=wake):
                self._read_arrived()

    def _read_arrived(self) -> None:
        """Read everything that has arrived, without waiting for more."""
        more = True
        while more:
            more = self._read(0.0)

    def _read(self, timeout: float, *, wake: int | None = None) -> bool:
        """One read of what has arrived, waiting up to *timeout*; True when bytes came."""
        if self.gone.is_set():
            raise PortGone("port vanished (USB unplugged?)")
        try:
            if self._fd is not None:
                watched = [self._fd] if wake is None else [self._fd, wake]
                if self._fd not in select.select(watched, [], [], max(0.0, timeout))[0]:
                    return False
                try:
                    chunk = os.read(self._fd, READ_SIZE)
                except BlockingIOError:
                    return False
                if not chunk:  # readable yet empty: the other end hung up
                    raise OSError("end of file")
            else:
                # A pyserial URL port: its own (short) timeout bounds the wait.
                if timeout <= 0 and not self._port.in_waiting:
                    return False
                chunk = self._port.read(self._port.in_waiting or 1)
                if not chunk:
                    return False
        except (serial.SerialException, OSError, ValueError, TypeError) as exc:
            # TypeError/ValueError: pyserial, or select, on a port closed under us.
            self.gone.set()
            raise PortGone(f"port vanished (USB unplugged?): {exc}") from exc
        self._feed(chunk)
        return True

    def _feed(self, chunk: bytes) -> None:
        """Split what the modem said into lines: URCs to `urcs`, the rest to responses."""
        buffer = self._buffer + chunk
        while b"\n" in buffer:
            raw, buffer = buffer.split(b"\n", 1)
            line = raw.decode("ascii", "replace").strip()
            if not line:
                continue
            if line == ">":
                # The prompt, with a URC right behind it in the same read ("> \r\n+CDS:").
                self._responses.append(PROMPT)
                continue
            if self._pending_two_line is not None:
                self.urcs.put(f"{self._pending_two_line}\n{line}")
                self._pending_two_line = None
            elif line.startswith(TWO_LINE):
                self._pending_two_line = line
            elif self._is_urc(line):
                self.urcs.put(line)
            else:
                self._responses.append(line)
                if _is_final(line):
                    # Answered: what follows in the same read (a +CREG: notice) is not.
                    self._in_flight = ""
        # The prompt has no line ending; it may come in the same read as lines before it
        # (a status report just ahead of it), so look after splitting them off.
        if buffer.strip(b"\r") == b"> ":
            buffer = b""
            self._responses.append(PROMPT)
        self._buffer = buffer

    def _is_urc(self, line: str) -> bool:
        if line in CALL_RESULTS and self._in_flight.upper().startswith("ATD"):
            return False  # the dial's own answer
        if line.startswith(URC_PREFIXES):
            return True
        if line.startswith(QUERY_PREFIXES):
            asked = self._in_flight.upper()
            return not asked.startswith("AT" + line.split(":", 1)[0])
        return False

    # -- commands ------------------------------------------------------------------------
    def command(self, cmd: str, *, timeout: float = 5.0) -> list[str]:
        """Send *cmd*; return the response lines without echo and final code."""
        with self._lock:
            self._drain()
            self._in_flight = cmd
            try:
                self._send(cmd.encode("ascii") + b"\r")
                return self._collect(cmd, timeout)
            finally:
                # Done: a later +CREG: (or NO CARRIER after a dial) is unsolicited again.
                self._in_flight = ""

    def command_with_prompt(self, cmd: str, payload: str, *, timeout: float = 30.0,
                            meanwhile: Callable[[], None] | None = None) -> list[str]:
        """For AT+CMGS: wait for "> ", send payload + Ctrl-Z; ESC when no prompt comes.

        *meanwhile* runs once the payload is on its way, while the modem is busy with it
        (the caller's bookkeeping need not wait for the network); the answer is collected
        even when it raises, and its error is raised after.
        """
        with self._lock:
            try:
                return self._prompted(cmd, payload, timeout, meanwhile)
            finally:
                self._in_flight = ""

    def _prompted(self, cmd: str, payload: str, timeout: float,
                  meanwhile: Callable[[], None] | None) -> list[str]:
        try:
            self._drain()
            self._in_flight = cmd
            self._send(cmd.encode("ascii") + b"\r")
            deadline = time.monotonic() + min(timeout, 5.0)
            while True:
                item = self._next(deadline, cmd)
                if item is PROMPT:
                    break
                if isinstance(item, str) and _is_final(item):
                    raise error_from(item)
        except ModemError as exc:
            exc.handed_over = False  # no payload written: nothing can have been sent
            raise
        self._send(payload.encode("ascii") + b"\x1a")
        failure: Exception | None = None
        if meanwhile is not None:
            # Whoever takes the PDU in — the kernel's tty worker, a simulated modem on
            # this machine — was just woken, usually onto this CPU, and would wait
            # behind the bookkeeping (a quarter of a millisecond measured): let it go
            # first, as the modem's answer is what the next send waits for.
            os.sched_yield()
            try:
                meanwhile()
            except Exception as exc:  # raised below, once the modem's answer is read
                failure = exc
        lines = self._collect(cmd, timeout, echo=payload)
        if failure is not None:
            raise failure
        return lines

    def resync(self, *, timeout: float = 10.0) -> None:
        """Take the modem back from whatever the last program left it in.

        A daemon killed between AT+CMGS and its PDU leaves the modem at the "> " prompt,
        where every later command would be read as PDU text and never answered; ESC ends
        the prompt without sending (in command mode it is ignored, V.250 5.2.1). A daemon
        killed while the modem was sending leaves an answer on its way, which may come
        seconds later. Waiting for a quiet moment cannot tell "nothing more is coming" from
        "still sending", so we ask for a marker only our own command can produce: echo on,
        then a bare "AT", whose echo the modem writes only when it reads it — after any
        answer still owed to the dead program. Everything before that echo's OK is dropped.
        """
        with self._lock:
            self._send(b"\x1bATE1\rAT\r")
            deadline = time.monotonic() + timeout
            echoed = False
            while True:
                item = self._next(deadline, "AT (resync)")
                if item == "AT":
                    echoed = True
                elif echoed and item == "OK":
                    return

    def _send(self, data: bytes) -> None:
        if self.gone.is_set():
            raise PortGone("port vanished (USB unplugged?)")
        try:
            self._port.write(data)
        except (serial.SerialException, OSError) as exc:
            self.gone.set()
            raise PortGone(f"port vanished: {exc}") from exc

    def _next(self, deadline: float, cmd: str):
        """The next response line (or PROMPT), reading the port until *deadline*."""
        while not self._responses:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if cmd.upper().startswith("AT+CMGS"):
                    self._send(b"\x1b")  # never leave the modem waiting for a PDU
                raise ATTimeout(f"no answer to {cmd} in time")
            self._read(remaining)
        return self._responses.popleft()

    def _collect(self, cmd: str, timeout: float, echo: str | None = None) -> list[str]:
        deadline = time.monotonic() + timeout
        lines: list[str] = []
        while True:
            item = self._next(deadline, cmd)
            if item is PROMPT:
                continue
            if item in (cmd, echo) or (echo and item.endswith(echo)):
                continue  # the modem echoing what we typed
            if item == "OK":
                return lines
            if item in CALL_RESULTS and cmd.upper().startswith("ATD"):
                return [item]  # the call ended before it began (busy, no network…)
            if _is_final(item):
                raise error_from(item)
            lines.append(item)

    def _drain(self) -> None:
        # A late answer to a command that timed out must not be taken as this one's: read
        # what has arrived (its URCs are kept) and drop the responses nobody asked for.
        self._read_arrived()
        self._responses.clear()
