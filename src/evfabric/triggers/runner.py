"""The trigger runner: every enabled trigger, acting on its events; any number of replicas.

    runner = TriggerRunner("nats://127.0.0.1:4222", key=TriggerKey.in_dir(data_dir))  # or accept_unsigned=True
    await runner.start()          # watches the definitions and runs them until stop()

Each trigger gets a durable JetStream consumer named after it (``trigger_<name>``), shared by all
replicas as a consumer group, so replicas share the work and a replica that dies leaves its
unacknowledged events to the others. Definitions are watched in the fabric's key-value bucket:
creating, updating, disabling or deleting a trigger takes effect on every replica within a moment.
With ``credentials`` (as in ``evfabric serve`` under access control) each trigger consumes through
a connection of its ``run_as`` identity, so it reads only what that identity may read.

The runner starts only definitions it can trust (see :mod:`evfabric.triggers.signing`): with the
service's ``key`` it refuses every definition whose MAC does not verify; with ``credentials``
it refuses a definition without ``run_as`` (it never acts on its own, administrative,
connection) and, through ``may_act_as``, one whose creator could not act as its ``run_as``
identity or may not define its kind of action. A refused definition, or one whose action
cannot be imported, is reported once (log line, :meth:`TriggerRunner.failures`, a record in
its invocation log, an event on ``cca.trigger.failed``) and the other triggers keep running.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import nats.js.errors as jserr

from evfabric.core.errors import ConfigError
from evfabric.core.event import BEST_EFFORT, RELIABLE, Event, new_id, now_us
from evfabric.core.filters import Filter
from evfabric.core.topics import Pattern
from evfabric.fabric.aio import AsyncClient, connect_async
from evfabric.fabric.subjects import pattern_filter
from evfabric.fabric.subscription import FabricSubscription
from evfabric.triggers import log as invocation_log
from evfabric.triggers.actions import importable_cwd, resolve_action
from evfabric.triggers.executor import Invocation, TriggerExecutor
from evfabric.triggers.signing import TriggerKey, open_envelope
from evfabric.triggers.spec import TriggerSpec, validate_spec
from evfabric.triggers.store import TriggerStore, decode_spec
from evfabric.triggers.webhook import WebhookGuard

__all__ = ["FAILED_TOPIC", "MayActAs", "RunningTrigger", "TriggerRunner", "delete_consumers", "group_name"]

#: Where runners report a trigger they refused or could not start (best effort).
FAILED_TOPIC = "cca.trigger.failed"

MayActAs = Callable[[str | None, TriggerSpec], str | None]
"""``may_act_as(creator, spec)``: None when ``creator`` (None: the key holder) may have ``spec``
run as ``spec.run_as`` with its kind of action, else why not."""


class Refused(Exception):
    """A stored definition the runner will not start (the message says why)."""

log = logging.getLogger("evfabric.triggers")


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]).geturl()


def group_name(trigger: str) -> str:
    """The consumer group (durable consumer) a trigger's replicas share."""
    return f"trigger_{trigger}"


async def delete_consumers(client: AsyncClient, trigger: str, pattern: str) -> None:
    """Delete the consumers of ``trigger`` (on the streams of ``pattern``'s topics); idempotent.

    Called by :meth:`TriggerManager.delete` and by each replica once it has stopped the trigger:
    a replica still pulling when the manager deleted a consumer re-creates it (its consumer "was
    deleted"), and deletes it itself once it sees the definition go, so none is left behind."""
    prefix = group_name(trigger) + "_"
    js = client.js
    streams = {t.stream for t in await client.catalog.matching(Pattern(pattern))}
    for stream in sorted(streams):  # topics share streams: each stream once
        try:
            for info in await js.consumers_info(stream):
                if info.name.startswith(prefix):
                    await js.delete_consumer(stream, info.name)
        except jserr.NotFoundError:
            continue


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
        invoke = resolve_action(spec.action, threads=None, guard=runner.guard)  # imports a python target
        self.executor = TriggerExecutor(spec, invoke, runner.replica, runner._on_invocation,
                                        idle_timeout=runner.idle_timeout)
        # synchronous Python actions run on the executor's own pool (max_concurrency threads)
        self.executor.invoke = resolve_action(spec.action, threads=self.executor.threads, guard=runner.guard)
        self.sub: FabricSubscription | None = None
        self.client: AsyncClient = runner.client

    async def start(self) -> None:
        spec = self.spec
        self.client = client = await self.runner.client_for(spec.run_as)
        pat = Pattern(spec.pattern)
        _, exact = pattern_filter(pat)
        sub = FabricSubscription(
            client, pat, Filter(spec.filter) if spec.filter else None, group_name(spec.name), RELIABLE,
            group_name(spec.name), exact, handler=self.executor,
        )
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
    """Runs the enabled triggers of a fabric; start several (processes or hosts) for HA and scale.

    ``key``: the service's :class:`TriggerKey`; definitions that do not verify are refused.
    Without it, ``accept_unsigned=True`` must say that every definition is trusted (a broker
    without access control). ``credentials``: identity -> access token, to act as each
    trigger's ``run_as``; ``may_act_as``: see :data:`MayActAs`. ``webhook_allow``: networks
    webhooks may reach although not global (see :mod:`evfabric.triggers.webhook`).
    """

    def __init__(
        self,
        url: str | list[str],
        *,
        replica: str | None = None,
        idle_timeout: float = 1.0,
        credentials: Callable[[str], str] | None = None,  # identity -> access token
        may_act_as: MayActAs | None = None,
        key: TriggerKey | None = None,
        accept_unsigned: bool = False,
        webhook_allow: list[str] | tuple[str, ...] = (),
        retry_every: float = 5.0,
        **client_options: Any,
    ) -> None:
        if key is None and not accept_unsigned:
            raise ConfigError("a trigger runner verifies definitions with the service's key: give "
                              "key=TriggerKey.in_dir(data_dir), or accept_unsigned=True on a broker without access control")
        self.key = key
        self.may_act_as = may_act_as
        self.guard = WebhookGuard(webhook_allow)
        self.retry_every = retry_every
        self._failed: dict[str, tuple[TriggerSpec, str | None]] = {}  # could not start: retried
        self.refusals: dict[str, str] = {}  # name -> why it does not run (reported once)
        self.counts = {"refused": 0, "start_failed": 0}
        self._totals: dict[str, dict[str, int]] = {}
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
        self._reports: set[asyncio.Task[None]] = set()
        self._ready = asyncio.Event()
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Connect, load the definitions, start the enabled triggers, and keep watching."""
        options = {"source": f"trigger-runner-{self.replica}", "mode": "asyncio", **self.client_options}
        importable_cwd()
        self.client = await connect_async(self.url, **options)
        self.store = TriggerStore(self.client.js, nc=self.client.nc)
        await invocation_log.ensure_log_stream(self.client.js)
        self._watch_task = asyncio.get_running_loop().create_task(self._watch(), name="trigger-watch")
        self._log_task = asyncio.get_running_loop().create_task(self._log_loop(), name="trigger-log")
        self._retry_task = asyncio.get_running_loop().create_task(self._retry_loop(), name="trigger-retry")
        for name, data in await self.store.stored():
            await self._apply_safely(name, data)
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
                async for name, data in self.store.watch():
                    await self._apply_safely(name, data)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("trigger definitions watch failed; retrying")
                await asyncio.sleep(1.0)

    def _admit(self, name: str, data: bytes) -> tuple[TriggerSpec, str | None]:
        """The spec and creator of stored ``data`` if the runner may start it, else :class:`Refused`."""
        try:
            envelope = open_envelope(data)
        except ConfigError as exc:
            raise Refused(str(exc)) from None
        if self.key is not None and not self.key.verifies(name, envelope):
            raise Refused("its signature does not verify: it was not written through the evfabric service")
        try:
            spec = validate_spec(decode_spec(envelope.spec))
        except (ConfigError, ValueError) as exc:
            raise Refused(str(exc)) from None
        if spec.name != name:
            raise Refused(f"it is stored under {name!r} but names itself {spec.name!r}")
        if self.credentials is not None and spec.run_as is None:
            raise Refused("it has no run_as identity, and a trigger never runs on the runner's own connection")
        if self.may_act_as is not None:
            why = self.may_act_as(envelope.creator, spec)
            if why is not None:
                raise Refused(why)
        return spec, envelope.creator

    async def _apply_safely(self, name: str, data: bytes | None) -> None:
        try:
            await self._apply(name, data)
        except Exception:  # one trigger's trouble never stops the watch of the others
            log.exception("trigger %s: applying its definition failed", name)

    async def _apply(self, name: str, data: bytes | None) -> None:
        async with self._lock:
            try:
                admitted = None if data is None else self._admit(name, data)
            except Refused as exc:
                await self._stop_one(name)
                self._refuse(name, str(exc))
                return
            if admitted is None:  # deleted
                current = self.running.get(name)
                await self._stop_one(name)
                self.refusals.pop(name, None)
                if current is not None:
                    await delete_consumers(self.client, name, current.spec.pattern)
                return
            await self._run(name, *admitted)

    async def _stop_one(self, name: str) -> None:
        self._failed.pop(name, None)
        current = self.running.pop(name, None)
        if current is not None:
            await current.stop()

    async def _run(self, name: str, spec: TriggerSpec, creator: str | None) -> None:
        current = self.running.get(name)
        if current is not None and current.spec == spec:
            return
        await self._stop_one(name)
        if not spec.enabled:
            self.refusals.pop(name, None)
            return
        try:
            rt = RunningTrigger(self, spec)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # cannot import (even SystemExit at import): this trigger only
            self._refuse(name, f"its action cannot be loaded: {exc}")
            return
        try:
            await rt.start()
        except Exception as exc:
            # e.g. its identity may not read the topic yet: tried again every retry_every seconds
            await rt.executor.close()
            self._failed[name] = (spec, creator)
            self._refuse(name, f"it could not start (retried every {self.retry_every:g} s): {exc}", count="start_failed")
            return
        self.refusals.pop(name, None)
        self.running[name] = rt

    def _refuse(self, name: str, why: str, count: str = "refused") -> None:
        """Record that ``name`` does not run; report it when the reason is new (not at each retry)."""
        if self.refusals.get(name) == why:
            return
        self.refusals[name] = why
        self.counts[count] += 1
        log.error("trigger %s does not run: %s", name, why)
        self._on_invocation(Invocation(trigger=name, replica=self.replica, started=time.time(), duration=0.0,
                                       events=0, attempt=0, status="not_started", error=why,
                                       totals=dict(self._totals.get(name, {}))), real=False)
        if self.client is not None:
            now = now_us()
            event = Event(id=new_id(now), topic=FAILED_TOPIC, source=self.client.source, time=now,
                          type="evfabric.trigger.failed", delivery="best_effort",
                          body={"trigger": name, "replica": self.replica, "error": why, "reason": count})
            task = asyncio.get_running_loop().create_task(self._report(event))
            self._reports.add(task)
            task.add_done_callback(self._reports.discard)

    async def _report(self, event: Event) -> None:
        try:
            await self.client.publish_event(event, delivery=BEST_EFFORT, wait=False)
        except Exception:
            log.warning("could not report on %s that trigger %s does not run", FAILED_TOPIC, event.body, exc_info=True)

    def failures(self) -> dict[str, str]:
        """Per trigger that does not run in this replica: why (refused, cannot load, cannot start yet)."""
        return dict(self.refusals)

    async def _retry_loop(self) -> None:
        while True:
            await asyncio.sleep(self.retry_every)
            for name, (spec, creator) in list(self._failed.items()):
                async with self._lock:
                    if self._failed.get(name) == (spec, creator):
                        await self._run(name, spec, creator)

    def _on_invocation(self, inv: Invocation, real: bool = True) -> None:
        """Record an invocation (``real=False``: a record that the trigger does not run, already logged)."""
        self.recent.append(inv)
        if len(self.recent) > 1000:
            del self.recent[:500]
        if real:
            self._totals[inv.trigger] = inv.totals
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
            await _close_logged(client)
        self._clients.clear()
        if self.client is not None:
            await self._flush_log()
        if self.client is not None:
            await _close_logged(self.client)


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


async def _close_logged(client: Any) -> None:
    """Close a client; events it could not confirm (its close raises) are logged, and stopping goes on."""
    try:
        await client.close()
    except Exception as exc:
        log.warning("trigger runner: a connection closed with unconfirmed events: %s", exc)
