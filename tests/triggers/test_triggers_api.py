"""The triggers' REST routes in the web app, against a real broker (FastAPI TestClient)."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from evfabric.access import AccessStore
from evfabric.triggers.api import use_triggers
from evfabric.web import create_app

pytestmark = pytest.mark.broker


@pytest.fixture
def api(tmp_path, broker_session, monkeypatch):
    monkeypatch.syspath_prepend(str(__import__("pathlib").Path(__file__).parent))
    store = AccessStore.in_dir(tmp_path)
    store.create_identity("root", admin=True)
    store.create_identity("alice")
    tokens = {name: store.issue_token(name).secret for name in ("root", "alice")}
    app = create_app(store)
    use_triggers(app, broker_session.url)
    with TestClient(app) as client:
        yield client, {k: {"Authorization": f"Bearer {v}"} for k, v in tokens.items()}


def test_trigger_routes_end_to_end(api):
    client, auth = api
    name = f"t{uuid.uuid4().hex[:8]}"
    body = {"name": name, "pattern": "lab.*", "action": {"kind": "python", "target": "trigger_actions:record"},
            "filter": "body.i > 2", "max_concurrency": 4}
    assert client.post("/triggers", json=body).status_code == 401
    r = client.post("/triggers", json=body, headers=auth["root"])
    assert r.status_code == 201, r.text
    assert r.json()["run_as"] == "root" and r.json()["filter"] == "body.i > 2"
    assert client.post("/triggers", json=body, headers=auth["root"]).status_code == 409
    assert name in [t["name"] for t in client.get("/triggers", headers=auth["root"]).json()]
    r = client.patch(f"/triggers/{name}", json={"max_concurrency": 2}, headers=auth["root"])
    assert r.status_code == 200 and r.json()["max_concurrency"] == 2
    assert client.post(f"/triggers/{name}/disable", headers=auth["root"]).json()["enabled"] is False
    assert client.get(f"/triggers/{name}", headers=auth["root"]).json()["definition"]["enabled"] is False
    assert client.get(f"/triggers/{name}/logs", headers=auth["root"]).json() == []
    # alice neither sees nor manages root's trigger
    assert name not in [t["name"] for t in client.get("/triggers", headers=auth["alice"]).json()]
    assert client.get(f"/triggers/{name}", headers=auth["alice"]).status_code == 403
    assert client.delete(f"/triggers/{name}", headers=auth["root"]).status_code == 204
    assert client.get(f"/triggers/{name}", headers=auth["root"]).status_code == 404


def test_bad_definitions_get_clear_4xx(api):
    client, auth = api
    base = {"name": f"b{uuid.uuid4().hex[:8]}", "pattern": "lab.*", "action": {"kind": "python", "target": "trigger_actions:record"}}
    r = client.post("/triggers", json={**base, "action": {"kind": "python", "target": "no mod here:f"}}, headers=auth["root"])
    assert r.status_code == 422 and "package.module:function" in r.text
    # nothing is imported on a REST request: a module only the runner's host has is accepted
    r = client.post("/triggers", json={**base, "name": base["name"] + "x",
                                       "action": {"kind": "python", "target": "trigger_actions_import_bomb:f"}},
                    headers=auth["root"])
    assert r.status_code == 201, r.text
    assert client.delete(f"/triggers/{base['name']}x", headers=auth["root"]).status_code == 204
    r = client.post("/triggers", json={**base, "pattern": "a..b"}, headers=auth["root"])
    assert r.status_code == 422 and "a..b" in r.text
    r = client.post("/triggers", json={**base, "filter": "body.x >"}, headers=auth["root"])
    assert r.status_code == 422 and "does not compile" in r.text
    r = client.post("/triggers", json={**base, "batch_size": 0}, headers=auth["root"])
    assert r.status_code == 422 and "batch_size" in r.text
    r = client.post("/triggers", json={**base, "colour": "red"}, headers=auth["root"])
    assert r.status_code == 422
    # alice may define triggers in her namespace only, and webhooks only
    hook = {**base, "action": {"kind": "webhook", "target": "https://hooks.example.org/x"}}
    r = client.post("/triggers", json=hook, headers=auth["alice"])
    assert r.status_code == 403 and "users.alice" in r.text
    r = client.post("/triggers", json={**base, "pattern": "users.alice.*"}, headers=auth["alice"])
    assert r.status_code == 403 and "administrators" in r.text
    r = client.post("/triggers", json={**hook, "pattern": "users.alice.*"}, headers=auth["alice"])
    assert r.status_code == 201 and r.json()["run_as"] == "alice"
    assert client.delete(f"/triggers/{base['name']}", headers=auth["alice"]).status_code == 204
