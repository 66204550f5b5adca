"""In-process service throughput: publish + delivery to one listener, in each dispatch mode.

Figures (DESIGN.md names):
* ``sync``: publish + ``process_events()`` to one listener; peer: a bare Python loop calling the
  same listener on pre-built events.
* ``wildcard_10k``: the same through a wildcard subscription among 10,000 other patterns; peer:
  the same with 10 other patterns (the index must keep these close).
* ``threads``: publish with the thread-pool dispatcher until all are delivered; peer: the bare loop.
* ``sync_publish_many``: ``process_events()`` once per 1,000 publishes (the batching user); peer: the bare loop.
"""

from __future__ import annotations

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
        publish, process = svc.publish, svc.process_events
        body = {"i": 0}

        def run() -> None:
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


def run(quick: bool = False) -> list[Figure]:
    n = 5_000 if quick else 200_000
    repeat = 3 if quick else 5
    bare = _bare_loop_rate(n, repeat)
    sync = _service_rate(n, repeat, others=0)
    batched = _service_rate(n, repeat, others=0, flush_every=1000)
    wild10 = _service_rate(n, repeat, others=10)
    wild10k = _service_rate(n, repeat, others=10_000 if not quick else 1_000)
    threads = _service_rate(n, repeat, others=0, mode="threads", flush_every=n)
    bare_name = "bare python loop"
    return [
        Figure("sync", "events/s", sync, bare_name, bare),
        Figure("sync_publish_many", "events/s", batched, bare_name, bare),
        Figure("wildcard_10k", "events/s", wild10k, "same with 10 patterns", wild10),
        Figure("threads", "events/s", threads, bare_name, bare),
    ]
