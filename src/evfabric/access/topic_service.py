"""``TopicService``: the only way users create, change and delete streams and consumers.

Under access control no user may call the JetStream API's stream or consumer creation itself
(NATS would check only the API subject, never the configuration: a user could ``mirror`` or
``source`` another user's stream, capture ``_INBOX.>``, ``republish`` into another's topic, or
push a consumer's messages onto another's subject). Instead the client sends a request to
``$EVF.API.<KIND>.<OP>.<token id>`` (:mod:`evfabric.fabric.topic_api`); the broker lets each
token publish only on its own token id, so the service knows who asks. The service runs with
administrative credentials and

* ``TOPIC.CREATE``: records the topic in the catalog and builds its namespace's stream, if none,
  from a validated :class:`TopicConfig` (so only evfabric's own subjects and settings exist: no
  mirror, sources, republish or foreign subjects); the caller must own the topic, or may
  register it (a free topic, or one in its namespace), and must stay within its
  :class:`Quotas` (``max_bytes`` capped; a topic joining an existing stream reserves nothing
  more). A namespace stream holds one owner's topics: joining another's is refused;
* ``TOPIC.UPDATE`` / ``TOPIC.DELETE``: the owner (or the owner of a service owner, an admin);
* ``CONSUMER.CREATE``: a named pull consumer (no ``deliver_subject``) on an evfabric stream,
  whose filters stay within the caller's subscribe rights (a partial grant gets a partial
  consumer; no filter means the whole shared stream), within the consumer quota. The consumer is recorded in the store, and the broker
  then lets that identity pull from, acknowledge, inspect and delete exactly that consumer.

It also deletes a topic that is no longer registered (unregistered, or its owner deleted), so
that whoever registers the name next reads nothing old: every catalog record it makes is stamped
with the registration's creation time, and a topic whose stamp does not match a current
registration is deleted, its events purged from its stream (:meth:`TopicService.sweep`, at start
and on every change; streams stamped before the catalog existed are deleted the same way).
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import threading
from collections.abc import Callable
from typing import Any

import nats
import nats.js.errors as jserr
from nats.js.api import ConsumerConfig

from evfabric.access import policy
from evfabric.access.audit import JetStreamAudit
from evfabric.access.quotas import Quotas, check_consumers, check_topic, is_scan_name, scan_shape_error
from evfabric.access.store import AccessStore
from evfabric.core.errors import AccessDenied, AlreadyExists, ConfigError, EvfabricError, NotFound
from evfabric.fabric.catalog import catalog_get, catalog_get_many, catalog_keys, ensure_catalog, namespace_of
from evfabric.fabric.positions import SCAN_PREFIX
from evfabric.fabric.roundtrip import flush
from evfabric.fabric.streams import (
    TopicConfig,
    adopted,
    create_topic_direct,
    delete_topic_direct,
    describe_topic,
    namespace_stream,
    topic_record,
    update_topic_direct,
)
from evfabric.fabric.subjects import stream_subjects
from evfabric.fabric.topic_api import SERVICE_PREFIX, ServiceError, error_reply

__all__ = ["REGISTERED_META", "TopicService"]

#: The service answers only on reply inboxes: a request whose reply subject is anything else (a
#: JetStream API call, a KV key, another's topic) would make the service publish there with its
#: administrative rights (a confused deputy).
REPLY_PREFIX = "_INBOX."

log = logging.getLogger("evfabric.access.topics")

#: Stream metadata key holding the creation time of the registration the stream belongs to.
REGISTERED_META = "evfabric_registered"
QUEUE = "evfabric-topic-service"
DEAD_LETTERS = "cca.deadletter"


def _stamp(created: float) -> str:
    return repr(float(created))


class TopicService:
    """Serves topic and consumer requests on ``url`` (administrative credentials) for ``store``.

    ``applied``: called (in a worker thread) after the store changed on a request's behalf and
    before the answer goes out; :class:`~evfabric.access.control.AccessControl` passes its
    ``reload`` so that the caller's new rights are in force when it gets the answer.
    """

    def __init__(self, store: AccessStore, url: str | list[str], *, quotas: Quotas | None = None,
                 applied: Callable[[], None] | None = None, poll_interval: float = 1.0,
                 tls: ssl.SSLContext | None = None, admission: Callable[[str, str], None] | None = None) -> None:
        self.store = store
        self.admission = admission  # (server id, identity) -> None, or QuotaExceeded (connections)
        self.audit = JetStreamAudit(store)  # administrators' direct stream and consumer changes
        self.tls = tls
        self.url = url
        self.quotas = quotas or Quotas()
        self.applied = applied
        self.poll_interval = poll_interval
        self.requests = 0
        self.refused = 0
        self.swept = 0
        self.last_error: Exception | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._nc: Any = None
        self._js: Any = None
        self._version = -1
        self._serial: asyncio.Lock | None = None  # one request or sweep at a time (quotas, stamps)

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the service thread serves."""
        return self._thread is not None and self._thread.is_alive() and self._nc is not None

    def start(self, timeout: float = 20.0) -> TopicService:
        """Connect and serve in a background thread; return once subscribed (raise if not)."""
        self._thread = threading.Thread(target=self._run, name="evfabric-topic-service", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._nc is None:
            self.stop()
            raise ConfigError(f"topic service: could not start ({self.last_error})")
        return self

    def stop(self) -> None:
        """Stop serving and close the connection."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and loop.is_running():
            loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main())
        except Exception as exc:
            self.last_error = exc
            log.error("topic service stopped: %s", exc)
        finally:
            self._ready.set()
            loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        self._serial = asyncio.Lock()
        urls = self.url if isinstance(self.url, list) else [self.url]
        for attempt in range(40):  # the broker may still be loading the service's session token
            try:
                self._nc = await nats.connect(urls, connect_timeout=2, max_reconnect_attempts=-1,
                                              reconnect_time_wait=0.5, allow_reconnect=True, tls=self.tls)
                break
            except Exception as exc:
                self.last_error = exc
                if attempt == 39:
                    raise
                await asyncio.sleep(0.25)
        self._js = self._nc.jetstream()
        await self._framework_streams()
        await self._nc.subscribe(f"{SERVICE_PREFIX}.>", queue=QUEUE, cb=self._on_request)
        await self.audit.start(self._nc)
        await flush(self._nc)
        self._ready.set()
        try:
            while not self._stop.is_set():
                await self._maybe_sweep()
                try:
                    await asyncio.wait_for(self._stop.wait(), self.poll_interval)
                except TimeoutError:
                    pass
        finally:
            await self._nc.close()

    async def _framework_streams(self) -> None:
        """The catalog, and the streams of the reserved topics users publish to but may not
        create: the dead letters (``cca.deadletter``), capped like a user topic, oldest first."""
        await ensure_catalog(self._js)
        cfg = TopicConfig(DEAD_LETTERS, max_bytes=self.quotas.topic_bytes, max_age=7 * 86400.0)
        try:
            await create_topic_direct(self._js, cfg, exist_ok=True)
        except ConfigError as exc:  # there already, with settings an administrator chose
            log.info("topic service: %s", exc)

    # --- sweeping streams of topics that are gone ---------------------------------------------

    async def _maybe_sweep(self) -> None:
        try:
            version = self.store.version()
            if version != self._version:
                await self.sweep()
                self._version = version
        except Exception as exc:  # keep serving; the next change tries again
            self.last_error = exc
            log.error("topic service: sweep failed: %s", exc)

    async def sweep(self) -> list[str]:
        """Delete every stream made by this service whose registration is gone (or is a newer
        registration of the same name); return the deleted streams."""
        assert self._serial is not None
        async with self._serial:
            return await self._sweep()

    async def _sweep(self) -> list[str]:
        names = await catalog_keys(self._js, "t")
        records = await catalog_get_many(self._js, "t", names)
        streams = await self._js.streams_info()  # streams of topics from before the catalog
        snap = self.store.snapshot()  # after listing: a listed topic's registration is in it
        gone: list[str] = []
        dropped: list[tuple[str, str]] = []
        for rec in records:
            stamp, topic = rec.get(REGISTERED_META), rec["config"]["name"]
            if stamp is None:
                continue  # not made by the service: an administrator's, or from before access control
            reg = snap.topics.get(topic)
            if reg is None or _stamp(reg.created) != stamp:
                dropped += [(rec["stream"], c) for c in await delete_topic_direct(self._js, topic)]
                gone.append(topic)
        for si in streams:
            meta = si.config.metadata or {}
            stamp, topic = meta.get(REGISTERED_META), meta.get("evfabric_topic")
            if stamp is None or topic is None:
                continue
            reg = snap.topics.get(topic)
            if reg is None or _stamp(reg.created) != stamp:
                await self._js.delete_stream(si.config.name)
                gone.append(si.config.name)
                dropped += [(s, c) for s, c, _ in snap.consumers if s == si.config.name]
        if gone:
            self.store.forget_consumers(dropped)
            self.swept += len(gone)
            log.info("topic service: deleted the topics of unregistrations: %s", ", ".join(gone))
        return gone

    # --- requests ----------------------------------------------------------------------------

    async def _on_request(self, msg: Any) -> None:
        self.requests += 1
        try:
            parts = msg.subject.split(".")
            if len(parts) != 5:
                raise ConfigError(f"{msg.subject!r} is not $EVF.API.<KIND>.<OP>.<token id>")
            kind, op, token_id = parts[2].lower(), parts[3].lower(), parts[4]
            actor = self._actor(token_id)
            payload = json.loads(msg.data or b"{}")
            if not isinstance(payload, dict):
                raise ConfigError("the request must be a JSON object")
            handler = getattr(self, f"_{kind}_{op}", None)
            if handler is None:
                raise NotFound(f"no operation {kind}.{op}")
            assert self._serial is not None
            async with self._serial:
                result = await handler(actor, token_id, payload)
            reply = json.dumps({"ok": result}).encode()
        except (EvfabricError, jserr.APIError, ValueError, TypeError, KeyError) as exc:
            self.refused += 1
            log.info("topic service refused %s: %s", msg.subject, exc)
            reply = error_reply(exc if isinstance(exc, EvfabricError) else ConfigError(str(exc)))
        if msg.reply.startswith(REPLY_PREFIX):  # never a caller-chosen subject: the service's rights are an admin's
            await self._nc.publish(msg.reply, reply)
        elif msg.reply:
            log.warning("topic service: not answering %s on %r (not a reply inbox)", msg.subject, msg.reply)

    def _actor(self, token_id: str) -> str:
        info = self.store.get_token(token_id)
        if not info.valid():
            raise AccessDenied("invalid, expired or revoked token")
        return info.identity

    async def _changed(self) -> None:
        if self.applied is not None:
            await asyncio.to_thread(self.applied)

    def _owned_topics(self, snap: policy.Snapshot, holder: str) -> set[str]:
        """The topics whose quotas ``holder`` holds (its own and its services')."""
        return {t.name for t in snap.topics.values() if policy.quota_holder(snap, t.owner) == holder}

    async def _owned_configs(self, snap: policy.Snapshot, owner: str, joining: str | None) -> list[TopicConfig]:
        """One config per stream holding ``owner``'s topics (quotas count streams), leaving out
        the stream ``joining`` (a topic joining an existing stream reserves nothing more)."""
        recs = await catalog_get_many(self._js, "t", sorted(self._owned_topics(snap, owner)))
        per_stream = {r["stream"]: TopicConfig(**r["config"]) for r in recs if r["stream"] != joining}
        return list(per_stream.values())

    async def _check_namespace(self, snap: policy.Snapshot, owner: str, config: TopicConfig) -> str | None:
        """The existing stream ``config`` would join (None: a new one); AccessDenied when it
        holds another identity's topics (a shared stream's limits are every topic's)."""
        ns = await catalog_get(self._js, "n", config.namespace)
        if ns is None:
            return None
        names = await catalog_keys(self._js, "t", config.namespace)
        names += [config.namespace] if await catalog_get(self._js, "t", config.namespace) else []
        strangers = sorted({o for o in (policy.owner_of(snap, n) for n in names) if o is not None and o != owner})
        if strangers and not snap.is_admin(owner):
            raise AccessDenied(f"create topic {config.name!r}: namespace {config.namespace!r} shares one stream, "
                               f"which holds topics of {strangers[0]!r}; choose a topic in another namespace "
                               f"(e.g. users.{owner}.{config.name.split('.')[-1]})")
        return str(ns["stream"])

    async def _conn_check(self, actor: str, token_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        """A client just connected to the server ``payload["server_id"]``: may it stay
        (the connection quota, :mod:`evfabric.access.connections`)?"""
        if self.admission is not None:
            await asyncio.to_thread(self.admission, str(payload.get("server_id") or ""), actor)
        return {}

    async def _topic_create(self, actor: str, token_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        config = TopicConfig(**payload["config"])
        if config.raw:
            raise ConfigError(f"create topic {config.name!r}: raw topics read foreign subjects, which access control "
                              "closes to everyone; devices publish on their identity's evfabric subject instead "
                              "(docs/wire.md 5)")
        if payload.get("adopt"):
            config = await adopted(self._js, config)
        snap = self.store.snapshot()
        rec = snap.topics.get(config.name)
        if rec is None:
            if not policy.can_register(snap, actor, config.name):
                raise AccessDenied(f"create topic: {config.name!r} is reserved or in another identity's namespace")
            joining = await self._check_namespace(snap, actor, config)
            rec = self.store.register_topic(config.name, actor, config.description)  # AlreadyExists on overlap
            snap = self.store.snapshot()
            await self._changed()
        elif not policy.can_manage(snap, actor, rec.name):
            raise AccessDenied(f"create topic: {actor!r} does not own {config.name!r}")
        else:
            joining = await self._check_namespace(snap, rec.owner, config)
        if not snap.is_admin(actor):
            holder = policy.quota_holder(snap, rec.owner)
            config = check_topic(self.quotas, holder, config, await self._owned_configs(snap, holder, joining))
        existing = await catalog_get(self._js, "t", config.name)
        if existing is not None:
            if existing.get(REGISTERED_META) != _stamp(rec.created):
                raise AlreadyExists(f"create topic {config.name!r}: a topic from another registration holds it; "
                                    "an administrator must delete it first")
            if not payload.get("exist_ok"):
                raise AlreadyExists(f"create topic {config.name!r}: it exists")
            return (await describe_topic(self._js, config.name)).as_dict()
        info = await create_topic_direct(self._js, config, record={REGISTERED_META: _stamp(rec.created)})
        return info.as_dict()

    def _managed(self, actor: str, name: str, what: str) -> tuple[policy.Snapshot, Any]:
        snap = self.store.snapshot()
        rec = snap.topics.get(name)
        if rec is None:
            raise NotFound(f"{what} {name!r}: the topic is not registered")
        if not policy.can_manage(snap, actor, name):
            raise AccessDenied(f"{what}: {actor!r} does not own {name!r}")
        return snap, rec

    async def _topic_update(self, actor: str, token_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        name, changes = payload["name"], dict(payload.get("changes") or {})
        snap, rec = self._managed(actor, name, "update topic")
        current = TopicConfig(**(await topic_record(self._js, name, f"update topic {name!r}"))["config"])
        new = TopicConfig(**{**current.as_dict(), **changes, "name": name})
        if not snap.is_admin(actor):
            holder = policy.quota_holder(snap, rec.owner)
            new = check_topic(self.quotas, holder, new, await self._owned_configs(snap, holder, current.stream))
        changed = {k: v for k, v in new.as_dict().items() if k != "name" and v != getattr(current, k)}
        return (await update_topic_direct(self._js, name, changed)).as_dict()

    async def _topic_delete(self, actor: str, token_id: str, payload: dict[str, Any]) -> bool:
        name = payload["name"]
        snap, _ = self._managed(actor, name, "delete topic")
        stream = namespace_stream(name)
        deleted = set(await delete_topic_direct(self._js, name))  # NotFound if no such topic
        self.store.forget_consumers([(s, c) for s, c, _ in snap.consumers if s == stream and c in deleted])
        return True

    async def _consumer_create(self, actor: str, token_id: str, payload: dict[str, Any]) -> bool:
        stream = payload["stream"]
        config = ConsumerConfig.from_response(dict(payload["config"]))
        snap = self.store.snapshot()
        rec = next((t for t in snap.topics.values() if namespace_stream(t.name) == stream), None)
        if rec is None:
            raise NotFound(f"create consumer: {stream!r} is not the stream of a registered topic")
        name = config.durable_name or config.name
        if not name:
            raise ConfigError("create consumer: give the consumer a name (durable_name)")
        if config.deliver_subject is not None or config.deliver_group is not None:
            raise AccessDenied("create consumer: only pull consumers (no deliver_subject) may be created")
        admin = snap.is_admin(actor)
        allowed = policy.subscribe_filters(snap, actor)
        try:
            existing: ConsumerConfig | None = (await self._js.consumer_info(stream, name)).config
        except jserr.NotFoundError:
            existing = None
        whole = stream_subjects(namespace_of(rec.name))  # no filter: the whole (shared) stream
        for cfg in (config, existing):
            if cfg is None or admin:
                continue
            filters = cfg.filter_subjects or ([cfg.filter_subject] if cfg.filter_subject else None)
            for f in filters or whole:
                if not any(policy.filter_covers(a, f) for a in allowed):
                    raise AccessDenied(f"create consumer: {actor!r} may not read {f!r} (its subscribe rights do "
                                       "not cover that filter)")
        if existing is not None and not admin:
            holders = {who for s_, c_, who in snap.consumers if s_ == stream and c_ == name}
            if holders != {actor}:
                whose = f"{sorted(holders)[0]}'s" if holders else "an administrator's"
                raise AccessDenied(f"create consumer {name!r}: it exists and is {whose}; only its holder may "
                                   "change it or read through it (choose another name)")
        scan = is_scan_name(name)
        why = scan_shape_error(config) if scan and not admin else None
        if why is not None:
            raise ConfigError(f"create consumer {name!r}: names starting with {SCAN_PREFIX!r} are position scans: {why}")
        # consumers and position scans count apart
        holder = policy.quota_holder(snap, actor)  # a user's services share its quotas
        held = {(s, c) for s, c, who in snap.consumers
                if policy.quota_holder(snap, who) == holder and is_scan_name(c) == scan}
        if (stream, name) not in held and not admin:
            live = {c.name for c in await self._js.consumers_info(stream)}
            stale = [(s, c) for s, c in held if s == stream and c not in live]
            self.store.forget_consumers(stale)
            check_consumers(self.quotas, holder, len(held) - len(stale), scans=scan)
        if (stream, name) not in held:
            self.store.record_consumer(stream, name, actor)
            await self._changed()
        try:
            await self._js.add_consumer(stream, config)
        except jserr.BadRequestError as exc:
            raise ServiceError(f"create consumer {name!r}: {exc.description}", exc.err_code) from None
        return True
