"""The trigger runner as a service of ``evfabric serve``: one replica beside the broker."""

from __future__ import annotations

from collections.abc import Callable

from evfabric.triggers.runner import RunnerThread

__all__ = ["start_with_broker"]


def start_with_broker(broker_url: str, *, monitor_url: str | None = None) -> Callable[[], None]:
    """Start a trigger runner replica on ``broker_url``; return the function that stops it."""
    runner = RunnerThread(broker_url, replica="serve")
    return runner.stop
