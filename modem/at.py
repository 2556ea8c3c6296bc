"""The AT session: one command at a time over an injected serial port, with a deadline.

One reader thread splits what the modem says into lines (pyserial's LineReader pattern).
Final result codes end the command in flight; unsolicited result codes go to `urcs`, even
when they arrive in the middle of a command's response. The port is injected, never
opened here, so tests and the daemon decide what it is.
"""
from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable

import serial

from .errors import ATTimeout, CommandError, PortGone, error_from

__all__ = ["ATSession", "ATTimeout", "CommandError", "PortGone"]

PROMPT = object()  # the "> " of AT+CMGS, which has no line ending
GONE = object()
# Always unsolicited, whatever command is in flight.
URC_PREFIXES = ("+CMTI:", "+CDSI:", "RING", "+QIND:", "+CUSD:", "+CMT:", "+CDS:", "NO CARRIER",
                "RDY")  # RDY: a Quectel announcing it has (re)started
# Unsolicited unless the command in flight asked for them (AT+CREG? answers +CREG: too).
QUERY_PREFIXES = ("+CREG:", "+CGREG:", "+CEREG:", "+CPIN:")
TWO_LINE = ("+CMT:", "+CDS:")  # header, then the PDU on the next line


def _is_final(line: str) -> bool:
    return line == "OK" or line == "ERROR" or line.startswith(("+CMS ERROR:", "+CME ERROR:"))


class ATSession:
    def __init__(self, port: serial.SerialBase) -> None:
        self._port = port
        self._lines: queue.Queue = queue.Queue()
        self.urcs: queue.Queue[str] = queue.Queue()
        self._lock = threading.Lock()
        self._in_flight = ""
        self._stop = threading.Event()
        self.gone = threading.Event()  # set when the port vanished; every command fails then
        self._reader = threading.Thread(target=self._read_loop, name="at-reader", daemon=True)
        self._reader.start()

    # -- reader thread -------------------------------------------------------------------
    def _read_loop(self) -> None:
        buffer = b""
        pending_two_line: str | None = None
        while not self._stop.is_set():
            try:
                chunk = self._port.read(self._port.in_waiting or 1)
            except (serial.SerialException, OSError, TypeError):
                # TypeError: pyserial reading a port closed under it (fd None).
                self.gone.set()
                self._lines.put(GONE)
                return
            buffer += chunk
            while b"\n" in buffer:
                raw, buffer = buffer.split(b"\n", 1)
                line = raw.decode("ascii", "replace").strip()
                if not line:
                    continue
                if line == ">":
                    # The prompt, with a URC right behind it in the same read ("> \r\n+CDS:").
                    self._lines.put(PROMPT)
                    continue
                if pending_two_line is not None:
                    self.urcs.put(f"{pending_two_line}\n{line}")
                    pending_two_line = None
                elif line.startswith(TWO_LINE):
                    pending_two_line = line
                elif self._is_urc(line):
                    self.urcs.put(line)
                else:
                    self._lines.put(line)
            # The prompt has no line ending; it may come in the same read as lines before
            # it (a status report just ahead of it), so look after splitting them off.
            if buffer.strip(b"\r") == b"> ":
                buffer = b""
                self._lines.put(PROMPT)

    def _is_urc(self, line: str) -> bool:
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
            self._send(cmd.encode("ascii") + b"\r")
            return self._collect(cmd, timeout)

    def command_with_prompt(self, cmd: str, payload: str, *, timeout: float = 30.0,
                            meanwhile: Callable[[], None] | None = None) -> list[str]:
        """For AT+CMGS: wait for "> ", send payload + Ctrl-Z; ESC when no prompt comes.

        *meanwhile* runs once the payload is on its way, while the modem is busy with it
        (the caller's bookkeeping need not wait for the network); the answer is collected
        even when it raises, and its error is raised after.
        """
        with self._lock:
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
        try:
            self._port.write(data)
        except (serial.SerialException, OSError) as exc:
            raise PortGone(f"port vanished: {exc}") from exc

    def _next(self, deadline: float, cmd: str):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            if cmd.upper().startswith("AT+CMGS"):
                self._send(b"\x1b")  # never leave the modem waiting for a PDU
            raise ATTimeout(f"no answer to {cmd} in time")
        try:
            item = self._lines.get(timeout=remaining)
        except queue.Empty:
            return self._next(deadline, cmd)
        if item is GONE:
            self._lines.put(GONE)  # every later command fails the same way
            raise PortGone("port vanished (USB unplugged?)")
        return item

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
            if _is_final(item):
                raise error_from(item)
            lines.append(item)

    def _drain(self) -> None:
        # A late answer to a command that timed out must not be taken as this one's.
        while True:
            try:
                item = self._lines.get_nowait()
            except queue.Empty:
                return
            if item is GONE:
                self._lines.put(GONE)
                raise PortGone("port vanished (USB unplugged?)")

    def close(self) -> None:
        self._stop.set()
        self._reader.join(timeout=2)
