"""Lossless conversion between :class:`Event` and CloudEvents 1.0 attributes (docs/wire.md 5).

Mapping: ``id``, ``source``, ``type`` and ``time`` (RFC 3339, microseconds) are CloudEvents' own;
the topic is ``subject``; ``seq``, ``delivery`` and ``ttl`` are the extensions ``evfseq``,
``evfdelivery`` and ``evfttl`` (ttl a decimal string: CloudEvents has no float); ``key`` is
``partitionkey`` (the partitioning extension); every ``extra`` field is an extension of its name.
A body JSON can carry is JSON ``data``; one with bytes, infinities or NaN is MessagePack
(``application/msgpack``).

Reading, data that is a JSON object is the body; other data becomes ``{"data": value}`` (bytes
that are neither JSON nor MessagePack maps: ``{"data": <bytes>}``). Extensions named like an
evfabric header field (``topic``, ``key``, ``body``...) are dropped; null ones are absent; the
extensions ``seq``, ``delivery`` and ``ttl`` (what evfabric wrote before wire version 1) are read
as ``evfseq``, ``evfdelivery``, ``evfttl``. The NATS binding is :mod:`evfabric.wire.cloudevents`.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from evfabric.core.errors import DecodeError, InvalidEvent, InvalidTopic
from evfabric.core.event import DEFAULT_TYPE, RESERVED_ATTRIBUTES, Event, check_body, now_us
from evfabric.core.topics import validate_topic

__all__ = [
    "body_of",
    "data_of",
    "event_from_attributes",
    "from_cloudevent",
    "rfc3339",
    "structured_event",
    "to_attributes",
    "to_cloudevent",
    "to_structured",
]

_STANDARD = frozenset({"specversion", "id", "source", "type", "time", "subject", "datacontenttype",
                       "dataschema", "data", "data_base64"})
_MAPPED = {"evfseq": "seq", "evfdelivery": "delivery", "evfttl": "ttl", "partitionkey": "key",
           "seq": "seq", "delivery": "delivery", "ttl": "ttl"}  # seq, delivery, ttl: evfabric < 1 wrote these
JSON = "application/json"
MSGPACK = "application/msgpack"
_json = msgspec.json.Encoder()
_mp = msgspec.msgpack.Encoder()
_EXT_OK = (str, int, bool)


def _not_json(value: Any) -> bool:
    """True when ``value`` holds what JSON cannot carry as it is: bytes, infinities, NaN."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return True
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(map(_not_json, value.values()))
    if isinstance(value, (list, tuple)):
        return any(map(_not_json, value))
    return False


def rfc3339(t: float) -> str:
    """``t`` (seconds since the epoch) as RFC 3339 UTC with microseconds."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def to_attributes(event: Event) -> dict[str, Any]:
    """The event's CloudEvents context attributes (no data), ``subject`` being its topic."""
    ce: dict[str, Any] = {"specversion": "1.0", "id": event.id, "source": event.source, "type": event.type,
                          "time": rfc3339(event.time), "subject": event.topic}
    if event.seq:
        ce["evfseq"] = event.seq
    if event.delivery != "best_effort":
        ce["evfdelivery"] = event.delivery
    if event.ttl is not None:
        ce["evfttl"] = repr(event.ttl)
    if event.key is not None:
        ce["partitionkey"] = event.key
    ce.update(event.extra)
    return ce


def data_of(event: Event) -> tuple[str, bytes]:
    if _not_json(event.body):
        return MSGPACK, _mp.encode(event.body)
    return JSON, _json.encode(event.body)


def to_structured(event: Event) -> dict[str, Any]:
    """The event as a structured-mode CloudEvent (a JSON-ready dict)."""
    ce = to_attributes(event)
    ctype, data = data_of(event)
    ce["datacontenttype"] = ctype
    if ctype == JSON:
        ce["data"] = event.body
    else:
        ce["data_base64"] = base64.b64encode(data).decode("ascii")
    return ce


# --- reading -----------------------------------------------------------------------------------


def _time(value: Any) -> float:
    if value is None:
        return now_us()
    if isinstance(value, datetime):
        ts = value
    else:
        try:
            ts = datetime.fromisoformat(str(value).replace("z", "Z").replace("Z", "+00:00"))
        except ValueError:
            raise DecodeError(f"CloudEvent attribute 'time' is not RFC 3339: {str(value)[:64]!r}") from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return round(ts.timestamp(), 6)


def _as_body(value: Any) -> dict[str, Any]:
    body = value if isinstance(value, dict) else {} if value is None else {"data": value}
    try:
        return check_body(body)
    except ValueError as exc:
        raise DecodeError(f"CloudEvent data is not an event body: {exc}") from None


def body_of(data: bytes, ctype: str | None) -> dict[str, Any]:
    """The body for CloudEvent data of media type ``ctype`` (JSON when None).

    JSON and MessagePack data that decode to a valid body are it (an object) or ``{"data": value}``;
    anything else (other media types, data that is not what its type says, or nests too deep) is
    kept as it came: ``{"data": <bytes>}``.
    """
    media = (ctype or JSON).split(";", 1)[0].strip().lower()
    if not data:
        return {}
    try:
        if media == JSON or media.endswith("+json") or media.startswith("text/json"):
            return _as_body(msgspec.json.decode(data))
        if media in (MSGPACK, "application/x-msgpack"):
            return _as_body(msgspec.msgpack.decode(data))
    except (msgspec.DecodeError, DecodeError, RecursionError):
        pass  # not what it says it is: kept as bytes below
    return {"data": bytes(data)}


def _int(value: Any, name: str) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise DecodeError(f"CloudEvent extension {name!r} must be an integer, got {str(value)[:32]!r}") from None
    if n < 0 or isinstance(value, bool):
        raise DecodeError(f"CloudEvent extension {name!r} must be >= 0, got {value!r}")
    return n


def event_from_attributes(attrs: Mapping[str, Any], body: dict[str, Any], topic: str,
                          publisher: str | None) -> Event:
    """The event for CloudEvents attributes ``attrs`` and a decoded body, received on ``topic``."""
    if attrs.get("specversion") not in ("1.0", "0.3"):
        raise DecodeError(f"CloudEvent specversion {str(attrs.get('specversion'))[:16]!r} is not 1.0")
    for name in ("id", "source"):
        if not isinstance(attrs.get(name), str) or not attrs[name]:
            raise DecodeError(f"CloudEvent attribute {name!r} must be a non-empty string")
    header: dict[str, Any] = {}
    extra: dict[str, str | int | bool] = {}
    for name, value in attrs.items():
        if name in _STANDARD or value is None:
            continue
        field = _MAPPED.get(name)
        if field is not None:
            header.setdefault(field, value)
        elif name in RESERVED_ATTRIBUTES or name == "publisher":
            continue
        elif not ((name.isascii() and name.isalnum() and name.islower()) or name.isdigit()) or len(name) > 20:
            raise DecodeError(f"CloudEvent extension name {name[:32]!r}: 1-20 lowercase letters or digits")
        else:
            extra[name] = value if isinstance(value, _EXT_OK) else str(value)
    delivery = header.get("delivery", "best_effort")
    if delivery not in ("best_effort", "reliable"):
        raise DecodeError(f"CloudEvent extension 'evfdelivery' must be best_effort or reliable, got {str(delivery)[:32]!r}")
    ttl = None
    if header.get("ttl") is not None:
        try:
            ttl = float(header["ttl"])
        except (TypeError, ValueError):
            ttl = -1.0
        if not ttl > 0:
            raise DecodeError(f"CloudEvent extension 'evfttl' must be a positive number, got {str(header['ttl'])[:32]!r}")
    key = header.get("key")
    ce_type = attrs.get("type") or DEFAULT_TYPE
    return Event(id=attrs["id"], topic=topic, source=attrs["source"], time=_time(attrs.get("time")),
                 type=str(ce_type), seq=_int(header.get("seq", 0), "evfseq"), delivery=delivery, ttl=ttl,
                 key=None if key is None else str(key), extra=extra, body=body, publisher=publisher)


def structured_event(ce: Any, topic: str | None, publisher: str | None) -> Event:
    if not isinstance(ce, dict):
        raise DecodeError(f"a structured CloudEvent must be a JSON object, got {type(ce).__name__}")
    if ce.get("data_base64") is not None:
        raw = ce["data_base64"]
        try:
            data = base64.b64decode(raw, validate=True) if isinstance(raw, str) else b""
        except ValueError:
            raise DecodeError("CloudEvent data_base64 is not base64") from None
        body = body_of(data, ce.get("datacontenttype") or "application/octet-stream")
    else:
        body = _as_body(ce.get("data"))
    if topic is None:
        topic = ce.get("subject")
        if not isinstance(topic, str) or not topic:
            raise DecodeError("CloudEvent lacks the attribute subject (it carries the topic)")
        try:
            validate_topic(topic)
        except InvalidTopic as exc:
            raise DecodeError(f"CloudEvent subject: {exc}") from None
    return event_from_attributes(ce, body, topic, publisher)




def from_cloudevent(ce: dict[str, Any]) -> Event:
    """Build an :class:`Event` from a structured-mode CloudEvent dict, its topic from ``subject``.

    Raises :class:`InvalidEvent` naming what is wrong (a missing ``subject``, a bad attribute).
    """
    try:
        return structured_event(ce, None, None)
    except DecodeError as exc:
        raise InvalidEvent(str(exc)) from None


def to_cloudevent(event: Event) -> dict[str, Any]:
    """The event as a CloudEvents 1.0 structured-mode JSON object (a dict)."""
    return to_structured(event)
