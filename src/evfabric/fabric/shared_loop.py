"""One event-loop thread shared by the synchronous clients of a process.

Every :class:`~evfabric.fabric.client.Client` runs its connection (nats-py, the publisher, the
consumers) on the loop of :data:`SHARED_LOOP`: fifty clients cost one I/O thread, not fifty. The
thread starts with the first client (:meth:`SharedLoop.acquire`) and stops when the last one is
released. Nothing blocking runs on it: a sync client's listeners run on dispatcher threads
(:mod:`evfabric.fabric.dispatch_pool`) or in ``process_events()``.

Fork: a child process has no thread of its parent's, and its parent's connections are not its
own (the sockets are shared with the parent). After ``os.fork()`` the child starts with no loop;
its first client gets a fresh one, and the clients it inherited are marked closed (see
:mod:`evfabric.fabric.client`).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["SHARED_LOOP", "SharedLoop", "at_fork_in_child", "off_loop"]


class SharedLoop:
    """A refcounted event loop on a daemon thread: started on first use, stopped after the last."""

    def __init__(self, name: str = "evfabric-loop") -> None:
        self.name = name
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._users = 0

    @property
    def users(self) -> int:
        """Holders of the current loop (0: no loop thread)."""
        return self._users

    def acquire(self) -> asyncio.AbstractEventLoop:
        """The running shared loop (started now if none runs); pair with :meth:`release`."""
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=_serve, args=(loop,), name=self.name, daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            self._users += 1
            return self._loop

    def release(self, loop: asyncio.AbstractEventLoop) -> None:
        """One holder of ``loop`` is done; the last one stops the thread and closes the loop.

        A loop that is no longer the current one (inherited over a fork) is left alone.
        """
        with self._lock:
            if loop is not self._loop:
                return
            self._users -= 1
            if self._users > 0:
                return
            thread = self._thread
            self._loop = self._thread = None
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)
            if not thread.is_alive():
                loop.close()

    def after_fork_in_child(self) -> None:
        """Forget the parent's loop (its thread does not exist here)."""
        self._reset()


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    loop.run_forever()
    _finish_tasks(loop)


def _finish_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left on the stopped loop and let it unwind, as ``asyncio.run`` does: a task
    cancelled by a closing nats-py connection (its subscriptions' readers) that never ran again
    would be collected after the loop closed ("Event loop is closed" at garbage collection)."""
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.wait(tasks, timeout=2))
    loop.run_until_complete(loop.shutdown_asyncgens())


async def off_loop(fn: Callable[..., Any], *args: Any) -> Any:
    """Await ``fn(*args)`` run on a short-lived thread of its own: blocking work (waiting for
    listeners) that must not hold up the loop other clients share. No thread stays behind."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if done.cancelled():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)

    def body() -> None:
        try:
            result, error = fn(*args), None
        except BaseException as exc:
            result, error = None, exc
        loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=body, name="evfabric-off-loop", daemon=True).start()
    return await done


#: the loop of every synchronous client in this process
SHARED_LOOP = SharedLoop()


def at_fork_in_child(fn: Callable[[], None]) -> None:
    """Run ``fn`` in a forked child before any of its code (no-op where fork does not exist)."""
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=fn)


at_fork_in_child(SHARED_LOOP.after_fork_in_child)
