"""Issue #10 points 5 and gap 2: the broker enforces exactly what ``AccessManager.check``
answers, for any set of grants, revocations, registrations and group memberships.

Property tests (hypothesis) run random operations through the store and compare, on a sample
of subjects, what the generated permissions let a user receive and publish (evaluated with the
model of nats-server in ``_natsmodel``) with what :func:`policy.allows` (``check``) says. The
broker tests check that model against a real nats-server on the same kind of states.

One combination cannot be enforced exactly by NATS: a grant ending in ``?`` (``exp.?``) beside
a right below that level that does not cover all of it (``exp.a``): the subscription
``evf.*.*.exp.>`` is admitted by ``evf.*.*.exp.*`` and only a deny rule, applied to every
message, can take ``exp.b.c`` back, and no deny rule spares ``exp.a.b``. The store refuses to
create it by a grant, a registration or a membership; one left by a revocation (of ``exp.*``
beside both) or held by an older store gets the deny (the user loses ``exp.a.b``, never gains
``exp.b.c``).
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest
from _attack import Raw, eventually
from _natsmodel import NatsUser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evfabric.access import AccessStore
from evfabric.access.model import Grant, Right
from evfabric.access.policy import Snapshot, allows, nats_permissions, subscribe_conflicts
from evfabric.core.errors import AlreadyExists, ConfigError, NotFound
from evfabric.fabric.roundtrip import flush

SEGS = ("a", "b")
ROOTS = ("exp", "lab")
#: every topic of up to four levels under the roots, with a segment no grant names ("z")
TOPICS = [".".join((r, *rest)) for r in ROOTS for n in range(4)
          for rest in __import__("itertools").product((*SEGS, "z"), repeat=n)]

topic_st = st.builds(lambda r, rest: ".".join((r, *rest)), st.sampled_from(ROOTS),
                     st.lists(st.sampled_from(SEGS), max_size=2))
target_st = st.builds(lambda r, rest, star: ".".join((r, *rest, *(["*"] if star else []))),
                      st.sampled_from(ROOTS), st.lists(st.sampled_from((*SEGS, "?")), max_size=2), st.booleans())
rights_st = st.sets(st.sampled_from(["publish", "subscribe"]), min_size=1, max_size=2).map(sorted)
op_st = st.one_of(
    st.tuples(st.just("grant"), target_st, rights_st, st.booleans()),  # to bob, or to bob's group
    st.tuples(st.just("revoke"), target_st, rights_st, st.booleans()),
    st.tuples(st.just("register"), topic_st, st.sampled_from(["alice", "bob"]), st.just(False)),
    st.tuples(st.just("unregister"), topic_st, st.just([]), st.just(False)),
)


def _new_store(where: Path) -> AccessStore:
    store = AccessStore.in_dir(where)
    for name, admin in (("root", True), ("alice", False), ("bob", False)):
        store.create_identity(name, admin=admin)
    store.create_group("lab", members=["bob"])
    return store


def _apply(store: AccessStore, ops: list[tuple[str, str, Any, bool]]) -> list[str]:
    """Run ``ops``; the messages of those the store refused as unenforceable."""
    refusals: list[str] = []
    for kind, what, extra, group in ops:
        try:
            if kind == "grant":
                store.grant(what, "lab" if group else "bob", extra, to_group=group)
            elif kind == "revoke":
                store.revoke(what, "lab" if group else "bob", extra, to_group=group)
            elif kind == "register":
                store.register_topic(what, extra)
            else:
                store.unregister_topic(what)
        except ConfigError as exc:
            assert "\n" not in str(exc) and "cannot keep" in str(exc), exc
            refusals.append(str(exc))
        except (AlreadyExists, NotFound):
            pass
    return refusals


def _mismatches(snap: Snapshot, name: str) -> list[str]:
    """Where the broker (the model of the generated permissions) and ``allows`` disagree."""
    user = NatsUser(nats_permissions(snap, name, f"_INBOX.{name}", "tok"))
    out: list[str] = []
    for topic in TOPICS:
        may_sub, may_pub = allows(snap, name, Right.SUBSCRIBE, topic), allows(snap, name, Right.PUBLISH, topic)
        for subject in (f"evf.alice.0.{topic}", f"evf.alice.0.cca.deadletter.{topic}"):
            if user.receivable(subject) != may_sub:
                out.append(f"receive {subject}: broker {not may_sub}, check {may_sub}")
        if user.publishable(f"evf.{name}.0.{topic}") != may_pub:
            out.append(f"publish {topic}: broker {not may_pub}, check {may_pub}")
        if user.publishable(f"evf.alice.0.{topic}"):
            out.append(f"publish {topic} as alice")
    return out


@pytest.mark.timeout(300)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op_st, max_size=8))
def test_generated_permissions_are_exactly_check(ops: list[tuple[str, str, Any, bool]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = _new_store(Path(tmp))
        _apply(store, ops)
        snap = store.snapshot()
        if subscribe_conflicts(snap, "bob"):
            # only a revocation (of the right that covered the deeper levels) leaves one: safe side
            assert any(kind == "revoke" for kind, *_ in ops)
            assert all(m.endswith("broker False, check True") for m in _mismatches(snap, "bob"))
        else:
            assert _mismatches(snap, "bob") == []


@functools.lru_cache(maxsize=1)
def _base_snapshot() -> Snapshot:
    with tempfile.TemporaryDirectory() as tmp:
        return _new_store(Path(tmp)).snapshot()


grant_st = st.builds(lambda t, r: Grant(t, "bob", rights=frozenset(Right(x) for x in r)), target_st, rights_st)


@pytest.mark.timeout(300)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(grant_st, max_size=5))
def test_an_unenforceable_set_loses_rights_but_never_widens(grants: list[Grant]) -> None:
    """Grants put in the store by other means (an older version): never more than ``check``."""
    base = _base_snapshot()
    snap = Snapshot(base.identities, base.groups, base.topics, grants)
    user = NatsUser(nats_permissions(snap, "bob", "_INBOX.bob", "tok"))
    conflicts = subscribe_conflicts(snap, "bob")
    for topic in TOPICS:
        for subject in (f"evf.alice.0.{topic}", f"evf.alice.0.cca.deadletter.{topic}"):
            if user.receivable(subject):
                assert allows(snap, "bob", Right.SUBSCRIBE, topic), subject
            elif not conflicts:
                assert not allows(snap, "bob", Right.SUBSCRIBE, topic), subject


def test_the_store_refuses_an_unenforceable_overlap(tmp_path: Path) -> None:
    store = _new_store(tmp_path)
    store.grant("exp.?", "bob", ["subscribe"])
    with pytest.raises(ConfigError, match=r"'exp\.\?' beside 'exp\.a'.*grant 'exp\.\*'"):
        store.grant("exp.a", "bob", ["subscribe"])
    with pytest.raises(ConfigError, match="cannot keep"):
        store.register_topic("exp.b", "bob")  # owning it is a right below the level too
    store.create_group("other")
    store.grant("exp.?.raw", "other", ["subscribe"], to_group=True)
    with pytest.raises(ConfigError, match="cannot keep"):
        store.add_member("other", "bob")
    assert store.list_groups()[1].members == ()  # nothing half done
    # positive controls: publish-only below, the whole subtree, a pattern below a literal level
    store.grant("exp.a", "bob", ["publish"])
    store.grant("exp.*", "bob", ["subscribe"])  # covers every level: now anything below is fine
    store.grant("exp.a", "bob", ["subscribe"])
    store.register_topic("exp.b", "bob")
    assert _mismatches(store.snapshot(), "bob") == []
    # a revocation always goes through; what it leaves errs on the safe side (less, never more)
    store.revoke("exp.*", "bob", ["subscribe"])
    snap = store.snapshot()
    assert ("exp.?", "exp.a") in subscribe_conflicts(snap, "bob")
    wrong = _mismatches(snap, "bob")
    assert wrong and all(m.endswith("broker False, check True") for m in wrong), wrong


# --- the model against a real nats-server --------------------------------------------------------

SUBSCRIPTIONS = ["evf.*.*.exp.>", "evf.*.*.exp.*", "evf.*.*.exp.*.>", "evf.*.*.exp.a.>", "evf.*.*.exp.*.raw",
                 "evf.*.*.exp.a.b", "evf.>", "evf.root.*.exp.>", "evf.*.*.cca.deadletter.exp.>"]
SUBJECTS = ["evf.root.0.exp.a", "evf.root.0.exp.a.b", "evf.root.0.exp.a.raw", "evf.root.0.exp.b.raw",
            "evf.root.0.exp.b.c", "evf.root.0.exp.b.c.d", "evf.root.0.cca.deadletter.exp.a",
            "evf.root.0.cca.deadletter.exp.b.c"]
STATES: dict[str, list[tuple[str, list[str]]]] = {
    "one level": [("exp.?", ["subscribe"])],
    "one level, all covered": [("exp.?", ["subscribe"]), ("exp.*", ["subscribe"])],
    "pattern below and a topic": [("exp.?.raw", ["subscribe"]), ("exp.a", ["subscribe"])],
    "a topic": [("exp.a", ["subscribe"])],
}


def _broker_sees(secured: Any, perms: dict[str, Any]) -> list[str]:
    """Deliveries (subscription, subject) where the real broker and the model disagree."""
    user = NatsUser(perms)

    async def main() -> list[str]:
        root = await Raw().open(secured.url, secured.tokens["root"])
        bob = await Raw().open(secured.url, secured.tokens["bob"])
        got = {s: await bob.collect(s) for s in SUBSCRIPTIONS}
        await flush(bob.nc)
        for subject in SUBJECTS:
            await root.nc.publish(subject, b"x")
        await flush(root.nc)
        expect = {s: [m for m in SUBJECTS if user.delivered(s, m)] for s in SUBSCRIPTIONS}
        await eventually(lambda: all(len(got[s]) >= len(expect[s]) for s in SUBSCRIPTIONS))
        await asyncio.sleep(0.3)  # room for deliveries the model does not expect
        wrong = []
        for s in SUBSCRIPTIONS:
            seen = sorted(m.subject for m in got[s])
            if seen != sorted(expect[s]):
                wrong.append(f"{s}: broker {seen}, model {sorted(expect[s])} (admitted {user.admitted(s)})")
        await bob.close()
        await root.close()
        return wrong

    return asyncio.run(main())


@pytest.mark.broker
@pytest.mark.timeout(120)
@pytest.mark.parametrize("state", list(STATES))
def test_the_model_is_the_broker(secured: Any, state: str) -> None:
    secured.store.register_topic("exp", "root")
    for target, rights in STATES[state]:
        secured.store.grant(target, "bob", rights)
    secured.apply()
    snap = secured.store.snapshot()
    tok = secured.store.authenticate(secured.tokens["bob"])[1].id
    perms = nats_permissions(snap, "bob", f"_INBOX.{tok}", tok)
    assert _broker_sees(secured, perms) == []
    assert _mismatches(snap, "bob") == []


@pytest.mark.broker
@pytest.mark.timeout(120)
def test_an_old_overlapping_store_never_widens_on_the_broker(secured: Any) -> None:
    """``exp.?`` and ``exp.a`` written straight into the database (as an older version could):
    bob's wide subscription gets ``exp.a`` and ``exp.b``, never ``exp.b.c``."""
    secured.store.register_topic("exp", "root")
    secured.store.grant("exp.?", "bob", ["subscribe"])
    with sqlite3.connect(secured.store.path) as db:
        db.execute("INSERT INTO grants VALUES ('exp.a','bob',0,0,1,'old',0)")
        db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'version'")
    secured.apply()
    snap = secured.store.snapshot()
    assert subscribe_conflicts(snap, "bob") == [("exp.?", "exp.a")]
    tok = secured.store.authenticate(secured.tokens["bob"])[1].id
    perms = nats_permissions(snap, "bob", f"_INBOX.{tok}", tok)
    assert _broker_sees(secured, perms) == []
    user = NatsUser(perms)
    assert not any(user.delivered(s, "evf.root.0.exp.b.c") for s in SUBSCRIPTIONS)
    assert user.delivered("evf.*.*.exp.>", "evf.root.0.exp.a")
