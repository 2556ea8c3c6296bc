"""Telling the daemon "look now" when work was queued: a datagram to a socket beside the
database.

The database stays the only channel for *what* is to be done; the doorbell only shortens
the wait before the daemon looks (its workers otherwise look every IDLE_WAIT). So ringing
is best-effort by design: when the daemon is not running, or its doorbell is already
ringing, nobody needs the ring, and ring() says so by returning False.
"""
from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

log = logging.getLogger(__name__)

# sun_path is 108 bytes on Linux; a longer path gets no doorbell (the daemon still polls).
MAX_SOCKET_PATH = 107


def socket_path(database: str | os.PathLike) -> Path | None:
    """Where the daemon for *database* listens; None for databases without a file."""
    if str(database) in ("", ":memory:"):
        return None
    path = Path(os.path.abspath(f"{database}.wake"))
    return path if len(os.fsencode(path)) <= MAX_SOCKET_PATH else None


def ring(database: str | os.PathLike) -> bool:
    """Wake the daemon serving *database*, after a commit that queued work; False when
    nobody listens (the daemon is stopped) or it was rung already."""
    path = socket_path(database)
    if path is None:
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        try:
            sock.sendto(b"!", str(path))
        except (FileNotFoundError, ConnectionRefusedError, BlockingIOError):
            return False  # not running, or rung already
        except OSError as exc:
            # The work is queued either way (the daemon finds it within a moment); what is
            # wrong with the socket must still be seen.
            log.warning("could not ring the daemon's doorbell %s: %s", path, exc)
            return False
    return True


class Doorbell:
    """The daemon's end: readable (select) when rung; clear() takes the rings."""

    def __init__(self, database: str | os.PathLike) -> None:
        self.path = socket_path(database)
        self._sock: socket.socket | None = None
        if self.path is None:
            return
        # A socket left by a daemon that died: the daemon's lock says we are the only one.
        if self.path.is_socket():
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind(str(self.path))
        self._sock = sock

    def fileno(self) -> int | None:
        return self._sock.fileno() if self._sock is not None else None

    def clear(self) -> int:
        """Take every ring waiting; returns how many."""
        rings = 0
        while self._sock is not None:
            try:
                self._sock.recv(64)
            except BlockingIOError:
                break
            rings += 1
        return rings

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            if self.path is not None and self.path.is_socket():
                try:
                    self.path.unlink()
                except OSError as exc:
                    # A read-only disk: the next start finds the stale socket and replaces it.
                    log.info("cannot remove the doorbell %s: %s", self.path, exc)
