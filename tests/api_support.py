"""The API as the clinic's systems meet it: `tsunagu web` (waitress) as a real process on a
free port of 127.0.0.1, and a small HTTP client for it."""
from __future__ import annotations

import json
import socket
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from appliance import api_tokens, config as config_mod, contacts
from appliance.db import connect, write
from tests.daemon_harness import ROOT, stop_process, tsunagu_command, wait_until
from tests.helpers import free_port

CONFIG = """\
database = "t.db"
clinic_name = "つなぐ透析クリニック"
[api]
rate_per_minute = 1000
[[modem]]
name = "m0"
port = "/dev/null"
daily_limit = 180
"""


@dataclass
class Answer:
    status: int
    headers: object            # an email.message.Message: headers["retry-after"] works
    body: object
    content_type: str


class Api:
    """HTTP against the server, as another system would send it."""

    def __init__(self, base: str, token: str | None = None) -> None:
        self.base, self.token = base, token

    def call(self, method: str, path: str, body=None, *, token: str | None = None,
             headers: dict | None = None, raw: bytes | None = None,
             content_type: str = "application/json") -> Answer:
        head = {"Accept": "application/json"}
        token = token if token is not None else self.token
        if token:
            head["Authorization"] = f"Bearer {token}"
        head.update(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        if data is not None:
            head["Content-Type"] = content_type
        request = urllib.request.Request(self.base + path, data=data, headers=head,
                                         method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return self._answer(response.status, response.headers, response.read())
        except urllib.error.HTTPError as exc:
            return self._answer(exc.code, exc.headers, exc.read())

    @staticmethod
    def _answer(status: int, headers, data: bytes) -> Answer:
        kind = headers.get("Content-Type", "")
        body = json.loads(data) if data and "json" in kind else data
        return Answer(status, headers, body, kind)   # headers: case-insensitive lookups


class WebServer:
    """`tsunagu web --config FILE --port P` with its own database, stopped at the end."""

    def __init__(self, directory: Path, config_text: str = CONFIG) -> None:
        self.directory = directory
        (directory / "tsunagu.toml").write_text(config_text, encoding="utf-8")
        self.config = config_mod.load(directory / "tsunagu.toml")
        self.db = connect(self.config.database)
        self.port = free_port()
        self.log = open(directory / "web.log", "wb")
        self.proc = subprocess.Popen(
            [*tsunagu_command(), "web", "--config", str(directory / "tsunagu.toml"),
             "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=self.log, stderr=self.log, cwd=ROOT)
        wait_until(self._listening, 30, "tsunagu web to listen")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _listening(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError((self.directory / "web.log").read_text(errors="replace"))
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def token(self, name: str, scopes: str, *, rate: int = 1000) -> str:
        with write(self.db) as conn:
            _token, secret = api_tokens.create(conn, name, scopes, actor="test", now=0.0,
                                               rate_per_minute=rate)
        return secret

    def api(self, token: str | None = None) -> Api:
        return Api(self.base + "/api/v1", token)

    def close(self) -> None:
        stop_process(self.proc)
        self.log.close()
        self.db.conn.close()


def seed(db) -> dict:
    """A group with two patients (one with a patient ID) and a test group."""
    group = contacts.create_group(db, "月水金 午前", actor="test", kind="shift")
    contacts.create_group(db, "テスト", actor="test", kind="test")
    yamada = contacts.add_contact(db, name="山田 太郎", kana="ヤマダ タロウ", phone="090-1234-5678",
                                  patient_id="P001", actor="test", group_ids=[group.id])
    suzuki = contacts.add_contact(db, name="鈴木 花子", kana="スズキ ハナコ", phone="080-2222-3333",
                                  actor="test", group_ids=[group.id])
    return {"group": group, "yamada": yamada, "suzuki": suzuki}
