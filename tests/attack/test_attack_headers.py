"""Lying and hostile headers from a raw nats-py publisher (docs/wire.md sections 2, 7, Versioning):
each is garbage or untracked, counted, and the client keeps serving the valid events after it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import nats
import pytest
from _fabric_helpers import unique, wait_until
from _raw_publisher import RawStream, batch_bytes

import evfabric
from evfabric.core.event import new_id
from evfabric.fabric.roundtrip import flush
from evfabric.fabric.subjects import topic_subject
from evfabric.wire import encode_events

pytestmark = [pytest.mark.broker, pytest.mark.timeout(30)]


def _run_raw(url: str, body: Callable[[Any, RawStream], Awaitable[None]]) -> RawStream:
    async def go() -> RawStream:
        nc = await nats.connect(url)
        raw = RawStream(nc)
        await body(nc, raw)
        await flush(nc)
        await nc.close()
        return raw
    return asyncio.run(go())


def _hdr(raw: RawStream, seq: int, count: int, **over: str) -> dict[str, str]:
    h = {"Content-Type": "application/vnd.evfabric.events+msgpack", "Evf-Version": "1",
         "Evf-Stream": raw.stream, "Evf-Seq": str(seq), "Evf-Count": str(count)}
    h.update(over)
    return h


def test_evf_count_mismatch_is_garbage_and_does_not_poison_the_sequence(broker_session) -> None:
    """Evf-Count says 10, the payload holds 3: garbage (1 message); its sequence numbers are not
    taken, so the next valid message (seq 21) shows 11..20 missing: sent (30 numbered events)
    == received (20) + dropped (10)."""
    root = unique("acnt")
    topic = f"{root}.x"
    subj = topic_subject(topic)
    with evfabric.connect(broker_session.url, source="s") as c:
        got: list[evfabric.Event] = []
        sub = c.subscribe(f"{root}.*", listener=got.append)

        async def body(nc: Any, raw: RawStream) -> None:
            await nc.publish(subj, batch_bytes(topic, 0, 10), headers=_hdr(raw, 1, 10))
            await nc.publish(subj, batch_bytes(topic, 10, 3), headers=_hdr(raw, 11, 10))  # lies
            await nc.publish(subj, batch_bytes(topic, 20, 10), headers=_hdr(raw, 21, 10))

        _run_raw(broker_session.url, body)
        assert wait_until(lambda: len(got) == 20 and sub.stats.garbage == 1, timeout=10), (len(got), sub.stats)
        assert sub.stats.dropped == 10 and sub.stats.duplicates == 0


def test_huge_evf_count_lie_is_garbage_and_later_messages_still_count(broker_session) -> None:
    """One event claiming Evf-Count 10**18: garbage. The publisher's next honest messages are
    neither duplicates nor gaps, and a real gap after them is still counted exactly."""
    root = unique("ahuge")
    topic = f"{root}.x"
    subj = topic_subject(topic)
    with evfabric.connect(broker_session.url, source="s") as c:
        got: list[evfabric.Event] = []
        sub = c.subscribe(f"{root}.*", listener=got.append)

        async def body(nc: Any, raw: RawStream) -> None:
            await nc.publish(subj, batch_bytes(topic, 0, 5), headers=_hdr(raw, 1, 5))
            await nc.publish(subj, batch_bytes(topic, 5, 1), headers=_hdr(raw, 6, 10**18))
            await nc.publish(subj, batch_bytes(topic, 6, 5), headers=_hdr(raw, 6, 5))
            await nc.publish(subj, batch_bytes(topic, 20, 5), headers=_hdr(raw, 20, 5))  # 11..19 lost

        _run_raw(broker_session.url, body)
        assert wait_until(lambda: len(got) == 15 and sub.stats.garbage == 1, timeout=10), (len(got), sub.stats)
        assert sub.stats.duplicates == 0, sub.stats
        assert sub.stats.dropped == 9, sub.stats


@pytest.mark.parametrize("seq", ["-5", "0", "abc", "1e3", "9" * 5000, str(2**64 + 7), str(10**30)])
def test_hostile_evf_seq_never_stops_the_client(broker_session, seq: str) -> None:
    """Negative, zero, non-numeric, 5000-digit and beyond-uint64 Evf-Seq values: the event is
    delivered or refused, the loss reporter keeps reporting and later traffic flows."""
    root = unique("aseq")
    topic = f"{root}.x"
    subj = topic_subject(topic)
    with evfabric.connect(broker_session.url, source="s") as c:
        got: list[evfabric.Event] = []
        reports: list[evfabric.Event] = []
        c.subscribe(f"{root}.*", listener=got.append)
        c.subscribe("cca.fabric.garbage", listener=reports.append)

        async def body(nc: Any, raw: RawStream) -> None:
            await nc.publish(subj, batch_bytes(topic, 0, 2), headers=_hdr(raw, 1, 2))
            await nc.publish(subj, batch_bytes(topic, 2, 2), headers=_hdr(raw, 3, 2, **{"Evf-Seq": seq}))
            await nc.publish(subj, b"\xc1", headers=_hdr(raw, 99, 1, **{"Evf-Stream": "other"}))  # garbage

        _run_raw(broker_session.url, body)
        assert wait_until(lambda: c.stats.garbage >= 1 and len(reports) >= 1, timeout=10), (c.stats, reports)
        assert len(got) >= 2
        # the client still serves: a fresh publish arrives
        c.publish(topic, {"after": 1})
        assert wait_until(lambda: any(e.body.get("after") == 1 for e in got), timeout=10)


def test_evf_version_99_is_garbage_with_its_reason(broker_session) -> None:
    root = unique("aver")
    topic = f"{root}.x"
    subj = topic_subject(topic)
    with evfabric.connect(broker_session.url, source="s") as c:
        got: list[evfabric.Event] = []
        reports: list[evfabric.Event] = []
        sub = c.subscribe(f"{root}.*", listener=got.append)
        c.subscribe("cca.fabric.garbage", listener=reports.append)
        headers, payload = encode_events([evfabric.Event(id=new_id(), topic=topic, source="s", time=time.time(), body={"a": 1})])

        async def body(nc: Any, raw: RawStream) -> None:
            await nc.publish(subj, payload, headers={**headers, "Evf-Version": "99"})
            await nc.publish(subj, payload, headers=headers)

        _run_raw(broker_session.url, body)
        assert wait_until(lambda: len(got) == 1 and sub.stats.garbage == 1 and reports, timeout=10), sub.stats
        assert "unsupported wire version" in reports[0].body["error"]


def test_non_utf8_header_value_does_not_stop_the_connection(broker_session) -> None:
    """A header value that is not UTF-8 (hand-written HPUB on a raw socket): the message is
    garbage or delivered, and the client's connection keeps reading the next ones."""
    root = unique("autf")
    topic = f"{root}.x"
    subj = topic_subject(topic)
    with evfabric.connect(broker_session.url, source="s") as c:
        got: list[evfabric.Event] = []
        c.subscribe(f"{root}.*", listener=got.append)
        host, port = broker_session.url.removeprefix("nats://").split(":")
        payload = batch_bytes(topic, 0, 1)

        async def hpub() -> None:
            r, w = await asyncio.open_connection(host, int(port))
            await r.readline()  # INFO
            w.write(b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":false}\r\n')
            hdr = b"NATS/1.0\r\nEvf-Stream: \xff\xfe\x80bad\r\nX-Bin: \xc3\x28\r\n\r\n"
            w.write(b"HPUB %s %d %d\r\n%s%s\r\n" % (subj.encode(), len(hdr), len(hdr) + len(payload), hdr, payload))
            w.write(b"PING\r\n")
            await w.drain()
            while not (await r.readline()).startswith(b"PONG"):
                pass
            w.close()

        asyncio.run(hpub())
        c.publish(topic, {"after": 1})
        assert wait_until(lambda: any(e.body.get("after") == 1 for e in got), timeout=10), (len(got), c.stats)
        assert c.stats.disconnects == 0


def test_payload_cannot_forge_topic_or_publisher(broker_session) -> None:
    """A row batch whose events say another topic and a publisher: receivers take both from the
    subject (wire.md section 1: `_` means no publisher)."""
    root = unique("aforge")
    topic = f"{root}.x"
    subj = topic_subject(topic)
    with evfabric.connect(broker_session.url, source="s") as c:
        got: list[evfabric.Event] = []
        other: list[evfabric.Event] = []
        c.subscribe(f"{root}.x", listener=got.append)
        c.subscribe(f"{root}.admin", listener=other.append)
        import msgspec
        payload = msgspec.msgpack.encode([{"id": "f1", "topic": f"{root}.admin", "source": "s", "time": 1.0,
                                           "publisher": "root", "body": {"a": 1}}])

        async def body(nc: Any, raw: RawStream) -> None:
            await nc.publish(subj, payload, headers=_hdr(raw, 1, 1))
            await nc.publish(subj, payload)  # version 0, no headers

        _run_raw(broker_session.url, body)
        assert wait_until(lambda: len(got) + c.stats.garbage == 2, timeout=10), (len(got), c.stats)
        assert all(e.topic == topic and e.publisher is None for e in got), got
        assert other == []


def test_cloudevent_with_a_lying_evf_count_is_garbage(broker_session) -> None:
    """A binary CloudEvent (one event) whose Evf-Count says 5: garbage, its numbers not taken; the
    next message (seq 3) shows seq 2 missing: 3 numbered == 2 received + 1 dropped."""
    root = unique("acelie")
    topic = f"{root}.x"
    subj = topic_subject(topic)
    with evfabric.connect(broker_session.url, source="s") as c:
        got: list[evfabric.Event] = []
        sub = c.subscribe(topic, listener=got.append)
        ce = {"ce-specversion": "1.0", "ce-source": "s", "ce-type": "t", "Content-Type": "application/json"}

        async def body(nc: Any, raw: RawStream) -> None:
            await nc.publish(subj, b"{}", headers={**ce, "ce-id": "a", **_hdr(raw, 1, 1, **{"Content-Type": "application/json"})})
            await nc.publish(subj, b"{}", headers={**ce, "ce-id": "b", **_hdr(raw, 2, 5, **{"Content-Type": "application/json"})})
            await nc.publish(subj, b"{}", headers={**ce, "ce-id": "c", **_hdr(raw, 3, 1, **{"Content-Type": "application/json"})})

        _run_raw(broker_session.url, body)
        assert wait_until(lambda: len(got) == 2 and sub.stats.garbage == 1, timeout=10), (len(got), sub.stats)
        assert [e.id for e in got] == ["a", "c"] and sub.stats.dropped == 1 and sub.stats.duplicates == 0


def test_a_forged_evf_stream_skews_the_books_but_loses_nothing(broker_session) -> None:
    """Without access control a raw client can reuse a victim's Evf-Stream on its subject and
    claim seq 1,000,000: the victim's later messages are all still delivered (counted as
    duplicates), the forger's claim shows up as 999,989 'lost' events. Documents the limit of
    unauthenticated accounting (with access control the subject binds the publisher)."""
    root = unique("aspoof")
    topic = f"{root}.x"
    subj = topic_subject(topic)
    with evfabric.connect(broker_session.url, source="s") as c:
        got: list[evfabric.Event] = []
        sub = c.subscribe(topic, listener=got.append)

        async def body(nc: Any, raw: RawStream) -> None:
            await nc.publish(subj, batch_bytes(topic, 0, 10), headers=_hdr(raw, 1, 10))
            await nc.publish(subj, batch_bytes(topic, 10, 1), headers=_hdr(raw, 1_000_000, 1))  # the forger
            for k in range(5):
                await nc.publish(subj, batch_bytes(topic, 20 + k * 10, 10), headers=_hdr(raw, 11 + k * 10, 10))

        _run_raw(broker_session.url, body)
        assert wait_until(lambda: len(got) == 61, timeout=10), (len(got), sub.stats)
        assert sub.stats.dropped == 999_989 and sub.stats.duplicates == 5, sub.stats


def test_a_batch_seen_again_is_counted_once_as_a_duplicate_and_not_delivered_twice(broker_session) -> None:
    """A re-sent batch (the same Evf-Stream and Evf-Seq, as a reliable publisher re-sends when an
    acknowledgement is late) reaches core subscribers twice: delivered once, counted as one
    duplicate message; the next batch flows with no gap."""
    root = unique("adup")
    topic = f"{root}.x"
    subj = topic_subject(topic)
    with evfabric.connect(broker_session.url, source="s") as c:
        got: list[evfabric.Event] = []
        sub = c.subscribe(f"{root}.*", listener=got.append)

        async def body(nc: Any, raw: RawStream) -> None:
            await nc.publish(subj, batch_bytes(topic, 0, 4), headers=_hdr(raw, 1, 4))
            await nc.publish(subj, batch_bytes(topic, 0, 4), headers=_hdr(raw, 1, 4))  # the same batch again
            await nc.publish(subj, batch_bytes(topic, 4, 4), headers=_hdr(raw, 5, 4))

        _run_raw(broker_session.url, body)
        assert wait_until(lambda: len(got) == 8, timeout=10), (len(got), sub.stats)
        c.flush()
        assert sub.stats.duplicates == 1 and sub.stats.dropped == 0, sub.stats
        assert len(got) == 8 and len({e.id for e in got}) == 8
