"""The simulated modem: a pseudo-terminal that answers AT like a Quectel EC25 with a Japanese
SIM, a small model of the network behind it, and a control socket to drive both.

`SimulatedModem` (modem.sim.modem) is the modem; `SimControl` (modem.sim.control) talks to a
running one from another process.
"""
from .control import SimControl, SimControlError
from .modem import SimulatedModem, parse_delay

__all__ = ["SimulatedModem", "SimControl", "SimControlError", "parse_delay"]
