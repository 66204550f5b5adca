"""The columnar batch (docs/wire.md 4.2): ``[1, shared, columns]`` in MessagePack.

Header fields equal across the batch travel once, in ``shared``; the rest as ``columns`` (one
array per field, one value per event). The schema below validates the whole message in C
(types, ``seq >= 0``, ``ttl > 0``, extension names, no unknown field); what remains in Python is
per batch (column lengths, a field in both places) except the bodies' check, which is one C-level
pass for flat bodies (:func:`~evfabric.wire.checks.check_bodies`).
"""

from __future__ import annotations

from itertools import repeat
from operator import attrgetter, itemgetter
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from evfabric.core.errors import DecodeError
from evfabric.core.event import DEFAULT_TYPE, Event, ExtraName, NonEmpty
from evfabric.wire.checks import check_bodies, check_extras

__all__ = ["HEADER_FIELDS", "decode_columns", "encode_columns", "encode_columns_parts"]

HEADER_FIELDS = ("source", "type", "seq", "delivery", "ttl", "key", "extra")
ID_PREFIX_MAX = 64  # characters of a compact id map's prefix: bounds what one payload byte expands to
_DEFAULTS: dict[str, Any] = {
    "type": DEFAULT_TYPE, "seq": 0, "delivery": "best_effort", "ttl": None, "key": None, "extra": {},
}

Seq = Annotated[int, Meta(ge=0)]
Ttl = Annotated[float, Meta(gt=0)]
Time = Annotated[float, Meta(ge=0)]
Delivery = Literal["best_effort", "reliable"]
Extra = dict[ExtraName, str | int | bool]


class _Shared(Struct, forbid_unknown_fields=True):
    source: NonEmpty | UnsetType = UNSET
    type: NonEmpty | UnsetType = UNSET
    seq: Seq | UnsetType = UNSET
    delivery: Delivery | UnsetType = UNSET
    ttl: Ttl | UnsetType | None = UNSET
    key: str | UnsetType | None = UNSET
    extra: Extra | UnsetType = UNSET


class _Ids(Struct, forbid_unknown_fields=True):
    prefix: Annotated[str, Meta(max_length=ID_PREFIX_MAX)]  # bounded: expanded once per event
    first: Annotated[int, Meta(ge=0)]
    width: Annotated[int, Meta(ge=1, le=32)]


class _Columns(Struct, forbid_unknown_fields=True):
    id: list[NonEmpty] | _Ids
    time: list[Time]
    body: list[dict[str, Any]]
    source: list[NonEmpty] | UnsetType = UNSET
    type: list[NonEmpty] | UnsetType = UNSET
    seq: list[Seq] | UnsetType = UNSET
    delivery: list[Delivery] | UnsetType = UNSET
    ttl: list[Ttl | None] | UnsetType = UNSET
    key: list[str | None] | UnsetType = UNSET
    extra: list[Extra] | UnsetType = UNSET


class _FlatColumns(_Columns, forbid_unknown_fields=True):
    # Flat bodies of JSON-like scalars, the common case, validated entirely by the schema. A batch
    # with bytes or nested values fails this and is decoded again with the general schema.
    body: list[dict[str, str | int | float | bool | None]]


class _Batch(Struct, array_like=True, forbid_unknown_fields=True):
    version: Literal[1]
    shared: _Shared
    columns: _Columns


class _FlatBatch(_Batch, array_like=True, forbid_unknown_fields=True):
    columns: _FlatColumns


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_Batch)
_flat_decoder = msgspec.msgpack.Decoder(_FlatBatch)
_id = attrgetter("id")
_time = attrgetter("time")
_body = attrgetter("body")
_extra = attrgetter("extra")
_heads = attrgetter(*HEADER_FIELDS)
# the shared fields other than source and type, and the columns other than seq (fast-path checks)
_opt_shared = attrgetter("delivery", "ttl", "key", "extra")
_opt_columns = attrgetter("source", "type", "delivery", "ttl", "key", "extra")
_ALL_UNSET = (UNSET,) * 4
_ALL_UNSET_COLS = (UNSET,) * 6


def _same(values: list[Any], name: str) -> bool:
    """True when every value equals the first (and, for ``extra``, has the same types: 1 != True)."""
    if values.count(values[0]) != len(values):
        return False
    if name == "extra" and values[0]:
        encoded = list(map(_encoder.encode, values))
        return encoded.count(encoded[0]) == len(encoded)
    return True


def encode_columns(events: list[Event], *, compact_ids: bool = False) -> bytes:
    """The events (all on one subject) as a columnar batch; ``compact_ids`` writes consecutive ids
    as ``{prefix, first, width}`` when they are (fewer bytes, a little more CPU both ways)."""
    columns: dict[str, Any] = {"id": list(map(_id, events)), "time": list(map(_time, events)),
                               "body": list(map(_body, events))}
    shared: dict[str, Any] = {}
    if events:
        # The common case first: every field but seq the same across the batch, no extra (most
        # batches, whatever their size; small batches are many when events spread over topics).
        rest = list(map(_heads_but_seq, events))
        if rest.count(rest[0]) == len(rest) and not rest[0][-1]:
            shared = dict(_shared_of(rest[0][:-1]))
            seqs = list(map(_seq, events))
            if seqs.count(seqs[0]) != len(seqs):
                columns["seq"] = seqs
            elif seqs[0] != 0:
                shared["seq"] = seqs[0]
        else:
            heads = list(map(_heads, events))
            for k, name in enumerate(HEADER_FIELDS):
                values = list(map(itemgetter(k), heads))
                if _same(values, name):
                    value = heads[0][k]
                    if name == "source" or value != _DEFAULTS[name]:
                        shared[name] = value
                else:
                    columns[name] = values
        if compact_ids:
            compact = _compact(columns["id"])
            if compact is not None:
                columns["id"] = compact
    return _encoder.encode([1, shared, columns])


_BUT_SEQ = ("source", "type", "delivery", "ttl", "key")
_heads_but_seq = attrgetter(*_BUT_SEQ, "extra")
_seq = attrgetter("seq")
_shared_cache: dict[tuple[Any, ...], dict[str, Any]] = {}


def _shared_of(values: tuple[Any, ...]) -> dict[str, Any]:
    """The shared map for (source, type, delivery, ttl, key): fields at their default left out."""
    shared = _shared_cache.get(values)
    if shared is None:
        if len(_shared_cache) >= 1024:
            _shared_cache.clear()
        shared = _shared_cache[values] = {
            name: value for name, value in zip(_BUT_SEQ, values) if name == "source" or value != _DEFAULTS[name]}
    return shared


def encode_columns_parts(shared: dict[str, Any], ids: list[str], times: list[float], bodies: list[Any],
                         columns: dict[str, list[Any]] | None = None) -> bytes:
    """A columnar batch straight from its parts, for a publisher that never builds :class:`Event`s.

    ``shared`` holds the header fields common to the batch (``source`` at least; fields at their
    default may be left out), ``columns`` the per-event ones; ``ids``, ``times`` and ``bodies`` hold
    one value per event, already valid (as :func:`~evfabric.core.event.make_event` checks them).
    """
    cols: dict[str, Any] = {"id": ids, "time": times, "body": bodies}
    if columns:
        cols.update(columns)
    return _encoder.encode([1, shared, cols])


def _compact(ids: list[str]) -> dict[str, Any] | None:
    first_id = ids[0]
    width = 10 if len(first_id) > 10 else len(first_id)
    prefix, digits = first_id[:-width], first_id[-width:]
    if len(prefix) > ID_PREFIX_MAX:
        return None  # receivers refuse longer prefixes (docs/wire.md 4.2): send the ids in full
    try:
        first = int(digits, 16)
    except ValueError:
        return None
    if digits != format(first, f"0{width}x") or _expand(prefix, first, width, len(ids)) != ids:
        return None
    return {"prefix": prefix, "first": first, "width": width}


def _expand(prefix: str, first: int, width: int, n: int) -> list[str]:
    fmt = f"{prefix}{{:0{width}x}}".format
    return list(map(fmt, range(first, first + n)))


def decode_columns(data: bytes | memoryview, topic: str, publisher: str | None) -> list[Event]:
    """The events of a columnar batch received on ``topic`` from ``publisher``."""
    flat = True
    batch: _Batch
    try:
        batch = _flat_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        flat = False
        try:
            batch = _decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise DecodeError(f"cannot decode columnar batch: {exc}") from None
    cols, shared = batch.columns, batch.shared
    times, bodies = cols.time, cols.body
    n = len(times)
    ids = _expand(cols.id.prefix, cols.id.first, cols.id.width, n) if isinstance(cols.id, _Ids) else cols.id
    if len(ids) != n or len(bodies) != n:
        raise DecodeError(f"cannot decode columnar batch: columns id, time, body hold {len(ids)}, {n}, {len(bodies)} values")
    if not flat:
        check_bodies(bodies, "columnar batch")
    source = shared.source
    # The common shapes, without the general loop below (a few us per message; most messages on
    # many topics hold few events): source (and type, seq) shared, no column but seq.
    if (source is not UNSET and _opt_shared(shared) == _ALL_UNSET and _opt_columns(cols) == _ALL_UNSET_COLS
            and (shared.seq is UNSET or cols.seq is UNSET)):
        type_ = DEFAULT_TYPE if shared.type is UNSET else shared.type
        seqs = cols.seq
        if seqs is UNSET:
            seq = 0 if shared.seq is UNSET else shared.seq
            if seq:
                return [Event(id=i, topic=topic, source=source, time=t, type=type_, seq=seq, body=b,
                              publisher=publisher) for i, t, b in zip(ids, times, bodies)]
            if type_ == DEFAULT_TYPE and publisher is None:  # fewer keywords: each costs a little per event
                return [Event(id=i, topic=topic, source=source, time=t, body=b) for i, t, b in zip(ids, times, bodies)]
            return [Event(id=i, topic=topic, source=source, time=t, type=type_, body=b, publisher=publisher)
                    for i, t, b in zip(ids, times, bodies)]
        if len(seqs) != n:
            raise DecodeError(f"cannot decode columnar batch: column 'seq' holds {len(seqs)} values for {n} events")
        return [Event(id=i, topic=topic, source=source, time=t, type=type_, seq=q, body=b, publisher=publisher)
                for i, t, q, b in zip(ids, times, seqs, bodies)]
    extras_given = cols.extra if cols.extra is not UNSET else [shared.extra] if shared.extra is not UNSET else []
    check_extras(extras_given, "columnar batch")
    fields: dict[str, Any] = {}
    columned: dict[str, list[Any]] = {}
    for name in HEADER_FIELDS:
        one, many = getattr(shared, name), getattr(cols, name)
        if many is not UNSET:
            if one is not UNSET:
                raise DecodeError(f"cannot decode columnar batch: field {name!r} is both shared and a column")
            if len(many) != n:
                raise DecodeError(f"cannot decode columnar batch: column {name!r} holds {len(many)} values for {n} events")
            columned[name] = many
        elif one is not UNSET:
            fields[name] = one
    if "source" not in fields and "source" not in columned:
        raise DecodeError("cannot decode columnar batch: no source (shared or column)")
    return _general(ids, times, bodies, fields, columned, topic, publisher, n)


def _general(ids: list[str], times: list[float], bodies: list[dict[str, Any]], fields: dict[str, Any],
             columned: dict[str, list[Any]], topic: str, publisher: str | None, n: int) -> list[Event]:
    def column(name: str) -> Any:
        if name in columned:
            return columned[name]
        return repeat(fields.get(name, _DEFAULTS.get(name)), n)

    extras: Any = columned.get("extra")
    if extras is None:  # one dict per event: a listener that changes its event's extra changes no other
        extras = map(dict, repeat(fields.get("extra") or {}, n))
    return [
        Event(id=i, topic=topic, source=s, time=t, type=ty, seq=q, delivery=d, ttl=tl, key=k, extra=x, body=b,
              publisher=publisher)
        for i, t, b, s, ty, q, d, tl, k, x in zip(
            ids, times, bodies, column("source"), column("type"), column("seq"), column("delivery"),
            column("ttl"), column("key"), extras,
        )
    ]
