"""The sending side of a client: drains the :class:`~evfabric.fabric.batching.Batcher` onto NATS.

A part with a narrow interface: it takes the connection (``nc``, ``js``), the batcher, the topic
catalog, the loss reporter and the stats, nothing else of the client.

* ``best_effort`` batches are plain NATS publishes. While disconnected nats-py buffers a little;
  beyond that a batch is dropped, counted and reported (``cca.fabric.dropped``).
* ``reliable`` batches are JetStream publishes with ``Nats-Msg-Id = <Evf-Stream>-<Evf-Seq>-<subject>``
  (docs/wire.md 2). The publisher tracks each one until the broker's acknowledgement (stored)
  arrives on its own reply inbox; a batch not acknowledged within ``ack_timeout`` (server down,
  reconnecting, restarted) is sent again with the same id, so the broker stores it once; its
  ``duplicate`` answer is then about our own batch (no other publisher can hold the id). At most
  ``window`` batches per subject are in flight; the next ones of that subject wait (in order)
  while other subjects keep flowing, so a slow or broken topic never holds up a healthy one.
* Broker answers: stored; temporary (JetStream restarting or without a leader, 10158 "duplicate
  message id is in process") retried shortly; storage full (10023 "insufficient resources",
  10047/10028 storage or memory exhausted) failed at once with :class:`StorageFull`; anything
  else failed with :class:`PublishRejected`. Errors fail only the tickets of the events concerned.
* A reliable publish to a topic no stream covers creates one (the topic's first segment, with the
  client's default settings) when ``auto_topics`` is on; otherwise it fails with NotFound. A batch
  that stays unanswered (a best-effort subscriber took the request, so the broker said nothing)
  gets the same check after its first resend.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from dataclasses import replace
from typing import Any

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from evfabric.core.errors import (
    AccessDenied,
    AlreadyExists,
    ConfigError,
    NotFound,
    PublishRejected,
    ServiceClosed,
    StorageFull,
)
from evfabric.core.event import RELIABLE
from evfabric.fabric.batching import Batch, Batcher
from evfabric.fabric.deadletter import DEAD_LETTER_GROUP
from evfabric.fabric.losses import LossReport
from evfabric.fabric.outbound import publish_block
from evfabric.fabric.streams import TopicConfig, create_topic
from evfabric.fabric.subjects import topic_of_subject
from evfabric.fabric.topic_catalog import TopicCatalog

__all__ = ["STORAGE_FULL_CODES", "TEMPORARY_CODES", "Publisher"]

log = logging.getLogger("evfabric.fabric")

#: JetStream error codes meaning "try again shortly": no leader / cluster unavailable (10008),
#: the stream is not ready, a duplicate id still being proposed in a clustered stream (10158).
TEMPORARY_CODES = frozenset({10008, 10158})
#: JetStream error codes meaning the store is full: insufficient resources (10023), storage
#: resources exceeded (10047), memory resources exceeded (10028).
STORAGE_FULL_CODES = frozenset({10023, 10047, 10028})
#: seconds events may wait for company after a sparse drain (many subjects, few events each)
GATHER = 0.25


class Publisher:
    """Drains batches to the broker and sees reliable ones through to storage."""

    def __init__(self, nc: NatsClient, js: Any, batcher: Batcher, catalog: TopicCatalog, losses: LossReport,
                 stats: Any, *, ack_timeout: float, window: int, linger: float,
                 auto_topics: TopicConfig | None, gather: float = GATHER) -> None:
        self.nc = nc
        self.js = js
        self.batcher = batcher
        self.catalog = catalog
        self.losses = losses
        self.stats = stats  # FabricStats: sent, stored, resent, duplicate_batches
        self.ack_timeout = ack_timeout
        self.window = window
        self.linger = linger
        self.gather = gather
        self._urgent = False  # a flush is waiting: drain now, gathered or not
        self.auto_topics = auto_topics
        self._wake = asyncio.Event()
        self._inflight: dict[str, Batch] = {}  # reply token -> batch awaiting the broker's answer
        self._active: dict[str, int] = {}  # subject -> reliable batches sent and not finished
        self._held: dict[str, deque[Batch]] = {}  # subject -> batches waiting for room on it
        self._token = 0
        self._prefix = ""
        self._tasks: list[asyncio.Task[None]] = []
        self._timers: set[asyncio.Task[None]] = set()
        self._closed = False

    async def start(self) -> None:
        """Subscribe the acknowledgement inbox and start the drain and retry tasks."""
        self._prefix = self.nc.new_inbox()
        await self.nc.subscribe(self._prefix + ".*", cb=self._on_ack, pending_msgs_limit=0, pending_bytes_limit=0)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._drain_loop(), name="evfabric-publish"),
                       loop.create_task(self._retry_loop(), name="evfabric-retry")]

    def wake(self) -> None:
        """Events are waiting (call on the loop)."""
        self._wake.set()

    def wake_now(self) -> None:
        """Drain what is buffered at once, without letting sparse events gather (a flush; on the loop)."""
        self._urgent = True
        self._wake.set()

    @property
    def in_flight(self) -> int:
        """Reliable batches sent and not yet acknowledged."""
        return len(self._inflight)

    @property
    def unconfirmed(self) -> int:
        """Reliable batches not finished: in flight, waiting for a retry, or held for room."""
        return sum(self._active.values()) + sum(len(q) for q in self._held.values())

    # -- draining ---------------------------------------------------------------------------------

    async def _drain_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            # Linger only while the line is busy: a lone event on an idle line leaves at once.
            if self.linger and (self._inflight or self.nc.pending_data_size):
                await asyncio.sleep(self.linger)
            if not self.batcher.gathered() and self.gather:
                await self._gather()
            self._urgent = False
            sent: list[Batch] = []  # best-effort batches handed to the connection: completed together
            for batch in self.batcher.drain():
                if batch.delivery != RELIABLE:
                    if await self._send_best_effort(batch):
                        sent.append(batch)
                elif self._active.get(batch.subject, 0) >= self.window or self._held.get(batch.subject):
                    self._held.setdefault(batch.subject, deque()).append(batch)
                else:
                    self._active[batch.subject] = self._active.get(batch.subject, 0) + 1
                    await self._send_reliable(batch)
            if sent:
                self.stats.sent += sum(len(b.events) for b in sent)
                self.batcher.complete_many(sent)

    async def _gather(self) -> None:
        """After a sparse drain (many subjects, few events each), let events gather for at most
        ``gather`` seconds, until each subject has a few (the batcher wakes us) or a flush asks."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.gather
        while not self._urgent and not self.batcher.gathered():
            left = deadline - loop.time()
            if left <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), left)
            except TimeoutError:
                return

    async def _send_best_effort(self, batch: Batch) -> bool:
        """Hand ``batch`` to the connection; True when sent (the caller completes it), False when
        it was dropped or failed (completed here)."""
        try:
            await publish_block(self.nc, batch.subject, batch.payload, batch.block, batch.headers)
        except nats.errors.OutboundBufferLimitError:
            self.losses.drop("disconnected", topic_of_subject(batch.subject) or batch.subject, len(batch.events))
        except nats.errors.MaxPayloadError:
            self.batcher.complete(batch, PublishRejected(
                f"a batch of {len(batch.payload)} bytes on {batch.subject} exceeds the broker's max payload"))
            return False
        except (nats.errors.ConnectionClosedError, nats.errors.ConnectionDrainingError):
            self.batcher.complete(batch, ServiceClosed("the fabric connection is closed"))
            return False
        return True

    async def _send_reliable(self, batch: Batch) -> None:
        self._token += 1
        token = str(self._token)
        self._inflight[token] = batch
        batch.attempts += 1
        batch.sent_at = asyncio.get_running_loop().time()
        try:
            await publish_block(self.nc, batch.subject, batch.payload, batch.block, batch.headers,
                                reply=f"{self._prefix}.{token}")
        except (nats.errors.OutboundBufferLimitError, nats.errors.ConnectionReconnectingError):
            log.debug("reliable batch %s queued while disconnected: the retry loop resends it", batch.msg_id)
        except nats.errors.MaxPayloadError:
            self._fail(token, PublishRejected(
                f"a batch of {len(batch.payload)} bytes on {batch.subject} exceeds the broker's max payload"))
        except (nats.errors.ConnectionClosedError, nats.errors.ConnectionDrainingError):
            self._fail(token, ServiceClosed("the fabric connection is closed"))

    def _finish(self, batch: Batch, error: BaseException | None = None) -> None:
        """A reliable batch is done for good: free its subject's slot, send the next held one."""
        self.batcher.complete(batch, error)
        n = self._active.get(batch.subject, 0) - 1
        if n > 0:
            self._active[batch.subject] = n
        else:
            self._active.pop(batch.subject, None)
        held = self._held.get(batch.subject)
        if held:
            nxt = held.popleft()
            if not held:
                del self._held[batch.subject]
            self._active[nxt.subject] = self._active.get(nxt.subject, 0) + 1
            self._retry_later(nxt, 0.0)

    def _fail(self, token: str, error: BaseException) -> None:
        batch = self._inflight.pop(token, None)
        if batch is not None:
            self._finish(batch, error)

    def denied(self, message: str) -> bool:
        """The broker said a publish was not permitted: fail the in-flight batches on that subject;
        False when none was waiting (a best-effort publish: the caller tells it at the next flush)."""
        subject = message.rsplit(" to ", 1)[-1].strip().strip("'\"")
        failed = False
        for token, batch in list(self._inflight.items()):
            if batch.subject == subject:
                failed = True
                self._fail(token, AccessDenied(f"the broker refused to store events on {subject!r}: {message}"))
        for batch in self._held.pop(subject, ()):
            failed = True
            self._active[subject] = self._active.get(subject, 0) + 1
            self._finish(batch, AccessDenied(f"the broker refused to store events on {subject!r}: {message}"))
        return failed

    # -- acknowledgements ---------------------------------------------------------------------------

    async def _on_ack(self, msg: Msg) -> None:
        token = msg.subject[len(self._prefix) + 1 :]
        batch = self._inflight.pop(token, None)
        if batch is None:
            return  # an answer to an attempt we already gave up on
        if msg.headers and msg.headers.get("Status") == "503":
            await self._no_stream(batch)
            return
        try:
            resp = json.loads(msg.data)
        except ValueError:
            resp = {"error": {"code": 500, "description": f"unreadable acknowledgement {msg.data[:80]!r}"}}
        err = resp.get("error")
        if err is None:
            # a duplicate is ours: the id holds our random stream id (docs/wire.md 2)
            self.stats.stored += len(batch.events)
            if resp.get("duplicate"):
                self.stats.duplicate_batches += 1
            self._finish(batch)
            return
        code = err.get("err_code")
        if code in STORAGE_FULL_CODES:
            self._finish(batch, StorageFull(
                f"the broker cannot store {len(batch.events)} events on {batch.subject}: its store is full "
                f"({code} {err.get('description', '')})"))
        elif code in TEMPORARY_CODES or (code is None and err.get("code") == 503):
            self._retry_later(batch, 0.2)  # JetStream temporarily unavailable (restarting, no leader)
        else:
            self._finish(batch, PublishRejected(
                f"the broker refused a batch on {batch.subject}: {err.get('description', err)}"))

    async def _no_stream(self, batch: Batch) -> None:
        topic = topic_of_subject(batch.subject) or ""
        try:
            known = await self.catalog.covering_fresh(topic)
            if known is None:
                if self.auto_topics is None and not topic.startswith(DEAD_LETTER_GROUP + "."):
                    self._finish(batch, NotFound(
                        f"reliable publish on {topic!r}: no topic stores it (create one with create_topic)"))
                    return
                await self._create_for(topic)
        except Exception as exc:  # the broker is not ready (restarting): try again shortly
            log.debug("stream lookup for %s failed: %r", topic, exc)
        self._retry_later(batch, 0.05)

    async def _create_for(self, topic: str) -> None:
        template = self.auto_topics or TopicConfig(name="auto")
        root = DEAD_LETTER_GROUP if topic.startswith(DEAD_LETTER_GROUP + ".") else topic.split(".")[0]
        for name in (root, topic):  # the root, unless another topic below it already exists
            try:
                cfg = replace(template, name=name)
                info = await create_topic(self.js, cfg, exist_ok=True, adopt=True)
                self.catalog.note(info.config)
                return
            except (AlreadyExists, ConfigError):
                continue
        await self.catalog.load()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    def _retry_later(self, batch: Batch, delay: float) -> None:
        async def again() -> None:
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:  # closing: the batch will never be confirmed
                self._finish(batch, ServiceClosed("the fabric client closed before the broker confirmed these events"))
                raise
            await self._send_reliable(batch)

        self._spawn(again())

    async def _retry_loop(self) -> None:
        tick = max(0.05, self.ack_timeout / 4)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(tick)
            if not self.nc.is_connected:
                continue
            now = loop.time()
            late = [(t, b) for t, b in self._inflight.items() if now - b.sent_at > self.ack_timeout]
            for token, batch in late:
                if self._inflight.pop(token, None) is None:
                    continue
                self.stats.resent += 1
                if batch.attempts >= 2 and self.catalog.covering(topic_of_subject(batch.subject) or "") is None:
                    await self._no_stream(batch)  # unanswered twice, and no stream known for it
                else:
                    await self._send_reliable(batch)

    def on_reconnect(self) -> None:
        """The connection is back: re-send unacknowledged batches at the next retry tick."""
        for batch in self._inflight.values():
            batch.sent_at = 0.0

    async def close(self) -> None:
        """Stop the tasks (call after flushing); batches still unconfirmed fail with ServiceClosed."""
        self._closed = True
        for t in [*self._tasks, *self._timers]:
            t.cancel()
        for t in [*self._tasks, *self._timers]:
            try:
                await t
            except asyncio.CancelledError:
                continue
            except Exception as exc:
                log.warning("publisher task %s ended with %r", t.get_name(), exc)
        gone = ServiceClosed("the fabric client closed before the broker confirmed these events")
        for token in list(self._inflight):
            self._fail(token, gone)
        for subject in list(self._held):
            for batch in self._held.pop(subject):
                self.batcher.complete(batch, gone)
