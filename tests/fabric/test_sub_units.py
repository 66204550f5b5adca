"""Units of the receiving path without a broker: sequence tracking, per-message dedupe, settling."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from _raw_publisher import batch_bytes
from nats.aio.msg import Msg

from evfabric.core.event import RELIABLE, Event
from evfabric.core.topics import Pattern
from evfabric.fabric.consumers import Wiring
from evfabric.fabric.handler import NO_SETTLE, Settle
from evfabric.fabric.losses import LossReport
from evfabric.fabric.pull import PullConsumer, consumer_config
from evfabric.fabric.receive import DUPLICATE, LATE, SequenceTracker
from evfabric.fabric.subjects import topic_subject
from evfabric.fabric.subscription import FabricSubscription
from evfabric.local.service import EventService


def _hdr(stream: str, seq: int, n: int) -> dict[str, str]:
    return {"Evf-Stream": stream, "Evf-Seq": str(seq), "Evf-Count": str(n)}


def test_sequence_tracker_counts_gaps_and_duplicates_exactly() -> None:
    t = SequenceTracker()
    assert t.note("s", _hdr("a", 5, 10)) == 0  # the first message seen sets the start
    assert t.note("s", _hdr("a", 15, 10)) == 0
    assert t.note("s", _hdr("a", 40, 1)) == 15  # 25..39 lost
    assert t.note("s", _hdr("a", 30, 2)) == LATE  # inside the gap counted lost: delivered, loss stays counted
    assert t.note("s", _hdr("a", 15, 10)) == DUPLICATE  # a batch seen already: dropped
    assert t.note("s", _hdr("b", 1, 1)) == 0 and t.note("other", _hdr("a", 1, 1)) == 0  # per stream and subject
    assert t.note("s", None) == 0 and t.note("s", {"Evf-Stream": "a", "Evf-Seq": "x", "Evf-Count": "1"}) == 0
    assert (t.lost, t.duplicates) == (15, 2)


def test_a_sequence_begun_after_the_interest_counts_what_came_before_its_first_message() -> None:
    t = SequenceTracker()
    t.since = 1_000  # the broker had our interest from this microsecond on

    def hdr(stream: str, seq: int, n: int, since: int | str | None) -> dict[str, str]:
        h = _hdr(stream, seq, n)
        if since is not None:
            h["Evf-Since"] = str(since)
        return h

    assert t.note("s", hdr("new", 101, 5, 2_000)) == 100  # began after: 1..100 were ours, and lost
    assert t.began == 2_000
    assert t.note("s", hdr("new", 106, 5, 2_000)) == 0
    assert t.note("s", hdr("new", 50, 1, 2_000)) == LATE  # inside the gap counted lost
    assert t.note("s", hdr("old", 101, 5, 999)) == 0  # began before our interest: a late join, not a loss
    assert t.note("s", hdr("eq", 101, 5, 1_000)) == 0  # the same microsecond: not known to be ours
    assert t.note("s", hdr("bad", 101, 5, "soon")) == 0 and t.note("s", hdr("none", 101, 5, None)) == 0
    assert t.note("s", hdr("one", 1, 5, 3_000)) == 0  # its first message: nothing before it
    assert t.note("s", hdr("new", 120, 1, 2_000)) == 9 and t.began == 0  # an ordinary gap
    assert t.lost == 109
    unknown = SequenceTracker()  # the interest's start unknown: the first message sets the start
    assert unknown.note("s", hdr("new", 101, 5, 2_000)) == 0
    small = SequenceTracker(limit=1)
    small.since = 1_000
    small.note("s", hdr("a", 1, 1, 2_000))
    small.note("s", hdr("b", 1, 1, 2_000))  # 'a' is forgotten: a new pair may be a forgotten one
    assert small.note("s", hdr("a", 2, 1, 2_000)) == 0


def test_sequence_tracker_remembers_the_last_gaps_only() -> None:
    t = SequenceTracker()
    t.note("s", _hdr("a", 1, 1))
    for k in range(SequenceTracker.MISSING + 1):  # gaps at 2, 4, 6, ...: one event lost each time
        assert t.note("s", _hdr("a", 3 + 2 * k, 1)) == 1
    assert t.note("s", _hdr("a", 2, 1)) == DUPLICATE  # the oldest gap is forgotten: taken as seen
    assert t.note("s", _hdr("a", 4, 1)) == LATE


class _Handler:
    def __init__(self) -> None:
        self.got: list[tuple[list[Event], Settle]] = []

    def handle(self, events: list[Event], settle: Settle) -> None:
        self.got.append((events, settle))


def _consumer(handler: _Handler, max_deliver: int = 3) -> tuple[PullConsumer, FabricSubscription, list[Any]]:
    local = EventService(mode="sync")
    client = SimpleNamespace(local=local, _forget=lambda sub: None)
    sub = FabricSubscription(client, Pattern("t.*"), None, "u", RELIABLE, None, True, handler=handler)  # type: ignore[arg-type]
    stats = SimpleNamespace(dropped=0, garbage=0)
    wiring = Wiring(nc=SimpleNamespace(max_payload=1 << 20), js=None, losses=LossReport(stats, local),  # type: ignore[arg-type]
                    on_loop_thread=lambda: True, call_on_loop=lambda fn, *a: fn(*a), backlog_full=lambda: False,
                    dead_letter=lambda *a: None)
    cfg = consumer_config("u", ["evf.*.t.>"], start=None, ack_wait=1.0, max_deliver=max_deliver, max_ack_pending=8,
                          inactive=None)
    c = PullConsumer(wiring, sub, "S", cfg, batch=8, max_inflight=8, max_deliver=max_deliver, redeliver_delay=0.0,
                     dead_letter=False, shared=False)
    return c, sub, list(c._acks)


def _msg(seq: int, delivered: int, n: int = 3) -> Msg:
    reply = f"$JS.ACK.S.u.{delivered}.{seq}.{seq}.0.0"
    return Msg(_client=None, subject=topic_subject("t.x"), reply=reply, data=batch_bytes("t.x", seq * 10, n),  # type: ignore[arg-type]
               headers=None)


def test_per_message_dedupe_a_settled_message_delivered_again_is_dropped_whole_and_acked() -> None:
    h = _Handler()
    c, sub, _ = _consumer(h)

    async def go() -> None:
        await c._on_msg(_msg(7, 1))
        events, settle = h.got[0]
        settle.many(events)
        assert list(c._acks)[-1][1] == b"+ACK"
        await c._on_msg(_msg(7, 2))  # our ack was lost: the broker delivers it again
        assert len(h.got) == 1 and sub.stats.duplicates == 1
        assert list(c._acks)[-1] == ("$JS.ACK.S.u.2.7.7.0.0", b"+ACK")
        await c._on_msg(_msg(8, 1))
        await c._on_msg(_msg(8, 2))  # redelivered while still being handled: dropped, the live one acks
        assert len(h.got) == 2 and sub.stats.duplicates == 2 and c._inflight[8].reply.endswith(".2.8.8.0.0")

    asyncio.run(go())


def test_a_failed_message_is_redelivered_with_only_its_failed_events() -> None:
    h = _Handler()
    c, sub, _ = _consumer(h)

    async def go() -> None:
        await c._on_msg(_msg(3, 1))
        events, settle = h.got[0]
        settle(events[0])
        settle(events[1], RuntimeError("no"))
        settle(events[2])
        assert list(c._acks)[-1][1].startswith(b"-NAK")
        await c._on_msg(_msg(3, 2))
        again, settle2 = h.got[1]
        assert [e.id for e in again] == [events[1].id] and settle2.attempt == 2
        assert sub.stats.skipped == 2 and sub.stats.failed == 1
        settle2(again[0])
        assert list(c._acks)[-1][1] == b"+ACK"

    asyncio.run(go())


def test_garbage_is_terminated_at_once() -> None:
    h = _Handler()
    c, sub, _ = _consumer(h)

    async def go() -> None:
        bad = Msg(_client=None, subject=topic_subject("t.x"), reply="$JS.ACK.S.u.1.9.9.0.0", data=b"\xc1\xc1",  # type: ignore[arg-type]
                  headers=None)
        await c._on_msg(bad)
        assert list(c._acks)[-1] == ("$JS.ACK.S.u.1.9.9.0.0", b"+TERM") and sub.stats.garbage == 1 and not h.got

    asyncio.run(go())


def test_listener_settling_counts_user_calls_only() -> None:
    local = EventService(mode="sync")
    client = SimpleNamespace(local=local, _forget=lambda sub: None)
    sub = FabricSubscription(client, Pattern("t.*"), None, "u", RELIABLE, None, True)  # type: ignore[arg-type]
    local.add_subscription(sub)
    seen: list[str] = []
    sub.add_listener(lambda ev: seen.append(ev.id))
    settled: list[tuple[str, BaseException | None]] = []

    class Rec:
        attempt = 1

        def __call__(self, event: Event, error: BaseException | None = None) -> None:
            settled.append((event.id, error))

        def many(self, events: list[Event]) -> None:
            settled.extend((e.id, None) for e in events)

    from evfabric.core.codec import decode_batch

    events = decode_batch(batch_bytes("t.x", 0, 5))
    sub.handle(events, Rec())
    assert local.process_events() == 5 and local.stats.delivered == 5
    assert len(settled) == 5 and not sub._pending
    assert NO_SETTLE.attempt == 1
