"""The test vectors in tests/wire/vectors/ (docs/wire.md), checked both ways: every payload decodes
to its JSON, and the JSON encodes back to the payload, byte for byte, for the deterministic formats."""

from __future__ import annotations

import pytest
from vectors import FIELDS, event_json, event_of, load

from evfabric.core.errors import DecodeError
from evfabric.wire import decode_message, encode_events
from evfabric.wire.columns import encode_columns

VECTORS = load()


def test_there_are_vectors_for_every_format():
    formats = {doc["format"] for _, doc, _ in VECTORS}
    assert {"columns", "columns+compact_ids", "msgpack", "json", "legacy", "cloudevents", "cloudevents-structured",
            "cloudevents-batch"} <= formats
    assert any(doc["raw"] for _, doc, _ in VECTORS) and any("error" in doc for _, doc, _ in VECTORS)


@pytest.mark.parametrize("name, doc, payload", VECTORS, ids=[v[0] for v in VECTORS])
def test_payload_decodes_to_its_json(name, doc, payload):
    if "error" in doc:
        with pytest.raises(DecodeError, match=doc["error"]):
            decode_message(doc["subject"], doc["headers"], payload, raw=doc["raw"])
        return
    got = [event_json(ev) for ev in decode_message(doc["subject"], doc["headers"], payload, raw=doc["raw"])]
    if doc["raw"]:  # the receiver makes id and time
        assert all(g["id"] and isinstance(g["time"], float) for g in got)
        for g in got:
            g["id"] = g["time"] = None
    assert got == doc["events"]


ENCODABLE = [v for v in VECTORS if v[1]["format"]]


@pytest.mark.parametrize("name, doc, payload", ENCODABLE, ids=[v[0] for v in ENCODABLE])
def test_json_encodes_to_the_payload(name, doc, payload):
    events = [event_of({**e, "publisher": None}) for e in doc["events"]]
    if doc["format"] == "columns+compact_ids":
        assert encode_columns(events, compact_ids=True) == payload
        return
    headers, encoded = encode_events(events, doc["format"])
    assert encoded == payload
    assert headers == (doc["headers"] or {})


def test_vector_fields_are_the_event_fields():
    from evfabric.core.event import Event

    # packed_position is the stream's (docs/wire.md section 8): never in a message, so in no vector
    assert set(FIELDS) == set(Event.__struct_fields__) - {"packed_position"}
