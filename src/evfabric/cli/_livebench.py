"""``evfabric bench pub|sub``: throughput against a running broker, like ``nats bench``.

``pub`` publishes MSGS events of SIZE body bytes on TOPIC as fast as the client accepts them
(``--reliable``: until the broker stored them all) and reports events/s and MB/s. ``sub`` waits
for MSGS events on TOPIC (run ``bench pub`` elsewhere, or give ``--with-pub`` to publish from the
same process) and reports the rate from its first event to its last.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["BenchResult", "bench_pub", "bench_sub"]


@dataclass
class BenchResult:
    """What one side measured."""

    side: str
    events: int
    size: int
    seconds: float
    delivery: str

    @property
    def rate(self) -> float:
        """Events per second."""
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with the rates."""
        return {**asdict(self), "events_per_s": self.rate, "mb_per_s": self.rate * self.size / 1e6}

    def line(self) -> str:
        """One human line: ``pub: 100,000 events of 128 B in 0.41 s: 243,902 events/s, 31.2 MB/s``."""
        return (f"{self.side}: {self.events:,} {self.delivery} events of {self.size} B in {self.seconds:.2f} s: "
                f"{self.rate:,.0f} events/s, {self.rate * self.size / 1e6:.1f} MB/s")


def _body(size: int) -> dict[str, Any]:
    return {"d": "x" * max(0, size - 8)}  # about SIZE bytes once encoded


def bench_pub(client: Any, topic: str, msgs: int, size: int, reliable: bool) -> BenchResult:
    """Publish ``msgs`` events on ``topic``; the time includes the final flush."""
    delivery = "reliable" if reliable else "best_effort"
    body = _body(size)
    step = 10_000
    t0 = time.perf_counter()
    for i in range(0, msgs, step):
        client.publish_many(topic, [body] * min(step, msgs - i), delivery=delivery)
    client.flush(120)
    return BenchResult("pub", msgs, size, time.perf_counter() - t0, delivery)


def bench_sub(client: Any, topic: str, msgs: int, size: int, reliable: bool, timeout: float,
              with_pub: Any = None) -> BenchResult:
    """Receive ``msgs`` events on ``topic`` (``with_pub``: a client that publishes them meanwhile);
    raises TimeoutError when fewer arrive within ``timeout`` idle seconds."""
    delivery = "reliable" if reliable else "best_effort"
    got = queue.SimpleQueue[float]()
    count = [0]
    done = threading.Event()
    first: list[float] = []

    def on_event(_: Any) -> None:
        count[0] += 1
        if count[0] == 1:
            first.append(time.perf_counter())
        if count[0] >= msgs:
            got.put(time.perf_counter())
            done.set()

    client.subscribe(topic, listener=on_event, delivery=delivery)
    pub = None
    if with_pub is not None:
        pub = threading.Thread(target=bench_pub, args=(with_pub, topic, msgs, size, reliable), daemon=True)
        pub.start()
    last_seen, last_count = time.monotonic(), 0
    while not done.wait(0.2):
        if count[0] != last_count:
            last_seen, last_count = time.monotonic(), count[0]
        elif time.monotonic() - last_seen > timeout:
            raise TimeoutError(f"received {count[0]:,} of {msgs:,} events on {topic!r}; none for {timeout} s")
    end = got.get()
    if pub is not None:
        pub.join(60)
    return BenchResult("sub", msgs, size, end - first[0], delivery)
