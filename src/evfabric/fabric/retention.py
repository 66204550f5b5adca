"""Retention by count in events: a topic's ``max_events`` (docs/fabric.md "Retention").

JetStream limits a stream by messages, bytes and age; a message is a batch of events, so "keep
the last N events" needs a trimmer: :class:`EventTrimmer` counts each such topic's stored events
incrementally (:class:`~evfabric.fabric.positions.StoredEvents`, headers only) and, when they
exceed ``max_events``, purges the oldest whole messages, the fewest that bring the count to
``max_events`` or below. So after each pass a topic holds the newest messages whose events sum
to at most ``max_events``: a message is never split, so it may hold fewer (by less than one
message's events: ``max_events`` - ``max_batch`` + 1 at worst). Between passes (every ``interval``
seconds) a topic may exceed the limit by what is published meanwhile. A topic shares its
stream with its namespace, so nothing else enforces ``max_events``: without a trimmer it is
not enforced.

``evfabric serve`` runs one (with its other services, under the service's administrative
credentials: purging needs them under access control); elsewhere run :func:`trim_topics` or an
:class:`EventTrimmer` beside the broker.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

import nats
import nats.errors
import nats.js.errors as jserr

from evfabric.fabric.positions import StoredEvents
from evfabric.fabric.streams import TopicInfo, list_topics

__all__ = ["EventTrimmer", "start_with_broker", "trim_topic", "trim_topics"]

log = logging.getLogger("evfabric.fabric")

INTERVAL = 1.0  # seconds between trimming passes


async def trim_topic(js: Any, stored: StoredEvents, info: TopicInfo) -> int:
    """Purge the oldest messages of topic ``info`` while its stored events exceed its
    ``max_events``; returns the messages purged (0 when within the limit or unlimited)."""
    limit = info.config.max_events
    if not limit or info.messages == 0 or info.config.raw:  # a raw topic's stream enforces its own
        return 0
    subjects = info.config.subjects
    await stored.count(info.stream, subjects, info.first_seq, info.last_seq)
    counts = stored.counts(info.stream, subjects)
    cut = counts.keep_from(limit) if counts is not None else None
    if counts is None or cut is None:
        return 0
    for subject in subjects:  # per subject filter: another topic's messages in the stream stay
        await js.purge_stream(info.stream, subject=subject, seq=cut)
    before = counts.messages
    counts.drop_below(cut)
    return before - counts.messages


async def trim_topics(js: Any, stored: StoredEvents) -> dict[str, int]:
    """One pass over every topic with ``max_events``: messages purged per topic trimmed."""
    out: dict[str, int] = {}
    infos = await list_topics(js)
    trimmed = [i for i in infos if i.config.max_events and not i.config.raw]
    await stored.keep_only({i.stream for i in trimmed})
    for info in trimmed:
        n = await trim_topic(js, stored, info)
        if n:
            out[info.config.name] = n
    return out


class EventTrimmer:
    """Trims every ``max_events`` topic of the broker at ``url`` every ``interval`` seconds, in a
    daemon thread with its own connection and loop. :meth:`stop` ends it."""

    def __init__(self, url: str, interval: float = INTERVAL) -> None:
        self.url = url
        self.interval = interval
        self.purged = 0  # messages purged since start
        self.passes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="evfabric-trimmer", daemon=True)

    def start(self) -> EventTrimmer:
        self._thread.start()
        return self

    def _main(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        nc = await nats.connect(self.url, name="evfabric-trimmer", max_reconnect_attempts=-1)
        js = nc.jetstream()
        stored = StoredEvents(js)
        try:
            while not self._stop.is_set():
                try:
                    self.purged += sum((await trim_topics(js, stored)).values())
                    self.passes += 1
                except (nats.errors.Error, jserr.Error, OSError) as exc:
                    log.debug("trimming pass failed: %r", exc)
                await asyncio.sleep(self.interval)
        finally:
            await stored.close()
            await nc.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def start_with_broker(broker_url: str, *, monitor_url: str) -> Callable[[], None]:
    """The ``evfabric serve`` service: trim ``max_events`` topics (the returned callable stops it)."""
    return EventTrimmer(broker_url).start().stop
