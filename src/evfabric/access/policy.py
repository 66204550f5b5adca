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
from evfabric.fabric.catalog import CATALOG_STREAM
from evfabric.fabric.streams import namespace_stream
from evfabric.fabric.subjects import PREFIX, intersect, pattern_filter, topic_subject
from evfabric.fabric.topic_api import SERVICE_PREFIX

__all__ = [
    "FRAMEWORK_GROUPS",
    "Snapshot",
    "access_list",
    "admin_permissions",
    "allows",
    "can_manage",
    "can_manage_identity",
    "can_register",
    "filter_covers",
    "nats_permissions",
    "owner_of",
    "rights_of",
    "subject_matches",
    "subscribe_conflicts",
    "subscribe_filters",
    "target_filters",
]

#: ``cca`` groups every identity may read (framework events); ``cca.deadletter.<t>`` follows the rights on ``t``.
FRAMEWORK_GROUPS = ("events", "listener", "topic", "subscription", "fabric", "trigger")
BOTH = frozenset(Right)
#: reading the topic catalog (which stream holds a topic; docs/wire.md "Topics and streams"):
#: direct gets of single records and the list of its keys, never a write
CATALOG_READ = (f"$JS.API.DIRECT.GET.{CATALOG_STREAM}.>", f"$JS.API.STREAM.INFO.{CATALOG_STREAM}")


@dataclass(frozen=True)
class Snapshot:
    """A consistent copy of the access store (see :meth:`AccessStore.snapshot`)."""

    identities: dict[str, Identity]
    groups: dict[str, Group]
    topics: dict[str, TopicRecord]
    grants: list[Grant] = field(default_factory=list)
    version: int = 0
    consumers: list[tuple[str, str, str]] = field(default_factory=list)  # (stream, consumer, identity)

    def groups_of(self, name: str) -> set[str]:
        """The groups ``name`` belongs to."""
        return {g.name for g in self.groups.values() if name in g.members}

    def is_admin(self, name: str) -> bool:
        """True for an existing administrator."""
        ident = self.identities.get(name)
        return ident is not None and ident.admin


# --- subjects --------------------------------------------------------------------------------


def target_filters(target: str, publisher: str | None = None) -> list[str]:
    """The NATS subject filters a grant target covers: a topic ``t`` gives ``evf.*.*.t`` and
    ``evf.*.*.t.>``; a pattern gives its (exact) filter. ``publisher`` binds the publisher token
    (``evf.<publisher>.*.t``...): the filters an identity may publish on."""
    if "?" in target.split(".") or "*" in target.split("."):
        return [pattern_filter(target, publisher=publisher)[0]]
    pub = "*" if publisher is None else publisher
    return [f"{PREFIX}.{pub}.*.{target}", f"{PREFIX}.{pub}.*.{target}.>"]


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
    head, pub, part, rest = filt.split(".", 3)
    return f"{head}.{pub}.{part}.cca.deadletter.{rest}"


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


def quota_holder(snap: Snapshot, name: str) -> str:
    """Whose quotas ``name``'s topics and consumers count against: a service's owning user (a
    user's services share its quotas, so making services multiplies nothing), else ``name``."""
    seen: set[str] = set()
    while name not in seen:
        ident = snap.identities.get(name)
        if ident is None or ident.kind is not IdentityKind.SERVICE or not ident.owner:
            break
        seen.add(name)
        name = ident.owner
    return name


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


def subscribe_filters(snap: Snapshot, name: str) -> list[str]:
    """Every NATS filter ``name`` may subscribe to for events (its targets and their dead letters)."""
    out: list[str] = []
    for target, rights in rights_of(snap, name):
        if Right.SUBSCRIBE in rights:
            for f in target_filters(target):
                out += [f, _deadletter(f)]
    return _dedup(out)


def _one_level(f: str) -> str | None:
    """The levels below a filter ending in ``*`` (``evf.*.*.exp.*`` -> ``evf.*.*.exp.*.>``), else None."""
    return f + ".>" if f.endswith(".*") else None


def _deeper_denies(allowed: list[str]) -> list[str]:
    """Deny rules that keep partial grants partial.

    NATS admits a subscription when its subject matches an allow rule token by token, and a
    literal ``>`` matches ``*``: the allow ``evf.*.exp.*`` admits ``evf.*.exp.>``, the subtree.
    Only deny rules, which nats-server applies to every message a connection receives, can take
    the deeper levels back, so for every allowed filter ending in ``*`` the levels below it are
    denied unless another allowed filter covers them all. A deny cannot be cut to spare a
    *partial* right below (``exp.?`` beside ``exp.a``: no NATS rule denies ``exp.b.c`` but not
    ``exp.a.b``); such a right is lost rather than the level widened (never more than
    :func:`allows`). :func:`subscribe_conflicts` names those combinations, which the store refuses
    to create.
    """
    denies: list[str] = []
    for f in allowed:
        deeper = _one_level(f)
        if deeper is not None and not any(filter_covers(g, deeper) for g in allowed):
            denies.append(deeper)
    return _dedup(denies)


def subscribe_conflicts(snap: Snapshot, name: str) -> list[tuple[str, str]]:
    """``(one-level target, deeper target)`` pairs among ``name``'s subscribe rights that the
    broker cannot enforce together exactly: a target ending in ``?`` (``exp.?``) beside a right
    that reaches below that level without covering all of it (``exp.a``, ``exp.?.raw``).
    Administrators have none. Empty means the broker enforces exactly what :func:`allows` says."""
    if snap.is_admin(name):
        return []
    targets = _dedup([t for t, rights in rights_of(snap, name) if Right.SUBSCRIBE in rights])
    filters = {t: target_filters(t) for t in targets}
    every = [f for fs in filters.values() for f in fs]
    out: list[tuple[str, str]] = []
    for t in targets:
        for f in filters[t]:
            deeper = _one_level(f)
            if deeper is None or any(filter_covers(g, deeper) for g in every):
                continue
            out += [(t, u) for u in targets
                    if u != t and any(intersect(g, deeper) is not None for g in filters[u])]
    return list(dict.fromkeys(out))


def nats_permissions(snap: Snapshot, name: str, inbox: str, token_id: str | None = None) -> dict[str, Any]:
    """The NATS ``permissions`` of a connection authenticated as ``name`` (with token
    ``token_id``) whose reply inboxes live under ``inbox`` (e.g. ``_INBOX.<token id>``).

    Every publish filter binds the publisher token to ``name`` (``evf.<name>.*.<t>``, docs/wire.md
    section 6), so nobody can publish an event that claims another publisher; subscribe filters
    take any publisher (``evf.*.*.<t>``). An administrator may do anything but publish in another
    identity's name (:func:`admin_permissions`).

    Core: publish/subscribe on the filters of every target held, the matching dead-letter
    subjects, the framework's ``cca`` groups for reading, ``$SYS.REQ.USER.INFO`` (how a client
    learns its identity), deny rules that keep partial grants from widening
    (:func:`_deeper_denies`). JetStream: stream info and listing; **no** stream
    or consumer creation, update or deletion: those go through the topic service
    (``$EVF.API.<kind>.<op>.<token id>``, the only service subjects this token may publish on,
    so the service knows who asks), which validates them. The consumers the service recorded
    for ``name`` may be pulled from, acknowledged, inspected and deleted.
    """
    if snap.is_admin(name):
        return admin_permissions(snap, name)
    pub: list[str] = []
    sub: list[str] = []
    for target, rights in rights_of(snap, name):
        if Right.PUBLISH in rights:
            pub += target_filters(target, name)
        if Right.SUBSCRIBE in rights:
            for f in target_filters(target):
                sub.append(f)
                sub.append(_deadletter(f))
            # a consumer parks events it cannot handle there, under its own name
            pub += [_deadletter(f) for f in target_filters(target, name)]
    pub += ["$JS.API.INFO", "$JS.API.STREAM.NAMES", "$JS.API.STREAM.LIST", "$SYS.REQ.USER.INFO",
            f"{PREFIX}.{name}.*.cca.fabric.>", *CATALOG_READ]
    if token_id is not None:
        pub.append(f"{SERVICE_PREFIX}.*.*.{token_id}")
    sub += [f"{PREFIX}.*.*.cca.{g}.>" for g in FRAMEWORK_GROUPS]
    sub.append(f"{inbox}.>")
    core_pub, core_sub = list(pub), list(sub)
    for rec in sorted(snap.topics.values(), key=lambda r: r.name):
        s = namespace_stream(rec.name)
        tf = target_filters(rec.name)
        touches = any(intersect(a, b) is not None for a in core_pub + core_sub for b in tf if a.startswith(PREFIX))
        owner = owner_of(snap, rec.name)
        if touches or (owner is not None and can_manage_identity(snap, name, owner)):
            pub.append(f"$JS.API.STREAM.INFO.{s}")
    for stream, consumer, holder in snap.consumers:
        if holder == name:
            pub += [f"$JS.API.CONSUMER.{op}.{stream}.{consumer}" for op in ("MSG.NEXT", "INFO", "DELETE")]
            pub.append(f"$JS.ACK.{stream}.{consumer}.>")
    out: dict[str, Any] = {"publish": {"allow": _dedup(pub)}, "subscribe": {"allow": _dedup(sub)}}
    denies = _deeper_denies(_dedup(core_sub))
    if denies:
        out["subscribe"]["deny"] = denies
    return out



def admin_permissions(snap: Snapshot, name: str) -> dict[str, Any]:
    """An administrator's NATS permissions: subscribe to anything; publish anything (broker APIs,
    foreign topics) except events in another's name: every other identity's ``evf.<x>.>`` and the
    anonymous ``evf._.>`` are denied (the broker's deny wins over its allow). ``evf.<name>.>``
    comes first in the allow list: the client reads its identity from there."""
    others = [f"{PREFIX}.{x}.>" for x in sorted(snap.identities) if x != name]
    return {"publish": {"allow": [f"{PREFIX}.{name}.>", ">"], "deny": [f"{PREFIX}._.>", *others]},
            "subscribe": {"allow": [">"]}}


def _dedup(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
