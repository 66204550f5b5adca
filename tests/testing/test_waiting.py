"""evfabric.testing.wait_until / wait_until_async / wait_for: poll a condition, bounded in time."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from evfabric.testing import wait_for, wait_until, wait_until_async

pytestmark = pytest.mark.timeout(60)


def test_wait_until_returns_as_soon_as_the_condition_holds() -> None:
    flag = threading.Event()
    threading.Timer(0.05, flag.set).start()
    calls = []
    assert wait_until(lambda: calls.append(1) or flag.is_set(), timeout=30, every=0.01)
    assert flag.is_set() and len(calls) >= 2  # polled, not slept through


def test_wait_until_gives_up_after_the_timeout_with_false() -> None:
    t0 = time.monotonic()
    assert wait_until(lambda: False, timeout=0.2, every=0.01) is False
    assert time.monotonic() - t0 >= 0.2


def test_wait_until_async_lets_the_loop_run_between_polls() -> None:
    async def main() -> bool:
        done = asyncio.Event()
        asyncio.get_running_loop().call_later(0.05, done.set)  # runs only if the helper yields
        return await wait_until_async(done.is_set, timeout=30, every=0.01)

    assert asyncio.run(main())
    assert asyncio.run(wait_until_async(lambda: False, timeout=0.1)) is False


def test_wait_until_async_awaits_a_coroutine_condition() -> None:
    polls: list[int] = []

    async def third_time() -> bool:
        await asyncio.sleep(0)
        polls.append(1)
        return len(polls) >= 3

    assert asyncio.run(wait_until_async(third_time, timeout=30, every=0.01)) and len(polls) == 3

    async def never() -> bool:
        return False

    assert asyncio.run(wait_until_async(never, timeout=0.1, every=0.01)) is False


def test_wait_for_returns_the_first_truthy_value_or_fails_naming_the_last() -> None:
    values = iter([0, None, {"n": 3}])
    assert wait_for(lambda: next(values), timeout=30, every=0.01) == {"n": 3}
    with pytest.raises(AssertionError, match=r"within 0.1 s \(last: \[\]\)"):
        wait_for(lambda: [], timeout=0.1, every=0.01)


def test_bad_timeouts_are_refused() -> None:
    with pytest.raises(ValueError, match="timeout"):
        wait_until(lambda: True, timeout=-1)
    with pytest.raises(ValueError, match="every"):
        wait_for(lambda: True, every=0)
