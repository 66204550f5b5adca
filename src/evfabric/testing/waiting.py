"""Waiting on a condition in a test, instead of sleeping for a guessed time.

A test that sleeps to let something happen is slow when the guess is generous and flaky when
the machine is loaded; a test that polls the condition returns as soon as it holds and fails
only after a bounded ``timeout``::

    from evfabric.testing import wait_until

    client.publish("lab.t", {"c": 21})
    assert wait_until(lambda: len(seen) == 1)

* :func:`wait_until` polls ``cond`` every ``every`` seconds until it is true or ``timeout``
  seconds have passed; it returns whether it became true (assert on that).
* :func:`wait_until_async` is the same for a coroutine: it awaits ``asyncio.sleep`` between
  polls, so the event loop (and the client being waited on) keeps running; ``cond`` may be a
  coroutine function too (e.g. one asking the broker).
* :func:`wait_for` returns the first truthy value of ``fn`` (e.g. a scraped snapshot that
  satisfies a check), or raises :class:`AssertionError` naming the last value seen.

These wait on real time, for things that happen in other threads or processes. To make a TTL
or a retention period pass, do not wait: inject a :class:`~evfabric.core.clocks.ManualClock`
and ``advance()`` it. To show that something did *not* happen, do not wait either: wait for a
later event on the same ordered channel (a marker published after it, a consumer's acknowledged
sequence), after which the thing would have been seen.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["DEFAULT_EVERY", "DEFAULT_TIMEOUT", "wait_for", "wait_until", "wait_until_async"]

T = TypeVar("T")

DEFAULT_TIMEOUT = 20.0
"""Seconds to wait before giving up: generous, since only a failing test waits that long (and a
loaded CI machine is slow)."""
DEFAULT_EVERY = 0.05
"""Seconds between two polls."""


def _check(timeout: float, every: float) -> None:
    if not timeout >= 0:
        raise ValueError(f"timeout: must be >= 0 seconds, got {timeout!r}")
    if not every > 0:
        raise ValueError(f"every: must be > 0 seconds, got {every!r}")


def wait_until(cond: Callable[[], object], timeout: float = DEFAULT_TIMEOUT, every: float = DEFAULT_EVERY) -> bool:
    """Poll ``cond()`` until it is truthy or ``timeout`` seconds passed; True if it became so.

    ``cond`` is called at least once, and once more at the deadline.
    """
    _check(timeout, every)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(every)
    return bool(cond())


async def wait_until_async(cond: Callable[[], object | Awaitable[object]], timeout: float = DEFAULT_TIMEOUT,
                           every: float = DEFAULT_EVERY) -> bool:
    """:func:`wait_until` in a coroutine: the event loop runs between polls. When ``cond()``
    returns an awaitable (``cond`` is a coroutine function), its result is the condition."""
    _check(timeout, every)

    async def holds() -> bool:
        got = cond()
        if inspect.isawaitable(got):
            got = await got
        return bool(got)

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await holds():
            return True
        await asyncio.sleep(every)
    return await holds()


def wait_for(fn: Callable[[], T | None], timeout: float = DEFAULT_TIMEOUT, every: float = DEFAULT_EVERY) -> T:
    """Poll ``fn()`` until it returns something truthy and return that; :class:`AssertionError`
    naming the last value if ``timeout`` seconds pass first."""
    _check(timeout, every)
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout} s (last: {got!r})")
        time.sleep(every)
