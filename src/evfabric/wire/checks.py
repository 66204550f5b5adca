"""What the msgspec schemas cannot say about decoded events, checked over a whole batch at once.

Header types are the schemas' (C); here: ``seq >= 0``, ``ttl > 0``, ``time >= 0`` (``map`` passes,
in C), ``extra`` names that do not shadow a header field (only when some event has an extra),
bodies (:func:`~evfabric.core.event.flat_bodies` for the common flat case, the full
:func:`~evfabric.core.event.check_body` otherwise), and the count the ``Evf-Count`` header claims.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from operator import attrgetter, is_not
from typing import Any

from msgspec.structs import replace

from evfabric.core.errors import DecodeError, InvalidEvent
from evfabric.core.event import RESERVED_ATTRIBUTES, Event, check_body, flat_bodies

__all__ = ["check_bodies", "check_count", "check_events", "check_extras", "check_numbers", "check_times", "public",
           "unplaced"]

_seq = attrgetter("seq")
_ttl = attrgetter("ttl")
_publisher = attrgetter("publisher")
_packed_position = attrgetter("packed_position")
_body = attrgetter("body")
_time = attrgetter("time")
_extra = attrgetter("extra")
_not_none = partial(is_not, None)
_positive = (0.0).__lt__
_not_negative = (0.0).__le__


def check_bodies(bodies: list[Any], what: str) -> None:
    """DecodeError naming the first bad body (by index) unless every one is a valid event body."""
    if flat_bodies(bodies):
        return
    for i, body in enumerate(bodies):
        try:
            check_body(body)
        except InvalidEvent as exc:
            raise DecodeError(f"cannot decode {what}: event {i}: {exc}") from None


def check_numbers(seqs: list[int], ttls: list[float | None], what: str) -> None:
    """DecodeError unless every seq is >= 0 and every ttl None or > 0."""
    if seqs and min(seqs) < 0:
        raise DecodeError(f"cannot decode {what}: seq must be >= 0, got {min(seqs)}")
    if ttls.count(None) == len(ttls):
        return
    given: list[float] = list(filter(_not_none, ttls))  # type: ignore[arg-type]
    if not all(map(_positive, given)):  # NaN is not > 0 either
        bad = next(t for t in given if not _positive(t))
        raise DecodeError(f"cannot decode {what}: ttl must be > 0 seconds, got {bad}")


def check_times(times: list[float], what: str) -> None:
    """DecodeError unless every time is a number >= 0 (not NaN)."""
    if not all(map(_not_negative, times)):
        bad = next(t for t in times if not _not_negative(t))
        raise DecodeError(f"cannot decode {what}: time must be seconds since the epoch, got {bad}")


def check_extras(extras: list[dict[str, Any]], what: str) -> None:
    """DecodeError when an ``extra`` uses a name the header has (``topic``, ``key``...)."""
    if not any(extras):
        return
    for extra in filter(None, extras):
        if not RESERVED_ATTRIBUTES.isdisjoint(extra):
            name = sorted(RESERVED_ATTRIBUTES.intersection(extra))[0]
            raise DecodeError(f"cannot decode {what}: extra field {name!r} would shadow a standard attribute")


def check_events(events: list[Event], what: str) -> None:
    """Numbers, extension names and bodies of decoded events (the row formats)."""
    check_numbers(list(map(_seq, events)), list(map(_ttl, events)), what)
    check_times(list(map(_time, events)), what)
    check_extras(list(map(_extra, events)), what)
    check_bodies(list(map(_body, events)), what)


def check_count(headers: Mapping[str, str] | None, n: int, what: str) -> None:
    """DecodeError when an ``Evf-Count`` header is present and is not ``n``."""
    if headers is None:
        return
    claimed = headers.get("Evf-Count")
    if claimed is not None and claimed != str(n):
        raise DecodeError(f"cannot decode {what}: Evf-Count says {claimed!r} events, the payload holds {n}")


def public(events: list[Event]) -> list[Event]:
    """``events`` without their ``publisher`` and position (never sent: receivers take them from
    the subject and the stream)."""
    if any(map(_publisher, events)) or any(map(_packed_position, events)):
        return [replace(ev, publisher=None, packed_position=0) if ev.publisher is not None or ev.packed_position
                else ev for ev in events]
    return events


def unplaced(events: list[Event]) -> None:
    """Drop a position decoded from bytes: only the receiver that read the stream may set it."""
    if any(map(_packed_position, events)):
        for ev in events:
            ev.packed_position = 0
