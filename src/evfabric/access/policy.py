"""Who may do what: decisions taken on a :class:`Snapshot` of the access store.

Ownership:

* identity ``x`` owns its namespace ``users.x`` (and everything below) without registering it;
* whoever registers a topic owns it and everything below it (a topic root, like its stream);
* administrators may do everything; the owner of a service identity manages it like its own.

Rights: an identity may publish (subscribe) on a topic when it owns it, or when a grant to it or
to one of its groups gives that right on a target covering the topic. A topic target covers the
topic and everything below it; a pattern covers what it matches. Every target turns into NATS
subject filters (:func:`target_filters`), and decisions are taken by matching those filters, so
that what the web service says and what the broker enforces are the same thing.

:func:`nats_permissions` is the broker side: the ``permissions`` block of one NATS user.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from evfabric.access.model import (
    Grant,
    Group,
    Identity,
    IdentityKind,
    Right,
    TopicRecord,
    literal_prefix,
    namespace_of,
)
from evfabric.fabric.subjects import PREFIX, intersect, pattern_filter, stream_name, topic_subject

__all__ = [
    "FRAMEWORK_GROUPS",
    "Snapshot",
    "access_list",
    "allows",
    "can_manage",
    "can_manage_identity",
    "can_register",
    "filter_covers",
    "nats_permissions",
    "owner_of",
    "rights_of",
    "subject_matches",
    "target_filters",
]

#: ``cca`` groups every identity may read (framework events); ``cca.deadletter.<t>`` follows the rights on ``t``.
FRAMEWORK_GROUPS = ("events", "listener", "topic", "subscription", "fabric", "trigger")
BOTH = frozenset(Right)


@dataclass(frozen=True)
class Snapshot:
    """A consistent copy of the access store (see :meth:`AccessStore.snapshot`)."""

    identities: dict[str, Identity]
    groups: dict[str, Group]
    topics: dict[str, TopicRecord]
    grants: list[Grant] = field(default_factory=list)
    version: int = 0

    def groups_of(self, name: str) -> set[str]:
        """The groups ``name`` belongs to."""
        return {g.name for g in self.groups.values() if name in g.members}

    def is_admin(self, name: str) -> bool:
        """True for an existing administrator."""
        ident = self.identities.get(name)
        return ident is not None and ident.admin


# --- subjects --------------------------------------------------------------------------------


def target_filters(target: str) -> list[str]:
    """The NATS subject filters a grant target covers: a topic ``t`` gives ``evf.*.t`` and
    ``evf.*.t.>``; a pattern gives its (exact) filter."""
    if "?" in target.split(".") or "*" in target.split("."):
        return [pattern_filter(target)[0]]
    return [f"{PREFIX}.*.{target}", f"{PREFIX}.*.{target}.>"]


def subject_matches(filt: str, subject: str) -> bool:
    """True when the NATS filter ``filt`` matches the literal ``subject``."""
    f, s = filt.split("."), subject.split(".")
    for i, tok in enumerate(f):
        if tok == ">":
            return len(s) > i
        if i >= len(s) or (tok != "*" and tok != s[i]):
            return False
    return len(f) == len(s)


def filter_covers(outer: str, inner: str) -> bool:
    """True when every subject ``inner`` matches is matched by ``outer`` (both NATS filters)."""
    o, n = outer.split("."), inner.split(".")
    for i, tok in enumerate(o):
        if tok == ">":
            return len(n) > i
        if i >= len(n) or n[i] == ">":
            return False
        if tok != "*" and (n[i] == "*" or n[i] != tok):
            return False
    return len(o) == len(n)


def _deadletter(filt: str) -> str:
    head, part, rest = filt.split(".", 2)
    return f"{head}.{part}.cca.deadletter.{rest}"


# --- ownership -------------------------------------------------------------------------------


def owner_of(snap: Snapshot, topic_or_prefix: str) -> str | None:
    """Who owns this topic (or literal prefix): the namespace's identity, or the owner of the
    registered topic that covers it; None if nobody does."""
    ns = namespace_of(topic_or_prefix)
    if ns is not None:
        return ns
    for rec in snap.topics.values():
        if topic_or_prefix == rec.name or topic_or_prefix.startswith(rec.name + "."):
            return rec.owner
    return None


def can_manage_identity(snap: Snapshot, actor: str, name: str) -> bool:
    """True when ``actor`` may manage ``name``'s tokens: itself, the owner of a service, an admin."""
    if actor == name or snap.is_admin(actor):
        return True
    ident = snap.identities.get(name)
    return ident is not None and ident.kind is IdentityKind.SERVICE and ident.owner == actor


def can_manage(snap: Snapshot, actor: str, target: str) -> bool:
    """True when ``actor`` may grant and revoke rights on ``target``: an administrator, or the
    owner (or owning user of a service owner) of the target's literal prefix."""
    if snap.is_admin(actor):
        return True
    prefix = literal_prefix(target)
    if not prefix:
        return False
    owner = owner_of(snap, prefix)
    return owner is not None and can_manage_identity(snap, actor, owner)


def can_register(snap: Snapshot, actor: str, topic: str) -> bool:
    """True when ``actor`` may register ``topic``: administrators anywhere; others outside the
    reserved ``cca`` group and other identities' namespaces."""
    if snap.is_admin(actor):
        return True
    if topic == "cca" or topic.startswith("cca."):
        return False
    ns = namespace_of(topic)
    return ns is None or can_manage_identity(snap, actor, ns)


# --- rights ----------------------------------------------------------------------------------


def rights_of(snap: Snapshot, name: str) -> list[tuple[str, frozenset[Right]]]:
    """Every ``(target, rights)`` ``name`` holds: its namespace, its topics, grants to it and its groups."""
    out: list[tuple[str, frozenset[Right]]] = [(f"users.{name}", BOTH)]
    out += [(t.name, BOTH) for t in snap.topics.values() if t.owner == name]
    groups = snap.groups_of(name)
    for g in snap.grants:
        if (g.to_group and g.grantee in groups) or (not g.to_group and g.grantee == name):
            out.append((g.target, g.rights))
    return out


def allows(snap: Snapshot, name: str, right: Right | str, topic: str) -> bool:
    """True when ``name`` may ``right`` on ``topic`` (administrators may do anything)."""
    if snap.is_admin(name):
        return True
    right = Right(right)
    subject = topic_subject(topic)
    return any(right in rights and any(subject_matches(f, subject) for f in target_filters(t))
               for t, rights in rights_of(snap, name))


def access_list(snap: Snapshot, topic: str) -> list[dict[str, Any]]:
    """Who has access to ``topic`` or part of it: its owner, then every grant whose target
    overlaps it, as ``{"grantee", "group", "target", "rights"}`` rows."""
    rows: list[dict[str, Any]] = []
    owner = owner_of(snap, topic)
    if owner is not None:
        rows.append({"grantee": owner, "group": False, "target": topic, "rights": ["owner"]})
    mine = target_filters(topic)
    for g in snap.grants:
        if any(intersect(a, b) is not None for a in mine for b in target_filters(g.target)):
            rows.append({"grantee": g.grantee, "group": g.to_group, "target": g.target,
                         "rights": sorted(r.value for r in g.rights)})
    return rows


# --- the broker's view -----------------------------------------------------------------------


def _covers_all(filters: Iterable[str], wanted: list[str]) -> bool:
    fs = list(filters)
    return all(any(filter_covers(f, w) for f in fs) for w in wanted)


def nats_permissions(snap: Snapshot, name: str, inbox: str) -> dict[str, Any] | None:
    """The NATS ``permissions`` of a connection authenticated as ``name`` whose reply inboxes
    live under ``inbox`` (e.g. ``_INBOX.<token id>``); None for an administrator (no limits).

    Core: publish/subscribe on the filters of every target held, the matching dead-letter
    subjects, the framework's ``cca`` groups for reading. JetStream, per registered topic
    (stream): stream info when any right touches it; consumers (create, pull, ack, info,
    delete) only when subscribe covers the whole topic, since a consumer reads the whole stream
    unless its filter is in the API subject; create/update/delete/purge for the owner.
    """
    if snap.is_admin(name):
        return None
    pub: list[str] = []
    sub: list[str] = []
    for target, rights in rights_of(snap, name):
        for f in target_filters(target):
            if Right.PUBLISH in rights:
                pub.append(f)
            if Right.SUBSCRIBE in rights:
                sub.append(f)
                pub.append(_deadletter(f))  # a consumer parks events it cannot handle there
                sub.append(_deadletter(f))
    pub += ["$JS.API.INFO", "$JS.API.STREAM.NAMES", "$JS.API.STREAM.LIST", f"{PREFIX}.*.cca.fabric.>"]
    sub += [f"{PREFIX}.*.cca.{g}.>" for g in FRAMEWORK_GROUPS]
    sub.append(f"{inbox}.>")
    core_pub, core_sub = list(pub), list(sub)
    for rec in sorted(snap.topics.values(), key=lambda r: r.name):
        s = stream_name(rec.name)
        tf = target_filters(rec.name)
        touches = any(intersect(a, b) is not None for a in core_pub + core_sub for b in tf if a.startswith(PREFIX))
        owner = owner_of(snap, rec.name)
        owns = owner is not None and can_manage_identity(snap, name, owner)
        if touches or owns:
            pub.append(f"$JS.API.STREAM.INFO.{s}")
        if owns:
            pub += [f"$JS.API.STREAM.{op}.{s}" for op in ("CREATE", "UPDATE", "DELETE", "PURGE")]
        if owns or _covers_all(core_sub, tf):
            pub += [f"$JS.API.CONSUMER.CREATE.{s}.>", f"$JS.API.CONSUMER.DURABLE.CREATE.{s}.*",
                    f"$JS.API.CONSUMER.MSG.NEXT.{s}.*", f"$JS.API.CONSUMER.INFO.{s}.*",
                    f"$JS.API.CONSUMER.DELETE.{s}.*", f"$JS.API.CONSUMER.NAMES.{s}",
                    f"$JS.API.CONSUMER.LIST.{s}", f"$JS.ACK.{s}.>"]
    return {"publish": {"allow": _dedup(pub)}, "subscribe": {"allow": _dedup(sub)}}


def _dedup(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
