"""Small test helpers shared by every test module."""
from __future__ import annotations

import time
from collections.abc import Callable
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
