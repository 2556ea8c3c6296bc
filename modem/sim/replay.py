"""A modem that answers from a captured transcript (modem.capture): a clinic's real modem,
replayed on a pty as a test fixture.

Each command the client sends is answered with what the real modem answered to the same
command (the next such exchange in the transcript, in order; an earlier one if the client
asks again), masks and all. A command the transcript never saw is answered ERROR. A PDU
after the "> " prompt is matched by its masked form, so a replayed send finds its answer.
"""
from __future__ import annotations

import select
import threading
from pathlib import Path

from ..capture import anonymise_line, read_exchanges
from .pty import PtyPort


class ReplayModem:
    def __init__(self, link: str | Path, transcript: str | Path) -> None:
        self.exchanges = read_exchanges(transcript)
        self.port = PtyPort(link)
        self.link = Path(link)
        self.unknown: list[str] = []   # commands the transcript had no answer for
        self._cursor = 0
        self._buffer = b""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ReplayModem:
        self.port.plug()
        self._thread = threading.Thread(target=self._run, name=f"replay:{self.link.name}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.port.unplug()

    def _run(self) -> None:
        while not self._stop.is_set():
            master = self.port.master
            if master is None or not select.select([master], [], [], 0.05)[0]:
                continue
            data = self.port.read()
            if not data:
                self._stop.wait(0.02)  # no client: the hang-up keeps select readable
                continue
            self._buffer += data
            while True:
                ends = [i for i in (self._buffer.find(b"\r"), self._buffer.find(b"\x1a"))
                        if i >= 0]
                if not ends:
                    break
                end = min(ends)
                line, self._buffer = self._buffer[:end], self._buffer[end + 1:]
                text = line.decode("ascii", "replace").strip().lstrip("\x1b").strip()
                if text:
                    self._answer(text)

    def _answer(self, command: str) -> None:
        wanted = anonymise_line(command)
        order = list(range(self._cursor, len(self.exchanges))) + list(range(self._cursor))
        found = next((i for i in order if self.exchanges[i][0] == wanted), None)
        if found is None:
            self.unknown.append(command)
            self.port.write(b"\r\nERROR\r\n")
            return
        self._cursor = found + 1
        for line in self.exchanges[found][1]:  # its echo too, when echo was on
            self.port.write(b"\r\n> " if line == ">" else f"\r\n{line}\r\n".encode())
