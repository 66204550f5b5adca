"""The wire: how evfabric events travel as NATS messages (docs/wire.md), for every format.

``encode_events(events, fmt)`` gives a message's headers and payload; ``decode_message(subject,
headers, data)`` gives its events back (topic and publisher from the subject), raising only
:class:`~evfabric.core.errors.DecodeError`. Formats: the columnar batch (default), row batches in
MessagePack and JSON, CloudEvents (binary, structured, batch), version 0 rows, and foreign
payloads on raw topics (``raw=True``).
"""

from evfabric.wire.codec import decode_message, encode_events, event_count
from evfabric.wire.columns import encode_columns_parts
from evfabric.wire.formats import DEFAULT_FORMAT, VERSION, WIRE_FORMATS, WireFormat, wire_format
from evfabric.wire.raw import RAW_TYPE, decode_raw, raw_source
from evfabric.wire.subject import ANONYMOUS, SubjectParts, parse_subject

__all__ = [
    "ANONYMOUS",
    "DEFAULT_FORMAT",
    "RAW_TYPE",
    "VERSION",
    "WIRE_FORMATS",
    "SubjectParts",
    "WireFormat",
    "decode_message",
    "decode_raw",
    "encode_columns_parts",
    "encode_events",
    "event_count",
    "parse_subject",
    "raw_source",
    "wire_format",
]
