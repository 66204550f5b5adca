"""In-process service throughput: publish + delivery to one listener, in each dispatch mode.

Figures (DESIGN.md names):
* ``sync``: publish + ``process_events()`` to one listener; peer: a bare Python loop calling the
  same listener on pre-built events.
* ``wildcard_10k``: the same through a wildcard subscription among 10,000 other patterns; peer:
  the same with 10 other patterns (the index must keep these close).
* ``threads``: publish with the thread-pool dispatcher until all are delivered; peer: the bare loop.
* ``sync_publish_many``: ``process_events()`` once per 1,000 publishes (the batching user); peer: the bare loop.
* ``sync_vs_blinker``: ``sync`` against blinker's ``send`` to one receiver (goal >= 1.5).
* ``wildcard_10k_vs_blinker``: ``wildcard_10k`` against blinker's ``send`` (goal >= 1.3).
* ``subscribe_us``: microseconds per ``subscribe()`` (a new wildcard pattern each time, 10,000
  in place); peer: blinker's ``connect`` of a new receiver to a new signal (goal <= 20 us).
* ``match_many_topics``: publish + flush to topics drawn at random from 200,000 (twice what the
  match cache holds) against the same over 1,000 topics: the cache must degrade (about half
  the lookups still hit), not thrash (a cache cleared when full holds a quarter on average).
"""

from __future__ import annotations

import random
import time

from evfabric import EventService
from evfabric.benchmarking import Figure, median_of, timed
from evfabric.core.event import make_event


class Listener:
    """Notes the state and returns, as CCA section 4 advises listeners to do."""

    def __init__(self) -> None:
        self.count = 0
        self.last: dict = {}

    def __call__(self, event) -> None:
        self.count += 1
        self.last = event.body


def _bare_loop_rate(n: int, repeat: int) -> float:
    events = [make_event("sim.step", {"i": i}, source="bench") for i in range(n)]
    listener = Listener()

    def run() -> None:
        for ev in events:
            listener(ev)

    return median_of([n / timed(run) for _ in range(repeat)])


def _service_rate(n: int, repeat: int, others: int, mode: str = "sync", flush_every: int = 1) -> float:
    rates = []
    for _ in range(repeat):
        svc = EventService(source="bench", mode=mode)  # type: ignore[arg-type]
        for k in range(others):
            svc.subscribe(f"other{k}.*.x{k % 7}")
        listener = Listener()
        svc.subscribe("sim.*" if others else "sim.step", listener=listener)
        def run(publish=svc.publish, process=svc.process_events, body={"i": 0}) -> None:  # noqa: B006 (bound now)
            if mode == "sync" and flush_every == 1:
                for _ in range(n):
                    publish("sim.step", body)
                    process()
            else:
                for i in range(n):
                    publish("sim.step", body)
                    if i % flush_every == 0:
                        process()
                process()

        rates.append(n / timed(run))
        assert listener.count == n, (listener.count, n)
        svc.close()
    return median_of(rates)


def _blinker_rate(n: int, repeat: int) -> float:
    """blinker's ``send`` of a body to one receiver (the peer users would pick in one process)."""
    try:
        import blinker
    except ImportError:
        return 0.0
    sig = blinker.Signal()
    listener = Listener()
    sig.connect(listener, weak=False)  # blinker calls receiver(sender): the event is the sender
    send = sig.send
    event = make_event("sim.step", {"i": 0}, source="bench")

    def run() -> None:
        for _ in range(n):
            send(event)

    return median_of([n / timed(run) for _ in range(repeat)])


def _subscribe_us(n: int, present: int) -> tuple[float, float]:
    """Microseconds per subscribe(pattern, listener=...) with ``present`` patterns in place, and
    blinker's connect. (Without a listener a subscription also makes an inbox for pulling.)"""
    svc = EventService(source="bench")
    for k in range(present):
        svc.subscribe(f"other{k}.*.x{k % 7}")
    patterns = [f"new{k}.*.y{k % 5}" for k in range(n)]
    subscribe = svc.subscribe
    listener = Listener()
    t0 = time.perf_counter()
    for p in patterns:
        subscribe(p, listener=listener)
    ours = (time.perf_counter() - t0) / n * 1e6
    svc.close()
    try:
        import blinker
    except ImportError:
        return ours, 0.0
    signals = [blinker.Signal() for _ in range(n)]
    receivers = [lambda *a, **k: None for _ in range(n)]
    t0 = time.perf_counter()
    for sig, recv in zip(signals, receivers):
        sig.connect(recv, weak=False)
    return ours, (time.perf_counter() - t0) / n * 1e6


def _random_topics_rate(n: int, topics: int) -> float:
    svc = EventService(source="bench")
    listener = Listener()
    svc.subscribe("rr.*", listener=listener)
    names = [f"rr.t{k}" for k in range(topics)]
    draw = random.Random(13)
    sequence = [names[draw.randrange(topics)] for _ in range(n)]
    publish, process = svc.publish, svc.process_events
    body = {"i": 0}
    for name in names:  # warm: every topic known (and the cache as full as it gets)
        publish(name, body)
    process()

    def run() -> None:
        for name in sequence:
            publish(name, body)
            process()

    rate = n / timed(run)
    svc.close()
    return rate


def run(quick: bool = False) -> list[Figure]:
    n = 5_000 if quick else 200_000
    repeat = 3 if quick else 5
    bare = _bare_loop_rate(n, repeat)
    # ours and blinker alternate, one repetition each, so that load on the shared machine hits both
    runs: dict[str, list[float]] = {"sync": [], "wild10k": [], "blinker": []}
    for _ in range(repeat):
        runs["sync"].append(_service_rate(n, 1, others=0))
        runs["blinker"].append(_blinker_rate(n, 1))
        runs["wild10k"].append(_service_rate(n, 1, others=10_000 if not quick else 1_000))
        runs["blinker"].append(_blinker_rate(n, 1))
    sync, wild10k, blinker_rate = (median_of(runs[k]) for k in ("sync", "wild10k", "blinker"))
    batched = _service_rate(n, repeat, others=0, flush_every=1000)
    wild10 = _service_rate(n, repeat, others=10)
    threads = _service_rate(n, repeat, others=0, mode="threads", flush_every=n)
    sub_us, connect_us = _subscribe_us(2_000 if quick else 10_000, 1_000 if quick else 10_000)
    many = 20_000 if quick else 200_000
    rr_many = _random_topics_rate(many, many)
    rr_few = _random_topics_rate(many, 1_000)
    bare_name = "bare python loop"
    return [
        Figure("sync", "events/s", sync, bare_name, bare),
        Figure("sync_publish_many", "events/s", batched, bare_name, bare),
        Figure("wildcard_10k", "events/s", wild10k, "same with 10 patterns", wild10),
        Figure("threads", "events/s", threads, bare_name, bare),
        Figure("sync_vs_blinker", "events/s", sync, "blinker send, 1 receiver", blinker_rate,
               notes={"goal": ">= 1.5"}),
        Figure("wildcard_10k_vs_blinker", "events/s", wild10k, "blinker send, 1 receiver", blinker_rate,
               notes={"goal": ">= 1.3"}),
        Figure("subscribe_us", "us", sub_us, "blinker connect", connect_us, higher_is_better=False,
               notes={"goal": "<= 20 us"}),
        Figure("match_many_topics", "events/s", rr_many, "same over 1,000 topics", rr_few,
               notes={"topics": many}),
    ]
