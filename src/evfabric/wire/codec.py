"""One entry point each way for every wire format (docs/wire.md 2-5).

:func:`encode_events` turns events into a message's headers (``Content-Type``, ``Evf-Version``;
the publisher adds ``Evf-Stream``, ``Evf-Seq``, ``Evf-Count`` and ``Nats-Msg-Id``) and payload.
:func:`decode_message` turns a received message back into events, choosing the format from the
headers, taking topic and publisher from the subject; it raises nothing but
:class:`~evfabric.core.errors.DecodeError`, whatever the bytes (deep nesting, random bytes,
wrong types, an unsupported ``Evf-Version``).
"""

from __future__ import annotations

from collections.abc import Mapping

from evfabric.core.errors import ConfigError, DecodeError
from evfabric.core.event import Event
from evfabric.wire import cloudevents as ce
from evfabric.wire.checks import check_count
from evfabric.wire.columns import decode_columns, encode_columns
from evfabric.wire.formats import (
    CE_BATCH,
    CE_JSON,
    COLUMNS,
    DEFAULT_FORMAT,
    ROWS_JSON,
    ROWS_MSGPACK,
    VERSION,
    wire_format,
)
from evfabric.wire.raw import MQTT_HEADER, decode_mqtt, decode_raw
from evfabric.wire.rows import decode_rows, decode_rows_json, encode_rows, encode_rows_json
from evfabric.wire.subject import PREFIX, parse_subject

__all__ = ["decode_message", "encode_events", "event_count"]

_HEADERS = {name: {"Content-Type": ctype, "Evf-Version": VERSION}
            for name, ctype in (("columns", COLUMNS), ("msgpack", ROWS_MSGPACK), ("json", ROWS_JSON))}


def encode_events(events: list[Event], fmt: str = DEFAULT_FORMAT) -> tuple[dict[str, str], bytes]:
    """The headers and payload of one message holding ``events`` (all of one topic) in format ``fmt``.

    Formats: ``columns`` (default), ``msgpack``, ``json`` (row batches), ``cloudevents`` (binary
    mode) and ``cloudevents-structured`` (one event each), ``cloudevents-batch``, ``legacy``
    (version 0: no headers). The headers dict is a fresh one: the caller may add to it.
    ConfigError for an unknown format or too many events for it.
    """
    if fmt == "columns":
        return dict(_HEADERS["columns"]), encode_columns(events)
    spec = wire_format(fmt)
    if spec.max_events is not None and len(events) != spec.max_events:
        raise ConfigError(f"wire format {fmt!r} holds exactly {spec.max_events} event per message, got {len(events)}")
    if fmt == "msgpack":
        return dict(_HEADERS["msgpack"]), encode_rows(events)
    if fmt == "json":
        return dict(_HEADERS["json"]), encode_rows_json(events)
    if fmt == "cloudevents":
        return ce.encode_binary(events[0])
    if fmt in ("cloudevents-structured", "cloudevents-batch"):
        return ce.encode_structured(events, batch=fmt == "cloudevents-batch")
    return {}, encode_rows(events)  # legacy


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lower = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lower), None)
    return value


def _is_cloudevent(headers: Mapping[str, str] | None, ctype: str | None) -> bool:
    if ctype is not None and ctype.startswith("application/cloudevents"):  # +json and -batch+json
        return True
    return bool(headers) and any(k.lower() == "ce-specversion" for k in headers)  # type: ignore[union-attr]


def _decode(subject: str, headers: Mapping[str, str] | None, data: bytes, raw: bool) -> list[Event]:
    ctype = _header(headers, "Content-Type") if headers else None
    if headers:
        version = headers.get("Evf-Version")
        if version is not None and version != VERSION:
            raise DecodeError(f"unsupported wire version {version[:16]!r} (this receiver knows 1)")
    if raw or not subject.startswith(PREFIX + "."):
        if not raw:
            raise DecodeError(f"subject {subject!r} is not an evfabric subject and the topic is not raw")
        if _is_cloudevent(headers, ctype):
            return _cloudevents(subject, None, headers, ctype, data)
        return [decode_raw(subject, headers, data)]
    publisher, _partition, topic = parse_subject(subject)
    if ctype is not None:
        media = ctype.split(";", 1)[0].strip()
        if media == COLUMNS:
            events = decode_columns(data, topic, publisher)
        elif media == ROWS_MSGPACK:
            events = decode_rows(data, topic, publisher)
        elif media == ROWS_JSON:
            events = decode_rows_json(data, topic, publisher)
        elif _is_cloudevent(headers, ctype):
            return _cloudevents(topic, publisher, headers, ctype, data)
        else:
            raise DecodeError(f"content type {ctype[:80]!r} is not an evfabric format and there is no ce-specversion")
        check_count(headers, len(events), media)
        return events
    if _is_cloudevent(headers, ctype):
        return _cloudevents(topic, publisher, headers, ctype, data)
    if headers and MQTT_HEADER in headers:  # an MQTT client's payload on its identity's subject
        return [decode_mqtt(topic, publisher, data)]
    return decode_rows(data, topic, publisher)  # version 0: a row batch without headers


def _cloudevents(topic: str, publisher: str | None, headers: Mapping[str, str] | None, ctype: str | None,
                 data: bytes) -> list[Event]:
    media = (ctype or "").split(";", 1)[0].strip()
    if media == CE_JSON:
        events = ce.decode_structured(data, False, topic, publisher)
    elif media == CE_BATCH:
        events = ce.decode_structured(data, True, topic, publisher)
    else:
        events = [ce.decode_binary(headers or {}, data, topic, publisher)]
    check_count(headers, len(events), media or "binary CloudEvent")  # a lying Evf-Count must not move the books
    return events


def decode_message(subject: str, headers: Mapping[str, str] | None, data: bytes | bytearray | memoryview,
                   *, raw: bool = False) -> list[Event]:
    """The events of one NATS message received on ``subject``; DecodeError (only) if it holds none.

    ``raw=True`` reads a foreign topic (no ``evf`` prefix): every message is one event
    (:func:`~evfabric.wire.raw.decode_raw`), a CloudEvent mapped as such.
    """
    try:
        return _decode(subject, headers, data if isinstance(data, bytes) else bytes(data), raw)
    except DecodeError:
        raise
    except RecursionError:
        raise DecodeError(f"cannot decode message on {subject[:200]!r}: nested too deep") from None
    except Exception as exc:  # anything a payload provokes is garbage, never a crash in the receiver
        raise DecodeError(f"cannot decode message on {subject[:200]!r}: {type(exc).__name__}: {str(exc)[:200]}") from None


def _array_length(data: bytes) -> int:
    b = data[0] if data else 0
    if 0x90 <= b <= 0x9F:
        return b & 0x0F
    if b == 0xDC and len(data) >= 3:
        return int.from_bytes(data[1:3], "big")
    if b == 0xDD and len(data) >= 5:
        return int.from_bytes(data[1:5], "big")
    return 0


def event_count(headers: Mapping[str, str] | None, data: bytes) -> int:
    """How many events a message holds, without decoding it (for taps and meters).

    ``Evf-Count`` when the message has it; 1 for a single CloudEvent (binary or structured);
    otherwise the MessagePack array header of a version-0 row batch (0 if there is none).
    Not validated: a message may still turn out to be garbage when decoded.
    """
    if headers:
        claimed = headers.get("Evf-Count")
        if claimed is not None and claimed.isdigit():
            return int(claimed)
        ctype = headers.get("Content-Type", "")
        if ctype.startswith(CE_BATCH):
            return data.count(b'"specversion"')  # an estimate: one per CloudEvent object
        if ctype.startswith(CE_JSON) or "ce-specversion" in headers:
            return 1
        if ctype.startswith(COLUMNS):
            return 0  # a columnar batch without Evf-Count: unknown until decoded
    return _array_length(data)
