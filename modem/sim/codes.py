"""Final result codes that say no: ERROR, +CME ERROR (TS 27.007 9.2) and +CMS ERROR (TS 27.005 3.2.5)."""
from __future__ import annotations

# The +CME ERROR texts a Quectel prints with AT+CMEE=2.
CME_TEXT = {
    3: "operation not allowed", 4: "operation not supported", 10: "SIM not inserted",
    11: "SIM PIN required", 12: "SIM PUK required", 13: "SIM failure", 14: "SIM busy",
    16: "incorrect password", 30: "no network service", 50: "incorrect parameters",
    100: "unknown",
}

SIM_NOT_INSERTED, SIM_PIN_REQUIRED, SIM_PUK_REQUIRED = 10, 11, 12
# +CMS ERROR codes the simulated modem itself gives.
CMS_INVALID_PDU = 304
CMS_NOT_ALLOWED = 302
CMS_NOT_SUPPORTED = 303
CMS_SIM_NOT_INSERTED, CMS_SIM_PIN_REQUIRED = 310, 311
CMS_INVALID_INDEX = 321
CMS_UNKNOWN = 500       # "unknown error": what a modem says when SMS over LTE is refused
CMS_NO_NETWORK = 331
CMS_SMSC_UNKNOWN = 330  # SMSC address unknown
CMS_NO_CNMA_EXPECTED = 340  # TS 27.005 3.2.5: no +CNMA acknowledgement expected


class Failure(Exception):
    """A command failed; `line(cmee)` is the final result code the client sees."""

    def line(self, cmee: int) -> str:
        return "ERROR"


class CmeFailure(Failure):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code

    def line(self, cmee: int) -> str:
        if cmee == 1:
            return f"+CME ERROR: {self.code}"
        if cmee == 2:
            return f"+CME ERROR: {CME_TEXT.get(self.code, self.code)}"
        return "ERROR"


class CmsFailure(Failure):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code

    def line(self, cmee: int) -> str:
        # Numeric with CMEE 1 and 2: the client needs the code to tell temporary from permanent.
        return f"+CMS ERROR: {self.code}" if cmee else "ERROR"


def bad_parameters() -> CmeFailure:
    return CmeFailure(50)
