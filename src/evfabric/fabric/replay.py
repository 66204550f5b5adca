"""Where a reliable subscription starts reading a topic's stream (``subscribe(..., start=)``).

* ``"new"`` (default): only events stored from now on;
* ``"earliest"``: everything the topic still retains;
* ``"last"``: the last stored message (batch) and everything after it;
* an ``int``: from that stream sequence number on (``evfabric topic describe`` shows them);
* a position (docs/wire.md section 8): a :class:`~evfabric.core.position.Position` (an event's
  ``event.position``) or its text ``"<seq>:<index>"``: from exactly that event (message ``seq``
  without its first ``index`` events); the pattern must then reach one topic (a position is in
  one stream), and the message must be stored with more than ``index`` events;
* a ``float`` (seconds since the epoch) or a timezone-aware ``datetime``: from that time on.

A durable consumer (a group, or a named subscription) that already exists resumes where it left
off; ``start`` only matters when it is first created.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from nats.js.api import DeliverPolicy

from evfabric.bus import Start
from evfabric.core.errors import ConfigError
from evfabric.core.position import Position, position_of

__all__ = ["Start", "deliver_policy", "start_position"]

_KINDS = "'new', 'earliest', 'last', a sequence, a position '<seq>:<index>', a time or a datetime"


def start_position(start: Start | str) -> Position | None:
    """The event position ``start`` names (a :class:`Position` or ``"<seq>:<index>"``), else None;
    ConfigError for a malformed one."""
    if isinstance(start, str) and start not in ("new", "earliest", "last") and ":" not in start:
        raise ConfigError(f"start must be {_KINDS}, got {start!r}")
    return position_of(start)


def deliver_policy(start: Start | str) -> tuple[DeliverPolicy, dict[str, Any]]:
    """The JetStream deliver policy (and its option) for ``start``; ConfigError if invalid."""
    pos = start_position(start)
    if pos is not None:
        return DeliverPolicy.BY_START_SEQUENCE, {"opt_start_seq": pos.seq}
    if start is None or start == "new":
        return DeliverPolicy.NEW, {}
    if start == "earliest":
        return DeliverPolicy.ALL, {}
    if start == "last":
        return DeliverPolicy.LAST, {}
    if isinstance(start, bool):
        raise ConfigError(f"start must be {_KINDS}, got {start!r}")
    if isinstance(start, int):
        if start < 1:
            raise ConfigError(f"start sequence must be >= 1, got {start}")
        return DeliverPolicy.BY_START_SEQUENCE, {"opt_start_seq": start}
    if isinstance(start, float):
        start = _dt.datetime.fromtimestamp(start, tz=_dt.UTC)
    if isinstance(start, _dt.datetime):
        if start.tzinfo is None:
            raise ConfigError("start datetime must be timezone-aware")
        return DeliverPolicy.BY_START_TIME, {"opt_start_time": start.astimezone(_dt.UTC)}
    raise ConfigError(f"start must be {_KINDS}, got {start!r}")
