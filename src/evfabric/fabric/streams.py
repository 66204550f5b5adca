"""Topics as durable JetStream streams: create, list, describe, update, delete.

A *topic* stores every event on its name and below (``jobs`` stores ``jobs.status``,
``jobs.42.done``...) from every publisher and partition: the subjects ``evf.*.*.jobs`` and
``evf.*.*.jobs.>``. No topic lies below another.

Topics share streams: the topics of one *namespace* (a topic's first segment; ``users.<x>`` and
``cca.<x>``: its first two) live in one stream, ``EVF_<namespace>_<hash>``, whose subjects
cover the whole namespace; consumers of a topic filter its subjects. So 10,000 topics in a
namespace cost one stream, and the broker's restart and memory do not grow with them. Which
stream holds a topic, and the topic's settings, are in the catalog (:mod:`evfabric.fabric.catalog`).

Settings, and where each one lives (docs/fabric.md, "Topics and streams"):

* per topic: ``partitions`` (keyed events go to partition ``crc32(key) % partitions``, so one key
  stays in one partition and keeps its order; groups read each partition in order),
  ``max_events`` (stored *events*, trimmed by :mod:`evfabric.fabric.retention`, which
  ``evfabric serve`` runs: the topic's oldest messages are purged from the shared stream) and
  ``description``;
* per namespace (the stream's): retention ``max_age`` (seconds), ``max_bytes``, ``max_msgs``
  (stored *messages*, a message being a batch of up to ``max_batch`` events; oldest discarded
  first), ``replicas`` and ``storage`` (``file``/``memory``). Every topic of a namespace has the
  same; creating one with other values is refused (naming the namespace's), and changing them is
  allowed only while the topic is alone in its namespace.

A *raw* topic (``raw=True``, docs/wire.md 5) stores what foreign clients publish on its own
subjects (``lab.probe`` and ``lab.probe.>``: an MQTT device's ``lab/probe/temp``, a plain NATS
client), every message one event. It has a stream of its own, ``EVF_RAW_<topic>_<hash>``, with its
own settings (none are shared), and, every message being one event, ``max_events`` is that
stream's message limit: the broker enforces it. Subscribers read it without asking for it
(``subscribe`` looks the topic up); evfabric publishers put each event's body there as JSON. Under
access control foreign subjects are closed, so the topic service refuses raw topics.
"""

from __future__ import annotations

import datetime as _dt
import logging
from dataclasses import dataclass, field, replace
from typing import Any

import nats.js.errors as jserr
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DiscardPolicy, StorageType, StreamConfig

from evfabric.core.errors import AlreadyExists, ConfigError, NotFound
from evfabric.core.topics import validate_topic
from evfabric.fabric import topic_api
from evfabric.fabric.catalog import (
    catalog_delete,
    catalog_get,
    catalog_get_many,
    catalog_keys,
    catalog_put,
    ensure_catalog,
    namespace_of,
)
from evfabric.fabric.subjects import PREFIX, intersect, raw_stream_name, raw_subjects, stream_name, stream_subjects

__all__ = ["STREAM_SETTINGS", "TopicConfig", "TopicInfo", "add_consumer", "config_of", "create_topic",
           "create_topic_direct", "delete_topic", "delete_topic_direct", "describe_topic", "list_topics",
           "namespace_stream", "topic_record", "update_topic", "update_topic_direct"]

log = logging.getLogger("evfabric.fabric")
_META_NAMESPACE = "evfabric_namespace"
_META_TOPIC = "evfabric_topic"  # the monitor's row name for the stream
DUPLICATE_WINDOW = 120.0  # seconds during which a re-sent batch (same Nats-Msg-Id) is dropped
#: the settings a topic shares with its namespace (they are its stream's)
STREAM_SETTINGS = ("max_age", "max_bytes", "max_msgs", "replicas", "storage")
_FIELDS = ("name", "max_age", "max_bytes", "max_msgs", "max_events", "replicas", "partitions", "storage",
           "description", "raw")
_META_RAW = "evfabric_raw"


def namespace_stream(topic: str) -> str:
    """The JetStream stream of ``topic``'s namespace (readable, distinct for distinct namespaces;
    for a one-segment topic the name its own stream had before topics shared streams)."""
    return stream_name(namespace_of(topic))


@dataclass(frozen=True)
class TopicConfig:
    """The durable settings of a topic (see the module docstring). None means unlimited."""

    name: str
    max_age: float | None = None
    max_bytes: int | None = None
    max_msgs: int | None = None
    max_events: int | None = None
    replicas: int = 1
    partitions: int = 1
    storage: str = "file"
    description: str = ""
    raw: bool = False

    def __post_init__(self) -> None:
        validate_topic(self.name)
        if not isinstance(self.raw, bool):
            raise ConfigError(f"raw must be True or False, got {self.raw!r}")
        if self.raw and self.partitions != 1:
            raise ConfigError(f"raw topic {self.name!r}: foreign publishers do not partition; got partitions="
                              f"{self.partitions}")
        if not isinstance(self.partitions, int) or self.partitions < 1:
            raise ConfigError(f"partitions must be a positive int, got {self.partitions!r}")
        if not isinstance(self.replicas, int) or not 1 <= self.replicas <= 5:
            raise ConfigError(f"replicas must be an int from 1 to 5, got {self.replicas!r}")
        if self.storage not in ("file", "memory"):
            raise ConfigError(f"storage must be 'file' or 'memory', got {self.storage!r}")
        for opt in ("max_age", "max_bytes", "max_msgs", "max_events"):
            v = getattr(self, opt)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0):
                raise ConfigError(f"{opt} must be a positive number or None, got {v!r}")

    @property
    def namespace(self) -> str:
        """The namespace whose stream stores this topic."""
        return namespace_of(self.name)

    @property
    def stream(self) -> str:
        """The JetStream stream name (its namespace's; a raw topic's own)."""
        return raw_stream_name(self.name) if self.raw else namespace_stream(self.name)

    @property
    def subjects(self) -> list[str]:
        """The subjects of this topic's events (a consumer's filters)."""
        return raw_subjects(self.name) if self.raw else stream_subjects(self.name)

    @property
    def own_stream(self) -> bool:
        """True when the stream holds this topic alone (its state is the topic's)."""
        return self.raw or self.name == self.namespace

    def settings(self) -> dict[str, Any]:
        """The settings this topic shares with its namespace."""
        return {k: getattr(self, k) for k in STREAM_SETTINGS}

    def as_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready (the catalog record's ``config``)."""
        return {k: getattr(self, k) for k in _FIELDS}

    def stream_config(self) -> StreamConfig:
        """The JetStream configuration of this topic's namespace stream, with its settings."""
        if self.raw:
            limits = [n for n in (self.max_msgs, self.max_events) if n is not None]
            return StreamConfig(
                name=self.stream, description=f"evfabric raw topic {self.name}", subjects=self.subjects,
                max_age=self.max_age or 0, max_bytes=self.max_bytes or -1,
                max_msgs=int(min(limits)) if limits else -1,  # one message, one event
                num_replicas=self.replicas, storage=StorageType(self.storage), discard=DiscardPolicy.OLD,
                duplicate_window=min(DUPLICATE_WINDOW, self.max_age or DUPLICATE_WINDOW),
                metadata={_META_TOPIC: self.name, _META_RAW: "1"},
            )
        ns = self.namespace
        return StreamConfig(
            name=self.stream,
            description=f"evfabric namespace {ns}",
            subjects=stream_subjects(ns),
            max_age=self.max_age or 0,
            max_bytes=self.max_bytes or -1,
            max_msgs=self.max_msgs or -1,  # max_events is the topic's, enforced by the trimmer
            num_replicas=self.replicas,
            storage=StorageType(self.storage),
            discard=DiscardPolicy.OLD,
            duplicate_window=min(DUPLICATE_WINDOW, self.max_age or DUPLICATE_WINDOW),
            metadata={_META_NAMESPACE: ns, _META_TOPIC: ns},
        )


def config_of(d: dict[str, Any]) -> TopicConfig:
    """The :class:`TopicConfig` of a catalog record's ``config`` (unknown fields ignored)."""
    return TopicConfig(**{k: d[k] for k in _FIELDS if k in d})


@dataclass(frozen=True)
class TopicInfo:
    """A topic's settings and state: stored messages (batches) and bytes, sequences, consumers.

    ``shared``: other topics share the stream; ``bytes`` is then the stream's bytes times the
    topic's share of its messages (JetStream counts bytes per stream only), and sequences are
    the stream's (numbered across its topics). ``events``: stored events (the messages'
    ``Evf-Count`` summed, docs/wire.md section 8) when counted (``describe_topic`` of a client
    counts them), else None.
    """

    config: TopicConfig
    stream: str
    messages: int
    bytes: int
    first_seq: int
    last_seq: int
    consumers: int
    created: str = ""
    shared: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    events: int | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TopicInfo:
        """The inverse of :meth:`as_dict` (how the topic service's answers travel)."""
        cfg = TopicConfig(name=d["topic"], max_age=d.get("max_age"), max_bytes=d.get("max_bytes"),
                          max_msgs=d.get("max_msgs"), max_events=d.get("max_events"), replicas=d.get("replicas", 1),
                          partitions=d.get("partitions", 1),
                          storage=d.get("storage", "file"), description=d.get("description", ""),
                          raw=bool(d.get("raw", False)))
        return cls(cfg, d["stream"], d.get("messages", 0), d.get("bytes", 0), d.get("first_seq", 0),
                   d.get("last_seq", 0), d.get("consumers", 0), shared=bool(d.get("shared", False)),
                   events=d.get("events"))

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (for the CLI)."""
        c = self.config
        return {
            "topic": c.name, "stream": self.stream, "namespace": c.namespace, "shared": self.shared,
            "partitions": c.partitions, "replicas": c.replicas,
            "storage": c.storage, "max_age": c.max_age, "max_bytes": c.max_bytes, "max_msgs": c.max_msgs,
            "max_events": c.max_events,
            "messages": self.messages, "events": self.events, "bytes": self.bytes, "first_seq": self.first_seq,
            "last_seq": self.last_seq, "consumers": self.consumers, "description": c.description,
            "raw": c.raw,
        }


def _translate(exc: jserr.APIError, what: str) -> Exception:
    if isinstance(exc, jserr.NotFoundError):
        return NotFound(f"{what}: no such topic")
    if exc.err_code in (10058, 10065):  # stream name already in use / subjects overlap
        return AlreadyExists(f"{what}: {exc.description}")
    return ConfigError(f"{what}: the broker refused: {exc.description}")


def _show(settings: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in settings.items())


async def _covering_name(js: JetStreamContext, name: str) -> str | None:
    """An existing topic equal to, above or below ``name`` (topics do not nest), or None."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        above = ".".join(parts[:n])
        if await catalog_get(js, "t", above) is not None:
            return above
    below = await catalog_keys(js, "t", name)
    return below[0] if below else None


async def _ensure_namespace(js: JetStreamContext, config: TopicConfig, what: str) -> None:
    """Create the namespace stream of ``config`` if none; refuse settings that differ from it."""
    ns = await catalog_get(js, "n", config.namespace)
    if ns is None or ns.get("stream") is None:  # none, or only raw topics' mark
        await ensure_catalog(js)
        try:
            await js.add_stream(config.stream_config())
        except jserr.APIError as exc:
            if exc.err_code != 10058:  # not "exists": a real refusal
                raise _translate(exc, what) from None
            si = await js.stream_info(config.stream)
            ns_settings = _settings_of(si.config)
        else:
            ns_settings = config.settings()
        await catalog_put(js, "n", config.namespace, {"stream": config.stream, "settings": ns_settings},
                          create=ns is None)
        ns = await catalog_get(js, "n", config.namespace)
        assert ns is not None
    if ns["settings"] != config.settings():
        asked = config.settings()
        differ = [k for k in STREAM_SETTINGS if ns["settings"].get(k) != asked[k]]
        raise ConfigError(
            f"{what}: its namespace {config.namespace!r} (stream {ns['stream']}) has "
            f"{_show({k: ns['settings'].get(k) for k in differ})}, shared by all its topics (asked "
            f"{_show({k: asked[k] for k in differ})})")


def _settings_of(cfg: StreamConfig) -> dict[str, Any]:
    return {
        "max_age": cfg.max_age or None, "max_bytes": cfg.max_bytes if cfg.max_bytes and cfg.max_bytes > 0 else None,
        "max_msgs": cfg.max_msgs if cfg.max_msgs and cfg.max_msgs > 0 else None, "replicas": cfg.num_replicas or 1,
        "storage": str(getattr(cfg.storage, "value", cfg.storage) or "file"),
    }


async def create_topic(js: JetStreamContext, config: TopicConfig, exist_ok: bool = False,
                       record: dict[str, Any] | None = None, adopt: bool = False) -> TopicInfo:
    """Create topic ``config`` (and its namespace's stream if none); AlreadyExists if it, or a
    topic above or below it, exists; ConfigError if its namespace has other settings.

    With ``exist_ok`` an existing topic of that name is returned unchanged; with ``adopt`` the
    topic takes its namespace's settings if the namespace exists (automatic topics, whose
    settings are a default, not a demand). Under access control
    the broker's topic service creates it (see :mod:`evfabric.fabric.topic_api`); ``record``
    adds fields to the catalog record (the service's registration stamp).
    """
    answer = await topic_api.request(js._nc, "topic", "create",
                                     {"config": config.as_dict(), "exist_ok": exist_ok, "adopt": adopt})
    if answer is not None:
        return TopicInfo.from_dict(answer)
    return await create_topic_direct(js, config, exist_ok, record, adopt)


async def create_topic_direct(js: JetStreamContext, config: TopicConfig, exist_ok: bool = False,
                              record: dict[str, Any] | None = None, adopt: bool = False) -> TopicInfo:
    """:func:`create_topic` on the JetStream API itself (the topic service calls this)."""
    what = f"create topic {config.name!r}"
    if adopt:
        config = await adopted(js, config)
    other = await _covering_name(js, config.name)
    if other is not None:
        if exist_ok and other == config.name:
            return await describe_topic(js, config.name)
        raise AlreadyExists(f"{what}: topic {other!r} exists" + ("" if other == config.name else
                            " and topics do not nest (it would share its events)"))
    if config.raw:
        return await _create_raw(js, config, record, exist_ok, what)
    await _ensure_namespace(js, config, what)
    created = await _put_record(js, config, record, what, exist_ok)
    if created is None:
        return await describe_topic(js, config.name)  # (exist_ok: it is there)
    if config.name == config.namespace:
        return await describe_topic(js, config.name)
    # a new topic on a shared stream stores nothing yet: no need to read the stream
    return TopicInfo(config, config.stream, 0, 0, 0, 0, 0, created, shared=True)


async def _put_record(js: JetStreamContext, config: TopicConfig, extra: dict[str, Any] | None, what: str,
                      exist_ok: bool) -> str | None:
    """Write topic ``config``'s catalog record (``extra`` fields added); its creation time, or
    None when the topic exists and ``exist_ok`` (else AlreadyExists)."""
    created = _dt.datetime.now(_dt.UTC).isoformat()
    rec = {**(extra or {}), "config": config.as_dict(), "stream": config.stream, "created": created}
    if await catalog_put(js, "t", config.name, rec, create=True):
        return created
    if exist_ok:
        return None
    raise AlreadyExists(f"{what}: it exists")


async def _create_raw(js: JetStreamContext, config: TopicConfig, record: dict[str, Any] | None, exist_ok: bool,
                      what: str) -> TopicInfo:
    """Create raw topic ``config``: its own stream, its record, and its namespace's mark (a
    namespace record without a stream, so that lookups of the namespace find the topic)."""
    await ensure_catalog(js)
    try:
        await js.add_stream(config.stream_config())
    except jserr.APIError as exc:
        if exc.err_code == 10065:
            raise AlreadyExists(f"{what}: another stream stores its subjects {config.subjects}: "
                                f"{exc.description}") from None
        raise _translate(exc, what) from None
    created = await _put_record(js, config, record, what, exist_ok)
    await catalog_put(js, "r", config.name, {})  # the raw-topic index (catalog module docstring)
    if created is not None and await catalog_get(js, "n", config.namespace) is None:
        await catalog_put(js, "n", config.namespace, {"stream": None, "settings": None}, create=True)
    return await describe_topic(js, config.name)


async def adopted(js: JetStreamContext, config: TopicConfig) -> TopicConfig:
    """``config`` with its namespace's settings when the namespace exists."""
    if config.raw:
        return config
    ns = await catalog_get(js, "n", config.namespace)
    if ns is not None and ns.get("settings") is not None:
        settings = ns["settings"]
    else:
        try:  # a stream made without the catalog (by hand, or before it existed)
            settings = _settings_of((await js.stream_info(config.stream)).config)
        except jserr.NotFoundError:
            return config
    return replace(config, **{k: settings.get(k) for k in STREAM_SETTINGS if k in settings})


async def topic_record(js: JetStreamContext, name: str, what: str) -> dict[str, Any]:
    """The catalog record of topic ``name``; NotFound naming ``what`` if none."""
    rec = await catalog_get(js, "t", validate_topic(name))
    if rec is None:
        raise NotFound(f"{what}: no such topic")
    return rec


async def _stored(js: JetStreamContext, stream: str, subjects: list[str]) -> int:
    total = 0
    for s in subjects:
        si = await js.stream_info(stream, subjects_filter=s)
        total += sum((si.state.subjects or {}).values())
    return total


async def _seq(js: JetStreamContext, stream: str, subjects: list[str], last: bool) -> int:
    seqs = []
    for s in subjects:
        try:
            msg = (await js.get_last_msg(stream, s) if last else await js.get_msg(stream, 1, subject=s, next=True))
        except jserr.NotFoundError:
            continue
        seqs.append(int(msg.seq or 0))
    return (max(seqs) if last else min(seqs)) if seqs else 0


async def _info_of(js: JetStreamContext, rec: dict[str, Any], exact: bool | None = None) -> TopicInfo:
    cfg = config_of(rec["config"])
    stream = rec["stream"]
    try:
        si = await js.stream_info(stream)
    except jserr.NotFoundError:
        raise NotFound(f"topic {cfg.name!r}: its stream {stream} is missing") from None
    st = si.state
    alone = cfg.own_stream if exact is None else exact
    if alone:  # the topic is its namespace: the stream's state is the topic's
        return TopicInfo(cfg, stream, st.messages, st.bytes, st.first_seq, st.last_seq, st.consumer_count,
                         rec.get("created", ""), shared=False)
    subjects = cfg.subjects
    messages = await _stored(js, stream, subjects)
    share = int(st.bytes * messages / st.messages) if st.messages else 0
    if topic_api.token_id_of(js._nc) is not None:
        # under access control a user may not read a shared stream's messages or list its
        # consumers (they are other topics'): the stream's consumer count, no sequences
        return TopicInfo(cfg, stream, messages, share, 0, 0, st.consumer_count, rec.get("created", ""), shared=True)
    consumers = 0
    for c in await js.consumers_info(stream):
        fs = c.config.filter_subjects or ([c.config.filter_subject] if c.config.filter_subject else [])
        if any(intersect(f, s) is not None for f in fs for s in subjects):
            consumers += 1
    first = await _seq(js, stream, subjects, last=False) if messages else 0
    last = await _seq(js, stream, subjects, last=True) if messages else 0
    return TopicInfo(cfg, stream, messages, share, first, last, consumers, rec.get("created", ""), shared=True)


async def describe_topic(js: JetStreamContext, name: str) -> TopicInfo:
    """Settings and state of topic ``name``; raise NotFound."""
    return await _info_of(js, await topic_record(js, name, f"describe topic {name!r}"))


async def list_topics(js: JetStreamContext) -> list[TopicInfo]:
    """Every evfabric topic on the broker, sorted by name: the catalog's records (one read each),
    the streams' states (one listing), and per namespace stream one read of its subjects'
    counts. Sequences and consumers are left 0 for topics that share a stream; under access
    control so are their counts (a user may not read every stream: describe_topic counts)."""
    recs = await catalog_get_many(js, "t", await catalog_keys(js, "t"))
    states: dict[str, Any] = {}
    offset = 0
    while True:
        batch = await js.streams_info(offset)
        states.update((si.config.name or "", si) for si in batch)
        if not batch or len(batch) < 256:
            break
        offset += len(batch)
    by_stream: dict[str, list[dict[str, Any]]] = {}
    for rec in recs:
        by_stream.setdefault(rec["stream"], []).append(rec)
    guarded = topic_api.token_id_of(js._nc) is not None
    out: list[TopicInfo] = []
    for stream, group in by_stream.items():
        si = states.get(stream)
        if si is None:
            continue
        st = si.state
        counts: dict[str, int] = {}
        if not guarded and any(not config_of(r["config"]).own_stream for r in group):
            counts = (await js.stream_info(stream, subjects_filter=f"{PREFIX}.>")).state.subjects or {}
        for rec in group:
            cfg = config_of(rec["config"])
            if cfg.own_stream:
                out.append(TopicInfo(cfg, stream, st.messages, st.bytes, st.first_seq, st.last_seq,
                                     st.consumer_count, rec.get("created", "")))
                continue
            n = sum(v for s, v in counts.items() if _under(s, cfg.name))
            share = int(st.bytes * n / st.messages) if st.messages else 0
            out.append(TopicInfo(cfg, stream, n, share, 0, 0, 0, rec.get("created", ""), shared=True))
    return sorted(out, key=lambda i: i.config.name)


def _under(subject: str, topic: str) -> bool:
    rest = subject.split(".", 3)[3] if subject.count(".") >= 3 else ""
    return rest == topic or rest.startswith(topic + ".")


async def update_topic(js: JetStreamContext, name: str, **changes: Any) -> TopicInfo:
    """Change some settings of topic ``name``: its own (``partitions``, ``description``) at any
    time; its namespace's (retention, replicas, storage) only while it is alone in it.

    Changing ``partitions`` re-maps keys to partitions for events published afterwards.
    """
    if "name" in changes:
        raise ConfigError("a topic cannot be renamed")
    answer = await topic_api.request(js._nc, "topic", "update", {"name": validate_topic(name), "changes": changes})
    if answer is not None:
        return TopicInfo.from_dict(answer)
    return await update_topic_direct(js, name, changes)


async def update_topic_direct(js: JetStreamContext, name: str, changes: dict[str, Any],
                              extra: dict[str, Any] | None = None) -> TopicInfo:
    """:func:`update_topic` on the JetStream API itself (the topic service calls this)."""
    what = f"update topic {name!r}"
    rec = await topic_record(js, name, what)
    current = config_of(rec["config"])
    new = replace(current, **{k: v for k, v in changes.items() if k != "name"})
    if new.raw != current.raw:
        raise ConfigError(f"{what}: whether a topic is raw cannot change (its events are on other subjects); "
                          "delete it and create it anew")
    if current.raw and new != current:
        try:
            await js.update_stream(new.stream_config())
        except jserr.APIError as exc:
            raise _translate(exc, what) from None
    elif new.settings() != current.settings():
        others = [t for t in await _namespace_topics(js, current.namespace) if t != name]
        if others:
            keys = ", ".join(k for k in STREAM_SETTINGS if getattr(new, k) != getattr(current, k))
            raise ConfigError(f"{what}: {keys} is its namespace's ({current.namespace!r}), shared with "
                              f"{len(others)} other topic(s) (e.g. {others[0]!r}); it can change only while the "
                              "topic is alone in its namespace")
        try:
            await js.update_stream(new.stream_config())
        except jserr.APIError as exc:
            raise _translate(exc, what) from None
        await catalog_put(js, "n", current.namespace, {"stream": new.stream, "settings": new.settings()})
    await catalog_put(js, "t", name, {**rec, **(extra or {}), "config": new.as_dict()})
    return await describe_topic(js, name)


async def _namespace_topics(js: JetStreamContext, ns: str) -> list[str]:
    names = await catalog_keys(js, "t", ns)
    if await catalog_get(js, "t", ns) is not None:
        names.append(ns)
    return names


async def delete_topic(js: JetStreamContext, name: str) -> None:
    """Delete topic ``name`` and every event it stores (its subjects are purged from the shared
    stream, its consumers deleted; the namespace's stream goes with its last topic); NotFound."""
    if await topic_api.request(js._nc, "topic", "delete", {"name": validate_topic(name)}) is not None:
        return
    await delete_topic_direct(js, name)


async def delete_topic_direct(js: JetStreamContext, name: str) -> list[str]:
    """:func:`delete_topic` on the JetStream API itself; return the consumers deleted."""
    rec = await topic_record(js, name, f"delete topic {name!r}")
    cfg = config_of(rec["config"])
    stream = rec["stream"]
    await catalog_delete(js, "t", name)
    deleted: list[str] = []
    if cfg.raw:
        await catalog_delete(js, "r", name)
        try:
            deleted = [c.name for c in await js.consumers_info(stream)]
            await js.delete_stream(stream)
        except jserr.NotFoundError:
            pass
        ns = await catalog_get(js, "n", cfg.namespace)
        if ns is not None and ns.get("stream") is None and not await _namespace_topics(js, cfg.namespace):
            await catalog_delete(js, "n", cfg.namespace)
        return deleted
    if not await _namespace_topics(js, cfg.namespace):
        try:
            deleted = [c.name for c in await js.consumers_info(stream)]
            await js.delete_stream(stream)
        except jserr.NotFoundError:
            pass
        await catalog_delete(js, "n", cfg.namespace)
        return deleted
    try:
        for c in await js.consumers_info(stream):
            fs = c.config.filter_subjects or ([c.config.filter_subject] if c.config.filter_subject else [])
            if fs and all(any(_within(f, s) for s in cfg.subjects) for f in fs):
                await js.delete_consumer(stream, c.name)
                deleted.append(c.name)
        for s in cfg.subjects:
            await js.purge_stream(stream, subject=s)
    except jserr.NotFoundError:
        pass
    return deleted


def _within(f: str, s: str) -> bool:
    """True when every subject filter ``f`` matches is matched by ``s``."""
    return intersect(f, s) == f


async def add_consumer(js: JetStreamContext, stream: str, config: ConsumerConfig) -> None:
    """Create a JetStream consumer on ``stream``: through the topic service under access control
    (which checks that its filter stays within the caller's subscribe rights), else directly.
    A consumer that exists with another configuration raises ``BadRequestError`` 10148, as
    JetStream does."""
    try:
        answer = await topic_api.request(js._nc, "consumer", "create",
                                         {"stream": stream, "config": config.as_dict()})
    except topic_api.ServiceError as exc:
        raise jserr.BadRequestError(code=400, err_code=exc.err_code, description=str(exc)) from None
    if answer is None:
        await js.add_consumer(stream, config)
