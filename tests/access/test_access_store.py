"""The access store and the policy on it, without a broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from evfabric.access import AccessStore, IdentityKind, Right, policy
from evfabric.access.manager import AccessManager
from evfabric.access.model import validate_target
from evfabric.core.clocks import ManualClock
from evfabric.core.errors import AccessDenied, AlreadyExists, ConfigError, NotFound


@pytest.fixture
def store(tmp_path: Path) -> AccessStore:
    st = AccessStore.in_dir(tmp_path)
    st.create_identity("root", admin=True)
    st.create_identity("alice")
    st.create_identity("bob")
    st.create_identity("carol")
    return st


def test_identities_are_unique_named_and_persist(store: AccessStore, tmp_path: Path) -> None:
    with pytest.raises(AlreadyExists):
        store.create_identity("alice")
    with pytest.raises(ConfigError, match="name"):
        store.create_identity("no.dots")
    with pytest.raises(ConfigError, match="kind"):
        store.create_identity("x", kind="robot")
    svc = store.create_identity("pipeline", IdentityKind.SERVICE, owner="alice")
    assert svc.kind is IdentityKind.SERVICE and svc.owner == "alice"
    reopened = AccessStore.in_dir(tmp_path)
    assert [i.name for i in reopened.list_identities()] == ["alice", "bob", "carol", "pipeline", "root"]
    assert reopened.get_identity("root").admin
    with pytest.raises(NotFound):
        reopened.get_identity("zed")


def test_a_new_token_does_not_revoke_the_others(store: AccessStore) -> None:
    t1 = store.issue_token("alice")
    t2 = store.issue_token("alice", description="laptop")
    assert t1.secret != t2.secret and t1.info.id != t2.info.id
    assert store.authenticate(t1.secret)[0].name == "alice"
    assert store.authenticate(t2.secret)[0].name == "alice"
    assert [t.id for t in store.list_tokens("alice", valid_only=True)] == [t1.info.id, t2.info.id]


def test_token_secrets_are_stored_hashed(store: AccessStore) -> None:
    tok = store.issue_token("alice")
    raw = store.path.read_bytes() + (store.path.with_name(store.path.name + "-wal").read_bytes()
                                     if store.path.with_name(store.path.name + "-wal").exists() else b"")
    assert tok.secret.encode() not in raw
    secret_part = tok.secret.split("_", 2)[2]
    assert secret_part.encode() not in raw


def test_revoked_expired_and_forged_tokens_are_refused(store: AccessStore) -> None:
    clock = ManualClock()
    store = AccessStore(store.path, clock=clock)  # the same file, read at a time the test moves
    keep = store.issue_token("bob")
    revoked = store.issue_token("bob")
    store.revoke_token(revoked.info.id)
    with pytest.raises(AccessDenied):
        store.authenticate(revoked.secret)
    assert store.get_token(revoked.info.id).state == "revoked"
    short = store.issue_token("bob", expires_in=0.2)
    assert store.authenticate(short.secret)[0].name == "bob"
    assert store.next_expiry() == pytest.approx(short.info.expires)
    clock.advance(0.1)
    assert store.authenticate(short.secret)[0].name == "bob"  # not yet: the TTL runs on the store's clock
    clock.advance(0.2)
    with pytest.raises(AccessDenied):
        store.authenticate(short.secret)
    assert not store.get_token(short.info.id).valid(clock.time())
    assert short.info.id not in [t.id for t in store.list_tokens("bob", valid_only=True)]
    assert store.next_expiry() is None
    ended = store.issue_token("bob")
    store.expire_token(ended.info.id)
    with pytest.raises(AccessDenied):
        store.authenticate(ended.secret)
    forged = keep.secret[:-4] + ("AAAA" if not keep.secret.endswith("AAAA") else "BBBB")
    with pytest.raises(AccessDenied):
        store.authenticate(forged)
    with pytest.raises(AccessDenied):
        store.authenticate("not-a-token")
    assert store.authenticate(keep.secret)[0].name == "bob"
    assert [t.id for t, _ in store.nats_users()] == [keep.info.id]
    with pytest.raises(ConfigError, match="expires_in"):
        store.issue_token("bob", expires_in=-1)


def test_every_change_bumps_the_version_and_calls_listeners(store: AccessStore) -> None:
    seen: list[int] = []
    store.on_change(lambda: seen.append(1))
    v = store.version()
    store.issue_token("alice")
    assert store.version() == v + 1 and seen == [1]
    store.authenticate(store.issue_token("alice").secret)  # reads do not count
    assert store.version() == v + 2


def test_topics_cannot_overlap(store: AccessStore) -> None:
    store.register_topic("jobs", "alice")
    for name in ("jobs", "jobs.x", ):
        with pytest.raises(AlreadyExists):
            store.register_topic(name, "bob")
    store.register_topic("jobsx", "bob")  # a different topic, not a child
    store.register_topic("lab.a", "bob")
    with pytest.raises(AlreadyExists, match="overlaps"):
        store.register_topic("lab", "carol")
    with pytest.raises(ConfigError):
        store.register_topic("users", "root")


def test_grants_add_and_take_back_rights(store: AccessStore) -> None:
    store.register_topic("jobs", "alice")
    g = store.grant("jobs", "bob", ["subscribe"])
    assert g.rights == {Right.SUBSCRIBE}
    g = store.grant("jobs", "bob", [Right.PUBLISH])
    assert g.rights == {Right.PUBLISH, Right.SUBSCRIBE}
    assert store.revoke("jobs", "bob", ["publish"]).rights == {Right.SUBSCRIBE}  # type: ignore[union-attr]
    assert store.revoke("jobs", "bob") is None
    with pytest.raises(NotFound):
        store.revoke("jobs", "bob")
    with pytest.raises(NotFound, match="grantee"):
        store.grant("jobs", "nobody", ["publish"])
    with pytest.raises(ConfigError, match="rights"):
        store.grant("jobs", "bob", ["write"])


def test_unregistering_or_deleting_drops_grants(store: AccessStore) -> None:
    store.register_topic("jobs", "alice")
    store.grant("jobs.status", "bob", ["subscribe"])
    store.grant("jobs.?", "carol", ["subscribe"])
    store.grant("users.alice.x", "bob", ["subscribe"])
    store.unregister_topic("jobs")
    assert [g.target for g in store.list_grants()] == ["users.alice.x"]
    store.delete_identity("bob")
    assert store.list_grants() == []


def test_grant_targets_the_broker_can_enforce() -> None:
    assert validate_target("jobs.?.done") == "jobs.?.done"
    assert validate_target("users.alice.*") == "users.alice.*"
    with pytest.raises(ConfigError, match="before its last segment"):
        validate_target("jobs.*.done")
    with pytest.raises(ConfigError, match="reserved"):
        validate_target("cca.deadletter.x")
    with pytest.raises(ConfigError):
        validate_target("bad topic")


def test_policy_ownership_namespaces_and_groups(store: AccessStore) -> None:
    store.register_topic("jobs", "alice")
    store.create_group("lab", members=["carol"])
    store.grant("jobs.?", "lab", ["subscribe"], to_group=True)
    store.grant("users.alice.shared", "bob", ["publish"])
    snap = store.snapshot()
    allows = policy.allows
    assert allows(snap, "alice", "publish", "users.alice.notes")
    assert not allows(snap, "bob", "subscribe", "users.alice.notes")  # other namespace
    assert allows(snap, "bob", "publish", "users.alice.shared.deep")  # a topic grant covers its subtree
    assert not allows(snap, "bob", "subscribe", "users.alice.shared")
    assert allows(snap, "carol", "subscribe", "jobs.status")  # through the group
    assert not allows(snap, "carol", "subscribe", "jobs.status.deep")  # '?' is exactly one segment
    assert not allows(snap, "carol", "publish", "jobs.status")
    assert allows(snap, "root", "publish", "anything.at.all")
    assert policy.owner_of(snap, "jobs.x") == "alice" and policy.owner_of(snap, "users.bob.q") == "bob"
    assert policy.can_manage(snap, "alice", "jobs.?") and not policy.can_manage(snap, "bob", "jobs")
    assert not policy.can_manage(snap, "alice", "*")  # no literal prefix: administrators only
    rows = policy.access_list(snap, "jobs")
    assert {(r["grantee"], tuple(r["rights"])) for r in rows} == {("alice", ("owner",)), ("lab", ("subscribe",))}


def test_nats_permissions_follow_the_rights(store: AccessStore) -> None:
    store.register_topic("jobs", "alice")
    store.register_topic("lab", "alice")
    store.grant("jobs", "bob", ["subscribe"])
    store.grant("lab.?", "bob", ["subscribe"])
    snap = store.snapshot()
    root = policy.nats_permissions(snap, "root", "_INBOX.x")
    assert root["subscribe"]["allow"] == [">"] and root["publish"]["allow"][0] == "evf.root.>"
    assert {"evf.alice.>", "evf.bob.>", "evf._.>"} <= set(root["publish"]["deny"])  # never in another's name
    assert "evf.root.>" not in root["publish"]["deny"]
    bob = policy.nats_permissions(snap, "bob", "_INBOX.t1")
    pub, sub = bob["publish"]["allow"], bob["subscribe"]["allow"]
    assert "evf.*.*.jobs" in sub and "evf.*.*.jobs.>" in sub and "evf.*.*.lab.*" in sub
    assert not any(p.startswith("evf.") and not p.startswith("evf.bob.") for p in pub)  # bound to bob
    assert "evf.bob.*.users.bob" in pub and "evf.bob.*.cca.deadletter.jobs" in pub
    assert "evf.bob.*.cca.fabric.>" in pub and "$SYS.REQ.USER.INFO" in pub
    assert "evf.bob.*.jobs" not in pub and "_INBOX.t1.>" in sub and "_INBOX.>" not in sub
    from evfabric.fabric.subjects import stream_name

    jobs, lab = stream_name("jobs"), stream_name("lab")
    # nobody creates streams or consumers directly: the topic service does, from validated configs
    assert not any(p.startswith(("$JS.API.CONSUMER.CREATE", "$JS.API.CONSUMER.DURABLE", "$JS.API.STREAM.CREATE",
                                 "$JS.API.STREAM.UPDATE", "$JS.API.STREAM.DELETE")) for p in pub)
    assert f"$JS.API.STREAM.INFO.{lab}" in pub
    # a partial grant cannot be widened: the levels below `lab.?` are denied per message
    assert "evf.*.*.lab.*.>" in bob["subscribe"]["deny"]
    alice = policy.nats_permissions(snap, "alice", "_INBOX.t2", "t2")
    assert alice is not None and f"$JS.API.STREAM.CREATE.{jobs}" not in alice["publish"]["allow"]
    assert "$EVF.API.*.*.t2" in alice["publish"]["allow"] and "evf.alice.*.jobs" in alice["publish"]["allow"]
    # a consumer the service recorded for bob: bob may pull from and ack exactly that one
    store.record_consumer(jobs, "c1", "bob")
    bob = policy.nats_permissions(store.snapshot(), "bob", "_INBOX.t1")
    assert bob is not None
    assert f"$JS.API.CONSUMER.MSG.NEXT.{jobs}.c1" in bob["publish"]["allow"]
    assert f"$JS.ACK.{jobs}.c1.>" in bob["publish"]["allow"]


def test_subject_matching_agrees_with_nats_rules() -> None:
    m, c = policy.subject_matches, policy.filter_covers
    assert m("evf.*.*.a.>", "evf._.0.a.b.c") and not m("evf.*.*.a.>", "evf._.0.a")
    assert m("evf.*.*.a", "evf.x.3.a") and not m("evf.*.*.a", "evf.x.3.a.b") and not m("evf.y.*.a", "evf.x.3.a")
    assert c("evf.*.*.a.>", "evf.*.*.a.b") and c("evf.*.*.a.>", "evf.*.*.a.*.>") and c("evf.*.*.a", "evf.x.*.a")
    assert not c("evf.*.*.a.*", "evf.*.*.a.>") and not c("evf.*.*.a", "evf.*.*.a.>")
    assert not c("evf.*.0.a", "evf.*.*.a") and not c("evf.x.*.a", "evf.*.*.a")


def test_manager_enforces_who_may_do_what(store: AccessStore) -> None:
    mgr = AccessManager(store)
    root, alice, bob = (store.get_identity(n) for n in ("root", "alice", "bob"))
    with pytest.raises(AccessDenied):
        mgr.create_identity(alice, "mallory")
    svc = mgr.create_identity(alice, "alice-bot", "service")
    assert svc.owner == "alice"
    assert mgr.issue_token(alice, "alice-bot").info.identity == "alice-bot"
    with pytest.raises(AccessDenied):
        mgr.issue_token(bob, "alice")
    with pytest.raises(AccessDenied):
        mgr.register_topic(bob, "users.alice.mine")
    with pytest.raises(AccessDenied):
        mgr.register_topic(bob, "cca.x")
    mgr.register_topic(alice, "users.alice.data")
    mgr.register_topic(bob, "sensors")
    with pytest.raises(AccessDenied):
        mgr.grant(alice, "sensors", "carol", ["subscribe"])
    mgr.grant(bob, "sensors.?", "alice", ["subscribe"])
    with pytest.raises(AccessDenied):
        mgr.get_topic(alice, "sensors")  # alice may read it, but only its owner sees the access list
    assert [t.name for t in mgr.list_topics(alice)] == ["sensors", "users.alice.data"]
    assert [g.target for g in mgr.list_grants(alice)] == ["sensors.?"]
    assert mgr.check(alice, "subscribe", "sensors.t1") and not mgr.check(alice, "publish", "sensors.t1")
    assert len(mgr.list_identities(root)) == 5 and {i.name for i in mgr.list_identities(alice)} == {"alice", "alice-bot"}
    mgr.grant(root, "sensors", "carol", ["publish"])  # administrators manage everything
    with pytest.raises(AccessDenied):
        mgr.delete_identity(alice, "alice")
