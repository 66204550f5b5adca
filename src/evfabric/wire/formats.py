"""The wire formats: their names (as topics and clients choose them) and content types.

``WIRE_FORMATS`` maps a format name to its ``Content-Type`` (docs/wire.md section 4) and to the
most events one message of it may hold (None: any number).
"""

from __future__ import annotations

from typing import NamedTuple

from evfabric.core.errors import ConfigError

__all__ = [
    "CE_BATCH",
    "CE_JSON",
    "COLUMNS",
    "DEFAULT_FORMAT",
    "ROWS_JSON",
    "ROWS_MSGPACK",
    "VERSION",
    "WIRE_FORMATS",
    "WireFormat",
    "wire_format",
]

VERSION = "1"
ROWS_MSGPACK = "application/vnd.evfabric.events+msgpack"
ROWS_JSON = "application/vnd.evfabric.events+json"
COLUMNS = "application/vnd.evfabric.columns+msgpack"
CE_JSON = "application/cloudevents+json"
CE_BATCH = "application/cloudevents-batch+json"


class WireFormat(NamedTuple):
    """A format: its name, its content type (None: CloudEvents binary, data's own) and batch bound."""

    name: str
    content_type: str | None
    max_events: int | None


WIRE_FORMATS: dict[str, WireFormat] = {
    f.name: f
    for f in (
        WireFormat("columns", COLUMNS, None),
        WireFormat("msgpack", ROWS_MSGPACK, None),
        WireFormat("json", ROWS_JSON, None),
        WireFormat("cloudevents", None, 1),
        WireFormat("cloudevents-structured", CE_JSON, 1),
        WireFormat("cloudevents-batch", CE_BATCH, None),
        WireFormat("legacy", None, None),  # version 0: a MessagePack row batch without headers
    )
}
DEFAULT_FORMAT = "columns"


def wire_format(name: str) -> WireFormat:
    """The format called ``name``; ConfigError naming the known ones otherwise."""
    try:
        return WIRE_FORMATS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"wire format {name!r} is unknown; known: {', '.join(WIRE_FORMATS)}") from None
