"""The hotspot's sticker: a QR code that joins a phone to the appliance's Wi-Fi and one that opens
the web UI on it, for the terminal and as an SVG to print and stick on the box (segno, drawn on
the appliance: no internet).

The Wi-Fi code's text is the de-facto `WIFI:` format that phone cameras read (ZXing's
"Barcode Contents" page, which Android and iOS follow): `WIFI:T:WPA;S:<ssid>;P:<password>;;`
with `\\`, `;`, `,`, `"` and `:` in the SSID and password escaped by a backslash. The text is
UTF-8 in byte mode, marked as such (ECI) when it is not plain ASCII.
"""
from __future__ import annotations

import io
import re
from html import escape as xml_escape

import segno

from .hotspot import Hotspot

_SPECIAL = re.compile(r'([\\;,":])')


def wifi_escape(text: str) -> str:
    """*text* for a field of a WIFI: code: \\ ; , " : each after a backslash."""
    return _SPECIAL.sub(r"\\\1", text)


def wifi_payload(hotspot: Hotspot) -> str:
    """The text of the code that joins a phone to the hotspot."""
    return f"WIFI:T:WPA;S:{wifi_escape(hotspot.ssid)};P:{wifi_escape(hotspot.passphrase)};;"


def _code(text: str) -> segno.QRCode:
    # Without an ECI header a reader guesses the bytes' encoding, and Japanese in UTF-8 can be
    # guessed as Shift_JIS (zbar read "つなぐ" as "縺､縺ｪ縺"); the header says UTF-8. Plain
    # ASCII goes without it, for the oldest readers.
    return segno.make(text, error="m", mode="byte", encoding="utf-8", eci=not text.isascii())


def wifi_code(hotspot: Hotspot) -> segno.QRCode:
    return _code(wifi_payload(hotspot))


def address_code(hotspot: Hotspot) -> segno.QRCode:
    return _code(hotspot.url)


def terminal(code: segno.QRCode) -> str:
    """The code as text blocks for a terminal (two rows a line; light on dark)."""
    out = io.StringIO()
    code.terminal(out=out, compact=True, border=2)
    return out.getvalue()


WORDS = {
    "ja": {
        "title": "つなぐ 非常用Wi-Fi（院内LANが使えないとき）",
        "step1": "① カメラで読み取り、Wi-Fiに接続",
        "step2": "② 接続したら読み取り、つなぐを開く",
        "ssid": "ネットワーク名",
        "passphrase": "パスワード",
        "login": "いつものユーザー名とパスワードでログインします。",
        "ca": "初めての端末は先に {ca} で証明書を入れてください。",
    },
    "en": {
        "title": "Tsunagu emergency Wi-Fi (when the clinic LAN is down)",
        "step1": "1. Scan with the camera to join the Wi-Fi",
        "step2": "2. Once joined, scan to open Tsunagu",
        "ssid": "Network",
        "passphrase": "Password",
        "login": "Log in with your usual user name and password.",
        "ca": "On a device's first use, install the certificate from {ca} first.",
    },
}


def ca_url(hotspot: Hotspot) -> str:
    """The certificate page over plain http (a phone does not trust https before it)."""
    return f"http://{hotspot.address.ip}/ca"


def sticker_svg(hotspot: Hotspot, lang: str = "ja") -> str:
    """One SVG with both codes and their captions, 180 mm wide, to print and stick on the box."""
    words = WORDS.get(lang, WORDS["ja"])
    scale, border = 4, 4
    codes = [wifi_code(hotspot), address_code(hotspot)]
    side = max(c.symbol_size(scale=scale, border=border)[0] for c in codes)
    column = max(side, 250)   # room for the captions under a small code
    width, top = 2 * column + 60, 44
    height = top + side + 120
    font = 'font-family="Noto Sans CJK JP, Hiragino Sans, Meiryo, sans-serif"'

    def text(x: float, y: float, content: str, size: int = 11, weight: str = "normal") -> str:
        return (f'<text x="{x:g}" y="{y:g}" font-size="{size}" font-weight="{weight}" '
                f'text-anchor="middle" {font}>{xml_escape(content)}</text>')

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="180mm" '
             f'height="{180 * height / width:.1f}mm" viewBox="0 0 {width} {height}">',
             f'<rect width="{width}" height="{height}" fill="#fff"/>',
             text(width / 2, 26, words["title"], 16, "bold")]
    centres = [20 + column / 2, 40 + column * 1.5]
    for code, step, centre in zip(codes, (words["step1"], words["step2"]), centres):
        size = code.symbol_size(scale=scale, border=border)[0]
        inner = code.svg_inline(scale=scale, border=border, omitsize=False)
        parts.append(f'<g transform="translate({centre - size / 2:g},{top + (side - size) / 2:g})">'
                     f'{inner}</g>')
        parts.append(text(centre, top + side + 18, step, 12, "bold"))
    below = top + side + 40
    parts += [
        text(centres[0], below, f'{words["ssid"]}: {hotspot.ssid}', 12),
        text(centres[0], below + 20, f'{words["passphrase"]}: {hotspot.passphrase}', 13, "bold"),
        text(centres[1], below, hotspot.url, 14, "bold"),
        text(centres[1], below + 20, words["login"], 10),
        text(width / 2, height - 16, words["ca"].format(ca=ca_url(hotspot)), 10),
        "</svg>",
    ]
    return "\n".join(parts) + "\n"
