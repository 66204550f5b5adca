"""Small helpers shared by the fabric client tests."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

_ids = itertools.count()


def unique(prefix: str) -> str:
    """A topic root no other test uses (the session broker keeps streams between tests)."""
    return f"{prefix}{next(_ids)}x{int(time.time() * 1000) % 100000}"


def wait_until(cond: Callable[[], bool], timeout: float = 10.0, every: float = 0.02) -> bool:
    """Poll ``cond`` until true or ``timeout``; return its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(every)
    return cond()
