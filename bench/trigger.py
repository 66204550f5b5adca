"""Triggers: throughput through a no-op action, and how fast concurrency follows a burst.

Figures:
* ``noop_batch1`` / ``noop_batch100``: events/s from a pre-stored topic through a trigger whose
  action does nothing, at batch size 1 and 100; peer: a plain reliable group subscription with a
  no-op listener on the same topic (the fabric without the trigger machinery), same run.
* ``scale_up_s``: seconds from a burst of slow events (0.2 s each) to the trigger running at its
  full concurrency (8); peer: seconds until a plain reliable subscription has received as many
  events as that concurrency (how soon the work could be visible at all). Lower is better.
* ``scale_down_s``: seconds from the last invocation's end to the pool back at its minimum; peer:
  the configured idle timeout, the design's floor. Lower is better.
"""

from __future__ import annotations

import tempfile
import threading
import time
import uuid

import evfabric
from evfabric.benchmarking import Figure, median_of
from evfabric.broker.server import BrokerServer
from evfabric.triggers import RunnerThread, Triggers

IDLE = 0.5
SLOW = 0.2


def _wait(pred, timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.002)
    return False


def _fill(client, root: str, n: int) -> None:
    client.publish_many(f"{root}.x", [{"i": i, "pad": "x" * 40} for i in range(n)], delivery="reliable")
    client.flush(60)


def _trigger_rate(client, runner: RunnerThread, n: int, batch: int) -> float:
    root = f"tb{uuid.uuid4().hex[:8]}"
    _fill(client, root, n)
    admin = Triggers(client)
    name = f"{root}-noop"
    t0 = time.perf_counter()
    admin.create(name, f"{root}.*", {"kind": "python", "target": "evfabric.triggers.builtin:noop", "pass_batch": batch > 1},
                 batch_size=batch, start="earliest", max_concurrency=4)
    ok = _wait(lambda: runner.status().get(name, {}).get("events", 0) >= n, 120)
    elapsed = time.perf_counter() - t0
    admin.delete(name)
    return n / elapsed if ok else 0.0


def _plain_rate(client, n: int) -> float:
    root = f"pb{uuid.uuid4().hex[:8]}"
    _fill(client, root, n)
    count = [0]
    done = threading.Event()

    def listener(ev) -> None:
        count[0] += 1
        if count[0] >= n:
            done.set()

    t0 = time.perf_counter()
    sub = client.subscribe(f"{root}.*", delivery="reliable", group="plain", start="earliest", listener=listener)
    done.wait(120)
    elapsed = time.perf_counter() - t0
    sub.unsubscribe()
    return n / elapsed


def _scaling(client, runner: RunnerThread, top: int) -> tuple[float, float, float]:
    root = f"ts{uuid.uuid4().hex[:8]}"
    admin = Triggers(client)
    name = f"{root}-slow"
    admin.create(name, f"{root}.*", {"kind": "shell", "target": f"sleep {SLOW}"}, max_concurrency=top, timeout=10)
    time.sleep(0.3)
    seen = []
    plain = client.subscribe(f"{root}.*", delivery="reliable", listener=lambda ev: seen.append(time.perf_counter()))
    t0 = time.perf_counter()
    _fill(client, root, 3 * top)
    _wait(lambda: runner.status().get(name, {}).get("workers", 0) >= top, 30)
    up = time.perf_counter() - t0
    _wait(lambda: len(seen) >= top, 30)
    plain_up = (seen[top - 1] - t0) if len(seen) >= top else up
    _wait(lambda: runner.status().get(name, {}).get("events", 0) >= 3 * top, 60)
    t1 = time.perf_counter()
    _wait(lambda: runner.status().get(name, {}).get("workers", top) <= 1, 30)
    down = time.perf_counter() - t1
    plain.unsubscribe()
    admin.delete(name)
    return up, plain_up, down


def run(quick: bool = False) -> list[Figure]:
    n1, n100 = (300, 3000) if quick else (3000, 50_000)
    repeat = 1 if quick else 3
    with tempfile.TemporaryDirectory() as tmp, BrokerServer(data_dir=tmp) as srv:
        with evfabric.connect(srv.url, max_batch=500) as client:
            runner = RunnerThread(srv.url, idle_timeout=IDLE, accept_unsigned=True)
            try:
                b1 = median_of([_trigger_rate(client, runner, n1, 1) for _ in range(repeat)])
                b100 = median_of([_trigger_rate(client, runner, n100, 100) for _ in range(repeat)])
                plain = median_of([_plain_rate(client, n100) for _ in range(repeat)])
                scaling = [_scaling(client, runner, 8) for _ in range(repeat)]
            finally:
                runner.stop()
    up = median_of([s[0] for s in scaling])
    plain_up = median_of([s[1] for s in scaling])
    down = median_of([s[2] for s in scaling])
    peer = "plain reliable group subscription, no-op listener"
    return [
        Figure("noop_batch1", "events/s", b1, peer, plain),
        Figure("noop_batch100", "events/s", b100, peer, plain),
        Figure("scale_up_s", "s", up, "plain subscription receives as many events", plain_up, higher_is_better=False),
        Figure("scale_down_s", "s", down, "configured idle timeout", IDLE, higher_is_better=False),
    ]
