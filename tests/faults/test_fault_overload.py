"""Overload: four raw publishers flood a consumer that cannot keep up (slow listeners, a server
that cuts slow connections): for every subscription, sent == received + counted lost, exactly."""

from __future__ import annotations

import asyncio
import threading
import time

import nats
import pytest
from _fabric_helpers import unique, wait_until
from _raw_publisher import RawStream, batch_bytes

import evfabric
from evfabric.fabric.roundtrip import flush
from evfabric.testing import running_broker

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]


def test_four_publishers_two_subjects_overload_is_accounted_exactly(tmp_path) -> None:
    root = unique("ovl")
    topics = [f"{root}.a", f"{root}.b"]
    conf = {"max_pending": 512 * 1024, "max_payload": 256 * 1024, "write_deadline": "500ms"}
    with running_broker(tmp_path / "b", extra_config=conf) as srv, \
            evfabric.connect(srv.url, source="slow", mode="threads", max_backlog=5_000) as c:
        counts = {"all": 0, "a": 0}
        lock = threading.Lock()

        def on_all(ev: evfabric.Event) -> None:
            with lock:
                counts["all"] += 1

        def on_a(ev: evfabric.Event) -> None:
            time.sleep(0)  # a listener that yields: dispatch falls behind
            with lock:
                counts["a"] += 1

        everything = c.subscribe(f"{root}.*", listener=on_all)
        only_a = c.subscribe(f"{root}.a", listener=on_a)

        async def produce() -> list[RawStream]:
            conns = [await nats.connect(srv.url) for _ in range(4)]
            raws = [RawStream(nc) for nc in conns]
            payloads = {t: batch_bytes(t, 0, 100, {"pad": "p" * 100}) for t in topics}
            t0 = time.monotonic()
            while time.monotonic() - t0 < 4 and (c.stats.dropped == 0 or time.monotonic() - t0 < 1):
                for raw in raws:
                    for t in topics:
                        for _ in range(20):
                            await raw.publish(t, payloads[t], 100)
                await asyncio.gather(*(flush(nc) for nc in conns))
            # markers (one event per stream and subject) until the books balance: a later message
            # shows what was lost before it; markers lost before a re-subscription are counted too
            while time.monotonic() - t0 < 40:
                for raw in raws:
                    for t in topics:
                        await raw.publish(t, batch_bytes(t, 0, 1), 1)
                await asyncio.gather(*(flush(nc) for nc in conns))
                if await asyncio.to_thread(wait_until, lambda: balanced(raws), 0.25):
                    break
            for nc in conns:
                await nc.close()
            return raws

        def sent_on(raws: list[RawStream], suffix: str = "") -> int:
            return sum(nxt - 1 for r in raws for s, nxt in r.next.items() if s.endswith(suffix))

        def balanced(raws: list[RawStream]) -> bool:
            return (counts["all"] + everything.stats.dropped == sent_on(raws)
                    and counts["a"] + only_a.stats.dropped == sent_on(raws, ".a"))

        raws = asyncio.run(produce())
        assert sum(r.sent for r in raws) == sent_on(raws)
        assert balanced(raws), (sent_on(raws), sent_on(raws, ".a"), counts, everything.stats, only_a.stats)
        assert everything.stats.dropped > 0, "no overload happened: the test measured nothing"
