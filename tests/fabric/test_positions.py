"""Event positions ``<seq>:<index>`` (docs/wire.md section 8) against a real broker: every received
event knows its position, replay starts at exactly one event, lag and stored count events,
retention by count in events (``max_events``) trims whole messages."""

from __future__ import annotations

import asyncio
import threading

import pytest
from _fabric_helpers import unique, wait_until

import evfabric
from evfabric.core.codec import decode_batch, encode_batch
from evfabric.core.errors import ConfigError
from evfabric.core.event import make_event
from evfabric.core.position import Position
from evfabric.fabric.retention import EventTrimmer
from evfabric.wire import decode_message, encode_events

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]


def _messages(c: evfabric.Client, topic: str, sizes: list[int]) -> None:
    """One stored message per size (a flush between them), bodies numbered from 0 on."""
    root = topic.split(".")[0]
    before = c.describe_topic(root).messages
    i = 0
    for n in sizes:
        c.publish_many(topic, [{"i": i + k} for k in range(n)], delivery="reliable")
        c.flush(timeout=10)
        i += n
    assert c.describe_topic(root).messages == before + len(sizes)  # the batches the test counts on


# -- units ------------------------------------------------------------------------------------------

def test_position_text_and_packing() -> None:
    p = Position.parse("12:3")
    assert (p.seq, p.index, str(p)) == (12, 3, "12:3")
    assert Position.unpack(p.packed()) == p and Position.unpack(0) is None
    assert Position(2, 0) < Position(2, 1) < Position(3, 0)
    for bad, why in (("12", "'<stream sequence>:<index>'"), ("0:1", "must be an int >= 1"), ("1:-1", "'<stream"),
                     ("a:b", "'<stream"), (f"1:{1 << 32}", "the index must be")):
        with pytest.raises(ConfigError) as exc:
            Position.parse(bad)
        assert why in str(exc.value) and "\n" not in str(exc.value)


def test_a_position_is_never_sent_nor_taken_from_bytes() -> None:
    ev = make_event("a.b", {"x": 1}, source="s")
    ev.packed_position = Position(5, 2).packed()
    for fmt in ("columns", "msgpack", "json"):
        headers, payload = encode_events([ev], fmt=fmt)
        (back,) = decode_message("evf._.0.a.b", headers, payload)
        assert back.position is None, fmt
    assert decode_batch(encode_batch([ev]))[0].position is None  # a forged one in a row is dropped


class _Scan:
    """A scan that returns what a test gives it (no broker)."""

    def __init__(self) -> None:
        self.next_seq, self.todo, self.name = 1, [], ""

    async def read(self) -> list[tuple[int, int]]:
        out, self.todo = self.todo, []
        if out:
            self.next_seq = out[-1][0] + 1
        return out


def test_event_counts_follow_new_messages_retention_and_trimming() -> None:
    """Incremental counts over 10,000 messages (filtered: sequences with gaps), the head dropped by
    retention (compacting the arrays), the trimmer's cut."""
    from types import SimpleNamespace

    from evfabric.fabric.positions import EventCounts

    counts = EventCounts(SimpleNamespace(_nc=None), "S", [])
    scan = counts.scan = _Scan()  # type: ignore[assignment]

    async def go() -> None:
        scan.todo = [(2 * s, s % 7 + 1) for s in range(1, 10_001)]  # even sequences only, 1..7 events
        await counts.refresh(first_seq=1, last_seq=20_000)
        total = sum(s % 7 + 1 for s in range(1, 10_001))
        assert (counts.messages, counts.events) == (10_000, total)
        assert counts.events_in(4) == 3 and counts.events_in(5) is None
        assert counts.events_after(19_998) == 10_000 % 7 + 1 and counts.events_after(20_000) == 0
        await counts.refresh(first_seq=15_001, last_seq=20_000)  # retention removed the first 7,500
        assert counts.messages == 2_500 and counts.events == sum(s % 7 + 1 for s in range(7_501, 10_001))
        assert len(counts._seqs) == 2_500  # compacted: memory follows what is stored
        scan.todo = [(20_001, 1000)]
        await counts.refresh(last_seq=20_001)
        assert counts.events_after(20_000) == 1000
        cut = counts.keep_from(1003)  # the newest whole messages with at most 1003 events
        assert cut is not None and counts.events_after(cut - 1) <= 1003 < counts.events_after(cut - 3)
        assert counts.keep_from(10**9) is None
    asyncio.run(go())


# -- against the broker -----------------------------------------------------------------------------

def test_every_received_event_knows_its_position_and_replay_starts_there(broker_session) -> None:
    """Three messages of 10, 20 and 5 events: positions are seq:index; start='<seq 2>:3' gives
    exactly events 13..34, and start=<an event's position> the same."""
    root = unique("ppos")
    topic = f"{root}.x"
    with evfabric.connect(broker_session.url, source="p") as c:
        c.create_topic(root)
        _messages(c, topic, [10, 20, 5])
        first = c.describe_topic(root).first_seq
        every: list[evfabric.Event] = []
        c.subscribe(f"{root}.*", start="earliest", listener=every.append)
        assert wait_until(lambda: len(every) == 35), len(every)
        want = [f"{first + m}:{k}" for m, n in enumerate([10, 20, 5]) for k in range(n)]
        assert [str(e.position) for e in sorted(every, key=lambda e: e.body["i"])] == want

        got: list[evfabric.Event] = []
        from_mid = c.subscribe(f"{root}.*", start=f"{first + 1}:3", listener=got.append)
        assert wait_until(lambda: len(got) == 22), len(got)
        assert wait_until(lambda: c.lag(from_mid) == 0)  # all acknowledged: nothing more may come
        assert sorted(e.body["i"] for e in got) == list(range(13, 35))
        assert min(e.position for e in got if e.position) == Position(first + 1, 3)

        again: list[evfabric.Event] = []
        mid = next(e for e in every if e.body["i"] == 27)
        c.subscribe(f"{root}.*", start=mid.position, listener=again.append)  # a Position, typed
        assert wait_until(lambda: len(again) == 8), len(again)
        assert sorted(e.body["i"] for e in again) == list(range(27, 35))


def test_bad_positions_are_refused_in_one_line(broker_session) -> None:
    root = unique("pbad")
    other = unique("pbadother")
    with evfabric.connect(broker_session.url, source="p") as c:
        c.create_topic(root)
        c.create_topic(other)
        _messages(c, f"{root}.x", [4])
        seq = c.describe_topic(root).first_seq
        cases = [
            (f"{seq}:4", "holds 4 events (indices 0 to 3)"),
            (f"{seq + 5}:0", f"no message {seq + 5}"),
            ("x:1", "'<stream sequence>:<index>'"),
            ("0:0", "must be an int >= 1"),
            ("later", "start must be"),
        ]
        for start, why in cases:
            with pytest.raises(ConfigError) as exc:
                c.subscribe(f"{root}.*", start=start)
            assert why in str(exc.value) and "\n" not in str(exc.value), (start, str(exc.value))
        with pytest.raises(ConfigError, match="a position is in one topic's stream"):
            c.subscribe("*", start=f"{seq}:0")  # a pattern over several topics


def test_lag_after_consuming_part_of_a_batch(broker_session) -> None:
    """A 10-event message whose listener handles 4 events and blocks on the fifth, then a 20-event
    message: lag is 6 + 20 = 26 events (the broker counts 2 messages); 0 once released."""
    root = unique("plag")
    topic = f"{root}.x"
    with evfabric.connect(broker_session.url, source="p") as c:
        c.create_topic(root)
        release = threading.Event()
        seen: list[int] = []

        def take(ev: evfabric.Event) -> None:
            seen.append(ev.body["i"])
            if ev.body["i"] == 4:
                release.wait(20)
        sub = c.subscribe(f"{root}.*", start="earliest", listener=take)
        try:
            _messages(c, topic, [10, 20])
            assert wait_until(lambda: 4 in seen)
            assert wait_until(lambda: c.lag(sub) == 26, timeout=10), c.lag(sub)
        finally:
            release.set()
        assert wait_until(lambda: len(seen) == 30 and c.lag(sub) == 0, timeout=10), (len(seen), c.lag(sub))


def test_stored_events_follow_retention_dropping_messages(broker_session) -> None:
    """max_msgs 3: after 5 messages of 10 events, describe says 3 messages and 30 events (counted
    incrementally: the 2 oldest dropped from the count as retention removed them)."""
    root = unique("pstore")
    with evfabric.connect(broker_session.url, source="p") as c:
        c.create_topic(root, max_msgs=3)
        _messages(c, f"{root}.x", [10, 7])
        assert c.describe_topic(root).events == 17
        for _ in range(3):
            c.publish_many(f"{root}.x", [{"i": i} for i in range(10)], delivery="reliable")
            c.flush(timeout=10)
        info = c.describe_topic(root)
        assert (info.messages, info.events, info.first_seq) == (3, 30, 3)
        d = info.as_dict()
        assert (d["messages"], d["events"]) == (3, 30)  # each figure named by its unit


def test_max_events_is_enforced_by_the_trimmer(broker_session) -> None:
    """max_events 25: 4 messages of 10 are trimmed to the newest 2 (20 events: whole messages);
    later publishes are trimmed too."""
    root = unique("ptrim")
    with evfabric.connect(broker_session.url, source="p") as c:
        info = c.create_topic(root, max_events=25)
        assert info.config.max_events == 25 and info.config.max_msgs is None
        _messages(c, f"{root}.x", [10, 10, 10, 10])  # 40 stored: nothing trims without a trimmer
        trimmer = EventTrimmer(broker_session.url, interval=0.1).start()
        try:
            assert wait_until(lambda: c.describe_topic(root).events == 20, timeout=10), c.describe_topic(root)
            assert c.describe_topic(root).messages == 2
            c.publish_many(f"{root}.x", [{"i": i} for i in range(24)], delivery="reliable")
            c.flush(timeout=10)
            assert wait_until(lambda: c.describe_topic(root).events == 24, timeout=10), c.describe_topic(root)
            got: list[evfabric.Event] = []
            c.subscribe(f"{root}.*", start="earliest", listener=got.append)
            assert wait_until(lambda: len(got) == 24) and sorted(e.body["i"] for e in got) == list(range(24))
        finally:
            trimmer.stop()
        assert trimmer.purged == 4 and trimmer.passes > 0  # 2 of the first 4, then 2 for the 24


def test_async_client_positions(broker_session) -> None:
    """The asyncio client: sub.next() events carry positions; replay from one."""
    root = unique("paio")

    async def go() -> tuple[list[str], list[int]]:
        c = await evfabric.connect_async(broker_session.url, source="a")
        try:
            await c.create_topic(root)
            await c.publish_many(f"{root}.x", [{"i": i} for i in range(6)], delivery="reliable")
            await c.flush(10)
            sub = await c.subscribe(f"{root}.*", start="earliest")
            evs = [await sub.anext(timeout=10) for _ in range(6)]
            sub2 = await c.subscribe(f"{root}.*", start=evs[2].position)
            later = [await sub2.anext(timeout=10) for _ in range(4)]
            return [str(e.position) for e in evs], [e.body["i"] for e in later]
        finally:
            await c.close()
    positions, later = asyncio.run(go())
    seq = positions[0].split(":")[0]
    assert positions == [f"{seq}:{i}" for i in range(6)] and later == [2, 3, 4, 5]


def test_positions_lag_and_stored_under_access_control(tmp_path) -> None:
    """Scans go through the topic service like any consumer: a reader with a subscribe grant
    replays from a position, sees its lag in events and the topic's stored events."""
    from evfabric.access import AccessStore
    from evfabric.access.control import AccessControl
    from evfabric.testing import running_broker

    store = AccessStore.in_dir(tmp_path / "b")
    for name in ("alice", "bob"):
        store.create_identity(name)
    tokens = {n: store.issue_token(n).secret for n in ("alice", "bob")}
    store.register_topic("pacl", "alice")
    store.grant("pacl", "bob", ["subscribe"])
    control = AccessControl(store, poll_interval=0.2)
    try:
        with running_broker(tmp_path / "b", access=control) as srv:
            with evfabric.connect(srv.url, token=tokens["alice"], source="a") as a, \
                    evfabric.connect(srv.url, token=tokens["bob"], source="b", auto_topics=False) as b:
                a.create_topic("pacl", exist_ok=True)
                _messages(a, "pacl.x", [5, 5, 5])
                first = a.describe_topic("pacl").first_seq
                got: list[evfabric.Event] = []
                sub = b.subscribe("pacl.*", start=f"{first + 1}:2", listener=got.append)
                assert wait_until(lambda: len(got) == 8), len(got)
                assert sorted(e.body["i"] for e in got) == list(range(7, 15))
                assert wait_until(lambda: b.lag(sub) == 0)
                assert b.describe_topic("pacl").events == 15
                hold = threading.Event()
                slow = b.subscribe("pacl.*", start="earliest", listener=lambda ev: hold.wait(10))
                try:  # the first event in hand, none handled: 15 events to go (a scan through the service)
                    assert wait_until(lambda: b.lag(slow) == 15, timeout=10), b.lag(slow)
                finally:
                    hold.set()
    finally:
        control.close()


@pytest.mark.timeout(90)
def test_evfabric_serve_runs_the_trimmer(tmp_path) -> None:
    """`evfabric serve --no-web` trims a max_events topic (the trimmer is a broker service)."""
    import os
    import signal
    import subprocess
    import sys

    from evfabric.broker.config import free_port

    port = free_port()
    out_path = tmp_path / "out.txt"
    with open(out_path, "w") as out_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "evfabric.cli", "serve", "-d", str(tmp_path / "d"), "--port", str(port),
             "--http-port", str(free_port()), "--no-web"],
            stdout=out_file, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"})
    try:
        assert wait_until(lambda: "Ctrl-C to stop" in out_path.read_text() or proc.poll() is not None, timeout=30)
        assert "started evfabric.fabric.retention" in out_path.read_text(), out_path.read_text()
        with evfabric.connect(f"nats://127.0.0.1:{port}", source="p") as c:
            c.create_topic("served", max_events=15)
            _messages(c, "served.x", [10, 10, 10])
            assert wait_until(lambda: c.describe_topic("served").events == 10, timeout=15), c.describe_topic("served")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert proc.returncode == 0, out_path.read_text()
