"""The simulated modem's serial port: the master end of a pseudo-terminal, reachable through a
symlink, that can vanish and come back like a USB modem being unplugged and plugged in.
"""
from __future__ import annotations

import errno
import os
import select
import time
import tty
from pathlib import Path

# How long a write may wait for a slow reader before the rest is dropped. A real UART without
# flow control drops too; waiting forever would hang the modem on a client that stopped reading.
WRITE_PATIENCE = 2.0


class PtyPort:
    """One pty at a time; `plug()` makes a new one and points *link* at it, `unplug()` closes it.

    The modem holds only the master end. With no client holding the slave open, the kernel
    reports a hang-up on the master, which is how the modem knows nobody is listening: output
    is then dropped, as a USB modem's output is lost while no program has the port open,
    instead of waiting in the pty to confuse the next client.
    """

    def __init__(self, link: str | os.PathLike) -> None:
        self.link = Path(link)
        self.master: int | None = None
        self.device: str | None = None
        self.dropped_bytes = 0

    @property
    def plugged(self) -> bool:
        return self.master is not None

    def plug(self) -> str:
        """Open a fresh pty in raw mode and point the symlink at its slave; returns the device."""
        if self.master is not None:
            return self.device
        master, slave = os.openpty()
        try:
            tty.setraw(slave)  # no line discipline: no echo, no CR/NL translation
            device = os.ttyname(slave)
        finally:
            os.close(slave)  # the client opens it by name; the pty stays while master is open
        os.set_blocking(master, False)
        self.master, self.device = master, device
        self._point_link(device)
        return device

    def unplug(self) -> None:
        """The port vanishes: clients' reads fail and the symlink goes away."""
        master, self.master, self.device = self.master, None, None
        if self.link.is_symlink():
            self.link.unlink()
        if master is not None:
            os.close(master)

    def _point_link(self, device: str) -> None:
        # Replace atomically so a client polling for the link never sees it missing.
        temporary = self.link.with_name(f".{self.link.name}.{os.getpid()}.new")
        if temporary.is_symlink():
            temporary.unlink()
        temporary.symlink_to(device)
        os.replace(temporary, self.link)

    def client_present(self) -> bool:
        """Whether some program has the port open (no hang-up on the master)."""
        if self.master is None:
            return False
        poller = select.poll()
        poller.register(self.master, select.POLLIN)
        events = poller.poll(0)
        return not (events and events[0][1] & select.POLLHUP and not events[0][1] & select.POLLIN)

    def read(self) -> bytes:
        """What the client wrote, or b"" when nothing (or only a hang-up) is there."""
        if self.master is None:
            return b""
        try:
            return os.read(self.master, 4096)
        except BlockingIOError:
            return b""
        except OSError as exc:
            if exc.errno == errno.EIO:  # the client closed the port; see client_present()
                return b""
            raise

    def write(self, data: bytes) -> None:
        """Send to the client; dropped when no client has the port open or it stops reading."""
        if self.master is None or not self.client_present():
            self.dropped_bytes += len(data)
            return
        deadline = time.monotonic() + WRITE_PATIENCE
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.master, view):]
            except BlockingIOError:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([], [self.master], [], remaining)[1]:
                    break
            except OSError as exc:
                if exc.errno != errno.EIO:
                    raise
                break  # the client went away mid-write
        self.dropped_bytes += len(view)
