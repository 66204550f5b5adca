"""The access REST API end to end (FastAPI TestClient on the real app, a real store)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from evfabric.access import AccessStore
from evfabric.web import create_app


@pytest.fixture
def api(tmp_path: Path) -> tuple[TestClient, dict[str, str]]:
    store = AccessStore.in_dir(tmp_path)
    store.create_identity("root", admin=True)
    root = store.issue_token("root").secret
    return TestClient(create_app(store)), {"Authorization": f"Bearer {root}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_authentication_is_required(api: Any) -> None:
    client, _ = api
    r = client.get("/access/whoami")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = client.get("/access/whoami", headers=bearer("evf_0123456789abcdef_notavalidsecretatall123"))
    assert r.status_code == 401 and "invalid" in r.json()["detail"]
    assert client.get("/access/whoami", headers=bearer("garbage")).status_code == 401


def test_create_user_register_topic_share_and_revoke(api: Any) -> None:
    client, root = api
    for name in ("alice", "bob"):
        r = client.post("/access/identities", json={"name": name}, headers=root)
        assert r.status_code == 201 and r.json()["namespace"] == f"users.{name}"
    alice = client.post("/access/tokens", json={"identity": "alice"}, headers=root).json()["token"]
    bob = client.post("/access/tokens", json={"identity": "bob"}, headers=root).json()["token"]
    assert client.get("/access/whoami", headers=bearer(alice)).json()["identity"]["name"] == "alice"

    r = client.post("/access/topics", json={"name": "experiments"}, headers=bearer(alice))
    assert r.status_code == 201 and r.json()["owner"] == "alice"
    assert client.post("/access/topics", json={"name": "experiments.x"}, headers=bearer(bob)).status_code == 409
    assert client.post("/access/topics", json={"name": "users.alice.q"}, headers=bearer(bob)).status_code == 403

    q = {"right": "subscribe", "topic": "experiments.run1"}
    assert client.get("/access/check", params=q, headers=bearer(bob)).json()["allowed"] is False
    r = client.post("/access/grants", json={"target": "experiments", "grantee": "bob", "rights": ["subscribe"]},
                    headers=bearer(alice))
    assert r.status_code == 200 and r.json()["rights"] == ["subscribe"] and r.json()["granted_by"] == "alice"
    assert client.get("/access/check", params=q, headers=bearer(bob)).json()["allowed"] is True
    # bob cannot re-share what he does not own
    r = client.post("/access/grants", json={"target": "experiments", "grantee": "bob", "rights": ["publish"]},
                    headers=bearer(bob))
    assert r.status_code == 403 and "does not own" in r.json()["detail"]
    access = client.get("/access/topics/experiments", headers=bearer(alice)).json()["access"]
    assert {(a["grantee"], tuple(a["rights"])) for a in access} == {("alice", ("owner",)), ("bob", ("subscribe",))}
    assert client.get("/access/topics/experiments", headers=bearer(bob)).status_code == 403
    assert [t["name"] for t in client.get("/access/topics", headers=bearer(bob)).json()] == ["experiments"]

    r = client.post("/access/grants/revoke", json={"target": "experiments", "grantee": "bob"}, headers=bearer(alice))
    assert r.status_code == 200 and r.json() == {"remaining": None}
    assert client.get("/access/check", params=q, headers=bearer(bob)).json()["allowed"] is False
    assert client.post("/access/grants/revoke", json={"target": "experiments", "grantee": "bob"},
                       headers=bearer(alice)).status_code == 404


def test_tokens_issue_list_expire_revoke(api: Any) -> None:
    client, root = api
    client.post("/access/identities", json={"name": "carol"}, headers=root)
    first = client.post("/access/tokens", json={"identity": "carol"}, headers=root).json()
    carol = bearer(first["token"])
    second = client.post("/access/tokens", json={"expires_in": 3600, "description": "laptop"}, headers=carol).json()
    assert second["info"]["identity"] == "carol" and second["info"]["expires"] is not None
    listed = client.get("/access/tokens", headers=carol).json()
    assert [t["id"] for t in listed] == [first["info"]["id"], second["info"]["id"]]
    assert all("token" not in t and t["state"] == "active" for t in listed)  # never the secret
    r = client.post(f"/access/tokens/{second['info']['id']}/expire", headers=carol)
    assert r.status_code == 200 and r.json()["state"] == "expired"
    assert client.get("/access/whoami", headers=bearer(second["token"])).status_code == 401
    assert client.get("/access/whoami", headers=carol).status_code == 200  # the other one still works
    assert client.delete(f"/access/tokens/{first['info']['id']}", headers=root).json()["state"] == "revoked"
    assert client.get("/access/whoami", headers=carol).status_code == 401
    assert client.get("/access/tokens/0123456789abcdef", headers=root).status_code == 404


def test_non_admins_are_limited(api: Any) -> None:
    client, root = api
    client.post("/access/identities", json={"name": "dave"}, headers=root)
    dave = bearer(client.post("/access/tokens", json={"identity": "dave"}, headers=root).json()["token"])
    r = client.post("/access/identities", json={"name": "mallory"}, headers=dave)
    assert r.status_code == 403 and "administrators" in r.json()["detail"]
    r = client.post("/access/identities", json={"name": "dave-bot", "kind": "service"}, headers=dave)
    assert r.status_code == 201 and r.json()["owner"] == "dave"
    bot = client.post("/access/tokens", json={"identity": "dave-bot"}, headers=dave)
    assert bot.status_code == 201
    assert client.post("/access/tokens", json={"identity": "root"}, headers=dave).status_code == 403
    assert client.post("/access/groups", json={"name": "lab"}, headers=dave).status_code == 403
    assert client.put("/access/identities/dave/admin", json={"admin": True}, headers=dave).status_code == 403
    assert {i["name"] for i in client.get("/access/identities", headers=dave).json()} == {"dave", "dave-bot"}
    assert len(client.get("/access/identities", headers=root).json()) == 3


def test_groups_and_group_grants(api: Any) -> None:
    client, root = api
    for name in ("erin", "frank"):
        client.post("/access/identities", json={"name": name}, headers=root)
    assert client.post("/access/groups", json={"name": "lab", "members": ["erin"]}, headers=root).status_code == 201
    assert client.put("/access/groups/lab/members/frank", headers=root).json()["members"] == ["erin", "frank"]
    client.post("/access/topics", json={"name": "beamline", "owner": "erin"}, headers=root)
    r = client.post("/access/grants", json={"target": "beamline.?", "grantee": "lab", "group": True,
                                            "rights": ["subscribe", "publish"]}, headers=root)
    assert r.status_code == 200 and r.json()["group"] is True
    q = {"right": "publish", "topic": "beamline.det1", "identity": "frank"}
    assert client.get("/access/check", params=q, headers=root).json()["allowed"] is True
    client.delete("/access/groups/lab/members/frank", headers=root)
    assert client.get("/access/check", params=q, headers=root).json()["allowed"] is False
    assert client.delete("/access/groups/lab", headers=root).status_code == 204
    assert client.get("/access/groups/lab", headers=root).status_code == 404


def test_bad_input_gets_a_422_naming_the_field(api: Any) -> None:
    client, root = api
    r = client.post("/access/identities", json={"name": "has.dot"}, headers=root)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "name"]
    r = client.post("/access/identities", json={"name": "x", "colour": "red"}, headers=root)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "colour"]
    r = client.post("/access/tokens", json={"expires_in": -5}, headers=root)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "expires_in"]
    r = client.post("/access/grants", json={"target": "a.*.b", "grantee": "root", "rights": ["publish"]}, headers=root)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "target"]
    # checks deeper than the schema answer in the same shape, naming the field
    r = client.post("/access/topics", json={"name": "users"}, headers=root)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "name"]
    assert "namespace" in r.json()["detail"][0]["msg"]
    r = client.post("/access/identities", json={"name": "u2", "owner": "root"}, headers=root)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "owner"]
    r = client.post("/access/grants", json={"target": "a", "grantee": "root", "group": 1, "rights": ["publish"]},
                    headers=root)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "group"]
    r = client.post("/access/grants", json={"target": "a", "grantee": "root", "rights": ["write"]}, headers=root)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][:2] == ["body", "rights"]
    assert client.post("/access/identities", json={"name": "root"}, headers=root).status_code == 409
    assert client.get("/access/identities/nobody", headers=root).status_code == 404


def test_the_schema_lists_every_route_and_the_bearer_scheme(api: Any) -> None:
    client, _ = api
    schema = client.get("/openapi.json").json()
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    for path in ("/access/identities", "/access/tokens", "/access/topics", "/access/grants", "/access/grants/revoke"):
        assert path in schema["paths"]
