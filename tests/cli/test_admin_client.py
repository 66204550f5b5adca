"""The Python admin client over HTTP (evfabric.access.admin.Admin) against a real ``evfabric serve``
with access control on: identities, tokens, topics, grants (checked by the broker), triggers."""

from __future__ import annotations

from pathlib import Path

import pytest

import evfabric
from conftest import free_port, serving
from evfabric.access import AccessStore
from evfabric.access.admin import Admin
from evfabric.core.errors import AccessDenied, AlreadyExists, BrokerUnavailable, NotFound

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]


def test_admin_client_manages_access_and_triggers(tmp_path: Path) -> None:
    data = tmp_path / "broker"
    store = AccessStore.in_dir(data)
    store.create_identity("root", admin=True)
    root_token = store.issue_token("root").secret
    with serving(data) as srv, Admin(srv.web_url, root_token) as root:
        assert root.whoami()["identity"]["name"] == "root"
        root.create_identity("alice")
        root.create_identity("bob")
        with pytest.raises(AlreadyExists):
            root.create_identity("bob")
        alice_token = root.create_token("alice")["token"]
        bob = root.issue_token("bob", description="for the test")
        bob_token, bob_id = bob["token"], bob["info"]["id"]
        assert [t["id"] for t in root.tokens("bob")] == [bob_id]
        with Admin(srv.web_url, alice_token) as alice:
            alice.register_topic("experiments")
            alice.grant("experiments.?", "bob", ["subscribe"])
            assert root.check("bob", "subscribe", "experiments.run1")
            assert not root.check("bob", "publish", "experiments.run1")
            assert "bob" in str(alice.topic("experiments")["access"])
            # the broker enforces what the API granted, from the answer on: no waiting
            with evfabric.connect(srv.url, token=bob_token) as c:
                sub = c.subscribe("experiments.run1")
                with evfabric.connect(srv.url, token=alice_token) as p:
                    p.publish("experiments.run1", {"n": 1})
                    assert sub.next(timeout=10).body == {"n": 1}
                    for n in range(3):  # each grant is in force when its answer comes
                        alice.grant(f"users.alice.more{n}", "bob", ["subscribe"])  # not below experiments.?: refused there
                        c.subscribe(f"users.alice.more{n}")
            alice.revoke("experiments.?", "bob")
            with evfabric.connect(srv.url, token=bob_token) as c, pytest.raises(AccessDenied):
                c.subscribe("experiments.run1")  # ... and so is each revocation
            assert not root.check("bob", "subscribe", "experiments.run1")
            with pytest.raises(AccessDenied):
                alice.create_identity("mallory")  # alice is no administrator
            with pytest.raises(NotFound):
                alice.topic("nosuchtopic")
            with pytest.raises(AccessDenied):  # code on the server host is an administrator's decision
                alice.create_trigger("archive", "users.alice.jobs.*", {"kind": "shell", "target": "true"})
            trig = alice.create_trigger("archive", "users.alice.jobs.*",
                                        {"kind": "webhook", "target": "https://example.org/hook"}, retries=1)
            assert trig["name"] == "archive"
            assert [t["name"] for t in alice.triggers()] == ["archive"]
            alice.enable_trigger("archive", False)
            assert [t["enabled"] for t in alice.triggers()] == [False] and "archive" in str(alice.trigger("archive"))
            alice.delete_trigger("archive")
            assert alice.triggers() == []
        revoked = root.revoke_token(bob_id)
        assert revoked["state"] == "revoked"
        with Admin(srv.web_url, "evf_0123456789abcdef_" + "A" * 43) as nobody, pytest.raises(AccessDenied):
            nobody.whoami()
        with Admin(srv.web_url, token=None) as anonymous, pytest.raises(AccessDenied):
            anonymous.identities()


def test_admin_client_without_a_service_says_so() -> None:
    with Admin(f"http://127.0.0.1:{free_port()}", "x") as admin, pytest.raises(BrokerUnavailable):
        admin.whoami()
