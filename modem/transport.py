"""Opening the modem's serial port: the only place a port is opened by name."""
from __future__ import annotations

import serial

from .errors import PortGone

# Bounds each read of a pyserial URL port (device and pty reads wait in select instead).
READ_TIMEOUT = 0.1


def open_port(path: str, *, baudrate: int = 115200) -> serial.SerialBase:
    """Open *path* (a device, a symlink such as /dev/tsunagu-modem0, or a pyserial URL).

    Exclusive, so a second process (ModemManager, a stray gammu) cannot interleave its AT
    commands with ours. A port that is not there raises PortGone: the caller retries later.
    """
    try:
        if "://" in path:
            return serial.serial_for_url(path, baudrate=baudrate, timeout=READ_TIMEOUT)
        return serial.Serial(path, baudrate=baudrate, timeout=READ_TIMEOUT, exclusive=True)
    except (serial.SerialException, OSError) as exc:
        raise PortGone(f"cannot open {path}: {exc}") from exc
