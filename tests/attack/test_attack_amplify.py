"""Decompression-style amplification through the columnar compact id map (docs/wire.md 4.2):
a small payload must not expand into a huge allocation in the receiver."""

from __future__ import annotations

import tracemalloc

import msgspec
import pytest

from evfabric.core.errors import DecodeError
from evfabric.core.event import make_event
from evfabric.wire import decode_message, encode_events

pytestmark = pytest.mark.timeout(20)

_H = {"Content-Type": "application/vnd.evfabric.columns+msgpack", "Evf-Version": "1"}


def _batch(prefix: str, n: int) -> bytes:
    return msgspec.msgpack.encode([1, {"source": "s"}, {"id": {"prefix": prefix, "first": 0, "width": 1},
                                                          "time": [1] * n, "body": [{}] * n}])


def test_long_compact_id_prefix_is_garbage_without_expanding() -> None:
    """9 KB holding a 5,000-character prefix for 2,000 events (10 MB of ids once expanded):
    refused, with well under 1 MB allocated while refusing."""
    data = _batch("p" * 5000, 2000)
    tracemalloc.start()
    try:
        with pytest.raises(DecodeError):
            decode_message("evf._.0.a.b", {**_H, "Evf-Count": "2000"}, data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(data) < 10_000 and peak < 1_000_000, (len(data), peak)


def test_prefix_at_the_limit_decodes_and_long_ids_still_round_trip() -> None:
    assert len(decode_message("evf._.0.a.b", {**_H, "Evf-Count": "3"}, _batch("q" * 64, 3))) == 3
    evs = [make_event("a.b", {"i": i}, source="s") for i in range(3)]
    evs = [msgspec.structs.replace(e, id="x" * 100 + f"{i:010x}") for i, e in enumerate(evs)]
    headers, payload = encode_events(evs)  # a 100-character prefix: sent in full, not compact
    assert [e.id for e in decode_message("evf._.0.a.b", {**headers, "Evf-Count": "3"}, payload)] == [e.id for e in evs]
