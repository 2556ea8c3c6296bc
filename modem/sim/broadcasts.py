"""Cell broadcasts on the simulated modem: ETWS warnings as a network sends them.

AT+CSCB (TS 27.005 3.3.4) chooses the message identifiers the modem accepts; with `+CNMI`
bm=2 (or 3) each page of an accepted message is given to the client as `+CBM: <length>`
and the page in hex (PDU mode). The control socket's `inject_cbs` plays the network: an
earthquake warning, a tsunami warning, the test message 4355 — over several pages when
the text is long, and with a page lost on the way when asked. A mixin of SimulatedModem.
"""
from __future__ import annotations

import re
import time

from .. import cbs
from ..device import mids_cover
from .codes import CmsFailure, bad_parameters

CMS_OPERATION_NOT_ALLOWED = 302
_CSCB_SET = re.compile(r'([01])(?:,"([^"]*)"(?:,"([^"]*)")?)?')


class CellBroadcasts:
    """AT+CSCB and `inject_cbs`."""

    def _at_cscb(self, arg):
        if arg == "?":
            return [f'+CSCB: {self.cscb_mode},"{self.cscb_mids}","{self.cscb_dcss}"']
        if arg == "=?":
            return ["+CSCB: (0,1)"]
        if not self.cell_broadcasts_supported:
            raise CmsFailure(CMS_OPERATION_NOT_ALLOWED)  # a modem without CBS
        match = _CSCB_SET.fullmatch(arg.strip())
        if match is None:
            raise bad_parameters()
        mode, mids = match.group(1), match.group(2) or ""
        for item in filter(None, (m.strip() for m in mids.split(","))):
            low, _, high = item.partition("-")
            if not low.isdigit() or (high and not high.isdigit()):
                raise bad_parameters()
        self.cscb_mode = int(mode)
        self.cscb_mids = mids if mode == "0" else ""
        return []

    def set_cell_broadcasts(self, supported: bool) -> None:
        """Whether this modem takes AT+CSCB at all (a model without cell broadcasts)."""
        with self._lock:
            self.cell_broadcasts_supported = bool(supported)

    def _accepts(self, message_id: int) -> bool:
        return self.cscb_mode == 0 and mids_cover(self.cscb_mids, message_id, message_id)

    # -- control ---------------------------------------------------------------------------
    def inject_cbs(self, text: str, *, etws: str | None = None, message_id: int | None = None,
                   serial: int | None = None, gsm7: bool = False,
                   skip_page: int | None = None) -> dict:
        """The network broadcasts *text*: an ETWS warning of type *etws* ('earthquake',
        'tsunami', 'earthquake_tsunami', 'test', 'other') or any *message_id*. Returns how
        many pages it took and whether the client was given them (subscribed, bm=2)."""
        if (etws is None) == (message_id is None):
            raise ValueError("give one of etws (a warning type) or message_id")
        if etws is not None:
            if etws not in cbs.TYPE_IDS:
                raise ValueError(f"etws must be one of {', '.join(cbs.TYPE_IDS)}, got {etws!r}")
            message_id = cbs.TYPE_IDS[etws]
        if not 0 <= int(message_id) <= 0xFFFF:
            raise ValueError(f"message_id must be 0-65535, got {message_id}")
        with self._lock:
            self._cbs_serial = (self._cbs_serial + 1) % 0x3FF or 1
            number = cbs.serial_number(self._cbs_serial) if serial is None else int(serial)
            pages = cbs.encode_pages(int(message_id), text, serial=number,
                                     dcs=cbs.DCS_GSM7 if gsm7 else cbs.DCS_UCS2)
            given = self.registered and self.cnmi[2] in (2, 3) and self._accepts(message_id)
            self.network.log({"event": "cbs", "t": time.time(), "message_id": message_id,
                              "serial": number, "pages": len(pages), "text": text,
                              "given": given})
            if given:
                for n, page in enumerate(pages, start=1):
                    if n != skip_page:
                        self._urc(f"+CBM: {len(page) // 2}\r\n{page}")
            return {"pages": len(pages), "given": given, "serial": number}
