"""``evfabric bench fabric``: the fabric client against raw nats-py and pyzmq, same run, same broker.

Every figure is end to end unless named ``producer``: the producer (this process) publishes N
events, a consumer in a separate process (so that both use a core) counts them, and the rate is
N received / (time of the last arrival - time the first publish started). Peers send one message
per event (the same encoded ~100 B / ~1 KB event, built once: the most favourable case for the
peer): raw nats-py core, raw nats-py JetStream (``publish_async`` with a pull consumer that acks
each message), and pyzmq PUSH/PULL. evfabric publishes with ``publish_many`` (one call per burst;
``best_effort_e2e_100B_publish_loop`` shows one ``publish()`` call per event). Latency: one
event every 100 us (10,000 events/s) for a second, p50 / p99 of arrival - send time, evfabric
best effort against raw nats-py core. Each figure is the median of the repetitions.

Run as a script with ``consume ...`` arguments, this file is the consumer process.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

from evfabric.benchmarking import Figure, median_of

SIZES = {"100B": 100, "1KB": 1000}


def _payload_body(size: int) -> dict[str, Any]:
    """A body that makes the encoded event about ``size`` bytes."""
    from evfabric.core.codec import encode
    from evfabric.core.event import make_event

    base = len(encode(make_event("bench.t.x", {"p": ""}, source="bench")))
    return {"p": "x" * max(0, size - base)}


def _encoded_event(size: int) -> bytes:
    from evfabric.core.codec import encode
    from evfabric.core.event import make_event

    return encode(make_event("bench.t.x", _payload_body(size), source="bench"))


# --- the consumer process -------------------------------------------------------------------------


def _consume(kind: str, url: str, topic: str, n: int, idle: float) -> dict[str, Any]:
    state = {"count": 0, "first": 0.0, "last": 0.0}
    lat: list[float] = []

    def hit(k: int = 1) -> None:
        now = time.monotonic()
        if state["count"] == 0:
            state["first"] = now
        state["count"] += k
        state["last"] = now

    def ready() -> None:
        print("ready", flush=True)

    def wait_done() -> None:
        last_seen, last_count = time.monotonic(), -1
        while state["count"] < n:
            time.sleep(0.005)
            if state["count"] != last_count:
                last_seen, last_count = time.monotonic(), state["count"]
            elif time.monotonic() - last_seen > idle:
                break

    if kind in ("evf_be", "evf_rel", "evf_lat"):
        import evfabric

        c = evfabric.connect(url, source="bench-consumer", max_backlog=5_000_000)

        def on_event(ev: Any) -> None:
            if kind == "evf_lat":
                lat.append(time.time() - ev.body["t"])
            hit()

        c.subscribe(f"{topic}.*", delivery="reliable" if kind == "evf_rel" else "best_effort",
                    listener=on_event, max_inflight=512)
        ready()
        wait_done()
        dropped = c.stats.dropped + c.stats.slow_consumer_msgs
        msgs = c.aio.nc.stats["in_msgs"]
        c.close(timeout=2)
        return {**state, "lat": lat, "dropped": dropped, "msgs": msgs}

    if kind == "zmq":
        import zmq

        ctx = zmq.Context()
        s = ctx.socket(zmq.PULL)
        s.setsockopt(zmq.RCVHWM, 0)
        s.bind(url)
        ready()
        poller = zmq.Poller()
        poller.register(s, zmq.POLLIN)
        while state["count"] < n:
            if not poller.poll(idle * 1000):
                break
            s.recv()
            hit()
        s.close(0)
        ctx.term()
        return {**state, "lat": lat}

    async def run_nats() -> None:
        import msgspec
        import nats

        nc = await nats.connect(url)
        if kind in ("nats_core", "nats_lat"):
            dec = msgspec.msgpack.Decoder()

            async def cb(msg: Any) -> None:
                if kind == "nats_lat":
                    lat.append(time.time() - dec.decode(msg.data)["body"]["t"])
                hit()

            await nc.subscribe(f"raw.{topic}", cb=cb, pending_msgs_limit=0, pending_bytes_limit=0)
            await nc.flush()
            ready()
            while state["count"] < n:
                before = state["count"]
                await asyncio.sleep(idle if state["count"] else 0.05)
                if state["count"] == before and state["count"]:
                    break
        else:  # nats_js: a durable pull consumer, one ack per message
            js = nc.jetstream()
            psub = await js.pull_subscribe(f"raw.{topic}", durable=f"d{os.getpid()}", stream=f"RAW{os.getpid() % 1}")
            ready()
            while state["count"] < n:
                try:
                    msgs = await psub.fetch(256, timeout=idle)
                except Exception:
                    break
                for m in msgs:
                    await m.ack()
                hit(len(msgs))
        await nc.close()

    asyncio.run(run_nats())
    return {**state, "lat": lat}


# --- the producer side ------------------------------------------------------------------------------


class _Consumer:
    def __init__(self, kind: str, url: str, topic: str, n: int, idle: float = 3.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "consume", kind, url, topic, str(n), str(idle)],
            stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.proc.kill()
            raise RuntimeError(f"bench consumer {kind} failed to start: {line!r}")

    def result(self, timeout: float = 120.0) -> dict[str, Any]:
        out, _ = self.proc.communicate(timeout=timeout)
        return json.loads(out.strip().splitlines()[-1])


def _e2e(result: dict[str, Any], t0: float) -> float:
    span = result["last"] - t0
    return result["count"] / span if result["count"] and span > 0 else 0.0


def _evf_round(url: str, topic: str, n: int, size: int, mode: str, loop: bool = False) -> tuple[float, float, int]:
    import evfabric

    body = _payload_body(size)
    cons = _Consumer("evf_rel" if mode == "reliable" else "evf_be", url, topic, n)
    with evfabric.connect(url, source="bench", max_pending=400_000) as c:
        t0 = time.monotonic()
        if loop:
            for _ in range(n):
                c.publish(f"{topic}.x", body, delivery=mode, wait=False)
        else:
            chunk = 10_000
            for i in range(0, n, chunk):
                c.publish_many(f"{topic}.x", [body] * min(chunk, n - i), delivery=mode)
        c.flush(120)
        producer = n / (time.monotonic() - t0)
        res = cons.result()
    return producer, _e2e(res, t0), res.get("dropped", 0)


def _topics_round(url: str, topic: str, n: int, topics: int) -> tuple[float, float]:
    """One ``publish()`` per event, round robin over ``topics`` topics: (e2e events/s, events per message)."""
    import evfabric

    body = _payload_body(100)
    names = [f"{topic}.t{i}" for i in range(topics)]
    cons = _Consumer("evf_be", url, topic, n)
    with evfabric.connect(url, source="bench", max_pending=400_000) as c:
        t0 = time.monotonic()
        for i in range(n):
            c.publish(names[i % topics], body, wait=False)
        c.flush(120)
        res = cons.result()
    return _e2e(res, t0), res["count"] / max(1, res.get("msgs", 0) - 2)


async def _raw_nats_publish(url: str, topic: str, n: int, payload: bytes, jetstream: bool) -> float:
    import nats

    nc = await nats.connect(url)
    t0 = time.monotonic()
    if jetstream:
        js = nc.jetstream()
        futs = []
        for _ in range(n):
            futs.append(await js.publish_async(f"raw.{topic}", payload, wait_stall=30))
        await asyncio.gather(*futs)
    else:
        for _ in range(n):
            await nc.publish(f"raw.{topic}", payload)
        await nc.flush()
    rate = n / (time.monotonic() - t0)
    await nc.close()
    return rate


def _raw_round(url: str, topic: str, n: int, size: int, jetstream: bool) -> tuple[float, float, float]:
    payload = _encoded_event(size)
    if jetstream:
        async def make_stream() -> None:
            import nats

            nc = await nats.connect(url)
            js = nc.jetstream()
            try:
                await js.delete_stream("RAW0")
            except nats.js.errors.NotFoundError:
                pass  # first run: nothing to clear
            await js.add_stream(name="RAW0", subjects=[f"raw.{topic}"])
            await nc.close()

        asyncio.run(make_stream())
    cons = _Consumer("nats_js" if jetstream else "nats_core", url, topic, n)
    t0 = time.monotonic()
    producer = asyncio.run(_raw_nats_publish(url, topic, n, payload, jetstream))
    res = cons.result()
    return producer, _e2e(res, t0), res["count"] / n


def _zmq_round(n: int, size: int) -> tuple[float, float]:
    import zmq

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = f"tcp://127.0.0.1:{port}"
    cons = _Consumer("zmq", endpoint, "z", n)
    payload = _encoded_event(size)
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.SNDHWM, 0)
    push.connect(endpoint)
    t0 = time.monotonic()
    for _ in range(n):
        push.send(payload)
    producer = n / (time.monotonic() - t0)
    res = cons.result()
    push.close(0)
    ctx.term()
    return producer, _e2e(res, t0)


def _latency(url: str, topic: str, seconds: float, raw: bool) -> tuple[float, float]:
    import msgspec

    n = int(10_000 * seconds)
    cons = _Consumer("nats_lat" if raw else "evf_lat", url, topic, n)
    interval = 1e-4
    if raw:
        async def pace() -> None:
            import nats

            from evfabric.core.event import make_event

            nc = await nats.connect(url)
            enc = msgspec.msgpack.Encoder()
            template = make_event("bench.t.x", {"t": 0.0}, source="bench")
            nxt = time.perf_counter()
            for _ in range(n):
                ahead = nxt - time.perf_counter()
                await asyncio.sleep(ahead if ahead > 0 else 0)  # let nats-py's flusher run
                template.body = {"t": time.time()}
                await nc.publish(f"raw.{topic}", enc.encode(template))
                nxt += interval
            await nc.flush()
            await nc.close()

        asyncio.run(pace())
    else:
        import evfabric

        with evfabric.connect(url, source="bench") as c:
            nxt = time.perf_counter()
            for _ in range(n):
                ahead = nxt - time.perf_counter()
                if ahead > 0:
                    time.sleep(ahead)  # releases the GIL for the client's loop thread
                c.publish(f"{topic}.x", {"t": time.time()})
                nxt += interval
            c.flush()
    res = cons.result()
    lat = sorted(res["lat"])
    if not lat:
        return 0.0, 0.0
    return statistics.median(lat) * 1e6, lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1e6


def run(quick: bool = False) -> list[Figure]:
    """Start a broker, measure every figure and its peer, stop the broker."""
    from evfabric.broker.server import BrokerServer

    reps = 1 if quick else 3
    scale = 0.02 if quick else 1.0
    figures: list[Figure] = []
    srv = BrokerServer().start()
    url = srv.url
    counter = iter(range(1_000_000))

    def topic() -> str:
        return f"bench{next(counter)}"

    try:
        for label, size in SIZES.items():
            n = int((200_000 if size <= 100 else 100_000) * scale)
            n_js = int(20_000 * scale)
            evf = {m: [_evf_round(url, topic(), n, size, m) for _ in range(reps)] for m in ("best_effort", "reliable")}
            core = [_raw_round(url, topic(), n, size, False) for _ in range(reps)]
            jsr = [_raw_round(url, topic(), n_js, size, True) for _ in range(reps)]
            zmq_r = [_zmq_round(n, size) for _ in range(reps)]
            be_e2e = median_of([r[1] for r in evf["best_effort"]])
            rel_e2e = median_of([r[1] for r in evf["reliable"]])
            core_e2e = median_of([r[1] for r in core])
            notes_be = {"events": n, "dropped": max(r[2] for r in evf["best_effort"])}
            figures += [
                Figure(f"best_effort_e2e_{label}", "events/s", be_e2e, "raw nats-py core, 1 msg/event", core_e2e,
                       notes={**notes_be, "peer_delivered_fraction": round(min(r[2] for r in core), 4)}),
                Figure(f"best_effort_e2e_{label}_vs_pyzmq", "events/s", be_e2e, "pyzmq PUSH/PULL, 1 msg/event",
                       median_of([r[1] for r in zmq_r]), notes=notes_be),
                Figure(f"best_effort_producer_{label}", "events/s", median_of([r[0] for r in evf["best_effort"]]),
                       "raw nats-py core publish", median_of([r[0] for r in core])),
                Figure(f"reliable_e2e_{label}", "events/s", rel_e2e, "raw nats-py JetStream publish_async + pull/ack",
                       median_of([r[1] for r in jsr]), notes={"events": n, "peer_events": n_js}),
                Figure(f"reliable_producer_{label}", "events/s", median_of([r[0] for r in evf["reliable"]]),
                       "raw nats-py JetStream publish_async", median_of([r[0] for r in jsr])),
            ]
        n = int(100_000 * scale)
        loop_r = [_evf_round(url, topic(), n, 100, "best_effort", loop=True) for _ in range(reps)]
        core = [_raw_round(url, topic(), n, 100, False) for _ in range(reps)]
        figures.append(Figure("best_effort_e2e_100B_publish_loop", "events/s", median_of([r[1] for r in loop_r]),
                              "raw nats-py core, 1 msg/event", median_of([r[1] for r in core]),
                              notes={"events": n, "api": "client.publish() per event"}))
        n = max(20_000, int(100_000 * scale))  # quick runs too: 2 events per topic at least
        many = [_topics_round(url, topic(), n, 10_000) for _ in range(reps)]
        one = [_topics_round(url, topic(), n, 1) for _ in range(reps)]
        figures.append(Figure("topics_10k_ratio", "events/s", median_of([r[0] for r in many]),
                              "evfabric, the same publish() loop on one topic", median_of([r[0] for r in one]),
                              notes={"events": n, "topics": 10_000, "api": "client.publish() per event, round robin",
                                     "events_per_message": round(median_of([r[1] for r in many]), 2),
                                     "events_per_message_one_topic": round(median_of([r[1] for r in one]), 1)}))
        secs = 0.3 if quick else 1.0
        evl = [_latency(url, topic(), secs, raw=False) for _ in range(reps)]
        rawl = [_latency(url, topic(), secs, raw=True) for _ in range(reps)]
        for i, name in ((0, "latency_p50_us"), (1, "latency_p99_us")):
            figures.append(Figure(name, "us", median_of([r[i] for r in evl]), "raw nats-py core at 10,000 events/s",
                                  median_of([r[i] for r in rawl]), higher_is_better=False,
                                  notes={"rate": 10_000, "seconds": secs}))
        from evfabric.cli.bench import load  # best_effort_e2e_100B_vs_nats_js: bench/fabric_js.py (wire's)

        figures += load("fabric_js").figures(url, quick, _evf_round)
        figures += load("fabric_topics").figures(quick)  # restart_10k_topics_s, connect_10k_topics_ms (streams')
        figures += load("clients").figures(url, quick)  # clients_50_rss_mb: bench/clients.py
    finally:
        srv.close()
    return figures


if __name__ == "__main__" and len(sys.argv) >= 2 and sys.argv[1] == "consume":
    kind, url_, topic_, n_, idle_ = sys.argv[2:7]
    print(json.dumps(_consume(kind, url_, topic_, int(n_), float(idle_))), flush=True)
