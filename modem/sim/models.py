"""The modem models the simulated modem can be: what each answers to identity queries, how it
names its vendor commands and what it prints after a boot.

Taken from the vendors' AT manuals and public logs (see modem/profiles.py for the sources
of each behaviour the driver relies on); the simulated modem answers every 3GPP command the
same way whichever model it is.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Model:
    key: str                         # what `tsunagu sim --model` takes
    manufacturer: str
    model: str
    revision: str
    revision_prefix: str             # SIMCom answers AT+CGMR with "+CGMR: …"
    iccid_command: str               # the vendor's ICCID command (without AT+)
    iccid_prefix: str
    boot_notices: tuple[str, ...]    # after RDY and +CPIN: …, once the SIM is ready
    vendor_commands: frozenset[str]  # vendor commands this model knows (others: ERROR)
    # SIMCom SIM7600: after a reboot SMS is refused until AT&F (LilyGo-Modem-Series#340).
    refuses_sms_until_factory_reset: bool = False


EC25 = Model(
    key="ec25", manufacturer="Quectel", model="EC25", revision="EC25JFAR06A06M4G",
    revision_prefix="", iccid_command="QCCID", iccid_prefix="+QCCID: ",
    boot_notices=("+QUSIM: 1", "+QIND: SMS DONE", "+QIND: PB DONE"),
    vendor_commands=frozenset({"QCCID", "QLTS", "QCFG", "QMBNCFG", "QINDCFG"}))

SIM7600 = Model(
    key="sim7600", manufacturer="SIMCOM INCORPORATED", model="SIMCOM_SIM7600JC-H",
    revision="LE20B04SIM7600M22", revision_prefix="+CGMR: ", iccid_command="CICCID",
    iccid_prefix="+ICCID: ", boot_notices=("SMS DONE", "PB DONE"),
    vendor_commands=frozenset({"CICCID", "CPSI"}), refuses_sms_until_factory_reset=True)

MODELS = {m.key: m for m in (EC25, SIM7600)}
# Every vendor command some model knows: a model that does not know one answers ERROR.
VENDOR_COMMANDS = frozenset().union(*(m.vendor_commands for m in MODELS.values()))


def model_named(key: str) -> Model:
    try:
        return MODELS[key]
    except KeyError:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {key!r}") from None
