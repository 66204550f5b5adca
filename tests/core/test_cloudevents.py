"""Lossless conversion to and from CloudEvents, checked through the cloudevents SDK."""

import json

import pytest
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from evfabric.core.cloudevent import from_cloudevent, to_cloudevent
from evfabric.core.errors import InvalidEvent
from evfabric.core.event import make_event


def through_sdk(ce: dict) -> dict:
    """Parse with the SDK (which validates the CloudEvent), write it back, return the JSON dict."""
    fmt = JSONFormat()
    parsed = fmt.read(CloudEvent, json.dumps(ce).encode())
    assert parsed.get_id() == ce["id"] and parsed.get_subject() == ce["subject"]
    return json.loads(fmt.write(parsed))


@settings(max_examples=100, deadline=None)
@given(
    body=st.dictionaries(
        st.text(min_size=1, max_size=6),
        st.one_of(st.integers(-1000, 1000), st.text(max_size=8), st.booleans(), st.none(), st.binary(max_size=8)),
        max_size=4,
    ),
    key=st.one_of(st.none(), st.text(min_size=1, max_size=5)),
    ttl=st.one_of(st.none(), st.floats(0.001, 1e6)),
)
def test_round_trip_through_sdk(body, key, ttl):
    ev = make_event("lab.instrument.reading", body, source="beamline-7", key=key, ttl=ttl, seq=9, run="r42", shot=3)
    back = from_cloudevent(through_sdk(to_cloudevent(ev)))
    assert back == ev


def test_json_body_is_plain_data():
    ce = to_cloudevent(make_event("a.b", {"x": 1}, source="s"))
    assert ce["datacontenttype"] == "application/json" and ce["data"] == {"x": 1}
    assert ce["specversion"] == "1.0" and ce["subject"] == "a.b"


def test_cloudevent_without_subject_refused():
    with pytest.raises(InvalidEvent, match="subject"):
        from_cloudevent({"id": "1", "source": "s", "type": "t", "specversion": "1.0"})
