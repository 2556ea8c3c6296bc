"""The simulated modem: a pseudo-terminal that answers AT like a Quectel EC25 with a
Japanese SIM, and a small model of the network behind it.

A peer of the real modem, not a mock of our classes: the driver, gammu or a terminal talk
to it over a real pty through the symlink at *link*, byte by byte.
"""
from __future__ import annotations

import json
import os
import random
import select
import threading
import time
import tty
from pathlib import Path

from .. import pdu

CTRL_Z, ESC = b"\x1a", b"\x1b"

IDENTITY = {
    "CGMI": "Quectel", "CGMM": "EC25", "CGMR": "EC25JFAR06A06M4G",
    "CGSN": "867962040000001", "CIMI": "440103123456789", "ICCID": "8981100000000000001",
}
OWN_NUMBER = "+819000000000"
SMSC = '"+819030101950",145'


class SimulatedModem:
    """One simulated modem on a pty; start() returns once the symlink exists."""

    def __init__(self, link: str | Path, *, log: str | Path | None = None,
                 send_delay: float | tuple[float, float] = 0.0, seed: int = 0) -> None:
        self.link = Path(link)
        self.log_path = Path(log) if log else None
        self.send_delay = send_delay
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.messages: list[dict] = []
        self._reassembler = pdu.Reassembler()
        self._power_up()

    # -- state ---------------------------------------------------------------------------
    def _power_up(self) -> None:
        self.echo = True
        self.cmee = 0
        self.cmgf = 0
        self.cscs = "GSM"
        self.creg_n = {"CREG": 0, "CGREG": 0, "CEREG": 0}
        self.mr = 0
        self._buffer = b""
        self._prompt_length: int | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> "SimulatedModem":
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no line discipline: bytes pass as a serial line would
        slave_name = os.ttyname(self._slave)
        if self.link.is_symlink() or self.link.exists():
            self.link.unlink()
        self.link.symlink_to(slave_name)
        self._thread = threading.Thread(target=self._run, name=f"sim:{self.link.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        for fd in (self._master, self._slave):
            os.close(fd)
        if self.link.is_symlink():
            self.link.unlink()

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.1)
            if ready:
                self.feed(os.read(self._master, 4096))

    def _write(self, data: bytes) -> None:
        os.write(self._master, data)

    # -- input ---------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Bytes from the client, in any pieces."""
        for byte in data:
            b = bytes([byte])
            if self._prompt_length is not None:
                self._prompt_byte(b)
                continue
            if self.echo:
                self._write(b)
            if b == b"\r":
                line, self._buffer = self._buffer.decode("ascii", "replace").strip(), b""
                if line:
                    self._command_line(line)
            elif b != b"\n":
                self._buffer += b

    def _prompt_byte(self, b: bytes) -> None:
        if b == ESC:  # the client gave up on the prompt: nothing is sent
            self._prompt_length, self._buffer = None, b""
            self._final("OK")
        elif b == CTRL_Z:
            hex_pdu, declared = self._buffer.decode("ascii", "replace").strip(), self._prompt_length
            self._prompt_length, self._buffer = None, b""
            self._submit(hex_pdu, declared)
        else:
            if self.echo:
                self._write(b)
            self._buffer += b

    # -- commands ------------------------------------------------------------------------
    def _command_line(self, line: str) -> None:
        upper = line.upper()
        if not upper.startswith("AT"):
            return self._final("ERROR")
        body = line[2:]
        if not body:
            return self._final("OK")
        # Chained commands: AT+CMEE=1;+CREG=2 — each answered in turn, one final code.
        lines: list[str] = []
        for cmd in [c for c in body.split(";") if c]:
            try:
                result = self._command(cmd.strip())
            except ValueError:  # a malformed argument, as a real modem answers it
                result = "bad argument"
            if result is None:  # CMGS prompt opened: the final code comes after the PDU
                return
            if isinstance(result, str):
                return self._error(result)
            lines.extend(result)
        self._write(b"".join(f"\r\n{x}\r\n".encode() for x in lines))
        self._final("OK")

    def _command(self, cmd: str) -> list[str] | str | None:
        u = cmd.upper()
        if u in ("Z", "&F"):
            self._power_up()
            return []
        if u in ("E0", "E1"):
            self.echo = u == "E1"
            return []
        if u == "I":
            return [IDENTITY["CGMI"], IDENTITY["CGMM"], f"Revision: {IDENTITY['CGMR']}"]
        if u.startswith("+"):
            return self._extended(cmd[1:])
        return "unknown"

    def _extended(self, cmd: str) -> list[str] | str | None:
        # name, then rest: "" (execute), "?" (read), "=?" (test) or the set arguments
        u = cmd.upper()
        name = u.split("=", 1)[0].rstrip("?")
        tail = u[len(name):]
        rest = tail if tail in ("?", "=?") else tail[1:] if tail.startswith("=") else ""
        if name in ("CGMI", "GMI", "CGMM", "GMM", "CGMR", "GMR", "CGSN", "GSN", "CIMI"):
            key = {"GMI": "CGMI", "GMM": "CGMM", "GMR": "CGMR", "GSN": "CGSN"}.get(name, name)
            return [IDENTITY[key]]
        if name in ("QCCID", "CCID"):
            return [f"+{name}: {IDENTITY['ICCID']}"]
        if name == "CMEE":
            if rest not in ("?", "=?"):
                self.cmee = int(rest or 0)
            return [f"+CMEE: {self.cmee}"] if rest == "?" else []
        if name == "CPIN":
            return ["+CPIN: READY"] if rest == "?" else []
        if name == "CSQ":
            return ["+CSQ: 24,99"]
        if name in self.creg_n:
            if rest == "?":
                stat = {"CREG": "1", "CGREG": "1", "CEREG": "1"}[name]
                n = self.creg_n[name]
                return [f"+{name}: {n},{stat}" + (',"1A2B","01C2D3E",7' if n >= 2 else "")]
            if rest == "=?":
                return [f"+{name}: (0-2)"]
            self.creg_n[name] = int(rest or 0)
            return []
        if name == "COPS":
            return ['+COPS: 0,0,"NTT DOCOMO",7'] if rest == "?" else []
        if name == "CMGF":
            if rest == "=?":
                return ["+CMGF: (0,1)"]
            if rest == "?":
                return [f"+CMGF: {self.cmgf}"]
            self.cmgf = int(rest or 0)
            return []
        if name == "CSCA":
            return [f"+CSCA: {SMSC}"] if rest == "?" else []
        if name == "CSCS":
            if rest == "=?":
                return ['+CSCS: ("GSM","IRA","UCS2")']
            if rest == "?":
                return [f'+CSCS: "{self.cscs}"']
            self.cscs = rest.strip('"') or "GSM"
            return []
        if name in ("CSMP", "CNMI", "CFUN", "CPMS"):
            if name == "CPMS" and rest != "?":
                return ['+CPMS: 0,255,0,255,0,255']
            value = '"UCS2"' if name == "CSCS" else "1"
            return [] if rest != "?" else [f"+{name}: {value}"]
        if name == "CNUM":
            return [f'+CNUM: "","{OWN_NUMBER}",145']
        if name == "CMGS" and rest not in ("?", "=?"):
            if self.cmgf != 0:
                return "unsupported"
            self._prompt_length = int(rest)
            self._write(b"\r\n> ")  # exactly this: no newline after the prompt
            return None
        return "unknown"

    # -- the network -------------------------------------------------------------------
    def _submit(self, hex_pdu: str, declared: int) -> None:
        try:
            raw = bytes.fromhex(hex_pdu)
            tpdu_length = len(raw) - raw[0] - 1
            submit = pdu.decode(hex_pdu)
        except (ValueError, pdu.PduError):
            return self._cms(304)  # invalid PDU mode parameter
        if tpdu_length != declared or not isinstance(submit, pdu.Submit):
            return self._cms(304)
        self._wait_send_delay()
        with self._lock:
            self.mr = (self.mr + 1) % 256
            mr = self.mr
        concat = submit.concat
        part, parts = (concat.seq, concat.total) if concat else (1, 1)
        self._log({"event": "submit", "t": time.time(), "to": submit.number, "pdu": hex_pdu,
                   "part": part, "parts": parts})
        deliver = pdu.Deliver(sender=submit.number, text=submit.text, sent_at=None, concat=concat)
        whole = self._reassembler.add(submit.number, deliver)
        if whole is not None:
            message = {"event": "message", "t": time.time(), "to": submit.number,
                       "text": whole, "parts": parts}
            with self._lock:
                self.messages.append(message)
            self._log(message)
        self._write(f"\r\n+CMGS: {mr}\r\n".encode())
        self._final("OK")

    def _wait_send_delay(self) -> None:
        delay = self.send_delay
        if isinstance(delay, tuple):
            delay = self._rng.uniform(*delay)
        if delay > 0:
            self._stop.wait(delay)  # the modem-bound cost of one SMS on the air

    def _log(self, event: dict) -> None:
        if self.log_path:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(event, ensure_ascii=False) + "\n")

    # -- result codes -----------------------------------------------------------------
    def _final(self, code: str) -> None:
        self._write(f"\r\n{code}\r\n".encode())

    def _error(self, reason: str) -> None:
        if self.cmee == 0:
            return self._final("ERROR")
        return self._final("+CME ERROR: 4" if self.cmee == 1 else "+CME ERROR: operation not supported")

    def _cms(self, code: int) -> None:
        self._final(f"+CMS ERROR: {code}" if self.cmee else "ERROR")
