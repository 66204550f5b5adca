"""The trigger runner as a service of ``evfabric serve``: one replica beside the broker."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from urllib.parse import urlsplit

from evfabric.fabric.server import BrokerServer

from evfabric.triggers.runner import RunnerThread

__all__ = ["start_with_broker"]


def start_with_broker(
    broker_url: str, *, monitor_url: str | None = None, servers: Sequence[BrokerServer] = ()
) -> Callable[[], None]:
    """Start a trigger runner replica on ``broker_url``; return the function that stops it.

    When the broker enforces access control, the runner connects as ``evfabric serve``'s own
    service identity (see :mod:`evfabric.access.internal`), and each trigger with a ``run_as``
    identity consumes through a session of that identity.
    """
    url = broker_url
    credentials: Callable[[str], str] | None = None
    if servers:
        from evfabric.access.internal import access_enabled, identity_token, service_url

        data_dir = servers[0].data_dir
        if urlsplit(broker_url).password is None:
            url = service_url(broker_url, data_dir)
        if access_enabled(data_dir):
            # each trigger consumes as its run_as identity: the broker grants it that identity's rights
            credentials = partial(identity_token, data_dir)

    runner = RunnerThread(url, replica="serve", credentials=credentials)
    return runner.stop
