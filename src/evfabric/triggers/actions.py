"""Running a trigger's action on an event or a batch: a Python callable, a shell command, a webhook.

* ``python``: ``package.module:function`` is imported once; called with the event (or, with
  ``pass_batch``, the list of events). It may be a coroutine function.
* ``shell``: ``/bin/sh -c target``; the event (or batch) as JSON on stdin (a CloudEvent, or a JSON
  array of CloudEvents for a batch); header fields in the environment as ``EVF_TOPIC``,
  ``EVF_ID``, ``EVF_SOURCE``, ``EVF_TYPE``, ``EVF_KEY``, ``EVF_BATCH_SIZE``; exit status 0 is success.
* ``webhook``: ``POST target`` with the CloudEvent as ``application/cloudevents+json`` (a batch as
  ``application/cloudevents-batch+json``); any 2xx is success. Loopback, link-local and other
  special addresses are refused unless allowed (:mod:`evfabric.triggers.webhook`).

Every kind is bounded by the trigger's timeout; a failure raises :class:`ActionFailed`. Whatever
a Python action raises (``SystemExit`` and ``KeyboardInterrupt`` included) is a failure of that
invocation, never of the runner.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import os
import sys
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any

from evfabric.core.cloudevent import to_cloudevent
from evfabric.core.errors import ConfigError, EvfabricError
from evfabric.core.event import Event
from evfabric.triggers.spec import ActionSpec, check_action
from evfabric.triggers.webhook import WebhookGuard, guarded_client

__all__ = ["ActionFailed", "Invoke", "importable_cwd", "resolve_action"]

Invoke = Callable[[list[Event], float], Awaitable[None]]
"""An action ready to run: ``await invoke(events, timeout)``."""


class ActionFailed(EvfabricError):
    """An invocation failed (raised, non-zero exit, non-2xx, or timed out)."""


def _failure(target: str, exc: BaseException) -> ActionFailed:
    return ActionFailed(f"{target} raised {type(exc).__name__}: {exc}")


def importable_cwd() -> None:
    """Put the working directory on the import path (as ``python -m`` does), so that the
    documented ``--python mylab.actions:f`` works from the folder holding ``mylab``."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def _import_callable(target: str) -> Callable[..., Any]:
    module_name, _, attr = target.strip().partition(":")
    try:
        module = importlib.import_module(module_name)
    except BaseException as exc:  # SystemExit, KeyboardInterrupt at import: a failed trigger, not a dead runner
        raise ConfigError(f"python action target {target!r}: cannot import module {module_name!r}: {exc}") from None
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ConfigError(f"python action target {target!r}: module {module_name!r} has no {attr!r}")
    if not callable(obj):
        raise ConfigError(f"python action target {target!r} is not callable")
    return obj


def _payload(events: list[Event]) -> bytes:
    if len(events) == 1:
        return json.dumps(to_cloudevent(events[0]), default=str).encode()
    return json.dumps([to_cloudevent(e) for e in events], default=str).encode()


class Blocking:
    """A synchronous Python action: the executor may run several invocations in one thread hop.

    Handing work to a thread and back costs a GIL hand-off each way (up to the interpreter's switch
    interval); running a worker's queued invocations back to back in one hop amortizes that.
    ``run(events)`` is one invocation and raises :class:`ActionFailed`.
    """

    def __init__(self, spec: ActionSpec, fn: Callable[..., Any]) -> None:
        self.spec = spec
        self.fn = fn

    def run(self, events: list[Event]) -> None:
        calls: list[Any] = [events] if self.spec.pass_batch else events
        for arg in calls:
            try:
                self.fn(arg)
            except BaseException as exc:  # sys.exit() in an action ends the invocation only
                raise _failure(self.spec.target, exc) from exc


async def _contained(target: str, fn: Callable[..., Any], arg: Any) -> None:
    """Await ``fn(arg)`` turning SystemExit and KeyboardInterrupt into :class:`ActionFailed`
    inside the task: asyncio re-raises those two out of the event loop, stopping the runner."""
    try:
        await fn(arg)
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        raise _failure(target, exc) from exc


def _python(spec: ActionSpec, threads: Executor | None) -> Invoke:
    fn = _import_callable(spec.target)
    is_async = inspect.iscoroutinefunction(fn)
    blocking = None if is_async else Blocking(spec, fn)

    async def invoke(events: list[Event], timeout: float) -> None:
        try:
            if blocking is not None:
                loop = asyncio.get_running_loop()
                await asyncio.wait_for(loop.run_in_executor(threads, blocking.run, events), timeout)
                return
            for arg in [events] if spec.pass_batch else events:
                await asyncio.wait_for(_contained(spec.target, fn, arg), timeout)
        except TimeoutError:
            raise ActionFailed(f"{spec.target} timed out after {timeout}s") from None
        except (ActionFailed, asyncio.CancelledError):
            raise
        except BaseException as exc:  # SystemExit, KeyboardInterrupt: this invocation failed
            raise _failure(spec.target, exc) from exc

    invoke.blocking = blocking  # type: ignore[attr-defined]
    return invoke


def _shell(spec: ActionSpec) -> Invoke:
    async def invoke(events: list[Event], timeout: float) -> None:
        first = events[0]
        env = dict(os.environ)
        env.update(
            EVF_TOPIC=first.topic,
            EVF_ID=first.id,
            EVF_SOURCE=first.source,
            EVF_TYPE=first.type,
            EVF_KEY=first.key or "",
            EVF_BATCH_SIZE=str(len(events)),
        )
        proc = await asyncio.create_subprocess_shell(
            spec.target,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        try:
            _, err = await asyncio.wait_for(proc.communicate(_payload(events)), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise ActionFailed(f"command {spec.target!r} timed out after {timeout}s") from None
        if proc.returncode != 0:
            tail = err.decode(errors="replace").strip()[-500:]
            raise ActionFailed(f"command {spec.target!r} exited with {proc.returncode}: {tail}")

    return invoke


def _webhook(spec: ActionSpec, guard: WebhookGuard) -> Invoke:
    import httpx

    async def invoke(events: list[Event], timeout: float) -> None:
        ctype = "application/cloudevents+json" if len(events) == 1 else "application/cloudevents-batch+json"
        try:
            async with guarded_client(guard, timeout) as http:
                resp = await http.post(spec.target, content=_payload(events), headers={"content-type": ctype})
        except httpx.HTTPError as exc:
            raise ActionFailed(f"POST {spec.target} failed: {type(exc).__name__}: {exc}") from None
        if not 200 <= resp.status_code < 300:
            raise ActionFailed(f"POST {spec.target} answered {resp.status_code}: {resp.text[:300]}")

    return invoke


def resolve_action(spec: ActionSpec, threads: Executor | None = None, guard: WebhookGuard | None = None) -> Invoke:
    """The runnable action for ``spec`` (the runner's side: a Python target is imported here);
    :class:`ConfigError` if it cannot resolve.

    ``threads`` runs synchronous Python actions (default: asyncio's default pool); ``guard``
    says where webhooks may go (default: global addresses only).
    """
    check_action(spec)
    if spec.kind == "python":
        return _python(spec, threads)
    if spec.kind == "shell":
        return _shell(spec)
    return _webhook(spec, guard or WebhookGuard())
