"""The sending side of a client: drains the :class:`~evfabric.fabric.batching.Batcher` onto NATS.

* ``best_effort`` batches are plain NATS publishes. While disconnected nats-py buffers a little;
  beyond that a batch is dropped, counted and reported (``cca.fabric.dropped``).
* ``reliable`` batches are JetStream publishes with ``Nats-Msg-Id`` = the batch id. The publisher
  tracks each one until the broker's acknowledgement (stored) arrives on its own reply inbox; a
  batch not acknowledged within ``ack_timeout`` (server down, reconnecting, restarted) is sent
  again with the same id, so the broker stores it once. At most ``window`` batches are in flight;
  meanwhile new events pile up in the batcher and leave in larger batches (Nagle-like).
* A reliable publish to a topic no stream covers creates one (the topic's first segment, with the
  client's default settings) when ``auto_topics`` is on; otherwise it fails with NotFound.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from typing import TYPE_CHECKING

import nats.errors
from nats.aio.msg import Msg

from evfabric.core.errors import AccessDenied, AlreadyExists, ConfigError, NotFound, PublishRejected, ServiceClosed
from evfabric.core.event import RELIABLE
from evfabric.fabric.batching import Batch, Batcher
from evfabric.fabric.consumers import DEAD_LETTER_GROUP
from evfabric.fabric.streams import TopicConfig, create_topic
from evfabric.fabric.subjects import topic_of_subject

if TYPE_CHECKING:
    from evfabric.fabric.aio import AsyncClient

__all__ = ["Publisher"]

log = logging.getLogger("evfabric.fabric")


class Publisher:
    """Drains batches to the broker and sees reliable ones through to storage."""

    def __init__(self, client: AsyncClient, batcher: Batcher, *, ack_timeout: float, window: int,
                 linger: float, auto_topics: TopicConfig | None) -> None:
        self.client = client
        self.batcher = batcher
        self.ack_timeout = ack_timeout
        self.window = window
        self.linger = linger
        self.auto_topics = auto_topics
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._inflight: dict[str, Batch] = {}
        self._token = 0
        self._prefix = ""
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    async def start(self) -> None:
        """Subscribe the acknowledgement inbox and start the drain and retry tasks."""
        nc = self.client.nc
        self._prefix = nc.new_inbox()
        await nc.subscribe(self._prefix + ".*", cb=self._on_ack, pending_msgs_limit=0, pending_bytes_limit=0)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._drain_loop(), name="evfabric-publish"),
                       loop.create_task(self._retry_loop(), name="evfabric-retry")]

    def wake(self) -> None:
        """Events are waiting (call on the loop)."""
        self._wake.set()

    @property
    def in_flight(self) -> int:
        """Reliable batches sent and not yet acknowledged."""
        return len(self._inflight)

    # -- draining ---------------------------------------------------------------------------------

    async def _drain_loop(self) -> None:
        nc = self.client.nc
        while True:
            await self._wake.wait()
            self._wake.clear()
            # Linger only while the line is busy: a lone event on an idle line leaves at once.
            if self.linger and (self._inflight or nc.pending_data_size):
                await asyncio.sleep(self.linger)
            for batch in self.batcher.drain():
                if batch.mode == RELIABLE:
                    while len(self._inflight) >= self.window and not self._closed:
                        self._room.clear()
                        await self._room.wait()
                    await self._send_reliable(batch)
                else:
                    await self._send_best_effort(batch)

    async def _send_best_effort(self, batch: Batch) -> None:
        try:
            await self.client.nc.publish(batch.subject, batch.payload)
        except nats.errors.OutboundBufferLimitError:
            self.client.losses.drop("disconnected", topic_of_subject(batch.subject) or batch.subject, len(batch.events))
        except nats.errors.MaxPayloadError:
            self.batcher.complete(batch, PublishRejected(f"a batch of {len(batch.payload)} bytes exceeds the broker's max payload"))
            return
        except (nats.errors.ConnectionClosedError, nats.errors.ConnectionDrainingError):
            self.batcher.complete(batch, ServiceClosed("the fabric connection is closed"))
            return
        self.client.stats.sent += len(batch.events)
        self.batcher.complete(batch)

    async def _send_reliable(self, batch: Batch) -> None:
        self._token += 1
        token = str(self._token)
        self._inflight[token] = batch
        batch.attempts += 1
        batch.sent_at = asyncio.get_running_loop().time()
        try:
            await self.client.nc.publish(batch.subject, batch.payload, reply=f"{self._prefix}.{token}",
                                         headers={"Nats-Msg-Id": batch.msg_id})
        except (nats.errors.OutboundBufferLimitError, nats.errors.ConnectionReconnectingError):
            pass  # disconnected: the retry loop sends it again after ack_timeout
        except nats.errors.MaxPayloadError:
            self._fail(token, PublishRejected(f"a batch of {len(batch.payload)} bytes exceeds the broker's max payload"))
        except (nats.errors.ConnectionClosedError, nats.errors.ConnectionDrainingError):
            self._fail(token, ServiceClosed("the fabric connection is closed"))

    def _fail(self, token: str, error: BaseException) -> None:
        batch = self._inflight.pop(token, None)
        if batch is not None:
            self._room.set()
            self.batcher.complete(batch, error)

    def denied(self, message: str) -> None:
        """The broker said a publish was not permitted: fail the in-flight batches on that subject."""
        subject = message.rsplit(" to ", 1)[-1].strip().strip("'\"")
        for token, batch in list(self._inflight.items()):
            if batch.subject == subject:
                self._fail(token, AccessDenied(f"the broker refused to store events on {subject!r}: {message}"))

    # -- acknowledgements ---------------------------------------------------------------------------

    async def _on_ack(self, msg: Msg) -> None:
        token = msg.subject[len(self._prefix) + 1 :]
        batch = self._inflight.pop(token, None)
        if batch is None:
            return  # an answer to an attempt we already gave up on
        self._room.set()
        if msg.headers and msg.headers.get("Status") == "503":
            await self._no_stream(batch)
            return
        try:
            resp = json.loads(msg.data)
        except ValueError:
            resp = {"error": {"code": 500, "description": f"unreadable acknowledgement {msg.data[:80]!r}"}}
        err = resp.get("error")
        if err is None:
            self.client.stats.stored += len(batch.events)
            if resp.get("duplicate"):
                self.client.stats.duplicate_batches += 1
            self.batcher.complete(batch)
        elif err.get("code") == 503 or err.get("err_code") in (10008, 10023):
            self._retry_later(batch, 0.2)  # JetStream temporarily unavailable (restarting, no leader)
        else:
            self.batcher.complete(batch, PublishRejected(
                f"the broker refused a batch on {batch.subject}: {err.get('description', err)}"))

    async def _no_stream(self, batch: Batch) -> None:
        topic = topic_of_subject(batch.subject) or ""
        catalog = self.client.catalog
        try:
            known = await catalog.covering_fresh(topic)
            if known is None:
                if self.auto_topics is None and not topic.startswith(DEAD_LETTER_GROUP + "."):
                    self.batcher.complete(batch, NotFound(
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
                info = await create_topic(self.client.js, cfg, exist_ok=True)
                self.client.catalog.note(info.config)
                return
            except (AlreadyExists, ConfigError):
                continue
        await self.client.catalog.load()

    def _retry_later(self, batch: Batch, delay: float) -> None:
        async def again() -> None:
            await asyncio.sleep(delay)
            await self._send_reliable(batch)

        asyncio.get_running_loop().create_task(again())

    async def _retry_loop(self) -> None:
        tick = max(0.05, self.ack_timeout / 4)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(tick)
            if not self.client.nc.is_connected:
                continue
            now = loop.time()
            late = [(t, b) for t, b in self._inflight.items() if now - b.sent_at > self.ack_timeout]
            for token, batch in late:
                if self._inflight.pop(token, None) is not None:
                    self.client.stats.resent += 1
                    await self._send_reliable(batch)

    def on_reconnect(self) -> None:
        """The connection is back: re-send unacknowledged batches at the next retry tick."""
        for batch in self._inflight.values():
            batch.sent_at = 0.0

    async def close(self) -> None:
        """Stop the tasks (call after flushing)."""
        self._closed = True
        self._room.set()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
