"""Encoding events one by one or as plain arrays: MessagePack, and JSON for people (msgspec).

The fabric's wire formats (headers, columnar batches, CloudEvents, subjects) are
:mod:`evfabric.wire`'s; these are the payload-only row codecs (files, the HTC transport, version 0).

Decoding validates: header types are checked by msgspec against the
:class:`~evfabric.core.event.Event` schema, the topic by the (cached)
:func:`~evfabric.core.topics.validate_topic`, the body by :func:`~evfabric.core.event.check_body`
(flat bodies, the common case, in one C-level pass over the batch). Any failure raises :class:`~evfabric.core.errors.DecodeError` whose message names the field
(``$.topic``, ``$[3].source``...). Encoders and decoders are module-level singletons: building
them once is part of what makes msgspec fast.
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import attrgetter

import msgspec

from evfabric.core.errors import DecodeError, InvalidEvent, InvalidTopic
from evfabric.core.event import Event, check_body, flat_bodies
from evfabric.core.topics import validate_topic

__all__ = [
    "decode",
    "decode_batch",
    "encode",
    "encode_batch",
    "from_json",
    "from_json_batch",
    "to_json",
    "to_json_batch",
]

_mp_encoder = msgspec.msgpack.Encoder()
_mp_event = msgspec.msgpack.Decoder(Event)
_mp_batch = msgspec.msgpack.Decoder(list[Event])
_json_encoder = msgspec.json.Encoder()
_json_event = msgspec.json.Decoder(Event)
_json_batch = msgspec.json.Decoder(list[Event])


def encode(event: Event) -> bytes:
    """The event as MessagePack bytes."""
    return _mp_encoder.encode(event)


def encode_batch(events: Iterable[Event]) -> bytes:
    """Several events as one MessagePack array."""
    return _mp_encoder.encode(events if isinstance(events, list) else list(events))


def to_json(event: Event) -> bytes:
    """The event as JSON bytes (bytes values in the body become base64 strings)."""
    return _json_encoder.encode(event)


def to_json_batch(events: Iterable[Event]) -> bytes:
    """Several events as one JSON array."""
    return _json_encoder.encode(list(events))


def _fail(exc: Exception, what: str) -> DecodeError:
    return DecodeError(f"cannot decode {what}: {exc}")


_body = attrgetter("body")
_topic = attrgetter("topic")
_publisher = attrgetter("publisher")
_packed_position = attrgetter("packed_position")


def _checked(events: list[Event], what: str, one: bool = False) -> list[Event]:
    """Check what the schema does not: topic syntax (once per distinct topic) and bodies.

    A ``publisher`` or position in the bytes is dropped: only a receiver that knows the subject
    (:func:`evfabric.wire.decode_message`) or the stream may set them.
    """
    if any(map(_publisher, events)) or any(map(_packed_position, events)):
        for ev in events:
            ev.publisher = None
            ev.packed_position = 0
    for topic in set(map(_topic, events)):
        try:
            validate_topic(topic)
        except InvalidTopic as exc:
            i = next(i for i, ev in enumerate(events) if ev.topic == topic)
            raise DecodeError(f"cannot decode {what}: {exc} - at `${'' if one else f'[{i}]'}.topic`") from None
    if not flat_bodies(list(map(_body, events))):  # nested values or garbage: the full check
        for i, ev in enumerate(events):
            try:
                check_body(ev.body)
            except InvalidEvent as exc:
                raise DecodeError(f"cannot decode {what}: event {i} ({ev.id}): {exc}") from None
    return events


def decode(data: bytes | bytearray | memoryview) -> Event:
    """Decode one MessagePack event, validating it; raise DecodeError naming the bad field."""
    try:
        ev = _mp_event.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise _fail(exc, "event") from None
    return _checked([ev], "event", one=True)[0]


def decode_batch(data: bytes | bytearray | memoryview) -> list[Event]:
    """Decode a MessagePack array of events, validating each; raise DecodeError naming the field."""
    try:
        events = _mp_batch.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise _fail(exc, "event batch") from None
    return _checked(events, "event batch")


def from_json(data: bytes | str) -> Event:
    """Decode one JSON event, validating it; raise DecodeError naming the bad field.

    Note: JSON has no bytes type; bytes encoded by :func:`to_json` come back as base64 str.
    """
    try:
        ev = _json_event.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise _fail(exc, "JSON event") from None
    return _checked([ev], "JSON event", one=True)[0]


def from_json_batch(data: bytes | str) -> list[Event]:
    """Decode a JSON array of events, validating each."""
    try:
        events = _json_batch.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise _fail(exc, "JSON event batch") from None
    return _checked(events, "JSON event batch")
