"""Issue 12 against the real servers: `tsunagu web` (waitress) as a process, and Debian's
Caddy in front of it with deploy/Caddyfile as installed — HTTPS with its local CA, http
redirected to https, the CA page over plain http, cookie flags, no open redirect, sessions
that end for a copied cookie, and the login throttle by the client's real address (taken
from the proxy only). One web server and one proxy for the whole module."""
from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import ssl
import subprocess
import urllib.parse
from dataclasses import dataclass, field

import pytest

from appliance import audit, users
from appliance.db import connect
from tests.daemon_harness import ROOT, stop_process, tsunagu_command, wait_until
from tests.helpers import free_port

STAFF = ("nurse1", "nurse-pass-123456")
CADDY = shutil.which("caddy")


@dataclass
class Browser:
    """Just enough of a browser: one host, its cookies, no redirects followed."""
    host: str
    port: int
    https: ssl.SSLContext | None = None
    source: str | None = None        # the local address to connect from
    headers: dict = field(default_factory=dict)
    cookies: dict = field(default_factory=dict)

    def request(self, method: str, path: str, body: dict | None = None,
                headers: dict | None = None) -> tuple[http.client.HTTPResponse, str]:
        source = (self.source, 0) if self.source else None
        if self.https:
            conn = http.client.HTTPSConnection(self.host, self.port, context=self.https,
                                               timeout=20, source_address=source)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=20,
                                              source_address=source)
        sent = {**self.headers, **(headers or {})}
        if method == "POST":   # as a browser does under Referrer-Policy: same-origin
            scheme = "https" if self.https else "http"
            sent.setdefault("Referer", f"{scheme}://{self.host}:{self.port}/")
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        data = None
        if body is not None:
            data = urllib.parse.urlencode(body)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=data, headers=sent)
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        for cookie in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = cookie.partition("=")
            value = rest.split(";")[0]
            if value:
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        conn.close()
        return response, text

    def token(self, path: str = "/login") -> str:
        _, page = self.request("GET", path)
        return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)

    def log_in(self, username: str, password: str, next_path: str = ""):
        path = "/login" + (f"?next={next_path}" if next_path else "")
        return self.request("POST", path, {"username": username, "password": password,
                                           "csrf_token": self.token()})


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """`tsunagu web` on a free port behind the trusted proxy address 127.0.0.1."""
    tmp = tmp_path_factory.mktemp("server")
    port = free_port()
    (tmp / "tsunagu.toml").write_text(
        'database = "t.db"\n[web]\nmax_failed_logins = 3\nsession_cookie_secure = true\n'
        'trusted_proxy = "127.0.0.1"\n[[modem]]\nname = "m0"\nport = "/dev/null"\n',
        encoding="utf-8")
    db = connect(tmp / "t.db")
    users.create_user(db, *STAFF[:1], "staff", password=STAFF[1], actor="test")
    log = open(tmp / "web.log", "wb")
    web = subprocess.Popen([*tsunagu_command(), "web", "--config", str(tmp / "tsunagu.toml"),
                            "--port", str(port)], stdout=log, stderr=log, cwd=ROOT)

    def up() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    try:
        wait_until(up, 30, "tsunagu web to listen")
        yield {"port": port, "db": db, "dir": tmp}
    finally:
        stop_process(web)
        log.close()
        db.conn.close()


def direct(stack, **kwargs) -> Browser:
    return Browser("127.0.0.1", stack["port"], **kwargs)


# -- waitress itself --------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["/%09/evil.example/", "/%0d%0aSet-Cookie:%20x=1",
                                    "//evil.example/", "/%5C%5Cevil.example"])
def test_the_real_server_never_redirects_a_login_off_the_site(stack, target):
    browser = direct(stack, headers={"X-Forwarded-For": f"192.0.2.{len(target)}"})
    response, _ = browser.log_in(*STAFF, next_path=target)
    assert response.status == 302 and response.getheader("Location") in ("/", "http://127.0.0.1:"
                                                                          f"{stack['port']}/")
    assert "x=1" not in (response.getheader("Set-Cookie") or "")


def test_the_real_servers_session_cookie_is_httponly_samesite_and_secure(stack):
    browser = direct(stack, headers={"X-Forwarded-For": "192.0.2.50"})
    response, _ = browser.log_in(*STAFF)
    cookie = [c for c in response.headers.get_all("Set-Cookie") if "tsunagu_session" in c][0]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


def test_a_copied_cookie_stops_working_at_logout_on_the_real_server(stack):
    nurse = direct(stack, headers={"X-Forwarded-For": "192.0.2.51"})
    nurse.log_in(*STAFF)
    thief = direct(stack, cookies=dict(nurse.cookies))
    assert thief.request("GET", "/contacts")[0].status == 200
    nurse.request("POST", "/logout", {"csrf_token": nurse.token("/")})
    assert thief.request("GET", "/contacts")[0].status == 302


def test_the_throttle_sees_each_device_through_the_proxy_and_never_locks_the_nurse(stack):
    attacker = direct(stack, headers={"X-Forwarded-For": "192.0.2.66"})
    for _ in range(6):
        attacker.log_in(STAFF[0], "wrong-password-1")
    _, page = attacker.log_in(*STAFF)
    assert "秒待って" in page
    nurse = direct(stack, headers={"X-Forwarded-For": "192.0.2.7"})
    assert nurse.log_in(*STAFF)[0].status == 302
    addresses = {e.remote_addr for e in audit.entries(stack["db"], action="login_failed")}
    assert "192.0.2.66" in addresses


def test_a_device_that_is_not_the_proxy_cannot_claim_another_address(stack):
    """X-Forwarded-For from anyone but the trusted proxy is dropped: spoofing a fresh
    address for each guess gets around nothing."""
    spoofer = direct(stack, source="127.0.0.2")
    for i in range(6):
        spoofer.headers["X-Forwarded-For"] = f"198.51.100.{i}"
        spoofer.log_in(STAFF[0], "wrong-password-1")
    spoofer.headers["X-Forwarded-For"] = "198.51.100.99"
    _, page = spoofer.log_in(*STAFF)
    assert "秒待って" in page
    assert "127.0.0.2" in {e.remote_addr for e in audit.entries(stack["db"],
                                                                 action="login_failed")}


# -- Caddy in front, as installed ------------------------------------------------------------

@pytest.fixture(scope="module")
def proxy(stack, tmp_path_factory):
    if CADDY is None:
        pytest.skip("Debian's caddy is not installed (./scripts/test installs it as root)")
    tmp = tmp_path_factory.mktemp("caddy")
    http_port, https_port = free_port(), free_port()
    env = {**os.environ, "XDG_DATA_HOME": str(tmp / "data"), "XDG_CONFIG_HOME": str(tmp / "cfg"),
           "HOME": str(tmp), "TSUNAGU_HTTP_PORT": str(http_port),
           "TSUNAGU_HTTPS_PORT": str(https_port), "TSUNAGU_HTTPS_SUFFIX": f":{https_port}",
           "TSUNAGU_SITES": "localhost, 127.0.0.1",
           "TSUNAGU_UPSTREAM": f"127.0.0.1:{stack['port']}"}
    log = open(tmp / "caddy.log", "wb")
    caddy = subprocess.Popen([CADDY, "run", "--config", str(ROOT / "deploy" / "Caddyfile"),
                              "--adapter", "caddyfile"], env=env, stdout=log, stderr=log,
                             cwd=tmp)
    root = tmp / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"

    def serving() -> bool:
        if caddy.poll() is not None:
            raise AssertionError((tmp / "caddy.log").read_text())
        if not root.exists():
            return False
        try:
            context = ssl.create_default_context(cafile=str(root))
            with socket.create_connection(("127.0.0.1", https_port), timeout=1) as raw:
                with context.wrap_socket(raw, server_hostname="localhost"):
                    return True
        except (OSError, ssl.SSLError):
            return False
    try:
        wait_until(serving, 30, "caddy to serve https with its local CA")
        # The web UI offers the CA root at /ca (install.sh copies it there).
        shutil.copy(root, stack["dir"] / "ca.crt")
        yield {"http": http_port, "https": https_port,
               "context": ssl.create_default_context(cafile=str(root)), "root": root}
    finally:
        stop_process(caddy)
        log.close()


def test_https_through_the_proxy_is_trusted_with_its_local_ca(proxy):
    browser = Browser("localhost", proxy["https"], https=proxy["context"])
    response, page = browser.request("GET", "/login")
    assert response.status == 200 and "ログイン" in page
    untrusted = Browser("localhost", proxy["https"], https=ssl.create_default_context())
    with pytest.raises(ssl.SSLCertVerificationError):
        untrusted.request("GET", "/login")


def test_plain_http_redirects_to_https(proxy):
    response, _ = Browser("localhost", proxy["http"]).request("GET", "/contacts?q=1")
    assert response.status in (301, 308)
    assert response.getheader("Location") == f"https://localhost:{proxy['https']}/contacts?q=1"


def test_the_ca_certificate_and_its_instructions_open_over_plain_http(proxy):
    browser = Browser("localhost", proxy["http"])
    response, page = browser.request("GET", "/ca")
    assert response.status == 200 and "Windows" in page and "iPad" in page
    fingerprint = re.search(r'<code class="key">([0-9A-F ]+)</code>', page).group(1)
    response, pem = browser.request("GET", "/ca.crt")
    assert response.status == 200 and pem == proxy["root"].read_text()
    assert response.getheader("Content-Type") == "application/x-x509-ca-cert"
    import hashlib
    der = ssl.PEM_cert_to_DER_cert(pem)
    assert fingerprint.replace(" ", "") == hashlib.sha256(der).hexdigest().upper()


def test_through_the_proxy_cookies_are_secure_and_the_clients_address_is_recorded(proxy, stack):
    browser = Browser("localhost", proxy["https"], https=proxy["context"])
    response, _ = browser.log_in(*STAFF)
    assert response.status == 302
    cookie = [c for c in response.headers.get_all("Set-Cookie") if "tsunagu_session" in c][0]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert browser.request("GET", "/contacts")[0].status == 200
    login = audit.entries(stack["db"], action="login")[0]
    assert login.remote_addr == "127.0.0.1"           # the client, passed on by Caddy


def test_the_ca_page_names_the_https_address_the_device_used(proxy):
    _, page = Browser("127.0.0.1", proxy["http"]).request("GET", "/ca")
    assert "https://127.0.0.1/" in page
