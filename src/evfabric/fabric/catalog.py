"""The topic catalog: which stream stores a topic, and the topic's settings, one lookup away.

Topics share streams (see :mod:`evfabric.fabric.streams`): one stream per *namespace*, so the
broker's cost grows with the namespaces, not with the topics. What a topic is (its settings, its
stream) lives in the JetStream key-value bucket ``EVF_TOPICS`` (stream ``KV_EVF_TOPICS``, one
message per key, read with a direct get):

* ``t.<topic>``: the topic's record (``{"config": {...}, "stream": ..., "created": ...}``);
* ``n.<namespace>``: the namespace's record (``{"stream": ..., "settings": {...}}``), present
  while its stream exists;
* ``r.<topic>``: present (``{}``) while ``<topic>`` is a raw topic: the index a best-effort
  subscription reads to find the raw topics below its pattern's head (one request).

A client never lists the catalog to connect or publish: :class:`TopicCache` resolves the topic
covering a published topic on demand (one lookup for the namespace, then one per candidate topic
name, run together), keeps the answer, and forgets it when the broker says the stream is missing
or the client itself changes the topic. Only a subscription whose pattern starts with a wildcard
(or ``evfabric topic list``) reads every record.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import nats.errors
import nats.js.errors as jserr
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig

from evfabric.core.topics import MANY, ONE, Pattern

__all__ = ["BUCKET", "CATALOG_STREAM", "MISSING", "RECORD_HEADER", "TopicCache", "catalog_delete", "catalog_get", "catalog_keys",
           "catalog_put", "catalog_subject", "ensure_catalog", "namespace_of"]

log = logging.getLogger("evfabric.fabric")

BUCKET = "EVF_TOPICS"
CATALOG_STREAM = f"KV_{BUCKET}"
_SUBJECT = f"$KV.{BUCKET}"
#: topic groups whose namespace is two segments deep: ``users.<identity>``, ``cca.<group>``
DEEP_NAMESPACES = ("users", "cca")


def namespace_of(topic: str) -> str:
    """The namespace of ``topic``: its first segment (``users.<x>`` and ``cca.<x>``: two)."""
    parts = topic.split(".", 2)
    if parts[0] in DEEP_NAMESPACES and len(parts) > 1:
        return f"{parts[0]}.{parts[1]}"
    return parts[0]


def _key(kind: str, name: str) -> str:
    return f"{_SUBJECT}.{kind}.{name}"


def catalog_subject(kind: str, name: str) -> str:
    """The subject a ``kind`` record of ``name`` is written on (``name`` may be a NATS wildcard):
    a core subscription on it sees every new record as it is written."""
    return _key(kind, name)


async def ensure_catalog(js: JetStreamContext, replicas: int = 1) -> None:
    """Create the catalog bucket if it is missing (idempotent)."""
    cfg = StreamConfig(
        name=CATALOG_STREAM, subjects=[f"{_SUBJECT}.>"], max_msgs_per_subject=1, allow_direct=True,
        allow_rollup_hdrs=True, deny_delete=True, storage=StorageType.FILE, num_replicas=replicas,
        description="evfabric topic catalog (key-value bucket EVF_TOPICS)",
    )
    try:
        await js.add_stream(cfg)
    except jserr.BadRequestError as exc:
        if exc.err_code != 10058:  # exists (maybe with other replicas): keep it
            raise


#: the header every record carries: a message on a catalog subject without it was not written by
#: evfabric (e.g. a server's API answer sent there as the reply subject of a user's request)
RECORD_HEADER = "Evf-Record"
_REQUIRED = {"t": ("config", "stream"), "n": ("stream",), "r": ()}


def _valid(kind: str, msg: Any) -> dict[str, Any] | None:
    """The record in ``msg`` if evfabric wrote it, else None (logged: it is ignored)."""
    if not msg.data:
        return None
    try:
        value = json.loads(msg.data) if (msg.headers or {}).get(RECORD_HEADER) == "1" else None
    except ValueError:
        value = None
    if not isinstance(value, dict) or any(k not in value for k in _REQUIRED.get(kind, ())):
        log.warning("catalog: the record on %s is not evfabric's (a server's answer sent there?); ignored",
                    msg.subject)
        return None
    return value


async def catalog_get(js: JetStreamContext, kind: str, name: str) -> dict[str, Any] | None:
    """The record ``kind`` (``t`` topic, ``n`` namespace) of ``name``, or None (also for a message
    on its subject that evfabric did not write)."""
    try:
        msg = await js.get_last_msg(CATALOG_STREAM, _key(kind, name), direct=True)
    except jserr.NotFoundError:
        return None
    except (nats.errors.NoRespondersError, jserr.ServiceUnavailableError):
        return None  # no catalog yet (direct gets have no responder without the stream)
    return _valid(kind, msg)


async def catalog_put(js: JetStreamContext, kind: str, name: str, value: dict[str, Any], *,
                      create: bool = False) -> bool:
    """Write a record; with ``create`` only if absent (False when another is there)."""
    headers = {RECORD_HEADER: "1"}
    if create:
        headers["Nats-Expected-Last-Subject-Sequence"] = "0"
    try:
        await js.publish(_key(kind, name), json.dumps(value).encode(), headers=headers)
    except jserr.BadRequestError as exc:
        if create and exc.err_code == 10071:  # wrong last sequence: the key exists
            if await catalog_get(js, kind, name) is None:  # ...but not as a record of ours: replace it
                return await catalog_put(js, kind, name, value)
            return False
        raise
    except nats.errors.NoRespondersError:
        await ensure_catalog(js)
        return await catalog_put(js, kind, name, value, create=create)
    return True


async def catalog_delete(js: JetStreamContext, kind: str, name: str) -> None:
    """Remove a record entirely (no delete marker is left behind)."""
    try:
        await js.purge_stream(CATALOG_STREAM, subject=_key(kind, name))
    except jserr.NotFoundError:
        return


async def catalog_keys(js: JetStreamContext, kind: str, below: str | None = None) -> list[str]:
    """The names with a ``kind`` record: all, or those strictly below ``below`` (``below.x...``)."""
    filt = _key(kind, ">") if below is None else _key(kind, f"{below}.>")
    try:
        si = await js.stream_info(CATALOG_STREAM, subjects_filter=filt)
    except jserr.NotFoundError:
        return []
    prefix = len(_key(kind, ""))
    return sorted(s[prefix:] for s, n in (si.state.subjects or {}).items() if n)


async def catalog_get_many(js: JetStreamContext, kind: str, names: list[str], width: int = 64) -> list[dict[str, Any]]:
    """The records of ``names`` (missing ones left out), ``width`` lookups at a time."""
    out: list[dict[str, Any]] = []
    for i in range(0, len(names), width):
        got = await asyncio.gather(*(catalog_get(js, kind, n) for n in names[i : i + width]))
        out.extend(r for r in got if r is not None)
    return out


#: what :meth:`TopicCache.cached_cover` answers when it does not know
MISSING: Any = object()


class TopicCache:
    """A client's cache of catalog answers: topic name -> record (or None: no such topic).

    A negative answer is kept ``negative_ttl`` seconds (and after that still used while a fresh
    one is asked, see :meth:`expired`); a positive one until :meth:`forget` (the broker said the
    stream is missing, or this client changed the topic).
    """

    def __init__(self, js: JetStreamContext, negative_ttl: float = 5.0) -> None:
        self._js = js
        self.negative_ttl = negative_ttl
        self._ns: dict[str, tuple[bool, float]] = {}  # namespace -> (exists, when)
        self._topics: dict[str, tuple[dict[str, Any] | None, float]] = {}
        self._cover: dict[str, tuple[dict[str, Any] | None, float]] = {}
        self.lookups = 0  # catalog reads made (a test asserts connect makes none)

    def clear(self) -> None:
        """Forget every answer."""
        self._ns.clear()
        self._topics.clear()
        self._cover.clear()

    def note(self, record: dict[str, Any]) -> None:
        """Remember a topic record this client created, changed or read."""
        name = record["config"]["name"]
        now = time.monotonic()
        self._topics[name] = (record, now)
        self._ns[namespace_of(name)] = (True, now)
        self._cover.clear()

    def forget(self, name: str) -> None:
        """Drop what is known about topic ``name`` (and its namespace's answer)."""
        self._topics.pop(name, None)
        self._ns.pop(namespace_of(name), None)
        self._cover.clear()

    def _fresh(self, entry: tuple[Any, float] | None) -> bool:
        if entry is None:
            return False
        value, when = entry
        return bool(value) or time.monotonic() - when < self.negative_ttl

    def cached_cover(self, topic: str) -> dict[str, Any] | None:
        """The cached record of the topic covering ``topic``; ``MISSING`` when not known.
        (On every publish: a positive answer costs one dict lookup.)"""
        entry = self._cover.get(topic)
        if entry is None:
            return MISSING
        if entry[0] is not None or time.monotonic() - entry[1] < self.negative_ttl:
            return entry[0]
        return MISSING

    def answer(self, topic: str) -> dict[str, Any] | None:
        """What is known of the topic covering ``topic`` without asking the broker: the cached
        answer, else one made from cached parts (a topic record above it; its namespace known to
        have no topic), remembered; ``MISSING`` when only the broker can tell."""
        hit = self.cached_cover(topic)
        if hit is not MISSING:
            return hit
        now = time.monotonic()
        for name in _ancestry(topic):
            entry = self._topics.get(name)
            if entry is not None and entry[0] is not None:
                self._cover[topic] = entry
                return entry[0]
        ns = self._ns.get(namespace_of(topic))
        if ns is not None and not ns[0] and now - ns[1] < self.negative_ttl:
            self._cover[topic] = (None, ns[1])  # expires with the namespace's answer
            return None
        return MISSING

    def expired(self, topic: str) -> bool:
        """True when the cached answer for ``topic`` is "no topic covers it" and has expired: it
        still stands until a fresh one comes (the caller asks again without waiting for it)."""
        entry = self._cover.get(topic)
        return entry is not None and entry[0] is None and time.monotonic() - entry[1] >= self.negative_ttl

    async def _namespace(self, ns: str) -> bool:
        entry = self._ns.get(ns)
        if self._fresh(entry):
            assert entry is not None
            return entry[0]
        self.lookups += 1
        exists = await catalog_get(self._js, "n", ns) is not None
        self._ns[ns] = (exists, time.monotonic())
        return exists

    async def topic(self, name: str) -> dict[str, Any] | None:
        """The record of topic ``name`` (cached), or None."""
        entry = self._topics.get(name)
        if self._fresh(entry):
            assert entry is not None
            return entry[0]
        self.lookups += 1
        rec = await catalog_get(self._js, "t", name)
        self._topics[name] = (rec, time.monotonic())
        return rec

    async def cover(self, topic: str, fresh: bool = False) -> dict[str, Any] | None:
        """The record of the topic whose stream stores ``topic`` (the topic or one above it)."""
        if not fresh:
            hit = self.cached_cover(topic)
            if hit is not MISSING:
                return hit
        else:
            self._ns.pop(namespace_of(topic), None)
            for name in _ancestry(topic):
                self._topics.pop(name, None)
        for name in _ancestry(topic):  # a topic known above (topics do not nest): no lookup
            entry = self._topics.get(name)
            if entry is not None and entry[0] is not None:
                self._cover[topic] = entry
                return entry[0]
        found: dict[str, Any] | None = None
        if await self._namespace(namespace_of(topic)):
            for rec in await asyncio.gather(*(self.topic(n) for n in _ancestry(topic))):
                if rec is not None:
                    found = rec
                    break
        self._cover[topic] = (found, time.monotonic())
        return found

    async def matching(self, pattern: Pattern) -> list[dict[str, Any]]:
        """The records of every topic whose events ``pattern`` may match."""
        from evfabric.fabric.subjects import pattern_reaches

        literal: list[str] = []
        for seg in pattern.segments:
            if seg in (ONE, MANY):
                break
            literal.append(seg)
        if not literal or (literal[0] in DEEP_NAMESPACES and len(literal) < 2):
            names = await catalog_keys(self._js, "t", ".".join(literal) or None)  # a wide pattern: read them all
            self.lookups += 1
            recs = await catalog_get_many(self._js, "t", names)
        else:
            prefix = ".".join(literal)
            above = await self.cover(prefix, fresh=True)  # a subscription reads the catalog anew
            recs = [above] if above is not None else []
            if above is None and await self._namespace(namespace_of(prefix)):
                self.lookups += 1
                recs += await catalog_get_many(self._js, "t", await catalog_keys(self._js, "t", prefix))
        for rec in recs:
            self.note(rec)
        return [r for r in recs if pattern_reaches(pattern, r["config"]["name"])]


def _ancestry(topic: str) -> list[str]:
    """``topic`` and the names above it within its namespace, longest first."""
    parts = topic.split(".")
    depth = len(namespace_of(topic).split("."))
    return [".".join(parts[:n]) for n in range(len(parts), depth - 1, -1)]
