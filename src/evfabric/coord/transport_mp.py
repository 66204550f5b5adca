"""Processes on one node: one multiprocessing queue per PE (pickled messages)."""

from __future__ import annotations

import queue
from typing import Any

from evfabric.coord.transport import Transport

__all__ = ["ProcessTransport"]


class ProcessTransport(Transport):
    """PEs as processes: ``inboxes[p]`` is a ``multiprocessing.Queue`` read only by PE ``p``.

    A queue's feeder thread does the pickling and writing, so :meth:`send` never blocks on a
    slow reader (two PEs sending large batches to each other cannot deadlock).
    """

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

    def close(self) -> None:
        # Let feeder threads flush; our inbox is drained by the protocol's final handshake.
        for q in self._inboxes:
            q.close()
        for q in self._inboxes:
            q.join_thread()
