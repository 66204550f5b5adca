"""Event ids: unique, sorted by creation time, fork-safe, and cheap to stamp.

An id is 33 hex digits (docs/wire.md section 3): 11 of milliseconds since the epoch, 12 of node
(48 random bits drawn per process, re-drawn in a forked child) and 10 of a counter that starts
at ``1000000000`` in each millisecond (fixed width, so ids sort as strings). Ids of one process
are unique and ascending; across processes and hosts the node keeps them apart.

Stamping is on every publish path, so an id is a prefix formatted once per millisecond (time,
node and the counter's first 7 hex digits) plus one of 4,096 preformatted suffixes (its last 3).
The prefix and an iterator over the suffixes are one :data:`State`, replaced as a whole (under a
lock) when the millisecond changes or its suffixes run out; a stamp reads it without a lock: it
takes the next suffix with ``next()``, one C call, so two threads never take the same one. Hot
paths may inline :func:`stamp` as::

    us = time_ns() // 1000
    st = ids.current()            # or the module's ``_state``, read once
    if us < st[0] and (suffix := next(st[2], None)) is not None:
        eid = st[1] + suffix
    else:
        eid = ids.slow_id(us, st)

A forked child gets a new node, a new lock and a fresh state before any code of it runs
(``os.register_at_fork``), so it never repeats its parent's ids.
"""

from __future__ import annotations

import os
import threading
import time as _time
from collections.abc import Iterator
from itertools import islice

__all__ = ["COUNTER_BASE", "State", "current", "new_id", "new_ids", "node", "now_us", "slow_id", "stamp"]

NODE_DIGITS = 12
COUNTER_BASE = 16**9  # the counter's 10 hex digits start at 1000000000 in each millisecond
BLOCK = 4096  # suffixes per prefix: the counter's last 3 hex digits
_FIRST_HIGH = COUNTER_BASE // BLOCK
_SUFFIXES = tuple(f"{i:03x}" for i in range(BLOCK))

State = tuple[int, str, Iterator[str], int, int]
"""(first microsecond past the prefix's millisecond, prefix, its unused suffixes, ms, counter // 4096)."""

_INITIAL: State = (0, "", iter(()), -1, 0)  # limit 0: the first stamp makes the first real state


def _draw_node() -> str:
    return os.urandom(NODE_DIGITS // 2).hex()


_NODE = _draw_node()
_state: State = _INITIAL
_lock = threading.Lock()
_time_ns = _time.time_ns


def node() -> str:
    """This process's node part of ids (12 hex digits; a forked child has its own)."""
    return _NODE


def current() -> State:
    """The state stamps read now (see the module docstring for the inlined stamp)."""
    return _state


def _reseed_after_fork() -> None:
    global _NODE, _state, _lock
    _NODE = _draw_node()
    _state = _INITIAL
    _lock = threading.Lock()  # a thread of the parent may have held it at the fork


if hasattr(os, "register_at_fork"):  # POSIX; elsewhere processes are spawned and re-import
    os.register_at_fork(after_in_child=_reseed_after_fork)


def _advance(us: int, seen: State) -> State:
    """The state after ``seen`` for a stamp at ``us`` (``seen`` is used up or its millisecond past).

    A new millisecond restarts the counter; the same one (or an earlier: the wall clock stepped
    back, ids stay ascending) goes on to the next 4,096 suffixes. When another thread replaced
    ``seen`` meanwhile, its state is returned as it is (the caller looks again).
    """
    global _state
    with _lock:
        st = _state
        if st is seen:
            ms = us // 1000
            if ms > st[3]:
                high = _FIRST_HIGH
            else:
                ms, high = st[3], st[4] + 1
            st = _state = ((ms + 1) * 1000, f"{ms:011x}{_NODE}{high:07x}", iter(_SUFFIXES), ms, high)
        return st


def slow_id(us: int, st: State) -> str:
    """An id for a stamp at ``us`` when ``st`` (the state read) does not give one."""
    while True:
        st = _advance(us, st)
        if us < st[0]:
            suffix = next(st[2], None)
            if suffix is not None:
                return st[1] + suffix


def stamp() -> tuple[str, float]:
    """A new id and the time (as :func:`new_id` and :func:`now_us`) from one clock reading."""
    us = _time_ns() // 1000
    st = _state
    if us < st[0] and (suffix := next(st[2], None)) is not None:
        return st[1] + suffix, us / 1_000_000
    return slow_id(us, st), us / 1_000_000


def new_id(now: float | None = None) -> str:
    """A unique id that sorts by creation time (``now``: seconds since the epoch, default now).

    Ids stay ascending when ``now`` (or the wall clock) goes back: they keep the latest
    millisecond used.
    """
    us = _time_ns() // 1000 if now is None else int(now * 1_000_000)
    st = _state
    if us < st[0] and (suffix := next(st[2], None)) is not None:
        return st[1] + suffix
    return slow_id(us, st)


def new_ids(n: int, now: float) -> list[str]:
    """``n`` ids for events stamped ``now`` (as ``n`` calls of :func:`new_id`, in one pass)."""
    us = int(now * 1_000_000)
    out: list[str] = []
    st = _state
    while True:
        if us < st[0]:
            prefix = st[1]
            out += [prefix + suffix for suffix in islice(st[2], n - len(out))]
            if len(out) >= n:
                return out
        st = _advance(us, st)


def now_us() -> float:
    """Now, in seconds since the epoch, quantized to a microsecond.

    Quantizing (integer microseconds, not ``round``, which is slow) makes ``time`` survive an
    RFC 3339 round trip exactly, as the CloudEvents mapping needs.
    """
    return _time_ns() // 1000 / 1_000_000
