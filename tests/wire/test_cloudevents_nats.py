"""The CloudEvents NATS protocol binding against a real server, with the `cloudevents` SDK on the
other side: what evfabric writes, the SDK parses straight from a raw nats-py message; what the SDK
writes (binary and structured mode, through raw nats-py), evfabric subscribers get as events."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import nats
import pytest
from _codec_helpers import evf_subject, unique, wait_until
from cloudevents.core.bindings.http import HTTPMessage, from_http, to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

import evfabric
from evfabric.core.event import make_event
from evfabric.fabric.roundtrip import flush
from evfabric.wire import encode_events

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]


async def _publish_and_receive(url: str, subject: str, messages: list[tuple[dict[str, str], bytes]]) -> list:
    nc = await nats.connect(url)
    try:
        got: list = []
        done = asyncio.Event()

        async def on_msg(msg) -> None:
            got.append(msg)
            if len(got) == len(messages):
                done.set()

        await nc.subscribe(subject, cb=on_msg)
        await flush(nc)
        for headers, payload in messages:
            await nc.publish(subject, payload, headers=headers)
        await asyncio.wait_for(done.wait(), 10)
        return got
    finally:
        await nc.close()


def test_sdk_parses_what_evfabric_writes(broker) -> None:
    topic = unique("ce") + ".reading"
    ev = make_event(topic, {"t": 21.5, "unit": "C"}, source="beamline-7", type="lab.reading", key="k1", seq=4,
                    run="r42", shot=3)
    messages = [encode_events([ev], "cloudevents"), encode_events([ev], "cloudevents-structured")]
    got = asyncio.run(_publish_and_receive(broker.url, evf_subject(topic), messages))
    assert len(got) == 2
    for msg in got:  # straight from the raw nats-py message: its headers and its payload
        ce = from_http(HTTPMessage(headers=dict(msg.headers), body=msg.data), JSONFormat())
        assert (ce.get_id(), ce.get_source(), ce.get_type(), ce.get_subject()) == (ev.id, "beamline-7", "lab.reading",
                                                                                   topic)
        assert ce.get_time() == datetime.fromtimestamp(ev.time, UTC)
        assert ce.get_data() == {"t": 21.5, "unit": "C"}
        assert ce.get_extension("partitionkey") == "k1" and ce.get_extension("run") == "r42"
        assert str(ce.get_extension("evfseq")) == "4" and str(ce.get_extension("shot")) == "3"


def _sdk_event(topic: str, i: int, data: object, ctype: str = "application/json") -> CloudEvent:
    return CloudEvent(attributes={
        "id": f"sdk-{i}", "source": "urn:sensor:probe-9", "type": "org.example.temp", "subject": "ignored.topic",
        "time": datetime(2026, 1, 1, 12, 0, i, 250000, tzinfo=UTC), "datacontenttype": ctype,
        "run": "r7", "partitionkey": "bay-3",
    }, data=data)


def test_evfabric_subscribers_get_sdk_events(broker) -> None:
    topic = unique("ce") + ".temp"
    subject = evf_subject(topic)
    fmt = JSONFormat()
    with evfabric.connect(broker.url, source="reader") as client:
        got: list = []
        sub = client.subscribe(topic, listener=got.append)
        sdk_messages = [
            to_binary(_sdk_event(topic, 1, {"c": 21.5}), fmt),
            to_structured(_sdk_event(topic, 2, {"c": 22.5}), fmt),
            to_binary(_sdk_event(topic, 3, b"\x00\x01raw", "application/octet-stream"), fmt),
            to_structured(_sdk_event(topic, 4, [1, 2, 3]), fmt),
        ]

        async def publish() -> None:
            nc = await nats.connect(broker.url)
            for m in sdk_messages:
                await nc.publish(subject, m.body, headers=dict(m.headers))
            await flush(nc)
            await nc.close()

        asyncio.run(publish())
        assert wait_until(lambda: len(got) == 4), f"got {len(got)} of 4 events; garbage: {sub.stats.garbage}"
        assert sub.stats.garbage == 0
        by_id = {ev.id: ev for ev in got}
        for i in (1, 2, 3, 4):
            ev = by_id[f"sdk-{i}"]
            assert ev.topic == topic, "the topic is the subject's, not the CloudEvent's subject attribute"
            assert (ev.source, ev.type, ev.key, ev.extra) == ("urn:sensor:probe-9", "org.example.temp", "bay-3",
                                                               {"run": "r7"})
            assert ev.time == datetime(2026, 1, 1, 12, 0, i, 250000, tzinfo=UTC).timestamp()
            assert ev.publisher is None
        assert by_id["sdk-1"].body == {"c": 21.5} and by_id["sdk-2"].body == {"c": 22.5}
        assert by_id["sdk-3"].body == {"data": b"\x00\x01raw"}
        assert by_id["sdk-4"].body == {"data": [1, 2, 3]}


@pytest.mark.parametrize("wire", ["cloudevents", "cloudevents-structured"])
def test_a_client_with_wire_cloudevents_publishes_what_the_sdk_parses(broker, wire) -> None:
    topic = unique("ce") + ".out"
    got: list = []

    async def listen_then_read() -> None:
        nc = await nats.connect(broker.url)
        done = asyncio.Event()

        async def on_msg(msg) -> None:
            got.append(msg)
            if len(got) == 3:
                done.set()

        await nc.subscribe(f"evf.*.*.{topic}", cb=on_msg)
        await flush(nc)
        await asyncio.to_thread(publish)
        await asyncio.wait_for(done.wait(), 10)
        await nc.close()

    def publish() -> None:
        with evfabric.connect(broker.url, source="beamline-7", wire=wire) as client:
            client.publish_many(topic, [{"i": i} for i in range(3)])
            client.flush()

    asyncio.run(listen_then_read())
    parsed = [from_http(HTTPMessage(headers=dict(m.headers), body=m.data), JSONFormat()) for m in got]
    assert sorted(ce.get_data()["i"] for ce in parsed) == [0, 1, 2]
    assert {(ce.get_source(), ce.get_subject()) for ce in parsed} == {("beamline-7", topic)}
