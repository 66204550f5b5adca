"""The trigger runner as a service of ``evfabric serve``: one replica beside the broker."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from evfabric.fabric.server import BrokerServer

from evfabric.triggers.runner import RunnerThread

__all__ = ["start_with_broker"]


def start_with_broker(
    broker_url: str, *, monitor_url: str | None = None, servers: Sequence[BrokerServer] = ()
) -> Callable[[], None]:
    """Start a trigger runner replica on ``broker_url``; return the function that stops it.

    When the broker enforces access control, the runner connects as ``evfabric serve``'s own
    service identity (see :mod:`evfabric.access.internal`).
    """
    url = broker_url
    if servers and urlsplit(broker_url).password is None:
        from evfabric.access.internal import service_url

        url = service_url(broker_url, servers[0].data_dir)
    runner = RunnerThread(url, replica="serve")
    return runner.stop
