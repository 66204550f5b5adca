"""Issue #10 point 7: per-identity quotas (topics, storage, consumers); ``max_bytes`` capped, so a
user's reservation cannot starve the others."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from _attack import Raw, eventually, wait_until
from nats.js.api import ConsumerConfig

from evfabric.core.errors import ConfigError, QuotaExceeded
from evfabric.fabric.positions import SCAN_PREFIX, HeaderScan
from evfabric.fabric.streams import TopicConfig, add_consumer, create_topic, update_topic
from evfabric.fabric.subjects import stream_name

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]


def test_storage_and_topic_quotas(tight: Any) -> None:
    async def main() -> None:
        bob = await Raw().open(tight.url, tight.tokens["bob"])
        js = bob.nc.jetstream()
        with pytest.raises(QuotaExceeded, match="exceeds the per-topic cap"):
            await create_topic(js, TopicConfig("huge", max_bytes=8 << 30))  # the 8 GiB reservation
        info = await create_topic(js, TopicConfig("b1"))  # default: capped at the per-topic limit
        assert info.config.max_bytes == 1 << 20
        with pytest.raises(QuotaExceeded, match="storage quota"):
            await create_topic(js, TopicConfig("b2"))  # 1 MiB + 1 MiB > 1.5 MiB
        await create_topic(js, TopicConfig("b2", max_bytes=1 << 19))
        with pytest.raises(QuotaExceeded, match="topics"):
            await create_topic(js, TopicConfig("b3", max_bytes=1 << 10))  # third topic
        with pytest.raises(QuotaExceeded):
            await update_topic(js, "b2", max_bytes=1 << 20)  # growing past the storage quota
        # positive control: another user is not starved by bob
        alice = await Raw().open(tight.url, tight.tokens["alice"])
        assert (await create_topic(alice.nc.jetstream(), TopicConfig("a1"))).config.max_bytes == 1 << 20
        # administrators have no quota
        root = await Raw().open(tight.url, tight.tokens["root"])
        assert (await create_topic(root.nc.jetstream(), TopicConfig("big", max_bytes=64 << 20))).config.max_bytes
        for c in (alice, bob, root):
            await c.close()

    asyncio.run(main())


def test_consumer_quota(tight: Any) -> None:
    async def main() -> None:
        bob = await Raw().open(tight.url, tight.tokens["bob"])
        js = bob.nc.jetstream()
        await create_topic(js, TopicConfig("c1"))
        stream = stream_name("c1")
        for i in range(2):
            await add_consumer(js, stream, ConsumerConfig(durable_name=f"k{i}"))
        with pytest.raises(QuotaExceeded, match="consumers"):
            await add_consumer(js, stream, ConsumerConfig(durable_name="k2"))
        await js.delete_consumer(stream, "k0")  # its own consumer: allowed, and frees the quota
        await add_consumer(js, stream, ConsumerConfig(durable_name="k2"))
        await bob.close()

    asyncio.run(main())


def test_position_scans_count_apart_from_consumers(tight: Any) -> None:
    """A user whose consumer quota is full still replays from a position and counts lag in events
    (both read headers through a scan consumer, which counts toward ``Quotas.scans``); a consumer
    named as a scan must be one; scans have a quota of their own."""
    async def main() -> None:
        bob = await Raw().open(tight.url, tight.tokens["bob"])
        js = bob.nc.jetstream()
        await create_topic(js, TopicConfig("s1"))
        stream = stream_name("s1")
        for i in range(2):  # the consumer quota, full
            await add_consumer(js, stream, ConsumerConfig(durable_name=f"k{i}"))
        with pytest.raises(QuotaExceeded, match="consumers"):
            await add_consumer(js, stream, ConsumerConfig(durable_name="k2"))
        scans = [HeaderScan(js, stream, [], 1) for _ in range(3)]
        for scan in scans[:2]:
            await scan._open()  # within the scans quota although the consumer quota is full
        with pytest.raises(QuotaExceeded, match="2 position scans; the quota is 2"):
            await scans[2]._open()
        with pytest.raises(ConfigError) as err:  # a real consumer dressed as a scan
            await add_consumer(js, stream, ConsumerConfig(durable_name=f"{SCAN_PREFIX}mine"))
        assert "position scans: headers_only must be true" in str(err.value) and "\n" not in str(err.value)
        for scan in scans[:2]:
            await scan.close()
        await scans[2]._open()  # closing frees the scans quota
        await scans[2].close()
        await bob.close()

    asyncio.run(main())


def test_a_user_at_the_consumer_quota_counts_lag_in_events(tight: Any) -> None:
    import evfabric

    with evfabric.connect(tight.url, token=tight.tokens["bob"]) as bob:
        bob.create_topic("users.bob.r")
        bob.publish_many("users.bob.r.x", [{"i": i} for i in range(5)], delivery="reliable")  # one message
        stream = bob.describe_topic("users.bob.r").stream

        async def fill() -> None:
            raw = await Raw().open(tight.url, tight.tokens["bob"])
            await add_consumer(raw.nc.jetstream(), stream, ConsumerConfig(durable_name="hold0"))
            await raw.close()

        asyncio.run(fill())
        release, got = threading.Event(), []

        def hold(ev: Any) -> None:
            release.wait(20)
            got.append(ev.body["i"])

        # the quota's last consumer; its listener holds the first event
        sub = bob.subscribe("users.bob.r.*", delivery="reliable", start="earliest", listener=hold)
        try:
            assert wait_until(lambda: sub.lag() == 5, 10), sub.lag()  # in events: the scan was allowed
        finally:
            release.set()
        assert wait_until(lambda: got == [0, 1, 2, 3, 4] and sub.lag() == 0, 10), (got, sub.lag())


def test_connection_quota(tight: Any) -> None:
    tight.control.connections.limit = 2

    async def main() -> None:
        conns = [await Raw().open(tight.url, tight.tokens["bob"]) for _ in range(3)]
        # the newest connection beyond the quota is closed within a poll or two
        assert await eventually(lambda: [c.nc.is_connected for c in conns] == [True, True, False], 10)
        assert await eventually(lambda: tight.control.connections.kicked >= 1, 5)  # counted once KICK returns
        others = [await Raw().open(tight.url, tight.tokens["alice"]) for _ in range(2)]  # positive control
        checks = tight.control.connections.checks
        # two whole enforcement passes after they connected: nobody within the quota is closed
        assert await eventually(lambda: tight.control.connections.checks >= checks + 2, 10)
        assert all(c.nc.is_connected for c in others) and all(c.nc.is_connected for c in conns[:2])
        for c in conns + others:
            await c.nc.close()

    asyncio.run(main())


def test_the_extra_connection_is_refused_at_connect(tight: Any) -> None:
    """An evfabric client beyond its identity's connection quota gets QuotaExceeded (one line,
    the figures) from connect; a raw client beyond it is closed at once (the connect event), not
    at the next poll; the others and administrators keep theirs."""
    import time

    import evfabric

    tight.control.connections.limit = 2
    checks = tight.control.connections.checks
    tight.control.poll_interval = 60.0  # only the connect events can act within this test
    # the watcher's pass after this ends its current wait; the wait it reads next is a minute
    assert wait_until(lambda: tight.control.connections.checks > checks, 5)
    kicked = tight.control.connections.kicked
    with evfabric.connect(tight.url, token=tight.tokens["bob"]) as one, \
            evfabric.connect(tight.url, token=tight.tokens["bob"]) as two:
        with pytest.raises(QuotaExceeded) as err:
            evfabric.connect(tight.url, token=tight.tokens["bob"])
        msg = str(err.value)
        assert "\n" not in msg and "'bob' has 2 connections" in msg and "quota is 2 per server" in msg, msg
        # positive controls: bob's two work, alice and the administrator connect
        one.publish("users.bob.x", {"i": 1})
        two.publish("users.bob.x", {"i": 2})
        with evfabric.connect(tight.url, token=tight.tokens["alice"]), \
                evfabric.connect(tight.url, token=tight.tokens["root"]), \
                evfabric.connect(tight.url, token=tight.tokens["root"]), \
                evfabric.connect(tight.url, token=tight.tokens["root"]):
            pass

        async def raw() -> None:
            extra = await Raw().open(tight.url, tight.tokens["bob"], allow_reconnect=False)
            started = time.monotonic()
            assert await eventually(lambda: not extra.nc.is_connected, 5)
            assert time.monotonic() - started < 3  # the connect event, not the minute's poll
            await extra.nc.close()

        asyncio.run(raw())
        assert wait_until(lambda: tight.control.connections.kicked > kicked, 5)
        assert one.is_connected and two.is_connected
