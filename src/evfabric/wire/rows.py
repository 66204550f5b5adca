"""Row batches (docs/wire.md 4.1): an array of event maps, in MessagePack or JSON.

Decoding runs the :class:`~evfabric.core.event.Event` schema in C, then takes every event's
topic and publisher from the subject (a payload's ``topic`` is advisory, its ``publisher``
ignored). Encoding writes the events as they are, ``topic`` included (version-0 readers need
it), ``publisher`` and the position never.
"""

from __future__ import annotations

import msgspec

from evfabric.core.errors import DecodeError
from evfabric.core.event import Event
from evfabric.wire.checks import check_events, public, unplaced

__all__ = ["decode_rows", "decode_rows_json", "encode_rows", "encode_rows_json"]

_mp_encoder = msgspec.msgpack.Encoder()
_json_encoder = msgspec.json.Encoder()
_mp_rows = msgspec.msgpack.Decoder(list[Event])
_json_rows = msgspec.json.Decoder(list[Event])


def encode_rows(events: list[Event]) -> bytes:
    """The events as a MessagePack row batch."""
    return _mp_encoder.encode(public(events))


def encode_rows_json(events: list[Event]) -> bytes:
    """The events as a JSON row batch (bytes in bodies become base64 strings)."""
    return _json_encoder.encode(public(events))


def _placed(events: list[Event], topic: str, publisher: str | None, what: str) -> list[Event]:
    check_events(events, what)
    unplaced(events)
    for ev in events:
        ev.topic = topic
        ev.publisher = publisher
    return events


def decode_rows(data: bytes | memoryview, topic: str, publisher: str | None) -> list[Event]:
    """The events of a MessagePack row batch received on ``topic`` from ``publisher``."""
    try:
        events = _mp_rows.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise DecodeError(f"cannot decode event batch: {exc}") from None
    return _placed(events, topic, publisher, "event batch")


def decode_rows_json(data: bytes | memoryview, topic: str, publisher: str | None) -> list[Event]:
    """The events of a JSON row batch received on ``topic`` from ``publisher``."""
    try:
        events = _json_rows.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise DecodeError(f"cannot decode JSON event batch: {exc}") from None
    return _placed(events, topic, publisher, "JSON event batch")
