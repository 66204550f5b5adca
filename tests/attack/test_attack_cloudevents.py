"""CloudEvents with odd data (docs/wire.md section 5): SDK-made and hand-made, through raw
nats-py. Each message is an event with the documented mapping, or garbage (counted, the client
still serving): never a crash, never a header field overwritten by an extension."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

import msgspec
import nats
import pytest
from _fabric_helpers import unique, wait_until
from cloudevents.core.bindings.http import to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

import evfabric
from evfabric.fabric.roundtrip import flush
from evfabric.fabric.subjects import topic_subject

pytestmark = [pytest.mark.broker, pytest.mark.timeout(30)]


def _send(url: str, subject: str, messages: list[tuple[dict[str, str], bytes]]) -> None:
    async def go() -> None:
        nc = await nats.connect(url)
        for headers, payload in messages:
            await nc.publish(subject, payload, headers=headers)
        await flush(nc)
        await nc.close()
    asyncio.run(go())


def _ce(i: int, data: object, ctype: str | None = "application/json", **ext: object) -> CloudEvent:
    attrs: dict[str, object] = {"id": f"odd-{i}", "source": "urn:odd", "type": "odd.t", **ext}
    if ctype is not None:
        attrs["datacontenttype"] = ctype
    return CloudEvent(attributes=attrs, data=data)


def test_sdk_events_with_odd_data(broker_session) -> None:
    """Binary data in structured mode, missing time, extensions named like evfabric header
    fields, JSON that is not an object: 6 events, mapped as wire.md section 5 says."""
    root = unique("aceodd")
    topic = f"{root}.x"
    fmt = JSONFormat()
    with evfabric.connect(broker_session.url, source="r") as c:
        got: list[evfabric.Event] = []
        sub = c.subscribe(topic, listener=got.append)
        before = time.time()
        msgs = []
        for m in (to_structured(_ce(1, b"\x00\xff\x80", "application/octet-stream"), fmt),
                  to_binary(_ce(2, b"\xc1\xc1", "application/msgpack"), fmt),  # says msgpack, is not
                  to_binary(_ce(3, {"a": 1}, topic="evil.topic", key="k9", body="nope", publisher="root"), fmt),
                  to_structured(_ce(4, "just a string"), fmt),
                  to_binary(_ce(5, None, None), fmt),
                  to_structured(_ce(6, {"t": 1}, time=datetime(2026, 1, 1, tzinfo=UTC)), fmt)):
            msgs.append((dict(m.headers), m.body))
        _send(broker_session.url, topic_subject(topic), msgs)
        assert wait_until(lambda: len(got) + sub.stats.garbage == 6, timeout=10), (len(got), sub.stats)
        assert sub.stats.garbage == 0, sub.stats
        by = {e.id: e for e in got}
        assert by["odd-1"].body == {"data": b"\x00\xff\x80"}
        assert by["odd-2"].body == {"data": b"\xc1\xc1"}
        e3 = by["odd-3"]
        assert e3.topic == topic and e3.publisher is None and e3.body == {"a": 1}
        assert "topic" not in e3.extra and "body" not in e3.extra and "publisher" not in e3.extra
        assert by["odd-4"].body == {"data": "just a string"}
        assert all(before - 1 <= by[i].time <= time.time() + 1 for i in ("odd-1", "odd-2", "odd-3", "odd-5"))
        assert by["odd-6"].time == datetime(2026, 1, 1, tzinfo=UTC).timestamp()


def _binary(i: int, **hdr: str) -> tuple[dict[str, str], bytes]:
    h = {"ce-specversion": "1.0", "ce-id": f"hb-{i}", "ce-source": "urn:x", "ce-type": "t",
         "Content-Type": "application/json"}
    h.update(hdr)
    return h, b'{"v": 1}'


def test_hostile_cloudevents_are_garbage_and_the_client_serves_on(broker_session) -> None:
    """Bad extension names, bad evf extensions, a bad time, a missing id, a structured event
    nested 100,000 deep, a batch of non-objects: each refused as garbage (or mapped), counted."""
    root = unique("acebad")
    topic = f"{root}.x"
    with evfabric.connect(broker_session.url, source="r") as c:
        got: list[evfabric.Event] = []
        sub = c.subscribe(topic, listener=got.append)
        deep = b'{"specversion":"1.0","id":"d","source":"s","type":"t","data":' + b'{"a":' * 100_000 + b"1" + b"}" * 100_001
        deep_b64 = json.dumps({"specversion": "1.0", "id": "d2", "source": "s", "type": "t",
                               "datacontenttype": "application/msgpack",
                               "data_base64": __import__("base64").b64encode(b"\x81\xa1a" * 50_000 + b"\x80").decode()})
        bad = [
            _binary(1, **{"ce-Bad_Name": "x"}),
            _binary(2, **{"ce-waytoolongextensionname": "x"}),
            _binary(3, **{"ce-evfseq": "-3"}),
            _binary(4, **{"ce-evfttl": "nan"}),
            _binary(5, **{"ce-time": "yesterday"}),
            _binary(6, **{"ce-evfdelivery": "sometimes"}),
            ({"ce-specversion": "1.0", "ce-source": "urn:x", "ce-type": "t"}, b"{}"),  # no id
            ({"Content-Type": "application/cloudevents+json"}, deep),
            ({"Content-Type": "application/cloudevents+json"}, deep_b64.encode()),
            ({"Content-Type": "application/cloudevents-batch+json"}, b"[1, 2, null]"),
            ({"Content-Type": "application/cloudevents+json"}, b"\xff\xfe not json"),
        ]
        _send(broker_session.url, topic_subject(topic), bad + [_binary(99)])
        assert wait_until(lambda: any(e.id == "hb-99" for e in got), timeout=10), (len(got), sub.stats)
        assert wait_until(lambda: len(got) + sub.stats.garbage == len(bad) + 1, timeout=5), (len(got), sub.stats)
        # whatever was taken as an event obeys section 3 (the header types)
        for e in got:
            assert isinstance(e.id, str) and e.id and e.seq >= 0 and (e.ttl is None or e.ttl > 0)
            assert e.delivery in ("best_effort", "reliable") and e.topic == topic
        assert sub.stats.garbage >= 8, ([e.id for e in got], sub.stats)


def test_deep_nesting_in_every_evfabric_format_is_garbage(broker_session) -> None:
    """100,000-deep bodies in the JSON row format and the columnar format (the existing tests use
    MessagePack rows): garbage, counted, and the next valid message is delivered."""
    root = unique("adeep")
    topic = f"{root}.x"
    with evfabric.connect(broker_session.url, source="r") as c:
        got: list[evfabric.Event] = []
        sub = c.subscribe(topic, listener=got.append)
        now = time.time()
        js_deep = (b'[{"id":"j","topic":"t","source":"s","time":%f,"body":{"a":' % now) + b'{"a":' * 100_000 + b"1" + b"}" * 100_002 + b"]"
        nested = b"\x81\xa1a" * 100_000 + b"\x80"
        cols = (b"\x93\x01" + msgspec.msgpack.encode({"source": "s"}) + b"\x83"
                + msgspec.msgpack.encode("id") + msgspec.msgpack.encode(["c1"])
                + msgspec.msgpack.encode("time") + msgspec.msgpack.encode([now])
                + msgspec.msgpack.encode("body") + b"\x91" + nested)
        h = {"Evf-Version": "1"}
        msgs = [({**h, "Content-Type": "application/vnd.evfabric.events+json"}, js_deep),
                ({**h, "Content-Type": "application/vnd.evfabric.columns+msgpack", "Evf-Count": "1"}, cols),
                ({**h, "Content-Type": "application/vnd.evfabric.columns+msgpack", "Evf-Count": "1"},
                 b"\x93\x01\x80\x83" + b"\xa2id\x91\xa2c2\xa4time\x91" + msgspec.msgpack.encode(now) + b"\xa4body\x92\x80\x80"),
                ({**h, "Content-Type": "application/vnd.evfabric.events+json"},
                 json.dumps([{"id": "ok", "topic": topic, "source": "s", "time": now, "body": {"fine": True}}]).encode())]
        _send(broker_session.url, topic_subject(topic), msgs)
        assert wait_until(lambda: len(got) == 1 and sub.stats.garbage == 3, timeout=10), (len(got), sub.stats)
        assert got[0].id == "ok"
