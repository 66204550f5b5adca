"""Wire codec cost: the columnar batch against today's row batch, same run, interleaved.

1000 events of ~100 B bodies on one topic (shared source and type, as a publisher's batch is).
Decode: :func:`evfabric.wire.decode_message` of a columnar message against
:func:`evfabric.core.codec.decode_batch` of the same events as a row batch; encode:
:func:`evfabric.wire.encode_events` (columns) against :func:`evfabric.core.codec.encode_batch`.
Figures are ns per event (median of interleaved repetitions), each with the row batch as its
peer (ratio above 1: columns are cheaper). ``encode_parts``: :func:`evfabric.wire.encode_columns_parts`, the
columnar batch from ids, times and bodies without Event objects (a publish path's way);
``decode_rows_wire``: a version-0 row batch through :func:`evfabric.wire.decode_message`.
Run: ``evfabric bench wire --json``.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from evfabric.benchmarking import Figure
from evfabric.core import codec
from evfabric.core.event import make_event
from evfabric.wire import decode_message, encode_columns_parts, encode_events

N = 1000


def _per_event_ns(fn: Callable[[], Any], loops: int) -> float:
    t0 = time.perf_counter()
    for _ in range(loops):
        fn()
    return (time.perf_counter() - t0) / loops / N * 1e9


def measure(repeats: int = 7, loops: int = 30) -> dict[str, float]:
    """The medians, ns per event, by kind; and the bytes per event of each format."""
    events = [make_event("bench.wire.x", {"p": "x" * 88, "i": i}, source="bench") for i in range(N)]
    rows = codec.encode_batch(events)
    headers, cols = encode_events(events)
    subject = "evf._.0.bench.wire.x"
    assert decode_message(subject, headers, cols) == events
    ids, times, bodies = [e.id for e in events], [e.time for e in events], [e.body for e in events]
    assert encode_columns_parts({"source": "bench"}, ids, times, bodies) == cols
    kinds = ("decode_rows", "decode_columns", "decode_rows_wire", "encode_rows", "encode_columns", "encode_parts")
    samples: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(repeats):
        samples["decode_rows"].append(_per_event_ns(lambda: codec.decode_batch(rows), loops))
        samples["decode_columns"].append(_per_event_ns(lambda: decode_message(subject, headers, cols), loops))
        samples["decode_rows_wire"].append(_per_event_ns(lambda: decode_message(subject, None, rows), loops))
        samples["encode_rows"].append(_per_event_ns(lambda: codec.encode_batch(events), loops))
        samples["encode_columns"].append(_per_event_ns(lambda: encode_events(events), loops))
        samples["encode_parts"].append(_per_event_ns(
            lambda: encode_columns_parts({"source": "bench"}, ids, times, bodies), loops))
    med = {k: statistics.median(v) for k, v in samples.items()}
    med["bytes_rows"], med["bytes_columns"] = len(rows) / N, len(cols) / N
    return med


def run(quick: bool = False) -> list[Figure]:
    """Columnar decode and encode (and encode from parts) against the row batch."""
    med = measure(repeats=3 if quick else 7, loops=5 if quick else 30)
    notes = {"load": os.getloadavg()[0], "events_per_batch": N}
    return [
        Figure("decode_columns_ns", "ns/event", med["decode_columns"], "row batch decode", med["decode_rows"],
               higher_is_better=False, notes=notes),
        Figure("encode_columns_ns", "ns/event", med["encode_columns"], "row batch encode", med["encode_rows"],
               higher_is_better=False, notes=notes),
        Figure("encode_parts_ns", "ns/event", med["encode_parts"], "row batch encode", med["encode_rows"],
               higher_is_better=False, notes=notes),
        Figure("bytes_per_event_columns", "bytes", med["bytes_columns"], "row batch", med["bytes_rows"],
               higher_is_better=False, notes=notes),
    ]
