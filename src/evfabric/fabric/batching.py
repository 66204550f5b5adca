"""Coalescing published events into batches (Nitro: emit per event, per interval or per count).

Publishers append events to per-(subject, mode) buffers; the transport drains them whenever it
gets to run. A lone event therefore leaves at once (the drain is triggered by the first event
after a quiet spell), while a burst accumulates during the previous send and travels in a few
large messages: no fixed delay is ever added unless ``linger`` asks for one. A drained buffer is
cut into :class:`Batch` es of at most ``max_events`` events and about ``max_bytes`` bytes, each
one MessagePack array (``evfabric.core.codec.encode_batch``), which consumers unpack.

The :class:`Batcher` is bounded: it counts events from acceptance until their batch completes
(sent for best effort, stored for reliable), and refuses more beyond ``max_pending``; the caller
then blocks, raises or drops, as configured. Every group of events accepted between two drains
shares one :class:`Ticket` that completes when all their batches have.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from evfabric.core.codec import encode_batch
from evfabric.core.errors import PublishTimeout
from evfabric.core.event import Event

__all__ = ["Batch", "Batcher", "Ticket"]


class Ticket:
    """Completion of a group of published events: sent (best effort) or stored (reliable).

    ``wait(timeout)`` blocks a thread; ``await ticket.wait_async()`` suspends a coroutine. Both
    raise the error of the first batch that failed for good.
    """

    __slots__ = ("_parts", "_sealed", "_error", "_event", "_callbacks")

    def __init__(self) -> None:
        self._parts = 0
        self._sealed = False
        self._error: BaseException | None = None
        self._event = threading.Event()
        self._callbacks: list[Callable[[Ticket], None]] = []

    def done(self) -> bool:
        """True when every batch of the ticket completed (or one failed)."""
        return self._event.is_set()

    def exception(self) -> BaseException | None:
        """The error that failed the ticket, if any."""
        return self._error

    def wait(self, timeout: float | None = None) -> None:
        """Block until done; raise :class:`PublishTimeout` after ``timeout`` s, or the batch's error."""
        if not self._event.wait(timeout):
            raise PublishTimeout(f"published events not confirmed within {timeout} s")
        if self._error is not None:
            raise self._error

    async def wait_async(self, timeout: float | None = None) -> None:
        """Like :meth:`wait`, for a coroutine on the loop that resolves the ticket."""
        if not self.done():
            fut = asyncio.get_running_loop().create_future()
            self.add_done_callback(lambda _t: fut.done() or fut.set_result(None))
            try:
                await asyncio.wait_for(fut, timeout)
            except asyncio.TimeoutError:
                raise PublishTimeout(f"published events not confirmed within {timeout} s") from None
        if self._error is not None:
            raise self._error

    def add_done_callback(self, fn: Callable[[Ticket], None]) -> None:
        """Call ``fn(ticket)`` when done (at once if it is); callbacks run on the transport's loop."""
        if self.done():
            fn(self)
        else:
            self._callbacks.append(fn)

    # --- driven by the transport -------------------------------------------------------------

    def _seal(self, parts: int) -> None:
        self._parts += parts
        self._sealed = True
        self._maybe_finish()

    def _part_done(self, error: BaseException | None = None) -> None:
        self._parts -= 1
        if error is not None and self._error is None:
            self._error = error
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        if self._sealed and (self._parts <= 0 or self._error is not None) and not self._event.is_set():
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
            for fn in callbacks:
                fn(self)


class Batch:
    """Events of one subject and mode that travel as one message."""

    __slots__ = ("subject", "mode", "events", "payload", "msg_id", "ticket", "attempts", "sent_at")

    def __init__(self, subject: str, mode: str, events: list[Event], payload: bytes, ticket: Ticket) -> None:
        self.subject = subject
        self.mode = mode
        self.events = events
        self.payload = payload
        # the same id on every retry: JetStream drops a re-sent batch it already stored
        self.msg_id = f"{events[0].id}.{len(events)}"
        self.ticket = ticket
        self.attempts = 0
        self.sent_at = 0.0


class Batcher:
    """Thread-safe, bounded accumulation of events into batches (see the module docstring)."""

    def __init__(self, max_events: int = 1000, max_bytes: int = 256 * 1024, max_pending: int = 200_000) -> None:
        if max_events < 1 or max_bytes < 1 or max_pending < 1:
            raise ValueError("max_events, max_bytes and max_pending must be positive")
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.max_pending = max_pending
        self._lock = threading.Lock()
        self._space = threading.Condition(self._lock)
        self._waiters = 0
        self._buffers: dict[tuple[str, str], list[Event]] = {}
        self._outstanding = 0
        self._ticket: Ticket | None = None

    @property
    def outstanding(self) -> int:
        """Events accepted and not yet completed (buffered or in flight)."""
        return self._outstanding

    def add(self, subject: str, mode: str, event: Event) -> tuple[Ticket | None, bool]:
        """Buffer ``event``; return (its ticket, whether the transport must be woken).

        The ticket is None when the batcher is full (nothing was buffered). The transport must be
        woken for the first event after a drain, and when a buffer reaches ``max_events``.
        """
        with self._lock:
            if self._outstanding >= self.max_pending:
                return None, False
            key = (subject, mode)
            buf = self._buffers.get(key)
            if buf is None:
                buf = self._buffers[key] = []
            buf.append(event)
            self._outstanding += 1
            ticket = self._ticket
            if ticket is None:
                ticket = self._ticket = Ticket()
                return ticket, True
            return ticket, len(buf) == self.max_events

    def add_many(self, subject: str, mode: str, events: list[Event]) -> tuple[Ticket | None, bool]:
        """Buffer several events at once (all or none); see :meth:`add`."""
        with self._lock:
            if self._outstanding and self._outstanding + len(events) > self.max_pending:
                return None, False
            key = (subject, mode)
            buf = self._buffers.get(key)
            if buf is None:
                buf = self._buffers[key] = []
            buf.extend(events)
            self._outstanding += len(events)
            ticket = self._ticket
            if ticket is None:
                ticket = self._ticket = Ticket()
                return ticket, True
            return ticket, len(buf) >= self.max_events

    def wait_for_space(self, timeout: float | None) -> bool:
        """Block the calling thread until the batcher accepts events again; False on timeout."""
        with self._space:
            self._waiters += 1
            try:
                return self._space.wait_for(lambda: self._outstanding < self.max_pending, timeout)
            finally:
                self._waiters -= 1

    def pending_ticket(self) -> Ticket | None:
        """The ticket of the events buffered since the last drain, if any."""
        return self._ticket

    def drain(self) -> list[Batch]:
        """Take everything buffered and cut it into encoded batches (the transport's side)."""
        with self._lock:
            buffers, self._buffers = self._buffers, {}
            ticket, self._ticket = self._ticket, None
        if ticket is None:
            return []
        batches: list[Batch] = []
        for (subject, mode), events in buffers.items():
            for i in range(0, len(events), self.max_events):
                self._cut(subject, mode, events[i : i + self.max_events], ticket, batches)
        ticket._seal(len(batches))
        return batches

    def _cut(self, subject: str, mode: str, events: list[Event], ticket: Ticket, out: list[Batch]) -> None:
        payload = encode_batch(events)
        if len(payload) > self.max_bytes and len(events) > 1:
            half = len(events) // 2
            self._cut(subject, mode, events[:half], ticket, out)
            self._cut(subject, mode, events[half:], ticket, out)
        else:
            out.append(Batch(subject, mode, events, payload, ticket))

    def complete(self, batch: Batch, error: BaseException | None = None) -> None:
        """Mark ``batch`` done (sent, stored, dropped or failed): frees room, advances its ticket."""
        with self._lock:
            self._outstanding -= len(batch.events)
            if self._waiters:
                self._space.notify_all()
        batch.ticket._part_done(error)
