"""Control of a running simulated modem: a Unix socket at LINK + ".ctl" speaking JSON lines.

One request per line, `{"command": "inject_sms", "sender": "+8190…", "text": "…"}`, one answer
per line, `{"ok": true, "result": …}` or `{"ok": false, "error": "…"}`. Tests, the demo and
`tsunagu sim-ctl` drive faults, replies and the network through it while the driver under
test talks AT to the same modem over its pty.
"""
from __future__ import annotations

import json
import os
import socket
import socketserver
import threading
from pathlib import Path
from typing import Any

# The commands a client may call, with the SimulatedModem method each maps to.
COMMANDS = {
    "status": "status", "messages": None, "inject_sms": "inject_sms",
    "set_outcome": "set_outcome", "fail_sends": "fail_sends", "clear_faults": "clear_faults",
    "drop_next_command": "drop_next_command", "withhold_prompts": "withhold_prompts",
    "remove_sim": "remove_sim",
    "insert_sim": "insert_sim", "set_registration": "set_registration", "reboot": "reboot",
    "set_signal": "set_signal", "unplug": "unplug", "replug": "replug",
    "set_send_delay": "set_send_delay", "set_report_delay": "set_report_delay",
    "hold_sends": "hold_sends", "release_sends": "release_sends",
    "set_ims": "set_ims", "set_carrier_profile": "set_carrier_profile", "hang": "hang",
    "set_network_time_offset": "set_network_time_offset", "clear_smsc": "clear_smsc",
    "set_reject_cause": "set_reject_cause", "ring": "ring",
    "hang_up_far_end": "hang_up_far_end", "set_call_outcome": "set_call_outcome",
    "inject_cbs": "inject_cbs", "set_cell_broadcasts": "set_cell_broadcasts",
}


class SimControlError(RuntimeError):
    """The simulated modem refused a control command, or is not running."""


def control_path(link: str | os.PathLike) -> Path:
    link = Path(link)
    return link.with_name(link.name + ".ctl")


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        modem = self.server.modem  # type: ignore[attr-defined]
        for raw in self.rfile:
            try:
                request = json.loads(raw)
                answer = {"ok": True, "result": _dispatch(modem, request)}
            except (ValueError, TypeError, KeyError) as exc:
                answer = {"ok": False, "error": str(exc)}
            self.wfile.write((json.dumps(answer, ensure_ascii=False) + "\n").encode())
            self.wfile.flush()


def _dispatch(modem, request: dict) -> Any:
    from .modem import parse_delay
    args = dict(request)
    command = args.pop("command", None)
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}; known: {', '.join(sorted(COMMANDS))}")
    if command == "messages":
        return modem.messages
    if command in ("set_send_delay", "set_report_delay"):
        args = {"delay": parse_delay(args.get("delay"))}
    return getattr(modem, COMMANDS[command])(**args)


class ControlServer:
    def __init__(self, modem, path: Path) -> None:
        self.path = path
        if path.exists() or path.is_symlink():
            path.unlink()  # a stale socket from a modem that was killed

        class Server(socketserver.ThreadingUnixStreamServer):
            daemon_threads = True
        self._server = Server(str(path), _Handler)
        self._server.modem = modem  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True,
                                        name=f"sim-ctl:{path.name}")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        if self.path.exists():
            self.path.unlink()


class SimControl:
    """Client for a simulated modem started with a control socket (`tsunagu sim` always is)."""

    def __init__(self, link: str | os.PathLike, *, timeout: float = 10.0) -> None:
        self.path = control_path(link)
        self.timeout = timeout

    def call(self, command: str, **args: Any) -> Any:
        request = json.dumps({"command": command, **args}, ensure_ascii=False) + "\n"
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(str(self.path))
                sock.sendall(request.encode())
                answer = sock.makefile("rb").readline()
        except OSError as exc:
            raise SimControlError(f"no simulated modem answers at {self.path}: {exc}") from None
        if not answer:
            raise SimControlError(f"the simulated modem at {self.path} closed the connection")
        reply = json.loads(answer)
        if not reply["ok"]:
            raise SimControlError(reply["error"])
        return reply["result"]

    def __getattr__(self, command: str):
        if command not in COMMANDS:
            raise AttributeError(command)
        return lambda **args: self.call(command, **args)
