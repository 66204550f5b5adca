"""Getting events from the broker to a subscription.

* :class:`CoreConsumer` (best effort): a NATS core subscription on the pattern's subject filter
  (a NATS queue group when the subscription has a ``group``). Messages the client cannot keep up
  with are dropped by nats-py (slow consumer) or by the client's backlog bound; both are counted.
* :class:`PullConsumer` (reliable): a JetStream pull consumer, durable, with explicit acks. It keeps
  pull requests outstanding so messages stream in while earlier ones are being handled (at most
  ``max_inflight`` messages unacknowledged), acknowledges a message once every event's listeners
  returned, asks for redelivery (``-NAK`` with a delay) when one raised, and after ``max_deliver``
  failed deliveries publishes the failing events to the dead-letter topic
  ``cca.deadletter.<topic>`` and acknowledges.

Garbage (bytes that are not an evfabric batch) is counted, reported as a ``cca.fabric.garbage``
event, and (reliable) terminated so that it is not redelivered; it never reaches a listener.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import msgspec
import nats.errors
import nats.js.errors as jserr
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription
from nats.js.api import AckPolicy, ConsumerConfig

from evfabric.core.codec import decode_batch
from evfabric.core.errors import DecodeError
from evfabric.core.event import RELIABLE, Event, new_id, now_us
from evfabric.fabric.subjects import topic_subject
from evfabric.fabric.subscription import Delivery, FabricSubscription

if TYPE_CHECKING:
    from evfabric.fabric.aio import AsyncClient

__all__ = ["CoreConsumer", "PullConsumer", "decode_message"]

log = logging.getLogger("evfabric.fabric")

DEAD_LETTER_GROUP = "cca.deadletter"


def decode_message(client: AsyncClient, sub: FabricSubscription, msg: Msg) -> list[Event] | None:
    """The events in ``msg``, or None (counted and reported) when it is not a valid batch."""
    try:
        return decode_batch(msg.data)
    except DecodeError as exc:
        sub.stats.garbage += 1
        client.losses.garbage(msg.subject, len(msg.data), str(exc))
        return None


class CoreConsumer:
    """A best-effort subscription's NATS core subscription."""

    def __init__(self, client: AsyncClient, sub: FabricSubscription, subject: str, group: str | None,
                 pending_msgs: int, pending_bytes: int) -> None:
        self.client = client
        self.sub = sub
        self.subject = subject
        self.group = group
        self.pending_msgs = pending_msgs
        self.pending_bytes = pending_bytes
        self.nsub: NatsSubscription | None = None

    async def start(self) -> None:
        """Subscribe on the broker (returns once the broker has the interest)."""
        self.nsub = await self.client.nc.subscribe(
            self.subject, queue=self.group or "", cb=self._on_msg,
            pending_msgs_limit=self.pending_msgs, pending_bytes_limit=self.pending_bytes,
        )
        await self.client.nc.flush()

    async def _on_msg(self, msg: Msg) -> None:
        events = decode_message(self.client, self.sub, msg)
        if events is None or not self.sub.active:
            return
        if self.client.backlog_full():
            self.sub.stats.dropped += len(events)
            self.client.losses.drop("backlog", events[0].topic, len(events))
            return
        self.sub.hand_best_effort(events)

    async def stop(self) -> None:
        """Unsubscribe on the broker."""
        if self.nsub is not None:
            try:
                await self.nsub.unsubscribe()
            except nats.errors.Error:
                pass
            self.nsub = None


class PullConsumer:
    """One durable JetStream pull consumer (one stream, one partition filter) feeding a subscription."""

    def __init__(self, client: AsyncClient, sub: FabricSubscription, stream: str, config: ConsumerConfig,
                 *, batch: int, max_inflight: int, max_deliver: int, redeliver_delay: float,
                 dead_letter: bool, shared: bool, expires: float = 5.0) -> None:
        self.client = client
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
        self._requested = 0
        self._unsettled = 0
        self._last_activity = 0.0
        self._acks: deque[tuple[str, bytes]] = deque()
        self._settled_queue: deque[Delivery] = deque()  # settled on dispatcher threads, for the loop
        self._settle_scheduled = False
        self._wake = asyncio.Event()
        self._inbox = ""
        self._nsub: NatsSubscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._recreate = False

    async def ensure(self) -> None:
        """Create the consumer on the broker (idempotent for the same configuration)."""
        js = self.client.js
        try:
            await js.add_consumer(self.stream, self.config)
        except jserr.BadRequestError as exc:
            if exc.err_code != 10148:  # 10148: consumer already exists with another configuration
                raise
            if self.shared:
                return  # a group member joins the group's consumer as it is
            await js.delete_consumer(self.stream, self.name)
            await js.add_consumer(self.stream, self.config)

    async def start(self) -> None:
        """Create the consumer and start pulling."""
        await self.ensure()
        nc = self.client.nc
        self._inbox = nc.new_inbox()
        self._nsub = await nc.subscribe(self._inbox, cb=self._on_msg, pending_msgs_limit=0, pending_bytes_limit=0)
        self._last_activity = time.monotonic()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"evfabric-pull-{self.name}")

    def on_reconnect(self) -> None:
        """The connection came back: pending pulls are gone; make sure the consumer exists."""
        self._requested = 0
        self._recreate = True
        self._wake.set()

    async def _run(self) -> None:
        nc = self.client.nc
        api = f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{self.name}"
        expires_ns = int(self.expires * 1e9)
        while not self._closed:
            try:
                if self._recreate:
                    self._recreate = False
                    await self.ensure()
                while self._acks:
                    reply, data = self._acks.popleft()
                    await nc.publish(reply, data)
                room = self.max_inflight - self._unsettled - self._requested
                if room > 0 and (self._requested == 0 or room >= max(1, self.batch // 2)):
                    n = min(room, self.batch)
                    req = json.dumps({"batch": n, "expires": expires_ns}).encode()
                    await nc.publish(api, req, reply=self._inbox)
                    self._requested += n
                    self._last_activity = time.monotonic()
                if self._requested and time.monotonic() - self._last_activity > self.expires + 1.0:
                    self._requested = 0  # our pulls expired without a word (e.g. the server restarted)
                    continue
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.expires / 2)
                except asyncio.TimeoutError:
                    pass
            except asyncio.CancelledError:
                raise
            except (nats.errors.Error, jserr.Error, OSError) as exc:
                # disconnected, or the consumer is gone while the server restarts: retry shortly
                log.debug("pull consumer %s: %r; retrying", self.name, exc)
                self._recreate = True
                await asyncio.sleep(0.25)

    async def _on_msg(self, msg: Msg) -> None:
        self._last_activity = time.monotonic()
        hdr = msg.headers
        if hdr and "Status" in hdr:
            status = hdr["Status"]
            if status != "100":  # 100 is a heartbeat; 404/408/409 end (part of) a pull request
                pending = hdr.get("Nats-Pending-Messages")
                self._requested = max(0, self._requested - int(pending)) if pending else 0
                if status == "409" and "Deleted" in hdr.get("Description", ""):
                    self._recreate = True
                self._wake.set()
            return
        self._requested = max(0, self._requested - 1)
        events = decode_message(self.client, self.sub, msg)
        if events is None:
            self._acks.append((msg.reply, b"+TERM"))
            self._wake.set()
            return
        try:
            attempt = int(msg.reply.split(".")[-5])  # $JS.ACK[.domain.hash].stream.consumer.delivered.sseq.cseq.ts.pending
        except (ValueError, IndexError):
            attempt = 1
        self._unsettled += 1
        d = Delivery(events, attempt, self._settled_threadsafe, msg.reply)
        if attempt > self.max_deliver:
            # the client handling the last allowed attempt died before settling it
            fresh = [ev for ev in events if self.sub.admit(ev)]
            for ev in fresh:
                d.failed[ev.id] = (ev, RuntimeError("delivery attempts exhausted"))
            self._settled(d)
            return
        if not self.sub.active:
            self._unsettled -= 1
            return
        self.sub.hand_reliable(d)

    def _settled_threadsafe(self, d: Delivery) -> None:
        if self.client.on_loop_thread():
            self._settled(d)
            return
        # Coalesced wake-ups: call_soon_threadsafe writes to the loop's self-pipe, and the
        # dispatcher thread then waits for the GIL (up to a switch interval) on every write.
        self._settled_queue.append(d)
        if not self._settle_scheduled:
            self._settle_scheduled = True
            self.client.call_on_loop(self._settle_queued)

    def _settle_queued(self) -> None:
        self._settle_scheduled = False  # before draining: a delivery queued meanwhile schedules again
        queue = self._settled_queue
        while queue:
            self._settled(queue.popleft())

    def _settled(self, d: Delivery) -> None:
        reply, d.ref = d.ref, None
        if reply is None:
            return
        self._unsettled -= 1
        if not d.failed:
            self._acks.append((reply, b"+ACK"))
        elif d.attempt < self.max_deliver:
            delay = int(self.redeliver_delay * d.attempt * 1e9)
            self._acks.append((reply, b"-NAK " + json.dumps({"delay": delay}).encode()))
        elif self.dead_letter:
            self.sub.stats.dead_lettered += len(d.failed)
            ticket = dead_letter(self.client, self.sub, d)
            ticket.add_done_callback(lambda t: self.client.call_on_loop(self._after_dead_letter, reply, t))
            return
        else:
            self._acks.append((reply, b"+TERM"))
        self._wake.set()

    def _after_dead_letter(self, reply: str, ticket: Any) -> None:
        # acknowledge only once the dead letters are stored; if that failed, let it be redelivered
        self._acks.append((reply, b"+ACK" if ticket.exception() is None else b"-NAK"))
        self._wake.set()

    async def lag(self) -> int:
        """Messages not yet delivered plus delivered and unacknowledged, per the broker."""
        info = await self.client.js.consumer_info(self.stream, self.name)
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)

    async def stop(self, delete: bool) -> None:
        """Stop pulling; delete the consumer on the broker when ``delete`` (not for groups)."""
        self._closed = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        nc = self.client.nc
        try:
            while self._acks:
                reply, data = self._acks.popleft()
                await nc.publish(reply, data)
            if self._nsub is not None:
                await self._nsub.unsubscribe()
            if delete and not self.shared:
                await self.client.js.delete_consumer(self.stream, self.name)
        except (nats.errors.Error, jserr.Error):
            pass


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


def dead_letter(client: AsyncClient, sub: FabricSubscription, d: Delivery) -> Any:
    """Publish the events of ``d`` that failed for good to ``cca.deadletter.<topic>`` (reliable);
    return the ticket of the last one (the message is acknowledged once they are stored)."""
    ticket = None
    batcher = client.batcher
    for ev, exc in d.failed.values():
        body = {
            "event": msgspec.to_builtins(ev, builtin_types=(bytes,)),
            "error": f"{type(exc).__name__}: {exc}", "attempts": d.attempt,
            "subscription": sub.name, "pattern": sub.pattern.text, "group": sub.group,
        }
        topic = f"{DEAD_LETTER_GROUP}.{ev.topic}"
        now = now_us()
        letter = Event(id=new_id(now), topic=topic, source=client.source, time=now,
                       type="evfabric.deadletter", delivery=RELIABLE, body=body)
        ticket, wake = batcher.add(topic_subject(topic), RELIABLE, letter)
        while ticket is None:  # the batcher is full: dead letters must not be lost
            batcher.max_pending += 1
            ticket, wake = batcher.add(topic_subject(topic), RELIABLE, letter)
        if wake:
            client.call_on_loop(client.publisher.wake)
    assert ticket is not None
    return ticket
