"""``evfabric bench fabric_topics``: what 10,000 durable topics cost the broker and a client.

Topics share their namespace's stream (docs/fabric.md, "Topics and streams"). The broker holds
``TOPICS`` durable topics (10,000; ``EVF_BENCH_TOPICS`` overrides, ``--quick`` uses 1,000), spread
over 10 namespaces, each topic with one stored event. Figures:

* ``restart_10k_topics_s``: seconds from launching the stopped server until it is ready and a
  client's first topic lookup and stream read answer. Peer: the same server restarted with one
  stream holding the same number of events (a raw server's floor). The notes carry the old layout
  (one stream per topic) measured with ``OLD_STREAMS`` streams, and the number of streams.
* ``connect_10k_topics_ms``: ``connect_async`` to that server (median of 15). Peer: the same
  connect to an empty server, interleaved with it in the same run. The notes say how many catalog lookups connecting
  made (0: connect lists nothing) and what the first publish of a topic costs.

``evfabric bench fabric --json`` includes these figures (bench/fabric.py calls :func:`figures`).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from evfabric.benchmarking import Figure, median_of

NAMESPACES = 10
OLD_STREAMS = 1000


def _count(quick: bool) -> int:
    return int(os.environ.get("EVF_BENCH_TOPICS", "1000" if quick else "10000"))


async def _make_topics(url: str, n: int) -> None:
    import evfabric

    c = await evfabric.connect_async(url, max_batch=1)
    names = [f"ns{i % NAMESPACES}.t{i}" for i in range(n)]
    sem = asyncio.Semaphore(32)

    async def one(name: str) -> None:
        async with sem:
            await c.create_topic(name)
            await c.publish(f"{name}.x", {"i": 1}, delivery="reliable")

    await asyncio.gather(*(one(t) for t in names))
    await c.close()


async def _make_streams(url: str, n: int, per_topic: bool) -> None:
    """The peer layouts: ``n`` streams of one subject root each (old layout), or one stream."""
    import nats
    from nats.js.api import StreamConfig

    nc = await nats.connect(url)
    js = nc.jetstream()
    if per_topic:
        for i in range(n):
            await js.add_stream(StreamConfig(name=f"OLD_{i}", subjects=[f"evf.*.*.old{i}", f"evf.*.*.old{i}.>"]))
    else:
        await js.add_stream(StreamConfig(name="ONE", subjects=["evf.*.*.one.>"]))
    acks = [await js.publish_async(f"evf._.0.old{i}.x" if per_topic else f"evf._.0.one.t{i}", b"x" * 100)
            for i in range(n)]
    await asyncio.gather(*acks)
    await nc.close()


async def _ready(url: str, stream: str, topic: str | None) -> None:
    """Wait until JetStream answers a stream read (and, for topics, a catalog lookup)."""
    import nats

    from evfabric.fabric.catalog import catalog_get

    while True:
        try:
            nc = await nats.connect(url, connect_timeout=1, max_reconnect_attempts=0)
            break
        except Exception:
            await asyncio.sleep(0.02)
    js = nc.jetstream(timeout=1)
    while True:
        try:
            await js.stream_info(stream)
            if topic is None or await catalog_get(js, "t", topic) is not None:
                break
        except Exception:
            await asyncio.sleep(0.02)
    await nc.close()


def _restart(srv: Any, stream: str, topic: str | None) -> float:
    srv.stop()
    t0 = time.perf_counter()
    srv.launch()
    srv.wait_ready(120)
    asyncio.run(_ready(srv.url, stream, topic))
    return time.perf_counter() - t0


def _server(root: Path, name: str) -> Any:
    from evfabric.broker.server import BrokerServer

    return BrokerServer(data_dir=root / name).start()


async def _connect_ms(urls: list[str], reps: int) -> list[tuple[float, int, float]]:
    """Per url, interleaved: median connect time (ms), catalog lookups while connecting, and what
    the first publish of a partitioned-or-not topic costs (ms)."""
    import evfabric

    times: list[list[float]] = [[] for _ in urls]
    lookups = [0 for _ in urls]
    first = [0.0 for _ in urls]
    for i in range(reps):
        for j, url in enumerate(urls):
            t0 = time.perf_counter()
            c = await evfabric.connect_async(url)
            times[j].append((time.perf_counter() - t0) * 1e3)
            lookups[j] = max(lookups[j], c.catalog.cache.lookups)
            if i == 0:
                t1 = time.perf_counter()
                await c.publish("ns1.t1.x", {"k": 1}, key="a")
                first[j] = (time.perf_counter() - t1) * 1e3
            await c.close()
    return [(median_of(times[j]), lookups[j], first[j]) for j in range(len(urls))]


def figures(quick: bool = False) -> list[Figure]:
    """The restart and connect figures (see the module docstring)."""
    from evfabric.fabric.streams import namespace_stream

    n = _count(quick)
    old_n = min(OLD_STREAMS if not quick else 200, n)
    reps = 3 if not quick else 1
    root = Path(tempfile.mkdtemp(prefix="evf-bench-topics-"))
    servers: list[Any] = []
    try:
        topics = _server(root, "topics")
        servers.append(topics)
        t0 = time.perf_counter()
        asyncio.run(_make_topics(topics.url, n))
        create_s = time.perf_counter() - t0
        streams = sum(1 for p in root.joinpath("topics").rglob("streams/*") if p.is_dir() and p.parent.name == "streams")
        ours = [_restart(topics, namespace_stream("ns0.t0"), "ns0.t0") for _ in range(reps)]
        one = _server(root, "one")
        servers.append(one)
        asyncio.run(_make_streams(one.url, n, per_topic=False))
        peer = [_restart(one, "ONE", None) for _ in range(reps)]
        old = _server(root, "old")
        servers.append(old)
        asyncio.run(_make_streams(old.url, old_n, per_topic=True))
        old_s = median_of([_restart(old, f"OLD_{old_n - 1}", None) for _ in range(reps)])
        old.close()
        empty = _server(root, "empty")
        servers.append(empty)
        connect, connect_empty = asyncio.run(_connect_ms([topics.url, empty.url], 15))
    finally:
        for s in servers:
            s.close()
        shutil.rmtree(root, ignore_errors=True)
    return [  # stable names; notes["topics"] says how many (10,000 unless --quick or EVF_BENCH_TOPICS)
        Figure("restart_10k_topics_s", "s", median_of(ours),
               f"the same server with 1 stream of {n:,} events", median_of(peer), higher_is_better=False,
               notes={"topics": n, "namespaces": NAMESPACES, "streams_on_disk": streams,
                      "create_topics_s": round(create_s, 2), "old_layout_streams": old_n,
                      "old_layout_restart_s": round(old_s, 3), "goal_s": 3.0}),
        Figure("connect_10k_topics_ms", "ms", connect[0],
               "connect_async to an empty server", connect_empty[0], higher_is_better=False,
               notes={"topics": n, "catalog_lookups_during_connect": connect[1],
                      "first_publish_of_a_topic_ms": round(connect[2], 3)}),
    ]


def run(quick: bool = False) -> list[Figure]:
    """``evfabric bench fabric_topics``."""
    return figures(quick)
