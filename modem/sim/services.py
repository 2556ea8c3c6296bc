"""The simulated modem's answers about the network's services: IMS, the carrier configuration,
network time, signal quality, the SMS bearer — and the faults a field installation meets
with them (IMS not registered, the wrong carrier profile, the clock of a network with an
offset). A mixin of SimulatedModem: it uses the modem's lock, its writer and its state.

Formats: TS 27.007 (+CIREG 8.71, +CESQ 8.69, +CCLK 8.15, +CTZU 8.41, +CGSMS 10.1.20),
Quectel's EC25 AT manual (AT+QCFG="ims", AT+QMBNCFG, AT+QLTS), and the answers users
posted (the-modem-distro/pinephone_modem_sdk#40 and #250 for QMBNCFG and QCFG "ims").
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ..profiles import QUECTEL_CARRIER_MBN
from .codes import bad_parameters

# The MBN (carrier configuration) a Quectel picks for each Japanese network, by MCC-MNC.
CARRIER_MBN = QUECTEL_CARRIER_MBN
MBN_LIST = ("ROW_Generic_3GPP", "Commercial-DCM", "Commercial-KDDI", "Commercial-SBM",
            "Commercial-Rakuten")
JST_QUARTERS = 36  # +09:00 in quarter hours, as +CCLK and +QLTS give the zone


class NetworkServices:
    """IMS, carrier configuration, time, signal and bearer commands, and their faults."""

    # -- time ------------------------------------------------------------------------------
    def network_time(self) -> datetime | None:
        """What the network says the time is (NITZ), None before the modem heard it."""
        if not self.registered:
            return None
        return datetime.now(timezone.utc) + timedelta(seconds=self.network.time_offset)

    def _at_ctzu(self, arg):
        if arg == "?":
            return [f"+CTZU: {self.ctzu}"]
        if arg == "=?":
            return ["+CTZU: (0,1)"]
        if arg not in ("0", "1"):
            raise bad_parameters()
        self.ctzu = int(arg)
        return []

    def _at_qlts(self, arg):
        """AT+QLTS[=<mode>]: 0/1 the network's time in UTC with its zone, 2 local time."""
        if arg == "=?":
            return ["+QLTS: (0-2)"]
        mode = int(arg or 0)
        if mode not in (0, 1, 2):
            raise bad_parameters()
        now = self.network_time()
        if now is None:
            return ['+QLTS: ""']
        if mode == 2:
            now = now + timedelta(hours=9)
        return [f'+QLTS: "{now:%Y/%m/%d,%H:%M:%S}+{JST_QUARTERS},0"']

    def _at_cclk(self, arg):
        """The modem's clock: the network's local time once +CTZU=1 let it take it."""
        if arg == "=?":
            return []
        if arg != "?":
            return []  # setting the clock by hand: accepted, and overwritten by the network
        now = self.network_time() if self.ctzu else None
        if now is None:
            return ['+CCLK: "80/01/06,00:00:00+00"']  # never set: the firmware's epoch
        local = now + timedelta(hours=9)
        return [f'+CCLK: "{local:%y/%m/%d,%H:%M:%S}+{JST_QUARTERS}"']

    # -- IMS and the carrier configuration ---------------------------------------------------
    def _at_cireg(self, arg):
        if arg == "=?":
            return ["+CIREG: (0-2)"]
        if arg == "?":
            return [f"+CIREG: {self.cireg},{int(self.ims_registered)}"]
        if arg not in ("0", "1", "2"):
            raise bad_parameters()
        self.cireg = int(arg)
        return []

    def _at_qcfg(self, arg):
        name, _, value = arg.partition(",")
        if name.strip('"').lower() != "ims":
            return []  # the many other QCFG settings: accepted, not simulated
        if not value:
            return [f'+QCFG: "ims",{self.ims_mode},{int(self.ims_registered)}']
        if value not in ("0", "1", "2"):
            raise bad_parameters()
        self.ims_mode = int(value)
        return []

    def _at_qmbncfg(self, arg):
        parts = [p.strip().strip('"') for p in arg.split(",")]
        what = parts[0].lower()
        if what == "autosel":
            if len(parts) == 1:
                return [f'+QMBNCFG: "AutoSel",{self.mbn_autosel}']
            if parts[1] not in ("0", "1"):
                raise bad_parameters()
            self.mbn_autosel = int(parts[1])  # takes effect at the next boot
            return []
        if what == "list":
            return [f'+QMBNCFG: "List",{i},{int(name == self.mbn_selected)},'
                    f'{int(name == self.mbn_active)},"{name}",0x0501081F,201901141'
                    for i, name in enumerate(MBN_LIST)]
        if what == "select" and len(parts) == 2:
            if parts[1] not in MBN_LIST:
                raise bad_parameters()
            self.mbn_selected = parts[1]
            return []
        raise bad_parameters()

    # -- signal and bearer -------------------------------------------------------------------
    def _at_cesq(self, arg):
        """<rxlev>,<ber>,<rscp>,<ecno>,<rsrq>,<rsrp>: on LTE only the last two are known."""
        if arg == "=?":
            return ["+CESQ: (0-63,99),(0-7,99),(0-96,255),(0-49,255),(0-34,255),(0-97,255)"]
        csq = self.network.csq if self.radio_on else 99
        if csq == 99:
            return ["+CESQ: 99,99,255,255,255,255"]
        rsrp_dbm = -113 + 2 * csq - 27  # an RSRP that goes with that RSSI on a 10 MHz cell
        rsrp = max(0, min(97, rsrp_dbm + 141))
        rsrq = max(0, min(34, 24 if csq >= 15 else 8))  # -8 dB and -16 dB
        return [f"+CESQ: 99,99,255,255,{rsrq},{rsrp}"]

    def _at_cgsms(self, arg):
        if arg == "?":
            return [f"+CGSMS: {self.network.sms_bearer}"]
        if arg == "=?":
            return ["+CGSMS: (0-3)"]
        if arg not in ("0", "1", "2", "3"):
            raise bad_parameters()
        self.network.sms_bearer = int(arg)
        return []

    def _at_cpsi(self, arg):
        """SIMCom's serving cell summary (its RSRP and RSRQ in tenths)."""
        if not self.registered:
            return ["+CPSI: NO SERVICE,Online"]
        return ["+CPSI: LTE,Online,440-10,0x1A2B,29179091,291,EUTRAN-BAND1,100,5,5,"
                "-90,-950,-650,15"]

    def _at_qindcfg(self, arg):
        return []  # which +QIND notices to print: all of them, as by default

    # -- faults, for tests and the control socket -------------------------------------------
    def set_ims(self, available: bool) -> None:
        """Whether the network offers IMS (SMS over LTE needs it here)."""
        with self._lock:
            self.network.ims_available = bool(available)

    def set_carrier_profile(self, name: str) -> None:
        """Select a carrier configuration by hand and turn automatic choice off, as a
        modem bought abroad or set up by someone else may come (effective after a boot)."""
        if name not in MBN_LIST:
            raise ValueError(f"carrier profile must be one of {', '.join(MBN_LIST)}, got {name!r}")
        with self._lock:
            self.mbn_autosel = 0
            self.mbn_selected = self.mbn_active = name

    def hang(self, kind: str = "sms") -> None:
        """The firmware hangs: "sms" (sends are never answered; a reset clears it) or
        "total" (nothing is answered; only a power cycle clears it)."""
        if kind not in ("sms", "total"):
            raise ValueError(f"hang must be 'sms' or 'total', got {kind!r}")
        with self._lock:
            self.hung = kind

    def set_network_time_offset(self, seconds: float) -> None:
        """The network's clock runs *seconds* ahead of this machine's (negative: behind)."""
        with self._lock:
            self.network.time_offset = float(seconds)

    def clear_smsc(self) -> None:
        """The SMS centre in use is emptied (as a factory reset of some modems does)."""
        with self._lock:
            self.smsc = ""

    def set_reject_cause(self, cause: int | None) -> None:
        """The EMM cause the network gives when it denies registration (TS 24.301 9.9.3.9)."""
        with self._lock:
            self.network.reject_cause = cause
