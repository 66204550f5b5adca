"""``clients_50_rss_mb``: 50 evfabric clients in one process against 50 raw nats-py connections.

Each side runs in a fresh process (so that the figures are that process's alone), against the
same broker, in the same run, interleaved. evfabric: 50 ``evfabric.connect()`` clients (default
options), each with a best-effort and a reliable subscription on its own topics, publishes
``EVENTS`` 100 B best-effort events (``publish_many``) and ``RELIABLE`` reliable ones and waits
until its listeners got them all. The peer: 50 ``nats.connect()`` connections, each subscribed to
its own subject, publishing the same number of pre-encoded 100 B messages (one per event) and
receiving them. The figure is the process's peak resident memory (``VmHWM``, MB, interpreter and
imports included); notes give the threads alive with the clients open, the resident memory
before connecting (imports only), virtual size and the events received.

``evfabric bench fabric`` includes it (:func:`figures`); ``evfabric bench clients`` runs it alone.
Run as a script with ``child ...`` arguments, this file is the measured process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from typing import Any

from evfabric.benchmarking import Figure, median_of, with_broker

NAME = "clients_50_rss_mb"
PEER = "50 raw nats-py connections in one process, same traffic"
CLIENTS = 50
EVENTS = 2000  # best-effort events per client
RELIABLE = 200  # reliable events per client
PAYLOAD = "x" * 60  # with the header: a ~100 B event


def _memory() -> dict[str, float]:
    """This process's memory figures from /proc (MB)."""
    out: dict[str, float] = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "VmSize"):
                out[key] = int(rest.split()[0]) / 1024
    return out


def _wait(counts: list[int], want: int, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while sum(counts) < want and time.monotonic() < deadline:
        time.sleep(0.01)


def _child_evfabric(url: str, n: int, events: int, reliable: int) -> dict[str, Any]:
    import evfabric

    base = _memory()["VmRSS"]
    got = [0] * n

    def counter(i: int) -> Any:
        def listener(ev: Any) -> None:
            got[i] += 1
        return listener

    t0 = time.monotonic()
    clients = [evfabric.connect(url, source=f"bench-c{i}") for i in range(n)]
    tag = f"{time.time_ns() % 10**9}"
    for i, c in enumerate(clients):
        c.subscribe(f"bclients{tag}.c{i}.be", listener=counter(i), delivery="best_effort")
        c.subscribe(f"bclients{tag}.c{i}.rel", listener=counter(i), delivery="reliable")
    for i, c in enumerate(clients):
        c.publish_many(f"bclients{tag}.c{i}.be", [{"p": PAYLOAD} for _ in range(events)])
        c.publish_many(f"bclients{tag}.c{i}.rel", [{"p": PAYLOAD} for _ in range(reliable)], delivery="reliable")
    for c in clients:
        c.flush(60)
    _wait(got, n * (events + reliable))
    threads = threading.active_count()
    mem = _memory()
    for c in clients:
        c.close()
    return {"base_mb": base, "rss_mb": mem["VmRSS"], "hwm_mb": mem["VmHWM"], "vms_mb": mem["VmSize"],
            "threads": threads, "received": sum(got), "seconds": time.monotonic() - t0,
            "threads_after_close": threading.active_count()}


def _child_raw(url: str, n: int, events: int, reliable: int) -> dict[str, Any]:
    import asyncio

    import nats

    base = _memory()["VmRSS"]
    got = [0] * n
    payload = json.dumps({"id": "0" * 33, "topic": "bench.t.x", "source": "bench", "body": {"p": PAYLOAD}}).encode()

    async def main() -> dict[str, Any]:
        t0 = time.monotonic()
        conns = [await nats.connect(url) for _ in range(n)]
        tag = f"{time.time_ns() % 10**9}"

        def counter(i: int) -> Any:
            async def cb(msg: Any) -> None:
                got[i] += 1
            return cb

        for i, nc in enumerate(conns):
            await nc.subscribe(f"brawclients{tag}.c{i}", cb=counter(i))
        for nc in conns:
            await nc.flush()
        for i, nc in enumerate(conns):
            for _ in range(events + reliable):
                await nc.publish(f"brawclients{tag}.c{i}", payload)
        for nc in conns:
            await nc.flush()
        deadline = time.monotonic() + 60
        while sum(got) < n * (events + reliable) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        threads = threading.active_count()
        mem = _memory()
        for nc in conns:
            await nc.close()
        return {"base_mb": base, "rss_mb": mem["VmRSS"], "hwm_mb": mem["VmHWM"], "vms_mb": mem["VmSize"],
                "threads": threads, "received": sum(got), "seconds": time.monotonic() - t0}

    return asyncio.run(main())


def measure(kind: str, url: str, n: int = CLIENTS, events: int = EVENTS, reliable: int = RELIABLE) -> dict[str, Any]:
    """Run one side (``evfabric`` or ``raw``) in a fresh process; return its figures."""
    res = subprocess.run([sys.executable, __file__, "child", kind, url, str(n), str(events), str(reliable)],
                         capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        raise RuntimeError(f"bench clients child {kind} failed: {res.stderr.strip().splitlines()[-1:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def figures(url: str, quick: bool = False) -> list[Figure]:
    """``clients_50_rss_mb`` and its peer, measured against the broker at ``url``."""
    reps = 1 if quick else 3
    events = EVENTS // 10 if quick else EVENTS
    reliable = RELIABLE // 10 if quick else RELIABLE
    ours: list[dict[str, Any]] = []
    raw: list[dict[str, Any]] = []
    for _ in range(reps):  # interleaved: the machine's load hits both sides alike
        ours.append(measure("evfabric", url, CLIENTS, events, reliable))
        raw.append(measure("raw", url, CLIENTS, events, reliable))

    def med(rows: list[dict[str, Any]], key: str) -> float:
        return round(median_of([float(r[key]) for r in rows]), 1)

    notes = {"clients": CLIENTS, "events_per_client": events + reliable, "reliable_per_client": reliable,
             "threads": med(ours, "threads"), "peer_threads": med(raw, "threads"),
             "rss_end_mb": med(ours, "rss_mb"), "imports_mb": med(ours, "base_mb"),
             "peer_imports_mb": med(raw, "base_mb"), "vms_mb": med(ours, "vms_mb"),
             "received_fraction": round(min(r["received"] for r in ours) / (CLIENTS * (events + reliable)), 4)}
    return [Figure(NAME, "MB", med(ours, "hwm_mb"), PEER, med(raw, "hwm_mb"), higher_is_better=False, notes=notes)]


def run(quick: bool = False) -> list[Figure]:
    """Start a broker, measure, stop it."""
    return with_broker(figures, quick)


if __name__ == "__main__" and len(sys.argv) >= 2 and sys.argv[1] == "child":
    kind_, url_, n_, events_, reliable_ = sys.argv[2:7]
    side = _child_evfabric if kind_ == "evfabric" else _child_raw
    print(json.dumps(side(url_, int(n_), int(events_), int(reliable_))), flush=True)
