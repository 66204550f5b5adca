"""Events: validation that names the field, and the msgspec codecs both ways."""

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evfabric.core import codec
from evfabric.core.errors import DecodeError, InvalidEvent, InvalidTopic
from evfabric.core.event import Event, check_body, make_event, new_id


def test_make_event_fills_header():
    ev = make_event("a.b", {"x": 1}, source="comp-1", key="k", ttl=2, run="r7")
    assert ev.source == "comp-1" and ev.topic == "a.b" and ev.key == "k" and ev.ttl == 2.0
    assert ev.extra == {"run": "r7"} and ev.header["run"] == "r7"
    assert ev.delivery == "best_effort" and not ev.reliable
    assert ev.id and len(ev.id) == 33  # 11 ms + 12 node + 10 counter


def test_ids_are_unique_and_sorted():
    ids = [new_id() for _ in range(5000)]
    assert len(set(ids)) == 5000
    assert ids == sorted(ids)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(source=""), "'source'"),
        (dict(source="s", delivery="sometimes"), "'delivery'"),
        (dict(source="s", ttl=-1), "'ttl'"),
        (dict(source="s", key=5), "'key'"),
        (dict(source="s", type=""), "'type'"),
        (dict(source="s", Bad_Name="x"), "Bad_Name"),
        (dict(source="s", subject="x"), "shadow"),
    ],
)
def test_header_errors_name_the_field(kwargs, words):
    with pytest.raises(InvalidEvent) as err:
        make_event("a.b", {}, **kwargs)
    assert words in str(err.value)


@pytest.mark.parametrize(
    "body, words",
    [
        ([1, 2], "must be a dict"),
        ({"a": {1: 2}}, "map keys must be str"),
        ({"a": [1, {"b": object()}]}, "body.a[1].b"),
        ({"s": {1, 2}}, "type set"),
    ],
)
def test_body_errors_name_the_field(body, words):
    with pytest.raises(InvalidEvent) as err:
        check_body(body)
    assert words in str(err.value)


def test_bad_topic_refused():
    with pytest.raises(InvalidTopic):
        make_event("a..b", {}, source="s")


BODY_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False), st.text(), st.binary()),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(body=st.dictionaries(st.text(max_size=8), BODY_VALUES, max_size=6))
def test_msgpack_round_trip(body):
    ev = make_event("x.y", body, source="me", key="k", seq=3, note="n")
    assert codec.decode(codec.encode(ev)) == ev
    assert codec.decode_batch(codec.encode_batch([ev, ev])) == [ev, ev]


def test_json_round_trip_without_bytes():
    ev = make_event("x.y", {"a": [1, 2.5, "s", None, {"b": True}]}, source="me")
    assert codec.from_json(codec.to_json(ev)) == ev
    assert codec.from_json_batch(codec.to_json_batch([ev])) == [ev]


@pytest.mark.parametrize(
    "data, words",
    [
        (b"\xc1garbage", "cannot decode event"),
        (msgspec.msgpack.encode({"id": "1", "topic": "a..b", "source": "s", "time": 1.0}), "$.topic"),
        (msgspec.msgpack.encode({"id": "1", "topic": "a", "source": "", "time": 1.0}), "$.source"),
        (msgspec.msgpack.encode({"id": "1", "topic": "a", "time": 1.0}), "source"),
        (msgspec.msgpack.encode({"id": "1", "topic": "a", "source": "s", "time": "x"}), "$.time"),
        (msgspec.msgpack.encode({"id": "1", "topic": "a", "source": "s", "time": 1.0, "delivery": "x"}), "$.delivery"),
        (msgspec.msgpack.encode({"id": "1", "topic": "a", "source": "s", "time": 1.0, "body": {"k": {3: 1}}}), "body"),
    ],
)
def test_decode_refuses_garbage_naming_the_field(data, words):
    with pytest.raises(DecodeError) as err:
        codec.decode(data)
    assert words in str(err.value)


def test_decode_batch_names_the_event():
    good = make_event("a", {}, source="s")
    raw = msgspec.msgpack.encode([msgspec.to_builtins(good), {"id": "2", "topic": "a", "source": "s", "time": 1, "seq": "no"}])
    with pytest.raises(DecodeError, match=r"\$\[1\]\.seq"):
        codec.decode_batch(raw)


def test_event_struct_is_msgspec():
    assert issubclass(Event, msgspec.Struct)
