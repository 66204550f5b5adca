"""Small helpers shared by the fabric client tests."""

from __future__ import annotations

import itertools
import time

from evfabric.testing import wait_until as wait_until  # re-exported: the tests here import it from here

_ids = itertools.count()


def unique(prefix: str) -> str:
    """A topic root no other test uses (the session broker keeps streams between tests)."""
    return f"{prefix}{next(_ids)}x{int(time.time() * 1000) % 100000}"


