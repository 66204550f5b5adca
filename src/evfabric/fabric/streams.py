"""Topics as durable JetStream streams: create, list, describe, update, delete.

A *topic* here is a topic root: the stream for ``jobs`` stores every event on ``jobs`` and below
(``jobs.status``, ``jobs.42.done``...) from every partition, i.e. the subjects
``evf.*.jobs`` and ``evf.*.jobs.>``. Its settings:

* retention: ``max_age`` (seconds, the topic's TTL), ``max_bytes``, ``max_msgs`` (stored
  *messages*: a message is a batch of up to the client's ``max_batch`` events; see docs/fabric.md);
  the oldest are discarded first;
* ``replicas`` (JetStream R, needs a cluster for > 1), ``storage`` (``file`` or ``memory``);
* ``partitions``: keyed events go to partition ``crc32(key) % partitions``, so one key stays in
  one partition and keeps its order; consumer groups read each partition in order.

The settings live in the stream's metadata, so every client (and ``evfabric topic describe``)
sees them. :class:`TopicCatalog` caches which stream covers a topic.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import nats.js.errors as jserr
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, StorageType, StreamConfig, StreamInfo

from evfabric.core.errors import AlreadyExists, ConfigError, NotFound
from evfabric.core.topics import validate_topic
from evfabric.fabric.subjects import PREFIX, stream_name

__all__ = ["TopicCatalog", "TopicConfig", "TopicInfo", "create_topic", "delete_topic", "describe_topic",
           "list_topics", "update_topic"]

_META_TOPIC = "evfabric_topic"
_META_PARTITIONS = "evfabric_partitions"
DUPLICATE_WINDOW = 120.0  # seconds during which a re-sent batch (same Nats-Msg-Id) is dropped


@dataclass(frozen=True)
class TopicConfig:
    """The durable settings of a topic (see the module docstring). None means unlimited."""

    name: str
    max_age: float | None = None
    max_bytes: int | None = None
    max_msgs: int | None = None
    replicas: int = 1
    partitions: int = 1
    storage: str = "file"
    description: str = ""

    def __post_init__(self) -> None:
        validate_topic(self.name)
        if not isinstance(self.partitions, int) or self.partitions < 1:
            raise ConfigError(f"partitions must be a positive int, got {self.partitions!r}")
        if not isinstance(self.replicas, int) or not 1 <= self.replicas <= 5:
            raise ConfigError(f"replicas must be an int from 1 to 5, got {self.replicas!r}")
        if self.storage not in ("file", "memory"):
            raise ConfigError(f"storage must be 'file' or 'memory', got {self.storage!r}")
        for opt in ("max_age", "max_bytes", "max_msgs"):
            v = getattr(self, opt)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0):
                raise ConfigError(f"{opt} must be a positive number or None, got {v!r}")

    @property
    def stream(self) -> str:
        """The JetStream stream name."""
        return stream_name(self.name)

    def stream_config(self) -> StreamConfig:
        """The JetStream configuration that implements this topic."""
        return StreamConfig(
            name=self.stream,
            description=self.description or f"evfabric topic {self.name}",
            subjects=[f"{PREFIX}.*.{self.name}", f"{PREFIX}.*.{self.name}.>"],
            max_age=self.max_age or 0,
            max_bytes=self.max_bytes or -1,
            max_msgs=self.max_msgs or -1,
            num_replicas=self.replicas,
            storage=StorageType(self.storage),
            discard=DiscardPolicy.OLD,
            duplicate_window=min(DUPLICATE_WINDOW, self.max_age or DUPLICATE_WINDOW),
            metadata={_META_TOPIC: self.name, _META_PARTITIONS: str(self.partitions)},
        )

    @classmethod
    def from_stream(cls, cfg: StreamConfig) -> TopicConfig | None:
        """The topic a stream implements, or None for a stream evfabric did not make."""
        meta = cfg.metadata or {}
        name = meta.get(_META_TOPIC)
        if not name:
            return None
        desc = cfg.description or ""
        return cls(
            name=name,
            max_age=cfg.max_age or None,
            max_bytes=cfg.max_bytes if cfg.max_bytes and cfg.max_bytes > 0 else None,
            max_msgs=cfg.max_msgs if cfg.max_msgs and cfg.max_msgs > 0 else None,
            replicas=cfg.num_replicas or 1,
            partitions=int(meta.get(_META_PARTITIONS, "1")),
            storage=str(getattr(cfg.storage, "value", cfg.storage) or "file"),
            description="" if desc == f"evfabric topic {name}" else desc,
        )


@dataclass(frozen=True)
class TopicInfo:
    """A topic's settings and state: stored messages (batches) and bytes, sequences, consumers."""

    config: TopicConfig
    stream: str
    messages: int
    bytes: int
    first_seq: int
    last_seq: int
    consumers: int
    created: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (for the CLI)."""
        c = self.config
        return {
            "topic": c.name, "stream": self.stream, "partitions": c.partitions, "replicas": c.replicas,
            "storage": c.storage, "max_age": c.max_age, "max_bytes": c.max_bytes, "max_msgs": c.max_msgs,
            "messages": self.messages, "bytes": self.bytes, "first_seq": self.first_seq,
            "last_seq": self.last_seq, "consumers": self.consumers, "description": c.description,
        }


def _info(si: StreamInfo) -> TopicInfo | None:
    cfg = TopicConfig.from_stream(si.config)
    if cfg is None:
        return None
    st = si.state
    return TopicInfo(cfg, si.config.name or "", st.messages, st.bytes, st.first_seq, st.last_seq,
                     st.consumer_count, str(getattr(si, "created", "") or ""))


def _translate(exc: jserr.APIError, what: str) -> Exception:
    if isinstance(exc, jserr.NotFoundError):
        return NotFound(f"{what}: no such topic")
    if exc.err_code in (10058, 10065):  # stream name already in use / subjects overlap
        return AlreadyExists(f"{what}: {exc.description}")
    return ConfigError(f"{what}: the broker refused: {exc.description}")


async def create_topic(js: JetStreamContext, config: TopicConfig, exist_ok: bool = False) -> TopicInfo:
    """Create the stream for ``config``; AlreadyExists if it (or an overlapping topic) exists.

    With ``exist_ok`` an existing topic of that name is returned unchanged.
    """
    try:
        si = await js.add_stream(config.stream_config())
    except jserr.APIError as exc:
        err = _translate(exc, f"create topic {config.name!r}")
        if exist_ok and isinstance(err, AlreadyExists):
            return await describe_topic(js, config.name)
        raise err from None
    info = _info(si)
    assert info is not None
    return info


async def describe_topic(js: JetStreamContext, name: str) -> TopicInfo:
    """Settings and state of topic ``name``; raise NotFound."""
    try:
        si = await js.stream_info(stream_name(validate_topic(name)))
    except jserr.APIError as exc:
        raise _translate(exc, f"describe topic {name!r}") from None
    info = _info(si)
    if info is None:
        raise NotFound(f"describe topic {name!r}: stream exists but was not made by evfabric")
    return info


async def list_topics(js: JetStreamContext) -> list[TopicInfo]:
    """Every evfabric topic on the broker, sorted by name."""
    out: list[TopicInfo] = []
    offset = 0
    while True:
        batch = await js.streams_info(offset)
        out.extend(i for i in map(_info, batch) if i is not None)
        if not batch or len(batch) < 256:
            break
        offset += len(batch)
    return sorted(out, key=lambda i: i.config.name)


async def update_topic(js: JetStreamContext, name: str, **changes: Any) -> TopicInfo:
    """Change some settings of topic ``name`` (retention, replicas, partitions, description).

    Changing ``partitions`` re-maps keys to partitions for events published afterwards.
    """
    current = (await describe_topic(js, name)).config
    if "name" in changes:
        raise ConfigError("a topic cannot be renamed")
    new = replace(current, **changes)
    try:
        si = await js.update_stream(new.stream_config())
    except jserr.APIError as exc:
        raise _translate(exc, f"update topic {name!r}") from None
    info = _info(si)
    assert info is not None
    return info


async def delete_topic(js: JetStreamContext, name: str) -> None:
    """Delete topic ``name`` and every event it stores; raise NotFound."""
    try:
        await js.delete_stream(stream_name(validate_topic(name)))
    except jserr.APIError as exc:
        raise _translate(exc, f"delete topic {name!r}") from None


class TopicCatalog:
    """Which topic (stream) covers a published topic: the longest topic root that is a prefix.

    Filled from the broker and refreshed when a lookup misses (at most every ``refresh`` s).
    """

    def __init__(self, js: JetStreamContext, refresh: float = 1.0) -> None:
        self._js = js
        self._topics: dict[str, TopicConfig] = {}
        self._cover: dict[str, TopicConfig | None] = {}
        self._loaded_at = 0.0
        self.refresh = refresh

    async def load(self) -> None:
        """Reload every topic from the broker."""
        infos = await list_topics(self._js)
        self._topics = {i.config.name: i.config for i in infos}
        self._cover.clear()
        self._loaded_at = time.monotonic()

    def note(self, config: TopicConfig) -> None:
        """Remember a topic this client created or described."""
        self._topics[config.name] = config
        self._cover.clear()

    def forget(self, name: str) -> None:
        """Drop a deleted topic."""
        self._topics.pop(name, None)
        self._cover.clear()

    def covering(self, topic: str) -> TopicConfig | None:
        """The cached topic whose stream stores ``topic``, or None (no broker call)."""
        hit = self._cover.get(topic, False)
        if hit is not False:
            return hit  # type: ignore[return-value]
        found = None
        parts = topic.split(".")
        for n in range(len(parts), 0, -1):
            found = self._topics.get(".".join(parts[:n]))
            if found is not None:
                break
        self._cover[topic] = found
        return found

    async def covering_fresh(self, topic: str) -> TopicConfig | None:
        """Like :meth:`covering`, reloading from the broker first on a miss (rate-limited)."""
        found = self.covering(topic)
        if found is None and time.monotonic() - self._loaded_at >= self.refresh:
            await self.load()
            found = self.covering(topic)
        return found

    def all(self) -> list[TopicConfig]:
        """The cached topics."""
        return list(self._topics.values())
