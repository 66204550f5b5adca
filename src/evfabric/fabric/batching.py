"""Coalescing published events into batches (Nitro: emit per event, per interval or per count).

Publishers append events to per-(subject, delivery) buffers; the transport drains them whenever it
gets to run. A lone event therefore leaves at once (the drain is triggered by the first event
after a quiet spell), while a burst accumulates during the previous send and travels in a few
large messages: no fixed delay is ever added unless ``linger`` asks for one. A drained buffer is
cut into :class:`Batch` es of at most ``max_events`` events and about ``max_bytes`` bytes, each
one message in the client's wire format (:func:`evfabric.wire.encode_events`, columnar by
default). Each batch is encoded once: its size is foreseen from the bytes per event of the
subject's previous batch; only a batch that still overshoots is split (and encoded again).

Every batch carries the headers of docs/wire.md section 2: ``Evf-Stream`` (64 random bits drawn
per batcher, i.e. per connection, one stream per delivery so that a reliable batch waiting
for room never shows as a gap to best-effort receivers), ``Evf-Seq`` (the number of its first
event within (stream, subject), from 1, no gaps), ``Evf-Count``, ``Evf-Since`` (when the
(stream, subject)'s first event left, wall-clock microseconds), and for reliable batches
``Nats-Msg-Id = <Evf-Stream>-<Evf-Seq>-<subject>`` (one JetStream stream holds many subjects):
unique per publisher by construction, the same on every
resend, so the broker stores a batch once and a ``duplicate`` answer can only be about our own.

The :class:`Batcher` is bounded: it counts events from acceptance until their batch completes
(sent for best effort, stored for reliable), and refuses more beyond ``max_pending``; the caller
then blocks, raises or drops, as configured (dead letters, ``force=True``, are never refused).
Events accepted between two drains on one subject and delivery share one :class:`Ticket` that
completes when all their batches have: an error on one subject fails no other subject's ticket.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable

from evfabric.core.errors import PublishTimeout
from evfabric.core.event import BEST_EFFORT, RELIABLE, Event
from evfabric.fabric.outbound import header_block
from evfabric.wire import DEFAULT_FORMAT, encode_events, wire_format

__all__ = ["Batch", "Batcher", "Ticket", "new_stream_id"]


def new_stream_id() -> str:
    """A publisher stream id: 16 lowercase hex digits from the OS's randomness (docs/wire.md 2)."""
    return os.urandom(8).hex()


class Ticket:
    """Completion of a group of published events: sent (best effort) or stored (reliable).

    ``wait(timeout)`` blocks a thread; ``await ticket.wait_async()`` suspends a coroutine. Both
    raise the error of the first batch that failed for good. A ticket is cheap to make (one per
    subject and drain, so thousands per second with many topics): the thread-waiting machinery
    and the callback list exist only once someone waits or adds a callback.
    """

    __slots__ = ("_callbacks", "_done", "_error", "_event", "_observed", "_parts", "_sealed")

    def __init__(self) -> None:
        self._observed = False  # someone asked for the outcome (wait, wait_async, exception)
        self._parts = 0
        self._sealed = False
        self._done = False
        self._error: BaseException | None = None
        self._event: threading.Event | None = None  # made by the first thread that waits
        self._callbacks: list[Callable[[Ticket], None]] | None = None

    @classmethod
    def finished(cls, error: BaseException | None = None) -> Ticket:
        """A ticket that is already done (nothing to wait for, or failed with ``error``)."""
        t = cls()
        t._error = error
        t._seal(0)
        return t

    def done(self) -> bool:
        """True when every batch of the ticket completed (or one failed)."""
        return self._done

    def exception(self) -> BaseException | None:
        """The error that failed the ticket, if any."""
        self._observed = True
        return self._error

    def wait(self, timeout: float | None = None) -> None:
        """Block until done; raise :class:`PublishTimeout` after ``timeout`` s, or the batch's error."""
        self._observed = True
        if not self._done:
            event = self._event
            if event is None:
                with _EVENT_LOCK:  # two waiting threads must share one Event
                    event = self._event
                    if event is None:
                        event = self._event = threading.Event()
            # _finish sets _done before it reads _event; we set _event before we read _done
            if not self._done and not event.wait(timeout):
                raise PublishTimeout(f"published events not confirmed within {timeout} s")
        if self._error is not None:
            raise self._error

    async def wait_async(self, timeout: float | None = None) -> None:
        """Like :meth:`wait`, for a coroutine on the loop that resolves the ticket."""
        self._observed = True
        if not self._done:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

            def resolve(_t: Ticket) -> None:
                if not fut.done():
                    fut.set_result(None)

            self.add_done_callback(resolve)
            try:
                await asyncio.wait_for(fut, timeout)
            except TimeoutError:
                raise PublishTimeout(f"published events not confirmed within {timeout} s") from None
        if self._error is not None:
            raise self._error

    def add_done_callback(self, fn: Callable[[Ticket], None]) -> None:
        """Call ``fn(ticket)`` when done (at once if it is); callbacks run on the transport's loop."""
        if self._done:
            fn(self)
            return
        if self._callbacks is None:
            self._callbacks = []
        self._callbacks.append(fn)
        if self._done and self._callbacks:  # finished meanwhile on another thread: run what is left
            self._run_callbacks()

    # --- driven by the transport -------------------------------------------------------------

    def _seal(self, parts: int) -> None:
        self._parts += parts
        self._sealed = True
        self._maybe_finish()

    def _part_done(self, error: BaseException | None = None) -> None:
        self._parts -= 1
        if error is not None and self._error is None:
            self._error = error
        if self._sealed and (self._parts <= 0 or self._error is not None) and not self._done:
            self._finish()

    def _maybe_finish(self) -> None:
        if self._sealed and (self._parts <= 0 or self._error is not None) and not self._done:
            self._finish()

    def _finish(self) -> None:
        self._done = True
        event = self._event
        if event is not None:
            event.set()
        if self._callbacks:
            self._run_callbacks()

    def _run_callbacks(self) -> None:
        callbacks, self._callbacks = self._callbacks or [], []
        for fn in callbacks:
            fn(self)


_EVENT_LOCK = threading.Lock()


#: a drain over at least this many subjects...
SPARSE_SUBJECTS = 64
#: ...with fewer events than this per subject on average is sparse;
SPARSE_EVENTS = 4
#: the next drain then waits (boundedly) for about this many events per subject.
SPARSE_TARGET = 8


class Batch:
    """Events of one subject and delivery that travel as one message (headers and payload made once)."""

    __slots__ = ("attempts", "block", "delivery", "events", "headers", "msg_id", "payload", "sent_at", "seq", "subject",
                 "ticket")

    def __init__(self, subject: str, delivery: str, events: list[Event], headers: dict[str, str], payload: bytes,
                 ticket: Ticket, seq: int, msg_id: str | None) -> None:
        self.subject = subject
        self.delivery = delivery
        self.events = events
        self.headers = headers
        self.block = header_block(headers)  # the NATS header block, serialized once (resends reuse it)
        self.payload = payload
        self.seq = seq
        # the same id on every retry: JetStream drops a re-sent batch it already stored
        self.msg_id = msg_id
        self.ticket = ticket
        self.attempts = 0
        self.sent_at = 0.0


class Batcher:
    """Thread-safe, bounded accumulation of events into batches (see the module docstring)."""

    def __init__(self, max_events: int = 1000, max_bytes: int = 256 * 1024, max_pending: int = 200_000,
                 wire: str = DEFAULT_FORMAT) -> None:
        if max_events < 1 or max_bytes < 1 or max_pending < 1:
            raise ValueError("max_events, max_bytes and max_pending must be positive")
        spec = wire_format(wire)  # ConfigError for an unknown format
        self.wire = spec.name
        self.max_events = min(max_events, spec.max_events or max_events)
        self.max_bytes = max_bytes
        self.max_pending = max_pending
        #: the publisher stream id per delivery (docs/wire.md 2: Evf-Stream)
        self.streams = {BEST_EFFORT: new_stream_id(), RELIABLE: new_stream_id()}
        self._lock = threading.Lock()
        self._space = threading.Condition(self._lock)
        self._waiters = 0
        self._buffers: dict[tuple[str, str], list[Event]] = {}
        self._tickets: dict[tuple[str, str], Ticket] = {}
        self._outstanding = 0
        self._next_seq: dict[tuple[str, str], int] = {}  # (subject, delivery) -> Evf-Seq of the next event
        self._since: dict[tuple[str, str], str] = {}  # (subject, delivery) -> Evf-Since (when its Evf-Seq 1 left)
        self._per_event: dict[str, float] = {}  # subject -> bytes per event in its last batch
        self._last_per_event: float | None = None  # the same for the last batch of any subject (new subjects)
        self._failed: list[Ticket] = []  # tickets failed since the last take_failures()
        self._buffered = 0  # events buffered since the last drain
        #: the last drain was sparse (many subjects, few events each): the transport may let
        #: events gather until ``buffered >= enough`` (see :meth:`gathered`)
        self.sparse = False
        self._enough = max_pending // 2  # when sparse: wake the transport at most once this many are buffered

    @property
    def outstanding(self) -> int:
        """Events accepted and not yet completed (buffered or in flight)."""
        return self._outstanding

    def add(self, subject: str, delivery: str, event: Event, force: bool = False) -> tuple[Ticket | None, bool]:
        """Buffer ``event``; return (its ticket, whether the transport must be woken).

        The ticket is None when the batcher is full (nothing was buffered), unless ``force``
        (dead letters: never refused, and the bound is not raised). The transport must be woken
        for the first event after a drain, and when a buffer reaches ``max_events``.
        """
        with self._lock:
            if self._outstanding >= self.max_pending and not force:
                return None, False
            key = (subject, delivery)
            buf = self._buffers.get(key)
            if buf is None:
                wake = not self._buffers
                buf = self._buffers[key] = []
                ticket = self._tickets[key] = Ticket()
            else:
                ticket = self._tickets[key]
                wake = False
            buf.append(event)
            self._outstanding += 1
            self._buffered += 1
            return ticket, wake or len(buf) == self.max_events or (self.sparse and self._gathered_locked())

    def add_many(self, subject: str, delivery: str, events: list[Event]) -> tuple[Ticket | None, bool]:
        """Buffer several events at once (all or none); see :meth:`add`."""
        with self._lock:
            if self._outstanding and self._outstanding + len(events) > self.max_pending:
                return None, False
            key = (subject, delivery)
            buf = self._buffers.get(key)
            if buf is None:
                wake = not self._buffers
                buf = self._buffers[key] = []
                ticket = self._tickets[key] = Ticket()
            else:
                ticket = self._tickets[key]
                wake = False
            buf.extend(events)
            self._outstanding += len(events)
            self._buffered += len(events)
            return ticket, wake or len(buf) >= self.max_events or (self.sparse and self._gathered_locked())

    def wait_for_space(self, timeout: float | None) -> bool:
        """Block the calling thread until the batcher accepts events again; False on timeout."""
        with self._space:
            self._waiters += 1
            try:
                return self._space.wait_for(lambda: self._outstanding < self.max_pending, timeout)
            finally:
                self._waiters -= 1

    def gathered(self) -> bool:
        """True when enough events are buffered to drain after a sparse drain (or it was not sparse)."""
        return not self.sparse or self._gathered_locked()

    def _gathered_locked(self) -> bool:
        # about SPARSE_TARGET events per buffered subject, or half the room
        return self._buffered >= SPARSE_TARGET * len(self._buffers) or self._buffered >= self._enough

    def pending_tickets(self) -> list[Ticket]:
        """The tickets of the events buffered since the last drain."""
        with self._lock:
            return list(self._tickets.values())

    def drain(self) -> list[Batch]:
        """Take everything buffered and cut it into encoded batches (the transport's side)."""
        with self._lock:
            buffers, self._buffers = self._buffers, {}
            tickets, self._tickets = self._tickets, {}
            events_in, self._buffered = self._buffered, 0
            # Many subjects with few events each make many small messages (costly on both ends):
            # next time let events gather until each subject has about SPARSE_TARGET of them.
            subjects = len(buffers)
            self.sparse = subjects >= SPARSE_SUBJECTS and events_in < SPARSE_EVENTS * subjects
            self._enough = self.max_pending // 2
        batches: list[Batch] = []
        for key, events in buffers.items():
            ticket = tickets[key]
            start = len(batches)
            try:
                self._cut(key[0], key[1], events, ticket, batches)
            except Exception as exc:  # an event the wire format cannot carry: fail these events only
                del batches[start:]
                self._release(len(events))
                ticket._error = exc
                ticket._seal(0)
                self._failed.append(ticket)
                continue
            ticket._seal(len(batches) - start)
        return batches

    def _cut(self, subject: str, delivery: str, events: list[Event], ticket: Ticket, out: list[Batch]) -> None:
        per_event = self._per_event.get(subject, self._last_per_event)
        if per_event is None:
            _, one = encode_events(events[:1], self.wire)  # a first estimate from one event
            per_event = float(len(one))
        step = max(1, min(self.max_events, int(self.max_bytes * 0.9 / max(per_event, 1.0))))
        for i in range(0, len(events), step):
            self._encode(subject, delivery, events[i : i + step], ticket, out)

    def _encode(self, subject: str, delivery: str, events: list[Event], ticket: Ticket, out: list[Batch]) -> None:
        headers, payload = encode_events(events, self.wire)
        n = len(events)
        self._per_event[subject] = self._last_per_event = len(payload) / n
        if len(payload) > self.max_bytes and n > 1:  # the estimate was short: split this one
            half = n // 2
            self._encode(subject, delivery, events[:half], ticket, out)
            self._encode(subject, delivery, events[half:], ticket, out)
            return
        key = (subject, delivery)
        seq = self._next_seq.get(key, 1)
        self._next_seq[key] = seq + n
        since = self._since.get(key) if seq > 1 else None
        if since is None:
            since = self._since[key] = str(time.time_ns() // 1000)
        stream = self.streams[delivery]
        headers["Evf-Stream"] = stream
        headers["Evf-Seq"] = str(seq)
        headers["Evf-Count"] = str(n)
        headers["Evf-Since"] = since
        msg_id = None
        if delivery == RELIABLE:
            msg_id = headers["Nats-Msg-Id"] = f"{stream}-{seq}-{subject}"
        out.append(Batch(subject, delivery, events, headers, payload, ticket, seq, msg_id))

    def _release(self, n: int) -> None:
        with self._lock:
            self._outstanding -= n
            if self._waiters:
                self._space.notify_all()

    def complete(self, batch: Batch, error: BaseException | None = None) -> None:
        """Mark ``batch`` done (sent, stored, dropped or failed): frees room, advances its ticket."""
        self._release(len(batch.events))
        ticket = batch.ticket
        if error is not None and ticket._error is None and len(self._failed) < 1000:
            self._failed.append(ticket)
        ticket._part_done(error)

    def complete_many(self, batches: list[Batch]) -> None:
        """Mark every one of ``batches`` done without error (one lock for all of them)."""
        self._release(sum(len(b.events) for b in batches))
        for batch in batches:
            batch.ticket._part_done()

    def take_failures(self) -> list[BaseException]:
        """The errors of tickets that failed since the last call and that nobody waited on
        (a flush or close reports them: no failure passes unseen)."""
        failed, self._failed = self._failed, []
        return [t._error for t in failed if not t._observed and t._error is not None]
