"""Where a reliable subscription starts reading a topic's stream (``subscribe(..., start=)``).

* ``"new"`` (default): only events stored from now on;
* ``"earliest"``: everything the topic still retains;
* ``"last"``: the last stored message (batch) and everything after it;
* an ``int``: from that stream sequence number on (``evfabric topic describe`` shows them);
* a ``float`` (seconds since the epoch) or a timezone-aware ``datetime``: from that time on.

A durable consumer (a group, or a named subscription) that already exists resumes where it left
off; ``start`` only matters when it is first created.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Union

from nats.js.api import DeliverPolicy

from evfabric.core.errors import ConfigError

__all__ = ["Start", "deliver_policy"]

Start = Union[str, int, float, _dt.datetime, None]


def deliver_policy(start: Start) -> tuple[DeliverPolicy, dict[str, Any]]:
    """The JetStream deliver policy (and its option) for ``start``; ConfigError if invalid."""
    if start is None or start == "new":
        return DeliverPolicy.NEW, {}
    if start == "earliest":
        return DeliverPolicy.ALL, {}
    if start == "last":
        return DeliverPolicy.LAST, {}
    if isinstance(start, bool):
        raise ConfigError(f"start must be 'new', 'earliest', 'last', a sequence, a time or a datetime, got {start!r}")
    if isinstance(start, int):
        if start < 1:
            raise ConfigError(f"start sequence must be >= 1, got {start}")
        return DeliverPolicy.BY_START_SEQUENCE, {"opt_start_seq": start}
    if isinstance(start, float):
        start = _dt.datetime.fromtimestamp(start, tz=_dt.timezone.utc)
    if isinstance(start, _dt.datetime):
        if start.tzinfo is None:
            raise ConfigError("start datetime must be timezone-aware")
        return DeliverPolicy.BY_START_TIME, {"opt_start_time": start.astimezone(_dt.timezone.utc)}
    raise ConfigError(f"start must be 'new', 'earliest', 'last', a sequence, a time or a datetime, got {start!r}")
