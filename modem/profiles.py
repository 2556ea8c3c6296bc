"""What differs between modem families: a small table, chosen from AT+CGMI / AT+CGMM.

Everything Tsunagu needs is 3GPP (TS 27.005 / 27.007) and works on any modem; a profile adds
what a family does its own way — the commands that put it in a known state after a boot, the
notices it prints when it has (re)started, how it names its ICCID, network time and IMS — and
its known quirks, each with the public report it comes from. An unknown modem gets the
generic 3GPP profile, which asks only standard commands.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Profile:
    name: str                        # "quectel", "simcom", "generic"
    family: str                      # for people: "Quectel EC2x/EG2x"
    # Sent first when the modem is set up, before the settings every modem gets.
    init: tuple[str, ...] = ()
    # Lines the modem prints by itself after a boot: first that it restarted (its settings
    # are gone), then that SMS is usable again.
    restarted_notices: tuple[str, ...] = ("RDY",)
    ready_notices: tuple[str, ...] = ()
    iccid_command: str = "AT+CCID"
    # How to read the network's time: "qlts" (Quectel, UTC and zone) or "cclk" (the modem's
    # clock, set from the network once AT+CTZU=1).
    network_time: str = "cclk"
    # How to read IMS (VoLTE, SMS over IMS) registration: "qcfg" (AT+QCFG="ims") or
    # "cireg" (TS 27.007 8.71 AT+CIREG?).
    ims: str = "cireg"
    # Whether the modem chooses a carrier configuration (Quectel MBN) we can read and fix.
    carrier_profiles: bool = False
    quirks: tuple[str, ...] = field(default=())


QUECTEL = Profile(
    name="quectel", family="Quectel EC2x/EG2x",
    # EC25 AT manual V1.3, "URCs after power-on" / AT+QINDCFG: RDY, +CPIN: READY,
    # +QUSIM: 1, +QIND: SMS DONE, +QIND: PB DONE.
    ready_notices=("+QIND: SMS DONE", "+QIND: PB DONE"),
    iccid_command="AT+QCCID", network_time="qlts", ims="qcfg", carrier_profiles=True,
    quirks=(
        # SMS over LTE needs IMS on Japanese networks (3G is gone: au 2022, SoftBank 2024,
        # docomo FOMA 2026-03-31). With the wrong MBN (carrier configuration) an EG25
        # sends nothing in 4G but works in 2G/3G: the-modem-distro/pinephone_modem_sdk#40
        # ("SMS send don't work in 4G-mode"); +QCFG: "ims",<mode>,<state> shows whether
        # IMS is ready: the-modem-distro/pinephone_modem_sdk#250.
        "IMS and the carrier profile (MBN) decide whether SMS works over LTE",
        # AT+QMBNCFG="AutoSel",1 lets the modem pick the MBN from the SIM; a profile chosen
        # by hand survives a SIM change: EFForg/rayhunter#480.
        "the carrier profile is chosen automatically only with AT+QMBNCFG=\"AutoSel\",1",
    ),
)

SIMCOM = Profile(
    name="simcom", family="SIMCom SIM7600",
    # A SIM7600G-H refused SMS after a reboot until AT&F restored the factory profile:
    # Xinyuan-LilyGO/LilyGo-Modem-Series#340. AT&F first, then our own settings on top.
    init=("AT&F",),
    # SIMCom's boot notices: RDY, +CPIN: READY, SMS DONE, PB DONE
    # (Xinyuan-LilyGO/LilyGo-Modem-Series#79 shows them in a boot log).
    ready_notices=("SMS DONE", "PB DONE"),
    iccid_command="AT+CICCID", network_time="cclk", ims="cireg",
    quirks=(
        "SMS refused after a reboot until AT&F (LilyGo-Modem-Series#340): AT&F is sent first",
        # Some operators reject SMS over LTE from a SIM7600 ("+CMS ERROR: Unknown error")
        # while 3G works: Xinyuan-LilyGO/T-SIM7600X#85. In Japan there is no 3G to fall back
        # on, so doctor checks IMS registration.
        "SMS over LTE can fail with +CMS ERROR 500 when IMS is not registered",
    ),
)

# The carrier configuration (Quectel MBN) each Japanese network needs, by MCC-MNC, as
# AT+QMBNCFG="List" names them (the-modem-distro/pinephone_modem_sdk#40).
QUECTEL_CARRIER_MBN = {"44010": "Commercial-DCM", "44050": "Commercial-KDDI",
                       "44051": "Commercial-KDDI", "44020": "Commercial-SBM",
                       "44011": "Commercial-Rakuten"}

GENERIC = Profile(name="generic", family="3GPP (generic)",
                  ready_notices=("+QIND: SMS DONE", "SMS DONE"))

PROFILES = (QUECTEL, SIMCOM, GENERIC)


def choose(manufacturer: str | None, model: str | None) -> Profile:
    """The profile for the modem that answered AT+CGMI / AT+CGMM (GENERIC when unknown)."""
    maker, name = (manufacturer or "").upper(), (model or "").upper()
    if "QUECTEL" in maker and name.startswith(("EC2", "EG2", "EM0", "EP0")):
        return QUECTEL
    if "SIMCOM" in maker and "SIM7600" in name:
        return SIMCOM
    return GENERIC


def by_name(name: str) -> Profile:
    for profile in PROFILES:
        if profile.name == name:
            return profile
    raise ValueError(f"unknown modem profile {name!r}; known: "
                     f"{', '.join(p.name for p in PROFILES)}")
