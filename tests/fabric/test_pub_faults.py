"""Faults on the publishing path (issue 11 points 1, 5, 6, 7), each asserting the figure it measures."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import evfabric
from evfabric.core.errors import NotFound, PublishTimeout, StorageFull
from evfabric.testing import running_broker, wait_until

pytestmark = pytest.mark.timeout(120)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


# --- 1. forked producers --------------------------------------------------------------------------


def _forked_worker(url: str, topic: str, n: int, out: Any) -> None:
    try:
        with evfabric.connect(url, source=f"w{os.getpid()}") as client:
            client.publish_many(topic, ({"i": i} for i in range(n)), delivery="reliable")
            client.flush(60)
            out.put(("ok", client.stats.stored))
    except BaseException as exc:
        out.put(("error", repr(exc)))


def test_forked_producers_lose_nothing_and_ids_stay_distinct(broker: Any) -> None:
    root, workers, per = unique("fork"), 4, 3000
    with evfabric.connect(broker.url) as admin:
        admin.create_topic(root)
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_forked_worker, args=(broker.url, f"{root}.x", per, out)) for _ in range(workers)]
    for p in procs:
        p.start()
    results = [out.get(timeout=90) for _ in procs]
    for p in procs:
        p.join(30)
    assert all(r[0] == "ok" for r in results), results
    acked = sum(r[1] for r in results)
    ids: list[str] = []

    with evfabric.connect(broker.url) as reader:
        sub = reader.subscribe(f"{root}.*", start="earliest", listener=lambda ev: ids.append(ev.id))
        # everything stored was delivered and acknowledged (after the listener): nothing more may
        # come, so extra deliveries would show as a larger count
        assert wait_until(lambda: len(ids) >= workers * per and reader.lag(sub) == 0, timeout=60), len(ids)
        stored = len(ids)
    assert acked == stored == workers * per
    assert len(set(ids)) == workers * per


# --- 5. no head-of-line blocking across topics ----------------------------------------------------


def test_a_topic_without_stream_fails_only_its_own_publishes(broker: Any) -> None:
    good, bad = unique("good"), unique("nostream")
    with evfabric.connect(broker.url, auto_topics=False, publish_timeout=10) as client:
        client.create_topic(good)
        stop = threading.Event()
        bad_errors: list[BaseException] = []

        def hammer_bad() -> None:
            while not stop.is_set():
                try:
                    client.publish(f"{bad}.x", {"n": 1}, delivery="reliable")
                except NotFound as exc:
                    bad_errors.append(exc)

        t = threading.Thread(target=hammer_bad)
        t.start()
        try:
            ok, slowest = 0, 0.0
            for i in range(300):
                t0 = time.monotonic()
                client.publish(f"{good}.x", {"i": i}, delivery="reliable")  # raises on any error
                slowest = max(slowest, time.monotonic() - t0)
                ok += 1
        finally:
            stop.set()
            t.join(15)
        assert ok == 300 and bad_errors, (ok, len(bad_errors))
        assert slowest < 1.0, slowest  # healthy publishes are never held up by the broken topic
        assert all("no topic stores it" in str(e) for e in bad_errors)


# --- 6. storage full ------------------------------------------------------------------------------


@pytest.fixture
def small_disk() -> Any:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    where = Path(tempfile.mkdtemp(prefix="evf-full-"))
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(where)], capture_output=True)
    if r.returncode != 0:
        where.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
        where.rmdir()


def test_a_full_disk_raises_storage_full_within_a_second(small_disk: Path) -> None:
    with running_broker(small_disk / "broker") as srv, evfabric.connect(srv.url, publish_timeout=30) as client:
        root = unique("full")
        client.create_topic(root)
        blob = os.urandom(60_000)
        stored = 0
        t0 = time.monotonic()
        with pytest.raises(StorageFull) as info:
            for i in range(1000):
                t0 = time.monotonic()
                client.publish(f"{root}.x", {"i": i, "blob": blob}, delivery="reliable")
                stored += 1
        elapsed = time.monotonic() - t0
        assert elapsed < 1.0, elapsed
        assert 10 < stored < 200 and "full" in str(info.value)


# --- 7. close flushes or raises; the CLI exits non-zero on a refusal -----------------------------


@pytest.mark.parametrize("ending", ["c.close()\n", ""], ids=["close", "script-end-without-close"])
def test_close_flushes_best_effort_events_at_script_end(broker: Any, ending: str) -> None:
    root = unique("end")
    script = (
        "import evfabric\n"
        f"c = evfabric.connect({broker.url!r})\n"
        f"for i in range(20000): c.publish({root + '.x'!r}, {{'i': i}})\n"
        + ending
    )
    got: list[int] = []
    all_in = threading.Event()

    def on(ev: evfabric.Event) -> None:
        got.append(ev.body["i"])
        if len(got) == 20000:
            all_in.set()

    with evfabric.connect(broker.url) as reader:
        reader.subscribe(f"{root}.*", listener=on)
        subprocess.run([sys.executable, "-c", script], check=True, timeout=60, env=os.environ)
        all_in.wait(20)
    assert len(got) == 20000 and sorted(got) == list(range(20000))


def test_close_raises_when_reliable_events_stay_unconfirmed(tmp_path: Path) -> None:
    async def main() -> None:
        with running_broker(tmp_path / "b") as srv:
            client = await evfabric.connect_async(srv.url, ack_timeout=0.5)
            root = unique("gone")
            await client.create_topic(root)
            srv.stop()
            ticket = await client.submit(f"{root}.x", {"n": 1}, delivery="reliable")
            t0 = time.monotonic()
            with pytest.raises(PublishTimeout):
                await client.close(timeout=1.0)
            assert time.monotonic() - t0 < 5
            assert ticket.done() and ticket.exception() is not None  # failed, not abandoned

    asyncio.run(main())


def test_cli_pub_reliable_exits_non_zero_when_refused(broker: Any) -> None:
    r = subprocess.run([sys.executable, "-m", "evfabric.cli", "pub", "--url", broker.url, "--reliable", "--no-auto-topics",
                        f"{unique('refused')}.x", '{"n": 1}'], capture_output=True, text=True, timeout=60,
                       env=os.environ)
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "no topic stores it" in lines[0], r.stderr
