"""Transports: how processing elements (PEs) of one run pass messages to each other.

A transport connects ``size`` PEs numbered ``0 .. size-1``. Point-to-point sends are
asynchronous and FIFO per ordered pair of PEs; :meth:`Transport.recv` takes the next message
from any PE. The collectives (:meth:`exchange`, :meth:`gather`) are built on those two, so
that they interleave safely with point-to-point traffic: a message that belongs to a later
round is kept aside for it. Concrete transports: :class:`ThreadTransport` (here),
``ProcessTransport`` (multiprocessing) and ``MpiTransport`` (mpi4py).
"""

from __future__ import annotations

import queue
import time
from abc import ABC, abstractmethod
from collections import deque
from typing import Any

from evfabric.core.errors import DeadlockDetected

__all__ = ["ThreadTransport", "Transport"]


class Transport(ABC):
    """One PE's end of the connections between the PEs of a run."""

    rank: int
    size: int

    def __init__(self, rank: int, size: int) -> None:
        self.rank = rank
        self.size = size
        self._early: dict[int, deque[Any]] = {p: deque() for p in range(size)}
        self.timeout: float | None = None  # for blocking waits in collectives; None = forever

    @abstractmethod
    def send(self, peer: int, msg: Any) -> None:
        """Queue ``msg`` for ``peer``; never blocks on the receiver."""

    @abstractmethod
    def _recv(self, timeout: float | None) -> tuple[int, Any] | None:
        """The next (peer, message) from any PE, or None after ``timeout`` seconds."""

    def recv(self, timeout: float | None = None) -> tuple[int, Any] | None:
        """The next (peer, message), first from messages kept aside by a collective."""
        for p, q in self._early.items():
            if q:
                return p, q.popleft()
        return self._recv(timeout)

    def _recv_from(self, peer: int, pending: dict[int, deque[Any]]) -> Any:
        """Receive until a message from ``peer`` is at hand; others are kept in ``pending``."""
        while not pending[peer]:
            got = self._recv(self.timeout)
            if got is None:
                raise DeadlockDetected(
                    f"PE {self.rank} waited {self.timeout}s for PE {peer} in a collective "
                    f"(wait-for: {self.rank} -> {peer})"
                )
            pending[got[0]].append(got[1])
        return pending[peer].popleft()

    def exchange(self, msgs: list[Any]) -> list[Any]:
        """All-to-all: send ``msgs[p]`` to each PE p, return the message each PE sent here.

        ``result[self.rank]`` is ``msgs[self.rank]``. Every PE must call it the same number of
        times; point-to-point messages must not be in flight meanwhile.
        """
        for p in range(self.size):
            if p != self.rank:
                self.send(p, msgs[p])
        return [msgs[p] if p == self.rank else self._recv_from(p, self._early) for p in range(self.size)]

    def gather(self, item: Any, root: int = 0) -> list[Any] | None:
        """Every PE's ``item`` at ``root`` (in rank order); None elsewhere."""
        if self.rank != root:
            self.send(root, item)
            return None
        return [item if p == root else self._recv_from(p, self._early) for p in range(self.size)]

    def close(self) -> None:  # noqa: B027 - optional hook, most transports hold nothing
        """Release resources; messages still queued may be dropped."""


class QueueTransport(Transport):
    """PEs that each read one queue (``inboxes[p]`` is PE p's); the queue type decides the rest."""

    def __init__(self, rank: int, inboxes: list[Any]) -> None:
        super().__init__(rank, len(inboxes))
        self._inboxes = inboxes
        self._mine = inboxes[rank]

    def send(self, peer: int, msg: Any) -> None:
        self._inboxes[peer].put((self.rank, msg))

    def _recv(self, timeout: float | None) -> tuple[int, Any] | None:
        try:
            if timeout == 0:
                return self._mine.get_nowait()
            return self._mine.get(timeout=timeout)
        except queue.Empty:
            return None


class ThreadTransport(QueueTransport):
    """PEs as threads of one process: one unbounded queue per PE; messages are not copied."""

    @staticmethod
    def group(size: int) -> list[ThreadTransport]:
        """Transports for ``size`` threads, connected to each other."""
        inboxes: list[queue.SimpleQueue[tuple[int, Any]]] = [queue.SimpleQueue() for _ in range(size)]
        return [ThreadTransport(r, inboxes) for r in range(size)]


def wait_time(t0: float) -> float:
    """Seconds since ``t0`` (perf_counter); a helper for sync-time accounting."""
    return time.perf_counter() - t0
