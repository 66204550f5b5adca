"""Foreign payloads (docs/wire.md 5, "foreign topics"): any message on a raw topic's own subject.

Every message becomes one event: a CloudEvent (either mode) is mapped as one; otherwise a JSON
object payload is the body, any other JSON value ``{"data": value}``, and bytes that are not JSON
(or nest too deep) ``{"data": <bytes>}``. The receiver makes the id and the time; the type is
``evfabric.raw``; ``publisher`` is None (the broker checked the sender's right to the subject, not
its name). The source says where the message came from: ``mqtt:<MQTT topic>`` for a message an
MQTT client published (nats-server marks those with an ``Nmqtt-Pub`` header; it does not pass the
MQTT client id on, so a device that wants its own name in the source puts it in its topic, as in
``lab/probe-42/temp``), ``nats:<subject>`` for any other client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from evfabric.core.errors import DecodeError, InvalidEvent, InvalidTopic
from evfabric.core.event import Event, check_body, stamp
from evfabric.core.topics import validate_topic

__all__ = ["MQTT_HEADER", "RAW_TYPE", "decode_mqtt", "decode_raw", "raw_source"]

RAW_TYPE = "evfabric.raw"
MQTT_HEADER = "Nmqtt-Pub"  # nats-server's mark on a message an MQTT client published (its QoS)


def raw_source(subject: str, headers: Mapping[str, str] | None) -> str:
    """The source of a foreign message: ``mqtt:<MQTT topic>`` from an MQTT client, else ``nats:<subject>``."""
    if headers and MQTT_HEADER in headers:
        return "mqtt:" + subject.replace(".", "/")
    return f"nats:{subject}"


def _body(data: bytes) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return {"data": bytes(data)}
    body = value if isinstance(value, dict) else {"data": value}
    try:
        return check_body(body)
    except InvalidEvent:  # too deep: the payload as it came
        return {"data": bytes(data)}


def decode_raw(subject: str, headers: Mapping[str, str] | None, data: bytes, *,
               source: str | None = None) -> Event:
    """The event a foreign message on ``subject`` (a topic name, e.g. ``lab.probe.temp``) stands for."""
    try:
        validate_topic(subject)
    except InvalidTopic as exc:
        raise DecodeError(f"raw subject {subject!r} is not a topic: {exc}") from None
    id_, now = stamp()
    return Event(id=id_, topic=subject, source=source or raw_source(subject, headers), time=now, type=RAW_TYPE,
                 body=_body(data))


def decode_mqtt(topic: str, publisher: str | None, data: bytes) -> Event:
    """The event an MQTT client published on an evfabric subject (``evf/<identity>/0/lab/probe/temp``):
    its payload as for a raw topic, its topic and (broker-checked) publisher from the subject, its
    source ``mqtt:<publisher>``. The way for devices to publish under access control."""
    id_, now = stamp()
    return Event(id=id_, topic=topic, source=f"mqtt:{publisher or '_'}", time=now, type=RAW_TYPE, body=_body(data),
                 publisher=publisher)
