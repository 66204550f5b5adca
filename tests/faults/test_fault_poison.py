"""Poison messages from a raw client: garbage is counted exactly, reported, and valid events on
the same subject keep flowing (best effort and reliable)."""

from __future__ import annotations

import asyncio
import os

import nats
import pytest
from _fabric_helpers import unique, wait_until
from _raw_publisher import POISON_RANDOM, POISON_TYPES, RawStream, batch_bytes, deep_body_batch

import evfabric
from evfabric.fabric.roundtrip import flush
from evfabric.fabric.subjects import topic_subject

pytestmark = [pytest.mark.broker, pytest.mark.timeout(40)]


def _poisons(topic: str) -> list[bytes]:
    return [deep_body_batch(topic), POISON_RANDOM, POISON_TYPES, os.urandom(4096), b"", b"\x91\xc1"]


def test_best_effort_poison_flood_between_valid_events(broker) -> None:
    root = unique("pbe")
    topic = f"{root}.x"
    with evfabric.connect(broker.url, source="s") as c:
        got: list[evfabric.Event] = []
        reports: list[evfabric.Event] = []
        sub = c.subscribe(f"{root}.*", listener=got.append)
        c.subscribe("cca.fabric.garbage", listener=reports.append)

        async def flood() -> tuple[int, int]:
            nc = await nats.connect(broker.url)
            raw = RawStream(nc)
            bad = 0
            for r in range(20):
                for p in _poisons(topic):
                    await nc.publish(topic_subject(topic), p)
                    bad += 1
                await raw.publish(topic, batch_bytes(topic, r * 10, 10), 10)
            await flush(nc)
            await nc.close()
            return bad, raw.sent

        bad, good = asyncio.run(flood())
        assert wait_until(lambda: len(got) == good and sub.stats.garbage == bad, timeout=10), (len(got), sub.stats)
        assert c.stats.garbage == bad and sub.stats.dropped == 0
        assert wait_until(lambda: sum(r.body["count"] for r in reports) == bad, timeout=5)


def test_reliable_poison_is_terminated_not_redelivered(broker) -> None:
    root = unique("prel")
    topic = f"{root}.x"
    with evfabric.connect(broker.url, source="s") as c:
        c.create_topic(root)
        got: list[evfabric.Event] = []
        sub = c.subscribe(f"{root}.*", delivery="reliable", ack_wait=1.0, listener=got.append)

        async def poison() -> int:
            nc = await nats.connect(broker.url)
            js = nc.jetstream()
            n = 0
            for p in _poisons(topic):
                await js.publish(topic_subject(topic), p)
                n += 1
            await js.publish(topic_subject(topic), batch_bytes(topic, 0, 5))
            await nc.close()
            return n

        bad = asyncio.run(poison())
        assert wait_until(lambda: len(got) == 5 and c.lag(sub) == 0, timeout=10)
        # lag 0: the broker holds nothing unacknowledged for us, so the poison was terminated
        # (+TERM), not left to come back after ack_wait
        assert sub.stats.garbage == bad and c.stats.garbage == bad and len(got) == 5
