"""The ``fabric`` fixture: the same scenarios on the in-memory broker and on a real nats-server.

``fabric.connect(source)`` gives a Bus client; ``fabric.settle(cond)`` waits until ``cond()``
holds: the memory broker's ``join()`` (then ``cond()``), or polling against the real broker.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from evfabric.testing import MemoryBroker, wait_until

_roots = itertools.count()


class _Fabric:
    kind = ""

    def __init__(self) -> None:
        self.clients: list[Any] = []

    def root(self, prefix: str) -> str:
        """A topic root no other test uses (the real broker keeps streams between tests)."""
        return f"{prefix}{next(_roots)}x{int(time.time() * 1000) % 1_000_000}"

    def connect(self, source: str) -> Any:
        raise NotImplementedError

    def settle(self, cond: Callable[[], bool], timeout: float = 15.0) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        for c in self.clients:
            c.close()


class _Memory(_Fabric):
    kind = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.broker = MemoryBroker()

    def connect(self, source: str) -> Any:
        c = self.broker.connect(source=source)
        self.clients.append(c)
        return c

    def settle(self, cond: Callable[[], bool], timeout: float = 15.0) -> bool:
        self.broker.join(timeout)
        if cond():
            return True
        self.broker.join(timeout)  # cond may publish (a probe): deliver that too, then look again
        return cond()


class _Real(_Fabric):
    kind = "nats"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def connect(self, source: str) -> Any:
        import evfabric

        c = evfabric.connect(self.url, source=source)
        self.clients.append(c)
        return c

    def settle(self, cond: Callable[[], bool], timeout: float = 15.0) -> bool:
        def flushed() -> bool:
            for c in self.clients:
                c.flush(timeout)
            return cond()

        return wait_until(flushed, timeout, every=0.02)  # a condition the broker's threads make true


@pytest.fixture(params=["memory", "nats"])
def fabric(request: pytest.FixtureRequest) -> Iterator[_Fabric]:
    if request.param == "memory":
        fab: _Fabric = _Memory()
    else:
        fab = _Real(request.getfixturevalue("broker_session").url)
    try:
        yield fab
    finally:
        fab.close()
