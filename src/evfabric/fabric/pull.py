"""Reliable consumption: a JetStream pull consumer, flow-controlled in bytes, deduplicated per message.

A :class:`PullConsumer` keeps pull requests outstanding so that messages stream in while earlier
ones are handled, within two bounds: ``max_inflight`` messages and ``max_bytes`` bytes requested
or unsettled. The byte bound keeps what the server may have queued for this connection far below
its slow-consumer limit (64 MB by default), whatever the message size: the server does not cut the
connection, so nothing waits out ``ack_wait`` after a disconnect. A server configured with a
lower ``max_pending`` than the window may cut it: the window then halves at each such loss, down
to one largest message (see :meth:`PullConsumer.on_reconnect`).

Each message is decoded once (garbage is terminated with ``+TERM`` at once: never redelivered,
never blocking an ordered partition) and its events, matched against the subscription, go to the
subscription's :class:`~evfabric.fabric.handler.EventHandler` with a :class:`MessageSettle`. When
every event is settled the message is acknowledged; if some failed it is redelivered after a
growing delay (``-NAK``) and only the failed events reach the handler again; after
``max_deliver`` attempts the failed events are dead-lettered (``cca.deadletter.<topic>``), then the
message is acknowledged.

Dedupe is per message, by stream sequence (docs/wire.md section 2): a message delivered again
while it is being handled, or after it was settled (its acknowledgement lost), is dropped as a
whole and counted in ``stats.duplicates``. Settled sequences are remembered as long as the
broker could still redeliver them (``(max_deliver + 1) x ack_wait``), so no duplicate can slip
through the way one evicted from a bounded window of event ids did.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from itertools import count
from typing import TYPE_CHECKING, Any

import nats.errors
import nats.js.errors as jserr
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription
from nats.js.api import AckPolicy, ConsumerConfig

from evfabric.core.event import Event
from evfabric.fabric.consumers import Wiring, decode_or_report
from evfabric.fabric.positions import ack_subject, place
from evfabric.fabric.streams import add_consumer
from evfabric.wire.raw import RAW_TYPE

if TYPE_CHECKING:
    from evfabric.fabric.subscription import FabricSubscription

__all__ = ["MessageSettle", "PullConsumer", "consumer_config"]

log = logging.getLogger("evfabric.fabric")


class MessageSettle:
    """The :class:`~evfabric.fabric.handler.Settle` of one JetStream message."""

    __slots__ = ("_count", "_done", "attempt", "consumer", "events", "failed", "handled", "left", "reply", "seq",
                 "size")

    def __init__(self, consumer: PullConsumer, reply: str, attempt: int, seq: int, size: int,
                 events: list[Event]) -> None:
        self.consumer = consumer
        self.reply = reply
        self.attempt = attempt
        self.seq = seq
        self.size = size
        self.events = events  # the message's events, all of them (indices are positions here)
        self.left = 0
        self.failed: dict[int, tuple[Event, BaseException]] = {}  # id(event) -> (event, error)
        self.handled: set[int] = set()  # id(event) of those handled
        self._count = count(1)  # next() on an itertools.count is atomic under the GIL
        self._done: set[int] = set()

    def __call__(self, event: Event, error: BaseException | None = None) -> None:
        key = id(event)
        if key in self._done:
            return
        self._done.add(key)
        if error is None:
            self.handled.add(key)
        else:
            self.failed[key] = (event, error)
            self.consumer.sub.stats.failed += 1
        if next(self._count) == self.left:
            self.consumer.settled_threadsafe(self)

    def many(self, events: list[Event]) -> None:
        """Settle ``events`` as handled; when they are all of the message's, in one step."""
        if len(events) == self.left and not self._done:
            self.left = -1  # settled as a whole: later per-event calls cannot complete it again
            self.handled.update(map(id, events))
            self.consumer.settled_threadsafe(self)
            return
        for ev in events:
            self(ev)


def _stored_identity(events: list[Event], stream: str, seq: int, stored_ns: int) -> None:
    """A stored foreign message's event keeps one id and time across redeliveries: the stream and
    sequence (``EVF_RAW_lab_probe_1a2b3c4d.42``) and the time the broker stored it (docs/wire.md 5)."""
    for ev in events:
        if ev.type == RAW_TYPE:
            ev.id = f"{stream}.{seq}"
            if stored_ns:
                ev.time = stored_ns / 1e9


class PullConsumer:
    """One durable JetStream pull consumer (one stream, one filter set) feeding a subscription."""

    def __init__(self, wiring: Wiring, sub: FabricSubscription, stream: str, config: ConsumerConfig,
                 *, batch: int, max_inflight: int, max_deliver: int, redeliver_delay: float,
                 dead_letter: bool, shared: bool, max_bytes: int = 8 * 1024 * 1024, expires: float = 5.0,
                 raw: bool = False) -> None:
        self.wiring = wiring
        self.raw = raw  # a raw topic's stream: every message one foreign event (docs/wire.md 5)
        self.sub = sub
        self.stream = stream
        self.config = config
        self.name = config.durable_name or ""
        self.batch = batch
        self.max_inflight = max_inflight
        self.max_deliver = max_deliver
        self.redeliver_delay = redeliver_delay
        self.dead_letter = dead_letter
        self.shared = shared  # a group's consumer: other members use it too, never delete it
        self.expires = expires
        payload = int(getattr(wiring.nc, "max_payload", 0) or 1024 * 1024)
        self.max_payload = payload
        self.max_bytes = max(max_bytes, 2 * payload)  # room for at least one largest message
        self.min_bytes = payload + 64 * 1024  # what the byte window shrinks to at most (see on_reconnect)
        self.horizon = (max_deliver + 2) * float(config.ack_wait or 30.0) + 5.0
        self._requested = 0
        self._requested_bytes = 0
        self._unsettled = 0
        self._unsettled_bytes = 0
        self._last_activity = 0.0
        self._acks: deque[tuple[str, bytes]] = deque()
        self._settled_queue: deque[MessageSettle] = deque()  # settled on other threads, for the loop
        self._settle_scheduled = False
        self._inflight: dict[int, MessageSettle] = {}  # stream seq -> being handled
        self._partial: dict[int, set[int]] = {}  # stream seq -> event positions handled in failed attempts
        self._settled_at: dict[int, float] = {}  # stream seq -> when settled (acknowledged or terminated)
        self._settled_order: deque[tuple[float, int]] = deque()
        self._wake = asyncio.Event()
        self._inbox = ""
        self._nsub: NatsSubscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._recreate = False

    async def ensure(self) -> None:
        """Create the consumer on the broker (idempotent for the same configuration)."""
        js = self.wiring.js
        try:
            await add_consumer(js, self.stream, self.config)  # through the topic service under access control
        except jserr.BadRequestError as exc:
            if exc.err_code != 10148:  # 10148: consumer already exists with another configuration
                raise
            if self.shared:
                return  # a group member joins the group's consumer as it is
            await js.delete_consumer(self.stream, self.name)
            await add_consumer(js, self.stream, self.config)

    async def start(self) -> None:
        """Create the consumer and start pulling."""
        await self.ensure()
        nc = self.wiring.nc
        self._inbox = nc.new_inbox()
        self._nsub = await nc.subscribe(self._inbox, cb=self._on_msg, pending_msgs_limit=0, pending_bytes_limit=0)
        self._last_activity = time.monotonic()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"evfabric-pull-{self.name}")

    def on_reconnect(self) -> None:
        """The connection came back: pending pulls are gone; make sure the consumer exists.

        If bytes were outstanding, the server may have cut the connection as a slow consumer:
        its ``max_pending`` (64 MB by default) is not told to clients, and may be below this
        window. The window halves (down to one largest message and 64 KB) for the rest of the
        consumer's life, so a few cuts find a size the server keeps."""
        if self._requested_bytes or self._unsettled_bytes:
            shrunk = max(self.min_bytes, self.max_bytes // 2)
            if shrunk < self.max_bytes:
                log.info("pull consumer %s: connection lost with %d bytes outstanding; byte window %d -> %d",
                         self.name, self._requested_bytes + self._unsettled_bytes, self.max_bytes, shrunk)
                self.max_bytes = shrunk
        self._requested = self._requested_bytes = 0
        self._recreate = True
        self._wake.set()

    # -- pulling ------------------------------------------------------------------------------

    def _pull_request(self) -> dict[str, int] | None:
        room = self.max_inflight - self._unsettled - self._requested
        room_bytes = self.max_bytes - self._unsettled_bytes - self._requested_bytes
        if room <= 0 or room_bytes < self.max_payload:
            return None
        if self._requested and room < max(1, self.batch // 2):
            return None
        n = min(room, self.batch)
        return {"batch": n, "max_bytes": room_bytes, "expires": int(self.expires * 1e9)}

    async def _run(self) -> None:
        nc = self.wiring.nc
        api = f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{self.name}"
        while not self._closed:
            try:
                if self._recreate:
                    self._recreate = False
                    await self.ensure()
                while self._acks:
                    reply, data = self._acks.popleft()
                    await nc.publish(reply, data)
                req = self._pull_request()
                if req is not None:
                    await nc.publish(api, json.dumps(req).encode(), reply=self._inbox)
                    self._requested += req["batch"]
                    self._requested_bytes += req["max_bytes"]
                    self._last_activity = time.monotonic()
                if self._requested and time.monotonic() - self._last_activity > self.expires + 1.0:
                    self._requested = self._requested_bytes = 0  # pulls expired unanswered (a restart)
                    continue
                self._prune()
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.expires / 2)
                except TimeoutError:
                    pass
            except asyncio.CancelledError:
                raise
            except (nats.errors.Error, jserr.Error, OSError) as exc:
                # disconnected, or the consumer is gone while the server restarts: retry shortly
                log.debug("pull consumer %s: %r; retrying", self.name, exc)
                self._recreate = True
                await asyncio.sleep(0.25)

    def _prune(self) -> None:
        """Forget settled sequences the broker can no longer redeliver."""
        order, at = self._settled_order, self._settled_at
        limit = time.monotonic() - self.horizon
        while order and order[0][0] < limit:
            _, seq = order.popleft()
            at.pop(seq, None)

    def _status(self, hdr: dict[str, str]) -> None:
        if hdr["Status"] == "100":
            return  # a heartbeat
        # 404/408/409 end (part of) a pull request: what it still held is no longer requested
        pending, pending_bytes = hdr.get("Nats-Pending-Messages"), hdr.get("Nats-Pending-Bytes")
        if pending is None and pending_bytes is None:
            self._requested = self._requested_bytes = 0
        else:
            self._requested = max(0, self._requested - int(pending or 0))
            self._requested_bytes = max(0, self._requested_bytes - int(pending_bytes or 0))
        if hdr["Status"] == "409" and "Deleted" in hdr.get("Description", ""):
            self._recreate = True
        self._wake.set()

    async def _on_msg(self, msg: Msg) -> None:
        self._last_activity = time.monotonic()
        hdr = msg.headers
        if hdr and "Status" in hdr:
            self._status(hdr)
            return
        size = len(msg.data) + len(msg.subject) + len(msg.reply) + (sum(len(k) + len(v) + 4 for k, v in hdr.items())
                                                                    if hdr else 0)
        self._requested = max(0, self._requested - 1)
        # every pull request is fulfilled when no message is left requested: what they asked in
        # bytes and did not use is free again (a request ends without a word when its count is met)
        self._requested_bytes = max(0, self._requested_bytes - size) if self._requested else 0
        stats = self.sub.stats
        ack = ack_subject(msg.reply)
        attempt, seq, stored_ns = (ack.attempt, ack.seq, ack.stored_ns) if ack is not None else (1, 0, 0)
        live = self._inflight.get(seq)
        if live is not None:  # redelivered while still being handled here: the live one settles it
            live.reply = msg.reply
            stats.duplicates += 1
            return
        if seq in self._settled_at:  # settled, but our acknowledgement was lost: drop it as a whole
            stats.duplicates += 1
            self._ack(msg.reply, b"+ACK")
            return
        events = decode_or_report(self.wiring.losses, msg, self.raw)
        if events is None:
            stats.garbage += 1
            self._ack(msg.reply, b"+TERM")  # never redelivered, never in anyone's way
            self._remember(seq)
            return
        if not self.sub.active:
            return  # left unacknowledged: the broker redelivers it to whoever consumes next
        place(events, seq)  # event positions <seq>:<index> (docs/wire.md section 8)
        if self.raw:
            _stored_identity(events, self.stream, seq, stored_ns)
        stats.received += len(events)
        settle = MessageSettle(self, msg.reply, attempt, seq, size, events)
        done = self._partial.get(seq)
        todo = events if done is None else [ev for i, ev in enumerate(events) if i not in done]
        stats.skipped += len(events) - len(todo)
        chosen = self.sub.select(todo)
        self._unsettled += 1
        self._unsettled_bytes += size
        self._inflight[seq] = settle
        if not chosen:
            self._settled(settle)
            return
        settle.left = len(chosen)
        if attempt > self.max_deliver:
            # the client handling the last allowed attempt died before settling it
            exhausted = RuntimeError("delivery attempts exhausted")
            for ev in chosen:
                settle(ev, exhausted)
            return
        stats.handed += len(chosen)
        self.sub.handler.handle(chosen, settle)

    # -- settling -----------------------------------------------------------------------------

    def _ack(self, reply: str, data: bytes) -> None:
        self._acks.append((reply, data))
        self._wake.set()

    def _remember(self, seq: int) -> None:
        now = time.monotonic()
        self._settled_at[seq] = now
        self._settled_order.append((now, seq))

    def settled_threadsafe(self, s: MessageSettle) -> None:
        """Every event of ``s`` is settled (called from any thread)."""
        if self.wiring.on_loop_thread():
            self._settled(s)
            return
        # Coalesced wake-ups: call_soon_threadsafe writes to the loop's self-pipe, and the
        # dispatcher thread then waits for the GIL (up to a switch interval) on every write.
        self._settled_queue.append(s)
        if not self._settle_scheduled:
            self._settle_scheduled = True
            self.wiring.call_on_loop(self._settle_queued)

    def _settle_queued(self) -> None:
        self._settle_scheduled = False  # before draining: a settle queued meanwhile schedules again
        queue = self._settled_queue
        while queue:
            self._settled(queue.popleft())

    def _settled(self, s: MessageSettle) -> None:
        if self._inflight.pop(s.seq, None) is None:
            return
        self._unsettled -= 1
        self._unsettled_bytes -= s.size
        reply = s.reply
        if not s.failed:
            self._partial.pop(s.seq, None)
            self._remember(s.seq)
            self._ack(reply, b"+ACK")
        elif s.attempt < self.max_deliver:
            positions = {i for i, ev in enumerate(s.events) if id(ev) in s.handled}
            self._partial[s.seq] = self._partial.get(s.seq, set()) | positions
            delay = int(self.redeliver_delay * s.attempt * 1e9)
            self._ack(reply, b"-NAK " + json.dumps({"delay": delay}).encode())
        elif self.dead_letter:
            self.sub.stats.dead_lettered += len(s.failed)
            ticket = self.wiring.dead_letter(self.sub, list(s.failed.values()), s.attempt)
            ticket.add_done_callback(lambda t: self.wiring.call_on_loop(self._after_dead_letter, s, t))
        else:
            self._partial.pop(s.seq, None)
            self._remember(s.seq)
            self._ack(reply, b"+TERM")

    def _after_dead_letter(self, s: MessageSettle, ticket: Any) -> None:
        # acknowledge only once the dead letters are stored; if that failed, let it be redelivered
        if ticket.exception() is None:
            self._partial.pop(s.seq, None)
            self._remember(s.seq)
            self._ack(s.reply, b"+ACK")
        else:
            self._ack(s.reply, b"-NAK")

    def skip_before(self, seq: int, index: int) -> None:
        """Replay from position ``seq:index``: the first ``index`` events of message ``seq`` count
        as handled (they are never handed; the rest of the message is)."""
        if index:
            self._partial[seq] = self._partial.get(seq, set()) | set(range(index))

    def progress(self, floor: int) -> tuple[set[int], dict[int, int]]:
        """What this client did with messages above stream sequence ``floor`` that the broker may
        not know yet (for lag in events): the sequences it settled, and for each message it is
        handling the events still to settle."""
        done = {s for s in self._settled_at if s > floor}
        handling = {seq: max(0, m.left - len(m._done)) for seq, m in self._inflight.items()}
        return done, handling

    async def lag(self) -> int:
        """Messages not yet delivered plus delivered and unacknowledged, per the broker."""
        info = await self.wiring.js.consumer_info(self.stream, self.name)
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)

    async def stop(self, delete: bool) -> None:
        """Stop pulling; delete the consumer on the broker when ``delete`` (not for groups)."""
        self._closed = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            except Exception as exc:
                log.debug("pull consumer %s ended with %r", self.name, exc)
        nc = self.wiring.nc
        try:
            while self._acks:
                reply, data = self._acks.popleft()
                await nc.publish(reply, data)
            if self._nsub is not None:
                await self._nsub.unsubscribe()
            if delete and not self.shared:
                await self.wiring.js.delete_consumer(self.stream, self.name)
        except (nats.errors.Error, jserr.Error) as exc:
            log.debug("stopping pull consumer %s: %r", self.name, exc)


def consumer_config(name: str, filters: list[str], *, start: Any, ack_wait: float, max_deliver: int,
                    max_ack_pending: int, inactive: float | None) -> ConsumerConfig:
    """A durable explicit-ack pull consumer configuration (start position from :mod:`replay`)."""
    from evfabric.fabric.replay import deliver_policy

    policy, extra = deliver_policy(start)
    cfg = ConsumerConfig(
        durable_name=name,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait,
        max_deliver=max_deliver + 1,  # one spare: see PullConsumer._on_msg (attempt > max_deliver)
        max_ack_pending=max_ack_pending,
        deliver_policy=policy,
        inactive_threshold=inactive,
        **extra,
    )
    if len(filters) == 1:
        cfg.filter_subject = filters[0]
    else:
        cfg.filter_subjects = filters
    return cfg
