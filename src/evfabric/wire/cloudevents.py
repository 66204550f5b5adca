"""The CloudEvents NATS protocol binding 1.0 (docs/wire.md 5) for evfabric events.

Binary mode puts the attributes in ``ce-`` headers (values percent-encoded as in the HTTP binding,
so that SDKs read them; booleans as ``true``/``false``: binary mode gives extensions back as
strings) and the data in the payload; structured mode sends the whole CloudEvent as
``application/cloudevents+json``; batch mode a JSON array of them. The attribute mapping is
:mod:`evfabric.core.cloudevent`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote

import msgspec

from evfabric.core.cloudevent import (
    body_of,
    data_of,
    event_from_attributes,
    structured_event,
    to_attributes,
    to_structured,
)
from evfabric.core.errors import DecodeError
from evfabric.core.event import Event
from evfabric.wire.formats import CE_BATCH, CE_JSON, VERSION

__all__ = ["decode_binary", "decode_structured", "encode_binary", "encode_structured"]

_SAFE = "".join(c for c in map(chr, range(0x21, 0x7F)) if c not in ' "%')
_json = msgspec.json.Encoder()


def encode_binary(event: Event) -> tuple[dict[str, str], bytes]:
    """Headers and payload of the event as a binary-mode CloudEvents NATS message."""
    headers = {"ce-" + k: quote(str(v).lower() if isinstance(v, bool) else str(v), safe=_SAFE)
               for k, v in to_attributes(event).items()}
    ctype, data = data_of(event)
    headers["Content-Type"] = ctype
    headers["Evf-Version"] = VERSION
    return headers, data


def encode_structured(events: list[Event], batch: bool) -> tuple[dict[str, str], bytes]:
    """Headers and payload of a structured-mode message: one CloudEvent, or a batch (JSON array)."""
    if batch:
        return {"Content-Type": CE_BATCH, "Evf-Version": VERSION}, _json.encode(list(map(to_structured, events)))
    return {"Content-Type": CE_JSON, "Evf-Version": VERSION}, _json.encode(to_structured(events[0]))


def decode_binary(headers: Mapping[str, str], data: bytes, topic: str, publisher: str | None) -> Event:
    """The event of a binary-mode CloudEvents message (``ce-`` headers, data in the payload)."""
    attrs: dict[str, Any] = {}
    ctype = None
    for name, value in headers.items():
        lower = name.lower()
        if lower.startswith("ce-"):
            attrs[lower[3:]] = unquote(value)
        elif lower == "content-type":
            ctype = value
    return event_from_attributes(attrs, body_of(data, ctype), topic, publisher)


def decode_structured(data: bytes, batch: bool, topic: str | None, publisher: str | None) -> list[Event]:
    """The events of a structured-mode message (one CloudEvent, or a JSON array when ``batch``).

    ``topic`` None takes each event's topic from its ``subject`` (documents outside a subject).
    """
    try:
        doc = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise DecodeError(f"cannot decode structured CloudEvent: {exc}") from None
    if batch:
        if not isinstance(doc, list):
            raise DecodeError(f"a CloudEvents batch must be a JSON array, got {type(doc).__name__}")
        return [structured_event(ce, topic, publisher) for ce in doc]
    return [structured_event(doc, topic, publisher)]
