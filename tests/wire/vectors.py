"""Wire test vectors (docs/wire.md): build them (``python tests/wire/vectors.py``) and read them.

Each vector ``vectors/<name>.json`` holds the message (``subject``, ``headers``, ``payload_file``:
the payload bytes beside it in ``<name>.payload``), the ``format`` that encodes it (null when
encoding is not deterministic: foreign messages, garbage), ``raw`` (a foreign topic) and either
``events`` (the decoded events, every field written out; bytes as ``{"$bytes": base64}``;
``id``/``time`` null where the receiver makes them) or ``error`` (a word of the DecodeError).
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from evfabric.core.event import Event, make_event

HERE = Path(__file__).parent / "vectors"
FIELDS = ("id", "topic", "source", "time", "type", "seq", "delivery", "ttl", "key", "extra", "body", "publisher")


def to_plain(value: Any) -> Any:
    """JSON-ready ``value``: bytes as ``{"$bytes": base64}``."""
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    return value


def from_plain(value: Any) -> Any:
    """The inverse of :func:`to_plain`."""
    if isinstance(value, dict):
        if set(value) == {"$bytes"}:
            return base64.b64decode(value["$bytes"])
        return {k: from_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_plain(v) for v in value]
    return value


def event_json(ev: Event) -> dict[str, Any]:
    """Every field of ``ev``, JSON-ready."""
    return {f: to_plain(getattr(ev, f)) for f in FIELDS}


_DEFAULTS = dict(zip(Event.__struct_fields__[-len(Event.__struct_defaults__):], Event.__struct_defaults__, strict=True))


def event_of(doc: dict[str, Any]) -> Event:
    """The event a vector's decoded JSON describes (fields at their default left to the default,
    as evfabric builds events: the row encoder omits defaults it recognises by identity)."""
    return Event(**{f: from_plain(doc[f]) for f in FIELDS if f not in _DEFAULTS or doc[f] != _DEFAULTS[f]})


def load() -> list[tuple[str, dict[str, Any], bytes]]:
    """Every vector: name, document, payload bytes."""
    out = []
    for path in sorted(HERE.glob("*.json")):
        doc = json.loads(path.read_text())
        out.append((path.stem, doc, (HERE / doc["payload_file"]).read_bytes()))
    return out


def _fixed(n: int, topic: str = "lab.probe.temp", start: int = 0, **kw: Any) -> list[Event]:
    base = 1767225600.0  # 2026-01-01T00:00:00Z
    return [make_event(topic, {"t": 20.5 + i, "unit": "C"}, id=f"19b77b6a000a1b2c3d4e5f6{16**9 + i:010x}",
                       time=base + i / 1000, **kw) for i in range(start, start + n)]


def build() -> dict[str, tuple[dict[str, Any], bytes]]:
    """The vectors, computed with this implementation (reviewed by hand before committing)."""
    from evfabric.wire import decode_message, encode_events
    from evfabric.wire.columns import encode_columns

    vectors: dict[str, tuple[dict[str, Any], bytes]] = {}

    def add(name: str, subject: str, evs: list[Event] | None, fmt: str | None, headers: dict[str, str] | None = None,
            payload: bytes | None = None, raw: bool = False, error: str | None = None, note: str = "") -> None:
        if payload is None:
            assert evs is not None and fmt is not None
            headers, payload = encode_events(evs, fmt)
        doc: dict[str, Any] = {"note": note, "subject": subject, "headers": headers, "format": fmt, "raw": raw,
                               "payload_file": f"{name}.payload"}
        if error is None:
            got = decode_message(subject, headers, payload, raw=raw)
            doc["events"] = [event_json(ev) for ev in got]
            if raw:
                for d in doc["events"]:
                    d["id"] = d["time"] = None
        else:
            doc["error"] = error
        vectors[name] = (doc, payload)

    sub = "evf.alice.0.lab.probe.temp"
    add("columns_shared", sub, _fixed(3, source="probe-1"), "columns",
        note="columnar batch: source shared, id/time/body columns")
    add("columns_mixed", sub, [*_fixed(2, source="probe-1", key="k1", run="r7"),
                               *_fixed(1, start=2, source="probe-2", delivery="reliable", ttl=30.0, seq=4)], "columns",
        note="columnar batch: every header field a column")
    evs = _fixed(3, source="probe-1")
    add("columns_compact_ids", sub, evs, "columns", headers={"Content-Type": "application/vnd.evfabric.columns+msgpack",
                                                           "Evf-Version": "1"},
        payload=encode_columns(evs, compact_ids=True), note="columnar batch, ids as {prefix, first, width}")
    vectors["columns_compact_ids"][0]["format"] = "columns+compact_ids"
    add("rows_msgpack", sub, _fixed(2, source="probe-1", key="k", tag=True), "msgpack", note="row batch, MessagePack")
    add("rows_json", sub, _fixed(2, source="probe-1"), "json", note="row batch, JSON")
    add("legacy_v0", "evf.0.lab.probe.temp", _fixed(2, source="probe-1"), "legacy",
        note="version 0: a MessagePack row batch, no headers, draft subject layout evf.<partition>.<topic>")
    with_bytes = [make_event("lab.probe.temp", {"frame": b"\x00\x01\xff", "n": [1, {"deep": None}]}, source="cam",
                             id="19b77b6a000a1b2c3d4e5f6" + "1000000009", time=1767225600.5)]
    add("columns_bytes_nested", sub, with_bytes, "columns", note="bytes (MessagePack bin) and nested values in a body")
    one = _fixed(1, source="probe-1", run="r7", seq=3, key="k")
    add("cloudevents_binary", sub, one, "cloudevents", note="CloudEvents NATS binding, binary mode")
    add("cloudevents_structured", sub, one, "cloudevents-structured", note="CloudEvents structured mode")
    add("cloudevents_batch", sub, _fixed(2, source="probe-1"), "cloudevents-batch", note="CloudEvents batch mode")
    forged = msgspec.msgpack.encode([msgspec.structs.replace(e, publisher="mallory")
                                     for e in _fixed(1, topic="claimed.topic", source="probe-1")])
    add("rows_forged_topic_publisher", "evf.bob.3.lab.probe.temp", None, None,
        headers={"Content-Type": "application/vnd.evfabric.events+msgpack", "Evf-Version": "1"}, payload=forged,
        note="the payload claims topic and publisher: the receiver takes both from the subject")
    add("raw_json", "lab.probe.temp", None, None, headers=None, payload=b'{"t": 21.5}', raw=True,
        note="foreign JSON on a raw topic (id and time made by the receiver)")
    add("raw_bytes", "lab.probe.temp", None, None, headers=None, payload=b"\x01\x02 not json", raw=True,
        note="foreign bytes on a raw topic")
    add("garbage_version_2", sub, None, None, headers={"Content-Type": "application/vnd.evfabric.columns+msgpack",
                                                       "Evf-Version": "2"},
        payload=encode_columns(_fixed(1, source="p")), error="unsupported wire version", note="a higher version")
    add("garbage_deep_nesting", sub, None, None, headers={"Content-Type": "application/vnd.evfabric.events+msgpack"},
        payload=b"\x91\x81\xa4body" + b"\x81\xa1a" * 100_000 + b"\xc0", error="nested too deep",
        note="a body of 100,000 nested maps")
    add("garbage_columns_disagree", sub, None, None, headers={"Content-Type": "application/vnd.evfabric.columns+msgpack"},
        payload=msgspec.msgpack.encode([1, {"source": "s"}, {"id": ["a", "b"], "time": [1.0], "body": [{}]}]),
        error="hold", note="columns of different lengths")
    return vectors


def write() -> None:
    """Write the vectors into ``vectors/`` (only when the wire format changes on purpose)."""
    HERE.mkdir(exist_ok=True)
    for name, (doc, payload) in build().items():
        (HERE / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
        (HERE / f"{name}.payload").write_bytes(payload)


if __name__ == "__main__":
    write()
    print(f"wrote {len(list(HERE.glob('*.json')))} vectors to {HERE}", file=sys.stderr)
