"""The wire codec (evfabric.wire): every format round-trips; topic and publisher come from the
subject; anything else (random bytes, deep nesting, wrong types) is a DecodeError and nothing else."""

from __future__ import annotations

import os
import time

import msgspec
import pytest
from _codec_helpers import batches, events
from hypothesis import given, settings
from hypothesis import strategies as st

from evfabric.core import codec
from evfabric.core.errors import ConfigError, DecodeError
from evfabric.core.event import check_body, check_header, make_event, new_ids
from evfabric.wire import RAW_TYPE, decode_message, encode_events, parse_subject
from evfabric.wire.columns import encode_columns

TOPIC = "lab.probe.temp"
DEEP_40: list = []
for _ in range(40):
    DEEP_40 = [DEEP_40]
SUBJECT = f"evf.alice.0.{TOPIC}"


def placed(evs, publisher="alice"):
    """What a receiver holds: the events with the publisher the subject names."""
    return [msgspec.structs.replace(ev, publisher=publisher) for ev in evs]


@settings(max_examples=150, deadline=None)
@given(evs=batches(TOPIC), fmt=st.sampled_from(["columns", "msgpack", "legacy"]))
def test_binary_batch_formats_round_trip(evs, fmt):
    headers, payload = encode_events(evs, fmt)
    assert decode_message(SUBJECT, headers, payload) == placed(evs)


@settings(max_examples=100, deadline=None)
@given(evs=batches(TOPIC, json_safe=True), fmt=st.sampled_from(["json", "cloudevents-batch"]))
def test_json_batch_formats_round_trip(evs, fmt):
    headers, payload = encode_events(evs, fmt)
    assert decode_message(SUBJECT, headers, payload) == placed(evs)


@settings(max_examples=100, deadline=None)
@given(ev=events(TOPIC), fmt=st.sampled_from(["cloudevents", "cloudevents-structured"]))
def test_cloudevents_single_round_trip(ev, fmt):
    headers, payload = encode_events([ev], fmt)
    back = decode_message(SUBJECT, headers, payload)[0]
    if fmt == "cloudevents":  # binary mode: extension values travel as strings
        ev = msgspec.structs.replace(ev, extra={k: str(v).lower() if isinstance(v, bool) else str(v)
                                                for k, v in ev.extra.items()})
    assert back == placed([ev])[0]


@settings(max_examples=50, deadline=None)
@given(evs=batches(TOPIC))
def test_compact_ids_round_trip(evs):
    payload = encode_columns(evs, compact_ids=True)
    headers = {"Content-Type": "application/vnd.evfabric.columns+msgpack"}
    assert decode_message(SUBJECT, headers, payload) == placed(evs)


def test_consecutive_ids_travel_compact():
    now = time.time()
    evs = [make_event(TOPIC, {"i": i}, source="s", id=id_, time=now) for i, id_ in enumerate(new_ids(100, now))]
    compact, plain = encode_columns(evs, compact_ids=True), encode_columns(evs)
    assert len(compact) < len(plain) - 20 * 100
    assert decode_message(SUBJECT, {"Content-Type": "application/vnd.evfabric.columns+msgpack"}, compact) == placed(evs)


def test_columns_share_the_common_header():
    evs = [make_event(TOPIC, {"i": i}, source="s", key="k", run="r1") for i in range(3)]
    version, shared, columns = msgspec.msgpack.decode(encode_events(evs)[1])
    assert version == 1 and shared == {"source": "s", "key": "k", "extra": {"run": "r1"}}
    assert set(columns) == {"id", "time", "body"}
    mixed = [make_event(TOPIC, {}, source="s", seq=i) for i in range(3)]
    _, shared, columns = msgspec.msgpack.decode(encode_events(mixed)[1])
    assert columns["seq"] == [0, 1, 2] and "seq" not in shared


def test_extra_int_and_bool_are_not_merged():
    evs = [make_event(TOPIC, {}, source="s", flag=1), make_event(TOPIC, {}, source="s", flag=True)]
    back = decode_message(SUBJECT, *encode_events(evs))
    assert [type(ev.extra["flag"]) for ev in back] == [int, bool]


def test_topic_and_publisher_come_from_the_subject():
    ev = make_event("claimed.topic", {"x": 1}, source="s")
    forged = msgspec.structs.replace(ev, publisher="mallory")
    payload = msgspec.msgpack.encode([forged])  # a row batch that claims a topic and a publisher
    for headers in (None, {"Content-Type": "application/vnd.evfabric.events+msgpack"}):
        (back,) = decode_message("evf.bob.3.real.topic", headers, payload)
        assert (back.topic, back.publisher) == ("real.topic", "bob")
    (back,) = decode_message("evf._.0.real.topic", None, payload)
    assert back.publisher is None


def test_publisher_is_never_sent():
    ev = msgspec.structs.replace(make_event(TOPIC, {}, source="s"), publisher="alice")
    for fmt in ("columns", "msgpack", "json", "cloudevents-structured"):
        assert b"alice" not in encode_events([ev], fmt)[1], fmt


def test_draft_subject_layout_is_read():
    assert parse_subject("evf.0.a.b") == (None, 0, "a.b")
    assert parse_subject("evf.alice.2.a.b") == ("alice", 2, "a.b")
    assert parse_subject("evf._.0.a") == (None, 0, "a")
    for bad in ("evf", "evf.x.y", "evf.a-b.c.d", "evf.alice.0.bad topic", "other.0.a"):
        with pytest.raises(DecodeError):
            parse_subject(bad)


def test_version_0_rows_without_headers():
    evs = [make_event(TOPIC, {"x": 1}, source="s")]
    assert decode_message(SUBJECT, None, codec.encode_batch(evs)) == placed(evs)
    assert decode_message(SUBJECT, {}, codec.encode_batch(evs)) == placed(evs)


def test_evf_count_must_match():
    headers, payload = encode_events([make_event(TOPIC, {}, source="s")] * 2)
    headers["Evf-Count"] = "3"
    with pytest.raises(DecodeError, match="Evf-Count"):
        decode_message(SUBJECT, headers, payload)


def test_higher_version_is_refused():
    headers, payload = encode_events([make_event(TOPIC, {}, source="s")])
    headers["Evf-Version"] = "2"
    with pytest.raises(DecodeError, match="unsupported wire version"):
        decode_message(SUBJECT, headers, payload)


def test_unknown_format_is_a_config_error():
    with pytest.raises(ConfigError, match="known"):
        encode_events([], "xml")
    with pytest.raises(ConfigError, match="exactly 1"):
        encode_events([make_event(TOPIC, {}, source="s")] * 2, "cloudevents")


@pytest.mark.parametrize("payload, words", [
    (msgspec.msgpack.encode([1, {"source": "s"}, {"id": ["a"], "time": [1.0], "body": [{}, {}]}]), "hold"),
    (msgspec.msgpack.encode([1, {"source": "s", "seq": 1}, {"id": ["a"], "time": [1.0], "body": [{}], "seq": [2]}]),
     "both"),
    (msgspec.msgpack.encode([1, {}, {"id": ["a"], "time": [1.0], "body": [{}]}]), "no source"),
    (msgspec.msgpack.encode([1, {"source": "s", "seq": -1}, {"id": ["a"], "time": [1.0], "body": [{}]}]), "seq"),
    (msgspec.msgpack.encode([1, {"source": "s", "ttl": 0}, {"id": ["a"], "time": [1.0], "body": [{}]}]), "ttl"),
    (msgspec.msgpack.encode([1, {"source": "s", "who": 1}, {"id": ["a"], "time": [1.0], "body": [{}]}]), "who"),
    (msgspec.msgpack.encode([2, {"source": "s"}, {"id": ["a"], "time": [1.0], "body": [{}]}]), "value 2"),
    (msgspec.msgpack.encode([1, {"source": "s"}, {"id": [""], "time": [1.0], "body": [{}]}]), "length"),
    (msgspec.msgpack.encode([1, {"source": "s"}, {"id": ["a"], "time": [1.0], "body": [{"k": {1: 2}}]}]), "keys"),
    (msgspec.msgpack.encode([1, {"source": "s"}, {"id": ["a"], "time": [1.0], "body": [{"k": DEEP_40}]}]), "deeper"),
])
def test_columnar_garbage_names_the_fault(payload, words):
    with pytest.raises(DecodeError, match=words):
        decode_message(SUBJECT, {"Content-Type": "application/vnd.evfabric.columns+msgpack"}, payload)


HEADER_SETS = [
    None, {}, {"Content-Type": "application/vnd.evfabric.columns+msgpack"},
    {"Content-Type": "application/vnd.evfabric.events+msgpack"}, {"Content-Type": "application/vnd.evfabric.events+json"},
    {"Content-Type": "application/cloudevents+json"}, {"Content-Type": "application/cloudevents-batch+json"},
    {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "s", "Content-Type": "application/json"},
    {"Content-Type": "text/plain"}, {"Content-Type": "application/vnd.evfabric.columns+msgpack", "Evf-Count": "x"},
]
DEEP = [b"\x91" * 100_000, b"\x81\xa1k" * 100_000, b"[" * 100_000, b'{"a":' * 100_000,
        b'{"specversion":"1.0","id":"1","source":"s","data":' + b"[" * 100_000]


@pytest.mark.parametrize("data", DEEP, ids=range(len(DEEP)))
@pytest.mark.parametrize("headers", HEADER_SETS, ids=range(len(HEADER_SETS)))
def test_deep_nesting_is_a_decode_error(headers, data):
    if headers and "ce-specversion" in headers:  # a binary CloudEvent whose data is not JSON: kept as bytes
        assert decode_message(SUBJECT, headers, data)[0].body == {"data": data}
        return
    with pytest.raises(DecodeError):
        decode_message(SUBJECT, headers, data)


@pytest.mark.parametrize("data", DEEP, ids=range(len(DEEP)))
def test_deep_nesting_on_a_raw_topic_is_kept_as_bytes(data):
    (ev,) = decode_message(TOPIC, None, data, raw=True)
    assert ev.body == {"data": data}


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), headers=st.sampled_from(HEADER_SETS))
def test_random_bytes_raise_only_decode_error(data, headers):
    try:
        events = decode_message(SUBJECT, headers, data)
    except DecodeError:
        return
    assert all(ev.topic == TOPIC and ev.publisher == "alice" for ev in events)


def test_random_bytes_from_the_os():
    for _ in range(200):
        data = os.urandom(64)
        try:
            decode_message(SUBJECT, {"Content-Type": "application/vnd.evfabric.columns+msgpack"}, data)
        except DecodeError:
            continue


def test_raw_payloads_become_events():
    (ev,) = decode_message(TOPIC, None, b'{"t": 21.5}', raw=True)
    assert ev.body == {"t": 21.5} and ev.source == f"nats:{TOPIC}" and ev.type == RAW_TYPE and ev.publisher is None
    assert decode_message(TOPIC, None, b"21.5", raw=True)[0].body == {"data": 21.5}
    assert decode_message(TOPIC, None, b"\xff\x00", raw=True)[0].body == {"data": b"\xff\x00"}
    assert decode_message(TOPIC, None, b"[" * 100_000, raw=True)[0].body == {"data": b"[" * 100_000}
    a, b = (decode_message(TOPIC, None, b"{}", raw=True)[0] for _ in range(2))
    assert a.id != b.id
    with pytest.raises(DecodeError, match="not an evfabric subject"):
        decode_message(TOPIC, None, b"{}")
    with pytest.raises(DecodeError, match="not a topic"):
        decode_message("lab.*", None, b"{}", raw=True)


@settings(max_examples=300, deadline=None)
@given(evs=batches(TOPIC, max_size=3), fmt=st.sampled_from(["columns", "msgpack", "json", "cloudevents-batch"]),
       cut=st.integers(0, 400), flips=st.lists(st.tuples(st.integers(0, 400), st.integers(1, 255)), max_size=3))
def test_damaged_payloads_raise_only_decode_error(evs, fmt, cut, flips):
    """Valid messages, truncated and with flipped bytes: DecodeError, or events that still hold."""
    headers, payload = encode_events(evs, fmt)
    data = bytearray(payload[: max(1, len(payload) - cut)] if cut < len(payload) else payload)
    for pos, x in flips:
        if data:
            data[pos % len(data)] ^= x
    try:
        events = decode_message(SUBJECT, headers, bytes(data))
    except DecodeError:
        return
    assert all(ev.topic == TOPIC and ev.publisher == "alice" and ev.id for ev in events)
    for ev in events:  # what survives is what make_event would accept
        check_header(source=ev.source, type=ev.type, delivery=ev.delivery, ttl=ev.ttl, key=ev.key, seq=ev.seq,
                     extra=ev.extra)
        check_body(ev.body)


_BASE = {"id": "x", "topic": "a.b", "source": "s", "time": 1.0}
_ROWS = {"Content-Type": "application/vnd.evfabric.events+msgpack"}
_COLS = {"Content-Type": "application/vnd.evfabric.columns+msgpack"}


@pytest.mark.parametrize("headers, payload, words", [
    (_ROWS, msgspec.msgpack.encode([{**_BASE, "ttl": float("nan")}]), "ttl"),
    (_ROWS, msgspec.msgpack.encode([{**_BASE, "time": float("nan")}]), "time"),
    (_ROWS, msgspec.msgpack.encode([{**_BASE, "time": -5.0}]), "time"),
    (_ROWS, msgspec.msgpack.encode([{**_BASE, "extra": {"topic": "x"}}]), "shadow"),
    (_COLS, msgspec.msgpack.encode([1, {"source": "s", "extra": {"key": "x"}}, {"id": ["a"], "time": [1.0],
                                                                              "body": [{}]}]), "shadow"),
    (_COLS, msgspec.msgpack.encode([1, {"source": "s"}, {"id": ["a"], "time": [float("nan")], "body": [{}]}]), "time"),
])
def test_what_make_event_refuses_the_decoder_refuses(headers, payload, words):
    with pytest.raises(DecodeError, match=words):
        decode_message(SUBJECT, headers, payload)
