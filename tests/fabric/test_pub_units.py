"""Units of the publishing path without a broker: batch headers (docs/wire.md 2), message ids,
tickets per subject, encoding once, dead letters that never raise the bound."""

from __future__ import annotations

import pytest

import evfabric.fabric.batching as batching
from evfabric.core.errors import ConfigError
from evfabric.core.event import make_event
from evfabric.fabric.batching import Batcher
from evfabric.wire import decode_message

pytestmark = pytest.mark.timeout(30)


def events(n: int, pad: int = 10, topic: str = "t") -> list:
    return [make_event(topic, {"pad": "x" * pad, "i": i}, source="s") for i in range(n)]


def test_headers_sequence_and_message_ids() -> None:
    b = Batcher(max_events=10, max_bytes=1 << 20)
    for ev in events(25):
        b.add("evf._.0.t", "reliable", ev)
    for ev in events(5):
        b.add("evf._.0.t", "best_effort", ev)
    first = b.drain()
    for ev in events(7):
        b.add("evf._.0.t", "reliable", ev)
    second = b.drain()
    rel = [x for x in first + second if x.delivery == "reliable"]
    be = [x for x in first if x.delivery == "best_effort"]
    stream = rel[0].headers["Evf-Stream"]
    assert len(stream) == 16 and int(stream, 16) >= 0 and stream == stream.lower()
    assert {x.headers["Evf-Stream"] for x in rel} == {stream} and be[0].headers["Evf-Stream"] != stream
    # contiguous numbering across drains: s, s+n, ...
    seqs = [(int(x.headers["Evf-Seq"]), int(x.headers["Evf-Count"])) for x in rel]
    assert seqs == [(1, 10), (11, 10), (21, 5), (26, 7)]
    assert [x.headers["Nats-Msg-Id"] for x in rel] == [f"{stream}-{s}-evf._.0.t" for s, _ in seqs]
    assert "Nats-Msg-Id" not in be[0].headers and be[0].headers["Evf-Seq"] == "1"
    assert all(x.headers["Evf-Version"] == "1" and "columns" in x.headers["Content-Type"] for x in rel)
    # another batcher (connection, forked child) draws another stream: ids cannot collide
    assert Batcher().streams["reliable"] != stream


def test_tickets_are_per_subject() -> None:
    b = Batcher()
    ta, _ = b.add("evf._.0.a", "reliable", events(1)[0])
    tb, _ = b.add("evf._.0.b", "reliable", events(1)[0])
    assert ta is not None and tb is not None and ta is not tb
    batches = {x.subject: x for x in b.drain()}
    b.complete(batches["evf._.0.a"], RuntimeError("no stream"))
    b.complete(batches["evf._.0.b"])
    assert isinstance(ta.exception(), RuntimeError) and tb.exception() is None
    assert tb.done() and ta.done()


def test_each_batch_is_encoded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = batching.encode_events

    def counting(evs, fmt="columns"):
        calls.append(len(evs))
        return real(evs, fmt)

    monkeypatch.setattr(batching, "encode_events", counting)
    b = Batcher(max_events=1000, max_bytes=64 * 1024)
    sent = events(3000, pad=1000)
    for ev in sent:
        b.add("evf._.0.t", "best_effort", ev)
    out = b.drain()
    encoded = sum(calls)
    payload = sum(len(x.payload) for x in out)
    assert all(len(x.payload) <= 64 * 1024 for x in out)
    assert [e.id for x in out for e in decode_message(x.subject, x.headers, x.payload)] == [e.id for e in sent]
    # the first estimate costs one event; then every event is encoded once (a rare overshoot twice)
    assert encoded <= 3000 * 1.1 + 1, (encoded, len(out))
    assert payload <= 3000 * 1100


def test_dead_letters_are_forced_without_raising_the_bound() -> None:
    b = Batcher(max_pending=2)
    for ev in events(2):
        b.add("evf._.0.t", "reliable", ev)
    assert b.add("evf._.0.t", "reliable", events(1)[0]) == (None, False)
    ticket, _ = b.add("evf._.0.cca.deadletter.t", "reliable", events(1)[0], force=True)
    assert ticket is not None and b.max_pending == 2 and b.outstanding == 3


def test_wire_formats() -> None:
    with pytest.raises(ConfigError):
        Batcher(wire="smoke-signals")
    b = Batcher(wire="cloudevents")
    assert b.max_events == 1
    for ev in events(3):
        b.add("evf._.0.t", "best_effort", ev)
    out = b.drain()
    assert len(out) == 3 and all("ce-specversion" in x.headers for x in out)
    assert [int(x.headers["Evf-Seq"]) for x in out] == [1, 2, 3]
    got = [decode_message(x.subject, x.headers, x.payload)[0] for x in out]
    assert [e.body for e in got] == [{"pad": "x" * 10, "i": i} for i in range(3)]


def test_failures_nobody_waited_on_are_reported_once() -> None:
    b = Batcher()
    seen, _ = b.add("evf._.0.a", "reliable", events(1)[0])
    b.add("evf._.0.b", "reliable", events(1)[0])
    batches = {x.subject: x for x in b.drain()}
    assert seen is not None and seen.exception() is None  # someone looks at this ticket
    b.complete(batches["evf._.0.a"], RuntimeError("a"))
    b.complete(batches["evf._.0.b"], RuntimeError("b"))
    assert [str(e) for e in b.take_failures()] == ["b"]
    assert b.take_failures() == []
