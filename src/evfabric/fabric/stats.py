"""The counters of one fabric client (``client.stats``), shared by its parts (publisher,
receivers, loss report) and shipped by the monitor's reporter."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FabricStats"]


@dataclass
class FabricStats:
    """Counters of one client (events unless said)."""

    published: int = 0  # accepted by publish calls
    sent: int = 0  # best effort, handed to the connection
    stored: int = 0  # reliable, acknowledged by the broker
    resent: int = 0  # reliable batches sent again (no acknowledgement in time)
    duplicate_batches: int = 0  # re-sent batches the broker had already stored
    dropped: int = 0  # best effort, dropped (disconnected, overflow, backlog)
    slow_consumer_msgs: int = 0  # messages nats-py dropped for a slow subscription
    garbage: int = 0  # received messages that did not decode
    disconnects: int = 0
    reconnects: int = 0
