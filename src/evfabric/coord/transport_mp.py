"""Processes on one node: one multiprocessing queue per PE (pickled messages)."""

from __future__ import annotations

from evfabric.coord.transport import QueueTransport

__all__ = ["ProcessTransport"]


class ProcessTransport(QueueTransport):
    """PEs as processes: ``inboxes[p]`` is a ``multiprocessing.Queue`` read only by PE ``p``.

    A queue's feeder thread does the pickling and writing, so :meth:`send` never blocks on a
    slow reader (two PEs sending large batches to each other cannot deadlock).
    """

    def close(self) -> None:
        # Let feeder threads flush; our inbox is drained by the protocol's final handshake.
        for q in self._inboxes:
            q.close()
        for q in self._inboxes:
            q.join_thread()
