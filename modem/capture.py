"""AT transcripts: what a modem was told and what it answered, recorded for support and
replayed as a test fixture (modem.sim.replay).

`RecordingPort` wraps an opened serial port and keeps every byte each way with its time;
`Transcript.exchanges()` pairs each command with the lines that answered it. Before a
transcript leaves the appliance it is anonymised: IMEI, IMSI, ICCID and phone numbers are
masked, and PDUs (which carry a number and a patient's text) are replaced by their length
and type — what a supporter needs to read a modem's behaviour, and nothing about a person.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import pdu

# Identifiers, longest first so that an ICCID is not taken for an IMEI and a number.
_ICCID = re.compile(r"\b89\d{16,18}F?\b")
_IMSI = re.compile(r"\b4[0-9]{2}[0-9]{2}\d{9,10}\b")
_IMEI = re.compile(r"\b\d{15}\b")
_PHONE = re.compile(r"\+?\b(?:81|0)[0-9]{9,10}\b")
_HEX_PDU = re.compile(r"^[0-9A-Fa-f]{20,}$")


def anonymise_line(line: str) -> str:
    """*line* with identifiers and PDUs masked (the masks keep their kind and length)."""
    if _HEX_PDU.match(line.strip()):
        return _mask_pdu(line.strip())
    line = _ICCID.sub(lambda m: "89" + "X" * (len(m.group()) - 2), line)
    line = _IMSI.sub(lambda m: m.group()[:5] + "X" * (len(m.group()) - 5), line)
    line = _IMEI.sub(lambda m: "X" * 15, line)
    return _PHONE.sub(lambda m: m.group()[:4] + "X" * (len(m.group()) - 4), line)


def _mask_pdu(hex_pdu: str) -> str:
    try:
        kind = type(pdu.decode(hex_pdu)).__name__
    except pdu.PduError:
        kind = "PDU"
    return f"<{kind} PDU, {len(hex_pdu) // 2} octets, masked>"


@dataclass
class Transcript:
    """Every chunk each way: (seconds since the start, "tx" | "rx", text)."""
    chunks: list[tuple[float, str, str]] = field(default_factory=list)

    def lines(self) -> list[tuple[float, str, str]]:
        """The chunks joined into lines per direction (a line ends at CR or LF)."""
        out, pending = [], {"tx": "", "rx": ""}
        started = {"tx": 0.0, "rx": 0.0}
        for at, way, text in self.chunks:
            for ch in text:
                if not pending[way]:
                    started[way] = at
                if ch in "\r\n\x1a\x1b":  # ESC and Ctrl-Z end a PDU, or clear a prompt
                    if pending[way].strip():
                        out.append((started[way], way, pending[way].strip()))
                    pending[way] = ""
                else:
                    pending[way] += ch
            if way == "rx" and pending["rx"].strip() == ">":  # the prompt has no line end
                out.append((started["rx"], "rx", ">"))
                pending["rx"] = ""
        out.extend((started[w], w, text.strip()) for w, text in pending.items() if text.strip())
        return sorted(out, key=lambda item: item[0])

    def anonymised(self) -> list[dict]:
        return [{"t": round(at, 3), "dir": way, "line": anonymise_line(text)}
                for at, way, text in self.lines()]

    def write(self, path: str | Path, *, header: dict | None = None) -> None:
        """The anonymised transcript as JSON lines (a header line first, if given)."""
        with open(path, "w", encoding="utf-8") as out:
            if header:
                out.write(json.dumps({"header": header}, ensure_ascii=False) + "\n")
            for item in self.anonymised():
                out.write(json.dumps(item, ensure_ascii=False) + "\n")


def read_exchanges(path: str | Path) -> list[tuple[str, list[str]]]:
    """A transcript file's commands, each with the lines that answered it (its final result
    code included), in order; unsolicited lines before any command are dropped."""
    exchanges: list[tuple[str, list[str]]] = []
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        item = json.loads(raw)
        if "header" in item:
            continue
        if item["dir"] == "tx":
            exchanges.append((item["line"], []))
        elif exchanges:
            exchanges[-1][1].append(item["line"])
    return exchanges


class RecordingPort:
    """A serial port that keeps what passes each way. It has no fileno(), so the AT session
    reads it through read() (where the recording happens) rather than the raw descriptor."""

    def __init__(self, port, transcript: Transcript | None = None) -> None:
        self._port = port
        self.transcript = transcript or Transcript()
        self._started = time.monotonic()

    def _keep(self, way: str, data: bytes) -> None:
        if data:
            self.transcript.chunks.append((time.monotonic() - self._started, way,
                                           data.decode("ascii", "replace")))

    def write(self, data: bytes) -> int | None:
        self._keep("tx", bytes(data))
        return self._port.write(data)

    def read(self, size: int = 1) -> bytes:
        data = self._port.read(size)
        self._keep("rx", data)
        return data

    @property
    def in_waiting(self) -> int:
        return self._port.in_waiting

    def close(self) -> None:
        self._port.close()
