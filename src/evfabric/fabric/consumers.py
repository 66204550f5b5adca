"""Getting events from the broker to the subscriptions' handlers.

* :class:`CoreFeed` (best effort): ONE NATS core subscription per client and subject filter,
  shared by every local subscription that needs that filter. Each message is decoded once and its
  events handed to each subscription whose pattern they match (overlapping subscriptions share
  the decoded events; the messages of one burst, those nats-py holds for the feed, are handed
  to each subscription together). Feeds whose subject filters overlap each get a copy of a
  message from NATS; they share its decoded events through the client's :class:`DecodedRecently`
  (the same subject, ``Evf-Stream``, ``Evf-Seq`` and bytes: decoded once, while it has several feeds). Gaps in the publishers' sequences (docs/wire.md section 2: messages the
  server dropped when it cut a slow connection, that nats-py dropped for a full pending buffer,
  lost in a restart) are counted exactly, per subscription and per client, and reported as
  ``cca.fabric.dropped`` (reason ``gap``). A group subscription has a feed of its own (a NATS
  queue group); members of a group see parts of the sequences, so no gaps are counted there.
* :class:`PullConsumer` (reliable, in :mod:`evfabric.fabric.pull`).

Consumers see the client through a :class:`Wiring` (the connection, the loss report, the loop),
not the whole client. Garbage (a message that does not decode, whatever its bytes) is counted,
reported as ``cca.fabric.garbage`` and never reaches a handler.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription

from evfabric.core.errors import DecodeError
from evfabric.core.event import Event
from evfabric.fabric.deadletter import DEAD_LETTER_GROUP
from evfabric.fabric.handler import NO_SETTLE
from evfabric.fabric.losses import LossReport
from evfabric.fabric.receive import DUPLICATE, SEQ, STREAM, SequenceTracker
from evfabric.fabric.roundtrip import flush
from evfabric.fabric.subjects import topic_of_subject
from evfabric.wire import decode_message

if TYPE_CHECKING:
    from evfabric.fabric.subscription import FabricSubscription

__all__ = ["DEAD_LETTER_GROUP", "CoreFeed", "DecodedRecently", "Wiring", "decode_or_report"]

log = logging.getLogger("evfabric.fabric")
#: at most this many received events wait for the end of their burst before the hand-off
HAND_OFF = 1024


@dataclass
class Wiring:
    """What a consumer needs from its client, and nothing else."""

    nc: NatsClient
    js: Any  # nats.js.JetStreamContext
    losses: LossReport
    on_loop_thread: Callable[[], bool]
    call_on_loop: Callable[..., None]
    backlog_full: Callable[[int], bool]  # (events the caller holds for dispatch) -> over max_backlog
    # (subscription, [(event, error)], attempt) -> a ticket completing once the letters are stored
    dead_letter: Callable[[FabricSubscription, list[tuple[Event, BaseException]], int], Any]


def decode_or_report(losses: LossReport, msg: Msg, raw: bool = False) -> list[Event] | None:
    """The events of ``msg``, or None when it is garbage (counted and reported, never raised).

    ``raw``: ``msg`` is on a foreign topic's own subject (one event per message, docs/wire.md 5).
    """
    try:
        return decode_message(msg.subject, msg.headers, msg.data, raw=raw)
    except DecodeError as exc:
        losses.garbage(msg.subject, len(msg.data), str(exc))
        return None


class DecodedRecently:
    """The events of the last messages a client's feeds decoded, so that feeds whose subjects
    overlap (NATS sends each its own copy, back to back) decode a message once.

    A copy is the same message when its subject, ``Evf-Stream`` and ``Evf-Seq`` headers and its
    bytes are all equal (the bytes are compared, so a forged header cannot substitute events).
    It remembers at most ``size`` messages and ``max_events`` events, and only while ``enabled``
    (its client has more than one feed): decoded events are not kept alive for nothing. Used on
    the client's loop only.
    """

    def __init__(self, size: int = 64, max_events: int = 2048) -> None:
        self.size = size
        self.max_events = max_events
        self.hits = 0  # copies whose decoding was shared
        self._enabled = False
        self._events = 0  # events remembered
        self._recent: dict[tuple[str, str, str], tuple[bytes, list[Event]]] = {}

    @property
    def enabled(self) -> bool:
        """Whether messages are remembered (set by the client: more than one feed)."""
        return self._enabled

    @enabled.setter
    def enabled(self, on: bool) -> None:
        self._enabled = on
        if not on:
            self._recent.clear()
            self._events = 0

    def decode(self, losses: LossReport, msg: Msg, raw: bool) -> list[Event] | None:
        """``decode_or_report(losses, msg, raw)``, shared with the copies of ``msg``."""
        headers = msg.headers
        if not self._enabled or not headers or raw:
            return decode_or_report(losses, msg, raw)
        stream, seq = headers.get(STREAM), headers.get(SEQ)
        if stream is None or seq is None:
            return decode_or_report(losses, msg, raw)
        key = (msg.subject, stream, seq)
        recent = self._recent
        hit = recent.get(key)
        if hit is not None and hit[0] == msg.data:
            self.hits += 1
            return hit[1]
        events = decode_or_report(losses, msg, raw)
        if events is not None:
            recent[key] = (msg.data, events)
            self._events += len(events)
            while len(recent) > self.size or (self._events > self.max_events and len(recent) > 1):
                self._events -= len(recent.pop(next(iter(recent)))[1])  # the oldest (insertion order)
        return events


class CoreFeed:
    """One NATS core subscription on ``subject`` (queue ``group``) feeding local subscriptions."""

    def __init__(self, wiring: Wiring, subject: str, group: str | None, *, key: Any = None,
                 pending_msgs: int = 65536, pending_bytes: int = 64 * 1024 * 1024, raw: bool = False,
                 decoded: DecodedRecently | None = None) -> None:
        self.wiring = wiring
        self.decoded = decoded or DecodedRecently()  # the client's, shared by its feeds
        self.raw = raw  # a foreign topic's subject: every message one event
        self.key = key if key is not None else (subject, group)  # what the client shares feeds by
        self.subject = subject
        self.group = group
        self.pending_msgs = pending_msgs
        self.pending_bytes = pending_bytes
        self.subs: tuple[FabricSubscription, ...] = ()
        self.tracker = SequenceTracker()
        self._joined: dict[FabricSubscription, int] = {}  # sub -> when it joined this feed (µs)
        self.nsub: NatsSubscription | None = None
        # events matched since the last hand-off, per subscription: the messages of one burst go
        # to each handler together (one hand-off, one wake-up of the dispatcher per burst)
        self._held: dict[FabricSubscription, list[Event]] = {}
        self._held_n = 0

    async def start(self) -> None:
        """Subscribe on the broker (returns once the broker has the interest)."""
        self.nsub = await self.wiring.nc.subscribe(
            self.subject, queue=self.group or "", cb=self._on_msg,
            pending_msgs_limit=self.pending_msgs, pending_bytes_limit=self.pending_bytes,
        )
        await flush(self.wiring.nc)
        self.tracker.since = time.time_ns() // 1000  # the broker has our interest: later sequences are ours whole

    def add(self, sub: FabricSubscription) -> None:
        """Feed ``sub`` too (from the next message on)."""
        self.subs = (*self.subs, sub)
        self._joined[sub] = time.time_ns() // 1000

    def remove(self, sub: FabricSubscription) -> bool:
        """Stop feeding ``sub``; True when no subscription is left (the feed may stop)."""
        self.subs = tuple(s for s in self.subs if s is not sub)
        self._joined.pop(sub, None)
        return not self.subs

    async def _on_msg(self, msg: Msg) -> None:
        self._take(msg)
        if self._held_n:
            nsub = self.nsub
            if self._held_n >= HAND_OFF or nsub is None or not nsub.pending_msgs:
                self._hand_off()

    def _take(self, msg: Msg) -> None:
        """Decode ``msg``, do its books, and hold its events for the subscriptions it matches."""
        subs = self.subs
        events = self.decoded.decode(self.wiring.losses, msg, self.raw)
        if events is None:
            for s in subs:
                s.stats.garbage += 1
            return  # its sequence headers are not trusted: a lying Evf-Count must not move the books
        if self.group is None:
            gap = self.tracker.note(msg.subject, msg.headers)
            if gap:
                self._lost(msg.subject, gap, subs)
                if gap == DUPLICATE:  # a batch seen already (a reliable one re-sent): counted, not delivered twice
                    return
        n = len(events)
        if self.wiring.backlog_full(self._held_n):
            topic = events[0].topic  # one message, one subject: one topic
            self.wiring.losses.drop("backlog", topic, n)
            for s in subs:
                if s.active and s.pattern.matches(topic):  # a shared broad filter: not every sub's loss
                    s.stats.dropped += n
            return
        held = self._held
        for s in subs:
            if s.active:
                s.stats.received += n
                chosen = s.select(events)
                if chosen:
                    s.stats.handed += len(chosen)
                    mine = held.get(s)
                    if mine is None:
                        held[s] = chosen if chosen is not events else list(chosen)
                    else:
                        mine += chosen
                    self._held_n += len(chosen)

    def _hand_off(self) -> None:
        """Give each subscription the events matched since the last hand-off (end of a burst)."""
        held, self._held, self._held_n = self._held, {}, 0
        for s, chosen in held.items():
            if s.active:
                s.handler.handle(chosen, NO_SETTLE)

    def _lost(self, subject: str, gap: int, subs: tuple[FabricSubscription, ...]) -> None:
        topic = topic_of_subject(subject) or subject
        if gap < 0:
            for s in subs:
                s.stats.duplicates += 1  # messages, for best effort
            return
        self.wiring.losses.drop("gap", topic, gap)
        for s in subs:
            if s.active and s.pattern.matches(topic):
                s.stats.dropped += gap

    async def stop(self) -> None:
        """Unsubscribe on the broker."""
        if self._held:
            self._hand_off()
        nsub, self.nsub = self.nsub, None
        if nsub is not None:
            try:
                await nsub.unsubscribe()
            except nats.errors.Error as exc:
                log.debug("unsubscribe %s: %r", self.subject, exc)
