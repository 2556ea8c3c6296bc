"""The HTTPS proxy's certificate authority: a page (open without a login, also over plain
http) to download its root certificate, with instructions for Windows and iPad, so staff
devices trust https://tsunagu.local/ without warnings they would learn to click through."""
from __future__ import annotations

import hashlib
import ssl
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, render_template, request

from . import tsunagu_config

bp = Blueprint("ca", __name__)


def _certificate() -> bytes | None:
    try:
        return tsunagu_config().web.ca_certificate.read_bytes()
    except OSError:
        return None   # no proxy here (the demo on localhost): the page says so


def _fingerprint(pem: bytes) -> str:
    """SHA-256 of the certificate, as Windows and iOS show it, to compare before trusting."""
    der = ssl.PEM_cert_to_DER_cert(pem.decode("ascii"))
    digest = hashlib.sha256(der).hexdigest().upper()
    return " ".join(digest[i:i + 2] for i in range(0, len(digest), 2))


@bp.route("/ca")
def page():
    pem = _certificate()
    # The address as this device reached it (tsunagu.local or the Pi's IP), over https.
    host = urlsplit(f"//{request.host}").hostname or "tsunagu.local"
    secure_url = f"https://[{host}]/" if ":" in host else f"https://{host}/"
    return render_template("ca.html", available=pem is not None, secure_url=secure_url,
                           fingerprint=_fingerprint(pem) if pem else None)


@bp.route("/ca.crt")
def certificate():
    pem = _certificate()
    if pem is None:
        abort(404)
    # application/x-x509-ca-cert: Windows and iOS offer to install it as a CA.
    return Response(pem, content_type="application/x-x509-ca-cert", headers={
        "Content-Disposition": "attachment; filename=tsunagu-ca.crt"})
