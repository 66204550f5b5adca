"""The trigger runner: every enabled trigger, acting on its events; any number of replicas.

    runner = TriggerRunner("nats://127.0.0.1:4222")
    await runner.start()          # watches the definitions and runs them until stop()

Each trigger gets a durable JetStream consumer named after it (``trigger_<name>``), shared by all
replicas as a consumer group, so replicas share the work and a replica that dies leaves its
unacknowledged events to the others. Definitions are watched in the fabric's key-value bucket:
creating, updating, disabling or deleting a trigger takes effect on every replica within a moment.
With ``credentials`` (as in ``evfabric serve`` under access control) each trigger consumes through
a connection of its ``run_as`` identity, so it reads only what that identity may read.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from datetime import datetime
from urllib.parse import urlsplit
from collections.abc import Callable
from typing import Any

from evfabric.core.errors import ConfigError
from evfabric.core.event import RELIABLE
from evfabric.core.filters import Filter
from evfabric.core.topics import Pattern
from evfabric.fabric.aio import AsyncClient, connect_async
from evfabric.fabric.subjects import pattern_filter
from evfabric.triggers import log as invocation_log
from evfabric.triggers.actions import resolve_action
from evfabric.triggers.executor import Invocation, TriggerExecutor, TriggerSubscription
from evfabric.triggers.spec import TriggerSpec
from evfabric.triggers.store import TriggerStore

__all__ = ["RunningTrigger", "TriggerRunner", "group_name"]

log = logging.getLogger("evfabric.triggers")


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]).geturl()


def group_name(trigger: str) -> str:
    """The consumer group (durable consumer) a trigger's replicas share."""
    return f"trigger_{trigger}"


def _start_position(spec: TriggerSpec) -> Any:
    if spec.start == "latest":
        return "new"
    if spec.start == "earliest":
        return "earliest"
    return datetime.fromisoformat(spec.start.replace("Z", "+00:00"))


def _record_metrics(inv: Invocation) -> None:
    try:
        from evfabric.monitor import metrics
    except ImportError:  # monitoring is optional for the runner
        return
    try:
        metrics.TRIGGER_INVOCATIONS.labels(trigger=inv.trigger, status=inv.status).inc()
    except Exception:  # never let metrics break an invocation
        log.debug("could not record trigger metrics", exc_info=True)


class RunningTrigger:
    """One trigger running in this replica: its subscription and executor."""

    def __init__(self, runner: TriggerRunner, spec: TriggerSpec) -> None:
        self.runner = runner
        self.spec = spec
        self.executor = TriggerExecutor(
            spec,
            resolve_action(spec.action, threads=None),
            runner.replica,
            runner._on_invocation,
            idle_timeout=runner.idle_timeout,
        )
        # synchronous Python actions run on the executor's own pool (max_concurrency threads)
        self.executor.invoke = resolve_action(spec.action, threads=self.executor.threads)
        self.sub: TriggerSubscription | None = None
        self.client: AsyncClient = runner.client

    async def start(self) -> None:
        spec = self.spec
        self.client = client = await self.runner.client_for(spec.run_as)
        pat = Pattern(spec.pattern)
        _, exact = pattern_filter(pat)
        sub = TriggerSubscription(
            client, pat, Filter(spec.filter) if spec.filter else None, group_name(spec.name), RELIABLE,
            group_name(spec.name), exact,
        )
        sub.executor = self.executor
        sub.attempts = {}
        self.executor.sub = sub
        ack_wait = spec.ack_wait if spec.ack_wait is not None else 2 * spec.timeout + 5.0
        inflight = max(8, 2 * spec.max_concurrency * spec.batch_size)
        await client.attach(
            sub, start=_start_position(spec), max_deliver=spec.retries + 1, ack_wait=ack_wait,
            redeliver_delay=spec.backoff, ordered=False, max_inflight=inflight, pull_batch=min(256, inflight),
        )
        self.sub = sub
        self.executor.start()

    async def stop(self) -> None:
        if self.sub is not None:
            await self.client.detach(self.sub)
        await self.executor.close()


class TriggerRunner:
    """Runs the enabled triggers of a fabric; start several (processes or hosts) for HA and scale."""

    def __init__(
        self,
        url: str | list[str],
        *,
        replica: str | None = None,
        idle_timeout: float = 1.0,
        credentials: Callable[[str], str] | None = None,  # identity -> access token
        retry_every: float = 5.0,
        **client_options: Any,
    ) -> None:
        self.retry_every = retry_every
        self._failed: dict[str, TriggerSpec] = {}
        self.url = url
        self.credentials = credentials
        self._clients: dict[str, AsyncClient] = {}
        self.replica = replica or f"{socket.gethostname()}-{os.getpid()}-{id(self) & 0xFFFF:x}"
        self.idle_timeout = idle_timeout
        self.client_options = client_options
        self.client: AsyncClient = None  # type: ignore[assignment]
        self.store: TriggerStore = None  # type: ignore[assignment]
        self.running: dict[str, RunningTrigger] = {}
        self.recent: list[Invocation] = []
        self._watch_task: asyncio.Task[None] | None = None
        self._log_task: asyncio.Task[None] | None = None
        self._retry_task: asyncio.Task[None] | None = None
        self._unlogged: dict[str, list[Invocation]] = {}
        self._ready = asyncio.Event()
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Connect, load the definitions, start the enabled triggers, and keep watching."""
        options = {"source": f"trigger-runner-{self.replica}", "mode": "asyncio", **self.client_options}
        self.client = await connect_async(self.url, **options)
        self.store = TriggerStore(self.client.js)
        await invocation_log.ensure_log_stream(self.client.js)
        self._watch_task = asyncio.get_running_loop().create_task(self._watch(), name="trigger-watch")
        self._log_task = asyncio.get_running_loop().create_task(self._log_loop(), name="trigger-log")
        self._retry_task = asyncio.get_running_loop().create_task(self._retry_loop(), name="trigger-retry")
        for spec in await self.store.list():
            await self._apply(spec.name, spec)
        self._ready.set()

    async def client_for(self, identity: str | None) -> AsyncClient:
        """The connection a trigger acts through: its ``run_as`` identity's own when this runner
        has ``credentials`` (a function identity -> an access token of that identity;
        ``evfabric serve`` gives one under access control), else the runner's. The broker then
        grants a trigger exactly its identity's rights."""
        if identity is None or self.credentials is None:
            return self.client
        client = self._clients.get(identity)
        if client is None:
            options = {"source": f"trigger-runner-{self.replica}-{identity}", "mode": "asyncio", **self.client_options}
            urls = [self.url] if isinstance(self.url, str) else self.url
            bare = [_without_credentials(u) for u in urls]
            client = self._clients[identity] = await connect_async(bare, token=self.credentials(identity), **options)
        return client

    async def _watch(self) -> None:
        while True:
            try:
                async for name, spec in self.store.watch():
                    await self._apply(name, spec)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("trigger definitions watch failed; retrying")
                await asyncio.sleep(1.0)

    async def _apply(self, name: str, spec: TriggerSpec | None) -> None:
        async with self._lock:
            current = self.running.get(name)
            if current is not None and spec is not None and current.spec == spec:
                return
            if current is not None:
                await current.stop()
                del self.running[name]
            if spec is None or not spec.enabled:
                self._failed.pop(name, None)
                return
            self._failed.pop(name, None)
            rt = RunningTrigger(self, spec)
            try:
                await rt.start()
            except Exception as exc:
                # e.g. its identity may not read the topic yet: tried again every retry_every seconds
                log.error("trigger %s could not start: %r", name, exc)
                await rt.executor.close()
                self._failed[name] = spec
                return
            self.running[name] = rt

    async def _retry_loop(self) -> None:
        while True:
            await asyncio.sleep(self.retry_every)
            for name, spec in list(self._failed.items()):
                await self._apply(name, spec)

    def _on_invocation(self, inv: Invocation) -> None:
        self.recent.append(inv)
        if len(self.recent) > 1000:
            del self.recent[:500]
        _record_metrics(inv)
        if inv.status != "ok":
            log.warning("trigger %s invocation %s (attempt %d): %s", inv.trigger, inv.status, inv.attempt, inv.error)
        self._unlogged.setdefault(inv.trigger, []).append(inv)

    async def _log_loop(self) -> None:
        while True:
            await asyncio.sleep(invocation_log.FLUSH_EVERY)
            await self._flush_log()

    async def _flush_log(self) -> None:
        pending, self._unlogged = self._unlogged, {}
        for trigger, records in pending.items():
            try:
                await invocation_log.publish_invocations(self.client.nc, trigger, records)
            except Exception:
                log.debug("could not publish invocation log of %s", trigger, exc_info=True)

    def status(self) -> dict[str, dict[str, Any]]:
        """Per running trigger: workers, backlog and counters in this replica."""
        return {name: rt.executor.status() for name, rt in self.running.items()}

    async def stop(self) -> None:
        """Stop every trigger and disconnect (unfinished events are redelivered to other replicas)."""
        for task in (self._watch_task, self._log_task, self._retry_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        for rt in list(self.running.values()):
            await rt.stop()
        self.running.clear()
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
        if self.client is not None:
            await self._flush_log()
        if self.client is not None:
            await self.client.close()


class RunnerThread:
    """A :class:`TriggerRunner` on its own event-loop thread, for synchronous programs and tests."""

    def __init__(self, url: str | list[str], **options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="trigger-runner", daemon=True)
        self.thread.start()
        self.runner = TriggerRunner(url, **options)
        try:
            self._call(self.runner.start(), 30)
        except BaseException:  # no broker, or refused: do not leave the loop thread behind
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            raise

    def _call(self, coro: Any, timeout: float) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def status(self) -> dict[str, dict[str, Any]]:
        return self._call(self._status(), 10)

    async def _status(self) -> dict[str, dict[str, Any]]:
        return self.runner.status()

    def stop(self) -> None:
        try:
            self._call(self.runner.stop(), 30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


def check_url(url: str) -> str:
    """Refuse an obviously wrong URL early, with the reason."""
    if not isinstance(url, str) or "://" not in url:
        raise ConfigError(f"a broker URL looks like nats://host:port, got {url!r}")
    return url
