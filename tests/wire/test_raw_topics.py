"""Foreign payloads on a raw topic (docs/wire.md 5): messages from plain nats-py clients (JSON,
bytes, CloudEvents) on the topic's own subject arrive as events with a clear source, not garbage."""

from __future__ import annotations

import asyncio

import nats
import pytest
from _codec_helpers import unique, wait_until

import evfabric
from evfabric.core.errors import ConfigError
from evfabric.fabric.roundtrip import flush
from evfabric.testing import wait_until_async
from evfabric.wire import RAW_TYPE

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]


async def _publish(url: str, messages: list[tuple[str, bytes, dict[str, str] | None]]) -> None:
    nc = await nats.connect(url)
    for subject, payload, headers in messages:
        await nc.publish(subject, payload, headers=headers)
    await flush(nc)
    await nc.close()


def test_foreign_messages_become_events(broker) -> None:
    root = unique("lab")
    with evfabric.connect(broker.url, source="reader") as client:
        got: list = []
        exact = client.subscribe(f"{root}.probe.temp", raw=True, listener=got.append)
        wide: list = []
        client.subscribe(f"{root}.*", raw=True, listener=wide.append)
        ignored: list = []
        client.subscribe(f"{root}.probe.temp", listener=ignored.append)  # not raw: evf subjects only
        asyncio.run(_publish(broker.url, [
            (f"{root}.probe.temp", b'{"t": 21.5, "unit": "C"}', None),
            (f"{root}.probe.temp", b"22.5", None),
            (f"{root}.probe.temp", b"\x00\xffbinary", None),
            (f"{root}.probe.temp", b'{"c": 1}', {"ce-specversion": "1.0", "ce-id": "x1", "ce-source": "urn:s",
                                                 "ce-type": "t", "Content-Type": "application/json"}),
            (f"{root}.door.open", b"{}", None),
        ]))
        assert wait_until(lambda: len(got) == 4 and len(wide) == 5), (len(got), len(wide))
        assert exact.stats.garbage == 0
        assert [ev.body for ev in got] == [{"t": 21.5, "unit": "C"}, {"data": 22.5}, {"data": b"\x00\xffbinary"},
                                           {"c": 1}]
        assert all(ev.topic == f"{root}.probe.temp" and ev.publisher is None for ev in got)
        assert [ev.source for ev in got[:3]] == [f"nats:{root}.probe.temp"] * 3 and got[3].source == "urn:s"
        assert [ev.type for ev in got[:3]] == [RAW_TYPE] * 3 and got[3].id == "x1"
        assert len({ev.id for ev in got}) == 4
        assert sorted({ev.topic for ev in wide}) == [f"{root}.door.open", f"{root}.probe.temp"]
        assert ignored == []


def test_undeclared_foreign_subjects_are_read_best_effort_only(broker) -> None:
    with evfabric.connect(broker.url, source="reader") as client, pytest.raises(ConfigError, match="no raw topic"):
        client.subscribe(unique("lab") + ".x", raw=True, delivery="reliable")


async def _stored(url: str, messages: list[tuple[str, bytes]]) -> None:
    """Publish and wait for each message to be stored (a JetStream publish, as any client may)."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    for subject, payload in messages:
        await js.publish(subject, payload)
    await nc.close()


def test_a_declared_raw_topic_stores_foreign_messages_and_is_read_as_declared(broker) -> None:
    root = unique("lab")
    with evfabric.connect(broker.url, source="reader") as client:
        info = client.create_topic(f"{root}.probe", raw=True, max_events=3)
        assert info.config.raw and info.stream.startswith("EVF_RAW_") and not info.shared
        live: list = []
        live_sub = client.subscribe(f"{root}.probe.temp", listener=live.append)  # no raw=: the topic says
        asyncio.run(_stored(broker.url, [(f"{root}.probe.temp", b'{"t": %d}' % i) for i in range(5)]))
        assert wait_until(lambda: len(live) == 5), (len(live), live_sub.stats)
        assert live_sub.stats.garbage == 0 and live[0].type == RAW_TYPE
        # retention by events: every message is one event, so the stream itself keeps the last 3
        described = client.describe_topic(f"{root}.probe")
        assert (described.messages, described.config.raw) == (3, True)
        stored: list = []
        failed_once: set = set()

        def handle(ev) -> None:  # fails the first delivery of each event: redelivered, same id and time
            if ev.id not in failed_once:
                failed_once.add(ev.id)
                raise RuntimeError("not yet")
            stored.append(ev)

        sub = client.subscribe(f"{root}.probe.*", start="earliest", listener=handle, redeliver_delay=0.01)
        assert sub.delivery == "reliable"
        assert wait_until(lambda: len(stored) == 3), (len(stored), sub.stats)
        assert [ev.body for ev in stored] == [{"t": 2}, {"t": 3}, {"t": 4}]
        assert {ev.id for ev in stored} == failed_once and len(failed_once) == 3
        assert all(ev.id.startswith(info.stream + ".") and ev.source == f"nats:{root}.probe.temp" for ev in stored)
        assert [ev.position.index for ev in stored] == [0, 0, 0]
        assert {t.config.name: t.config.raw for t in client.list_topics()}[f"{root}.probe"] is True
        with pytest.raises(ConfigError, match="raw cannot change"):
            client.update_topic(f"{root}.probe", raw=False)
        client.delete_topic(f"{root}.probe")
        assert f"{root}.probe" not in {t.config.name for t in client.list_topics()}


def test_evfabric_events_on_a_raw_topic_are_plain_payloads(broker) -> None:
    root = unique("lab")

    async def run() -> list:
        nc = await nats.connect(broker.url)
        seen: list = []

        async def record(m) -> None:
            seen.append((m.subject, m.data, m.headers))

        await nc.subscribe(f"{root}.probe.>", cb=record)
        await flush(nc)
        async with await evfabric.connect_async(broker.url, source="panel") as client:
            await client.create_topic(f"{root}.probe", raw=True)
            await client.publish(f"{root}.probe.cmd", {"setpoint": 19.5}, delivery="reliable")  # stored, acked
            await client.publish(f"{root}.probe.cmd", {"data": b"\x01\x02"}, delivery="best_effort")
            await client.flush(10)
            info = await client.describe_topic(f"{root}.probe")
            assert info.messages == 2  # the stream stores whatever arrives on its subjects, best effort too
        assert await wait_until_async(lambda: len(seen) == 2), seen
        await nc.close()
        return seen

    seen = asyncio.run(run())
    assert [(s, d) for s, d, _ in seen] == [(f"{root}.probe.cmd", b'{"setpoint":19.5}'), (f"{root}.probe.cmd", b"\x01\x02")]
    assert seen[0][2]["Content-Type"] == "application/json" and "Nats-Msg-Id" in seen[0][2]


def test_raw_topic_settings() -> None:
    from evfabric.core.event import make_event
    from evfabric.fabric.foreign import foreign_payload
    from evfabric.fabric.streams import TopicConfig

    cfg = TopicConfig("lab.probe", raw=True, max_events=5, max_msgs=9)
    sc = cfg.stream_config()
    assert (sc.name, sc.subjects, sc.max_msgs) == (cfg.stream, ["lab.probe", "lab.probe.>"], 5)
    assert cfg.own_stream and cfg.stream.startswith("EVF_RAW_") and cfg.stream != TopicConfig("lab.probe").stream
    with pytest.raises(ConfigError, match="do not partition"):
        TopicConfig("lab.probe", raw=True, partitions=2)
    with pytest.raises(ConfigError, match="raw must be"):
        TopicConfig("lab.probe", raw="yes")  # type: ignore[arg-type]
    assert foreign_payload(make_event("lab.probe.cmd", {"a": 1}, source="s")) == (b'{"a":1}', {"Content-Type": "application/json"})
    assert foreign_payload(make_event("lab.probe.cmd", {"data": b"\x00"}, source="s")) == (b"\x00", None)


def test_a_wide_best_effort_pattern_also_reads_the_raw_topics_below_it(broker) -> None:
    """``lab.*`` over raw topic ``lab.probe``: a best-effort subscriber gets the devices' messages
    and the evfabric events beside them, as a reliable one reads both streams; a pattern the raw
    topic lies outside of, or a leading wildcard's narrower reach, gets only what it matches."""
    root = unique("lab")
    with evfabric.connect(broker.url, source="reader") as client:
        client.create_topic(f"{root}.probe", raw=True)
        wide: list = []
        client.subscribe(f"{root}.*", listener=wide.append)
        one: list = []
        client.subscribe(f"{root}.?", listener=one.append)  # lab.probe, not lab.probe.temp
        led: list = []
        client.subscribe("*.probe", listener=led.append)  # a leading wildcard reads every raw topic, matched here
        beside: list = []
        client.subscribe(f"{root}.door.*", listener=beside.append)
        asyncio.run(_publish(broker.url, [(f"{root}.probe", b'{"n": 1}', None),
                                          (f"{root}.probe.temp", b'{"n": 2}', None)]))
        client.publish(f"{root}.door.open", {"n": 3})  # an evfabric topic beside the raw one
        client.publish(f"{root}.probe", {"n": 4})  # evfabric's publish on the raw topic: its body alone
        assert wait_until(lambda: len(wide) == 4 and len(one) == 2 and len(beside) == 1 and len(led) == 2), \
            (wide, one, beside, led)
        assert sorted(ev.body["n"] for ev in wide) == [1, 2, 3, 4]
        assert sorted((ev.topic, ev.body["n"]) for ev in one) == [(f"{root}.probe", 1), (f"{root}.probe", 4)]
        assert [ev.body["n"] for ev in beside] == [3] and sorted(ev.body["n"] for ev in led) == [1, 4]
        raw = [ev for ev in wide if ev.body["n"] in (1, 2)]
        assert all(ev.type == RAW_TYPE and ev.publisher is None for ev in raw)


def test_a_wide_best_effort_pattern_follows_raw_topics_declared_after_it(broker) -> None:
    """A best-effort ``lab.*`` made before raw topic ``lab.probe`` exists reads the devices once
    another client declares it; a pattern it lies outside of, or a subscription already ended,
    does not; the topic's evfabric subjects are read all along."""
    root = unique("lab")
    with evfabric.connect(broker.url, source="reader") as client, \
            evfabric.connect(broker.url, source="admin") as admin:
        admin.create_topic(f"{root}.door")
        wide: list = []
        wide_sub = client.subscribe(f"{root}.*", listener=wide.append)
        led: list = []
        led_sub = client.subscribe("*.probe.temp", listener=led.append)  # a leading wildcard follows all
        beside: list = []
        beside_sub = client.subscribe(f"{root}.door.*", listener=beside.append)
        ended: list = []
        client.subscribe(f"{root}.*", listener=ended.append).unsubscribe()
        before = [len(s.consumers) for s in (wide_sub, led_sub, beside_sub)]
        admin.create_topic(f"{root}.probe", raw=True)  # declared by another client, after the subscriptions
        # the followers' new feeds are in place once the broker has their SUBs (feed start flushes)
        assert wait_until(lambda: len(wide_sub.consumers) == before[0] + 2 and len(led_sub.consumers) == before[1] + 2), \
            ([len(s.consumers) for s in (wide_sub, led_sub)], before)
        assert len(beside_sub.consumers) == before[2]
        asyncio.run(_publish(broker.url, [(f"{root}.probe", b'{"n": 1}', None),
                                          (f"{root}.probe.temp", b'{"n": 2}', None),
                                          (f"{root}.probe.temp.x", b'{"n": 5}', None)]))
        client.publish(f"{root}.door.open", {"n": 3})
        assert wait_until(lambda: len(wide) == 4 and len(led) == 1 and len(beside) == 1), (wide, led, beside)
        assert sorted(ev.body["n"] for ev in wide) == [1, 2, 3, 5]
        assert [(ev.topic, ev.body["n"]) for ev in led] == [(f"{root}.probe.temp", 2)]  # dispatch matches the pattern: not .x
        assert [ev.body["n"] for ev in beside] == [3] and ended == []
        assert all(ev.type == RAW_TYPE for ev in wide if ev.body["n"] != 3)
