"""Lossless conversion between :class:`Event` and CloudEvents 1.0 (structured JSON form).

Mapping: ``id``, ``source``, ``type`` and ``time`` (RFC 3339, microseconds) are CloudEvents'
own; ``topic`` is ``subject``; ``key`` is the ``partitionkey`` extension (the CloudEvents
partitioning extension); ``seq``, ``delivery`` and ``ttl`` are the extensions ``seq``,
``delivery`` and ``ttl`` (ttl as a decimal string: CloudEvents has no float type); every
``extra`` field is an extension of the same name. A body with no bytes in it travels as JSON
``data``; a body with bytes travels as MessagePack in ``data_base64``.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import msgspec

from evfabric.core.errors import InvalidEvent
from evfabric.core.event import DEFAULT_TYPE, RESERVED_ATTRIBUTES, Event, make_event

__all__ = ["from_cloudevent", "to_cloudevent"]

JSON = "application/json"
MSGPACK = "application/msgpack"
_STANDARD = {"specversion", "id", "source", "type", "time", "subject", "datacontenttype", "data", "data_base64"}


def _has_bytes(value: Any) -> bool:
    if isinstance(value, (bytes, bytearray)):
        return True
    if isinstance(value, dict):
        return any(_has_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_bytes(v) for v in value)
    return False


def to_cloudevent(event: Event) -> dict[str, Any]:
    """The event as a CloudEvents 1.0 structured-mode JSON object (a dict)."""
    ce: dict[str, Any] = {
        "specversion": "1.0",
        "id": event.id,
        "source": event.source,
        "type": event.type,
        "time": datetime.fromtimestamp(event.time, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "subject": event.topic,
        "seq": event.seq,
        "delivery": event.delivery,
    }
    if event.ttl is not None:
        ce["ttl"] = repr(event.ttl)
    if event.key is not None:
        ce["partitionkey"] = event.key
    ce.update(event.extra)
    if _has_bytes(event.body):
        ce["datacontenttype"] = MSGPACK
        ce["data_base64"] = base64.b64encode(msgspec.msgpack.encode(event.body)).decode("ascii")
    else:
        ce["datacontenttype"] = JSON
        ce["data"] = event.body
    return ce


def _parse_time(value: Any) -> float:
    if isinstance(value, datetime):
        ts = value
    else:
        try:
            ts = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise InvalidEvent(f"CloudEvent attribute 'time' is not RFC 3339: {value!r}") from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return round(ts.timestamp(), 6)


def from_cloudevent(ce: dict[str, Any]) -> Event:
    """Build an :class:`Event` from a CloudEvents structured-mode dict; validates like make_event.

    A CloudEvent without ``subject`` cannot name a topic and is refused.
    """
    missing = [k for k in ("id", "source", "subject") if not ce.get(k)]
    if missing:
        raise InvalidEvent(f"CloudEvent lacks the attribute(s) {', '.join(missing)} (subject carries the topic)")
    if "data_base64" in ce and ce["data_base64"] is not None:
        raw = ce["data_base64"]
        raw = raw if isinstance(raw, (bytes, bytearray)) else base64.b64decode(raw)
        try:
            body = msgspec.msgpack.decode(raw) if ce.get("datacontenttype") == MSGPACK else msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            raise InvalidEvent(f"CloudEvent data_base64 does not decode: {exc}") from None
    else:
        body = ce.get("data") or {}
    ttl = ce.get("ttl")
    extra = {k: v for k, v in ce.items() if k not in _STANDARD and k not in RESERVED_ATTRIBUTES}
    return make_event(
        str(ce["subject"]),
        body,
        source=str(ce["source"]),
        type=str(ce.get("type") or DEFAULT_TYPE),
        delivery=ce.get("delivery", "best_effort"),
        ttl=float(ttl) if ttl is not None else None,
        key=ce.get("partitionkey"),
        seq=int(ce.get("seq", 0)),
        id=str(ce["id"]),
        time=_parse_time(ce["time"]) if ce.get("time") else None,
        **extra,
    )
