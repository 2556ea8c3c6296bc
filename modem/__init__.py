"""Talks AT to one LTE/GSM modem: transport → AT session → device API, plus the PDU codec.

modem.sim is the simulated modem, a peer implementation on a pseudo-terminal.
Nothing here imports appliance/: the driver knows modems, not broadcasts.
"""
