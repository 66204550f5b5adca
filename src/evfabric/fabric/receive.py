"""A received message's place in its publisher's sequence (docs/wire.md section 2).

Decoding is :func:`evfabric.wire.decode_message` (topic and publisher from the subject; only
DecodeError, whatever the bytes); this module does the rest of reading a message:

* :class:`SequenceTracker` keeps, per (``Evf-Stream``, subject), the next expected ``Evf-Seq``
  (docs/wire.md section 2) and says how many events a message shows lost (a gap) or whether it
  is a duplicate. Messages without these headers (version 0 publishers) are not tracked.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

__all__ = ["DUPLICATE", "LATE", "SequenceTracker", "sequence_of", "since_of"]

STREAM, SEQ, COUNT, SINCE = "Evf-Stream", "Evf-Seq", "Evf-Count", "Evf-Since"


def since_of(headers: dict[str, str] | None) -> int | None:
    """``Evf-Since`` (when the message's (stream, subject) sequence began, wall-clock
    microseconds), or None when absent or malformed."""
    value = headers.get(SINCE) if headers else None
    if value is None or not value.isdigit():
        return None
    return int(value)


def sequence_of(headers: dict[str, str] | None) -> tuple[str, int, int] | None:
    """(stream, first seq, count) from a message's headers, or None when absent or malformed."""
    if not headers:
        return None
    stream = headers.get(STREAM)
    if stream is None:
        return None
    try:
        seq, n = int(headers[SEQ]), int(headers[COUNT])
    except (KeyError, ValueError):
        return None
    if seq < 1 or n < 1:
        return None
    return stream, seq, n


class SequenceTracker:
    """Next expected ``Evf-Seq`` per (stream, subject); counts gaps and duplicates exactly.

    :meth:`note` says what a message is: in order (0), after a gap (the events lost, > 0), a
    batch seen already (:data:`DUPLICATE`: a reliable batch re-sent reaches core subscribers
    twice; drop it), or one that falls in a gap counted earlier (:data:`LATE`: deliver it; NATS
    does not reorder one publisher's messages, so only a forged sequence number on an open
    server does this, and the books keep the loss counted). The last ``MISSING`` gaps per pair
    are remembered for that; older ones are taken as seen.

    The first message seen of a pair sets its start, unless the pair's sequence began after
    ``since`` (this receiver's interest, wall-clock microseconds, set once the broker has it):
    its ``Evf-Since`` header says so, and the events before it were published to us and lost
    (a slow-consumer cut, a reconnect) and are counted.

    At most ``limit`` (stream, subject) pairs are remembered (least recently seen forgotten);
    a forgotten pair starts afresh, so what it lost while forgotten is not counted (nor, once
    any pair was forgotten, what a new pair lost before its first message).
    """

    MISSING = 8

    def __init__(self, limit: int = 100_000) -> None:
        self._next: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._missing: dict[tuple[str, str], list[tuple[int, int]]] = {}  # [first, end) gaps, per pair with any
        self._limit = limit
        self.since: int | None = None  # when the receiver's interest began (µs), if it is known
        self.began = 0  # of the last gap: its pair's Evf-Since if it was its first message, else 0
        self._forgot = False
        self.lost = 0  # events, over all pairs
        self.duplicates = 0  # messages at or below what was already seen (LATE ones included)

    def note(self, subject: str, headers: Any) -> int:
        """Record a message; return the events it shows lost before it (0), :data:`DUPLICATE`
        or :data:`LATE` (see the class doc)."""
        s = sequence_of(headers)
        if s is None:
            return 0
        stream, seq, n = s
        key = (stream, subject)
        nxt = self._next.get(key)
        table = self._next
        if nxt is None:
            table[key] = seq + n
            if len(table) > self._limit:
                old, _ = table.popitem(last=False)
                self._missing.pop(old, None)
                self._forgot = True
            if seq == 1 or self.since is None or self._forgot:
                return 0
            began = since_of(headers)
            if began is None or began <= self.since:
                return 0  # the first message seen of a sequence older than our interest: nothing before it was ours
            self.began = began
            self.lost += seq - 1  # a sequence begun after we listened: what came before its first message was lost
            self._missing[key] = [(1, seq)]
            return seq - 1
        table.move_to_end(key)
        if seq < nxt:
            self.duplicates += 1
            gaps = self._missing.get(key)
            if gaps and any(first < seq + n and seq < end for first, end in gaps):
                return LATE
            return DUPLICATE
        table[key] = seq + n
        gap = seq - nxt
        if gap:
            self.began = 0
            self.lost += gap
            gaps = self._missing.setdefault(key, [])
            gaps.append((nxt, seq))
            del gaps[:-self.MISSING]
        return gap


#: :meth:`SequenceTracker.note`'s answers for a message below the next expected sequence number.
DUPLICATE = -1
LATE = -2
