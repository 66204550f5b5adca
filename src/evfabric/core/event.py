"""The event: a header and a typed body (CCA 2.4), with CloudEvents-compatible attributes.

Header fields: ``id`` (unique, sortable: time-ordered), ``topic``, ``source`` (the publisher's
component id, never empty), ``time`` (seconds since the epoch, microsecond precision), ``type``,
``seq`` (the publisher's Lamport clock), ``delivery`` (``best_effort`` or ``reliable``), ``ttl``
(seconds the event stays relevant, or None), ``key`` (partitioning key, or None) and ``extra``
(free-form attributes: lowercase alphanumeric names of at most 20 characters, values str, int
or bool, as CloudEvents extensions allow). ``publisher`` is not part of the header a publisher
sets: a receiver fills it in with the authenticated identity the event travelled under.

The body is a map from str to str, int, float, bool, bytes, None, and lists and maps of those.
"""

from __future__ import annotations

import re
import time as _time
from collections.abc import Sequence
from itertools import chain
from typing import Annotated, Any, Final, Literal

import msgspec

from evfabric.core.errors import InvalidEvent
from evfabric.core.ids import COUNTER_BASE, new_id, new_ids, node, now_us, stamp
from evfabric.core.position import Position
from evfabric.core.topics import validate_topic

__all__ = [
    "BEST_EFFORT",
    "COUNTER_BASE",
    "DELIVERY_MODES",
    "RELIABLE",
    "Body",
    "Delivery",
    "Event",
    "check_body",
    "check_header",
    "flat_bodies",
    "make_event",
    "new_id",
    "new_ids",
    "node",
    "now_us",
    "stamp",
]

#: How an event travels: ``best_effort`` (fire and forget, drops counted) or ``reliable`` (at least once).
Delivery = Literal["best_effort", "reliable"]
BEST_EFFORT: Final = "best_effort"
RELIABLE: Final = "reliable"
DELIVERY_MODES = (BEST_EFFORT, RELIABLE)
DEFAULT_TYPE = "evfabric.event"

Body = dict[str, Any]
# The topic's syntax is checked by the codec with the cached :func:`validate_topic` (a batch
# usually has one topic): a ``Meta(pattern=...)`` here would run a regex per decoded event,
# which cost more than all the rest of decoding.
TopicName = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
ExtraName = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9]{1,20}$")]

# Names the header already uses (and CloudEvents' own): an ``extra`` field may not shadow them.
RESERVED_ATTRIBUTES = frozenset(
    {"id", "topic", "source", "time", "type", "seq", "delivery", "ttl", "key", "extra", "body"}
    | {"specversion", "subject", "data", "datacontenttype", "dataschema", "data_base64", "partitionkey"}
)


class Event(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """One event. Build it with :func:`make_event` (or a service's ``publish``), which validates.

    Decoding from bytes (``evfabric.core.codec``) validates the header types in C, the topic
    with :func:`~evfabric.core.topics.validate_topic` and the body with :func:`check_bodies`.
    """

    id: NonEmpty
    topic: TopicName
    source: NonEmpty
    time: float
    type: NonEmpty = DEFAULT_TYPE
    seq: int = 0
    delivery: Delivery = "best_effort"
    ttl: float | None = None
    key: str | None = None
    extra: dict[ExtraName, str | int | bool] = {}
    body: Body = {}
    #: Who published it, as the broker bound it: set by the receiver from the subject
    #: (docs/wire.md section 1), never taken from a payload; None for events not received
    #: over the fabric (and for foreign topics).
    publisher: str | None = None
    #: Where the event is stored, packed (``seq << 32 | index``, see :mod:`evfabric.core.position`):
    #: set by a reliable subscription's receiver from the JetStream message, never sent; 0 for
    #: events that were not read from a stream. Read it as :attr:`position`.
    packed_position: int = 0

    @property
    def header(self) -> dict[str, Any]:
        """The header as a plain dict (every field but ``body``; ``extra`` merged in)."""
        h: dict[str, Any] = {
            "id": self.id,
            "topic": self.topic,
            "source": self.source,
            "time": self.time,
            "type": self.type,
            "seq": self.seq,
            "delivery": self.delivery,
            "ttl": self.ttl,
            "key": self.key,
        }
        h.update(self.extra)
        return h

    @property
    def position(self) -> Position | None:
        """The event's position in its topic's stream (docs/wire.md section 8): its message's
        stream sequence and its index in that message; ``str()`` gives ``"<seq>:<index>"`` and
        ``subscribe(..., start=event.position)`` replays from this very event. None for events
        not read from a stream (best effort, in process)."""
        return Position.unpack(self.packed_position)

    @property
    def reliable(self) -> bool:
        """True when the event asks for at-least-once delivery."""
        return self.delivery == RELIABLE

    def expired(self, now: float | None = None) -> bool:
        """True when the event has a ``ttl`` and it has run out at ``now`` (default: now)."""
        if self.ttl is None:
            return False
        return (now if now is not None else _time.time()) > self.time + self.ttl


# --- ids and time: evfabric.core.ids (re-exported here) -----------------------------------


# --- validation --------------------------------------------------------------------------------

_SCALARS = frozenset({str, int, float, bool, bytes, type(None)})
_MAX_DEPTH = 32


def _check_value(value: Any, path: str, depth: int) -> None:
    kind = type(value)
    if kind in _SCALARS:
        return
    if depth > _MAX_DEPTH:
        raise InvalidEvent(f"body{path} nests deeper than {_MAX_DEPTH} levels")
    if kind is list or kind is tuple:
        for i, item in enumerate(value):
            _check_value(item, f"{path}[{i}]", depth + 1)
    elif kind is dict:
        for k, item in value.items():
            if type(k) is not str:
                raise InvalidEvent(f"body{path}: map keys must be str, got {type(k).__name__} {k!r}")
            _check_value(item, f"{path}.{k}", depth + 1)
    else:
        raise InvalidEvent(
            f"body{path} has a value of type {kind.__name__}; allowed: str, int, float, bool, bytes, None, "
            "and lists and maps of those"
        )


def check_body(body: Any) -> Body:
    """Return ``body`` if it is a valid event body, else raise :class:`InvalidEvent` naming the field."""
    if type(body) is not dict:
        raise InvalidEvent(f"body must be a dict (a typed map), got {type(body).__name__}")
    for k, v in body.items():
        if type(v) in _SCALARS and type(k) is str:
            continue
        if type(k) is not str:
            raise InvalidEvent(f"body: map keys must be str, got {type(k).__name__} {k!r}")
        _check_value(v, f".{k}", 1)
    return body


_DICT_ONLY = frozenset({dict})
_STR_ONLY = frozenset({str})


def flat_bodies(bodies: Sequence[Any]) -> bool:
    """True when every item is a dict from str to scalars (so a valid body: no :func:`check_body` needed).

    False only says "look closer": nested lists and maps, or garbage. The iteration runs in C
    over all bodies at once (``map`` and ``frozenset.issuperset``), which costs a fraction of a
    Python loop per body: the fast path for batches (decoding, ``publish_many``).
    """
    return (
        _DICT_ONLY.issuperset(map(type, bodies))
        and _STR_ONLY.issuperset(map(type, chain.from_iterable(bodies)))
        and _SCALARS.issuperset(map(type, chain.from_iterable(map(dict.values, bodies))))
    )


_EXTRA_NAME = re.compile(r"[a-z0-9]{1,20}")


def check_header(
    *,
    source: Any,
    type: Any = DEFAULT_TYPE,
    delivery: Any = BEST_EFFORT,
    ttl: Any = None,
    key: Any = None,
    seq: Any = 0,
    extra: Any = None,
) -> None:
    """Raise :class:`InvalidEvent` naming the first bad header field, if any."""
    if not isinstance(source, str) or not source:
        raise InvalidEvent(f"header field 'source' must be a non-empty str (the publisher's id), got {source!r}")
    if not isinstance(type, str) or not type:
        raise InvalidEvent(f"header field 'type' must be a non-empty str, got {type!r}")
    if delivery not in DELIVERY_MODES:
        raise InvalidEvent(f"header field 'delivery' must be one of {DELIVERY_MODES}, got {delivery!r}")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl <= 0):
        raise InvalidEvent(f"header field 'ttl' must be a positive number of seconds or None, got {ttl!r}")
    if key is not None and not isinstance(key, str):
        raise InvalidEvent(f"header field 'key' must be a str or None, got {key!r}")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise InvalidEvent(f"header field 'seq' must be a non-negative int, got {seq!r}")
    for name, value in (extra or {}).items():
        if not isinstance(name, str) or not _EXTRA_NAME.fullmatch(name):
            raise InvalidEvent(
                f"extra header field {name!r}: names are 1-20 lowercase letters or digits (CloudEvents extensions)"
            )
        if name in RESERVED_ATTRIBUTES:
            raise InvalidEvent(f"extra header field {name!r} would shadow a standard attribute")
        if not isinstance(value, (str, int, bool)):
            raise InvalidEvent(f"extra header field {name!r} must be str, int or bool, got {value!r}")


def make_event(
    topic: str,
    body: Body | None = None,
    *,
    source: str,
    type: str = DEFAULT_TYPE,
    delivery: str = BEST_EFFORT,
    ttl: float | None = None,
    key: str | None = None,
    seq: int = 0,
    id: str | None = None,
    time: float | None = None,
    **extra: str | int | bool,
) -> Event:
    """Validate the parts and build an :class:`Event`; unknown keyword arguments become ``extra``.

    Raises :class:`InvalidTopic` or :class:`InvalidEvent` naming the bad field.
    """
    validate_topic(topic)
    body = {} if body is None else check_body(body)
    check_header(source=source, type=type, delivery=delivery, ttl=ttl, key=key, seq=seq, extra=extra)
    if time is None:
        new, now = stamp()
        id = new if id is None else id
    else:
        now = int(time * 1_000_000) / 1_000_000
    return Event(
        id=id if id is not None else new_id(now),
        topic=topic,
        source=source,
        time=now,
        type=type,
        seq=seq,
        delivery=delivery,  # type: ignore[arg-type]
        ttl=None if ttl is None else float(ttl),
        key=key,
        extra=extra,
        body=body,
    )
