"""Small test helpers shared by every test module."""
from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 15.0, interval: float = 0.02,
             message: str = "condition") -> T:
    """Poll *predicate* until it returns something truthy; fail the test at the deadline.

    Tests wait on conditions with a deadline, never on a fixed sleep: a loaded CI machine
    makes fixed sleeps flaky, and a fast one makes them slow.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)  # ok-sleep: a polling interval inside a deadline, not a timing


def network_log(path, *, until: Callable[[list[dict]], bool], timeout: float = 10.0) -> list[dict]:
    """The simulated network's log, once *until* holds for its events.

    A submitted message is in the log before the modem answers +CMGS, but other events
    (status reports, inbound messages, a daemon's work in another process) land whenever
    they land: wait for the line instead of reading once.
    """
    def events() -> list[dict] | None:
        log = Path(path)
        lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
        parsed = [json.loads(line) for line in lines]
        return parsed if until(parsed) else None

    return wait_for(events, timeout=timeout, message=f"the network log {path} to show it")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now, for a web server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SteppedClock:
    """The appliance.clock.Clock a worker is given in a test: now() is what the test set, and
    sleep() moves it on at once (tests move time instead of sleeping)."""

    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)
