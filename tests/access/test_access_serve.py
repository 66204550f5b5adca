"""The web service beside a broker (the ``evfabric serve`` hook) and the access CLI."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from evfabric.access import AccessStore, nats_options
from evfabric.access.internal import access_enabled, service_url
from evfabric.broker.config import free_port
from evfabric.cli import app as cli_app
from evfabric.testing import connection_refused
from evfabric.web.server import start_with_broker

pytestmark = [pytest.mark.broker, pytest.mark.timeout(30)]


def test_start_with_broker_serves_the_api_and_enforces_the_store(broker: Any) -> None:
    store = AccessStore.in_dir(broker.data_dir)
    assert not access_enabled(broker.data_dir)
    assert service_url(broker.url, broker.data_dir) == broker.url  # off: nothing to add
    store.create_identity("root", admin=True)
    tok = store.issue_token("root").secret
    url = service_url(broker.url, broker.data_dir)
    assert url != broker.url and "evf_" in url
    port = free_port()
    stop = start_with_broker(url, monitor_url=broker.monitor_url, servers=[broker], port=port)
    base = f"http://127.0.0.1:{port}"
    try:
        r = httpx.get(f"{base}/access/whoami", headers={"Authorization": f"Bearer {tok}"})
        assert r.status_code == 200 and r.json()["identity"]["name"] == "root"
        assert httpx.get(f"{base}/access/whoami").status_code == 401
        assert "/access/tokens" in httpx.get(f"{base}/openapi.json").json()["paths"]

        async def check() -> None:
            assert await connection_refused(broker.url)  # anonymous
            assert not await connection_refused(broker.url, **nats_options(tok))
            assert not await connection_refused(url)  # the services' credentials

        asyncio.run(check())
    finally:
        stop()


def test_access_cli_creates_users_tokens_topics_and_grants(tmp_path: Path) -> None:
    runner = CliRunner()
    d = ["-d", str(tmp_path)]

    def run(*args: str, code: int = 0) -> str:
        res = runner.invoke(cli_app, [*args, *d])
        assert res.exit_code == code, res.output
        return res.output

    out = run("user", "create", "alice", "--token")
    token = out.strip().splitlines()[-1]
    assert token.startswith("evf_")
    run("user", "create", "bob")
    run("user", "create", "alice", code=2)  # already exists: a clear error, no traceback
    run("grant", "register", "experiments", "--owner", "alice")
    run("grant", "add", "experiments.?", "bob", "--subscribe")
    assert "may subscribe" in run("grant", "check", "bob", "subscribe", "experiments.run1")
    run("grant", "check", "bob", "publish", "experiments.run1", code=1)
    who = json.loads(run("grant", "who", "experiments", "--json"))
    assert {(w["grantee"], tuple(w["rights"])) for w in who} == {("alice", ("owner",)), ("bob", ("subscribe",))}
    tokens = json.loads(run("token", "list", "alice", "--json"))
    assert len(tokens) == 1 and tokens[0]["state"] == "active"
    run("token", "revoke", tokens[0]["id"])
    store = AccessStore.in_dir(tmp_path)
    with pytest.raises(Exception):
        store.authenticate(token)
    run("grant", "revoke", "experiments.?", "bob")
    assert json.loads(run("grant", "list", "--json")) == []
    run("group", "create", "lab", "-m", "alice", "-m", "bob")
    assert json.loads(run("group", "list", "--json")) == [{"name": "lab", "members": ["alice", "bob"]}]


def test_a_data_dir_with_identities_is_enforced_from_the_first_start(tmp_path: Path) -> None:
    from evfabric.access.nats_config import enforce_configured_store
    from evfabric.testing import BrokerServer

    open_dir, guarded_dir = tmp_path / "open", tmp_path / "guarded"
    store = AccessStore.in_dir(guarded_dir)
    store.create_identity("alice")
    tok = store.issue_token("alice").secret
    servers = [BrokerServer(data_dir=d) for d in (open_dir, guarded_dir)]
    for srv in servers:
        srv.settings.hooks.append(enforce_configured_store)
    try:
        for srv in servers:
            srv.start()

        async def check() -> None:
            assert not await connection_refused(servers[0].url)  # no store: left alone
            assert await connection_refused(servers[1].url)
            assert not await connection_refused(servers[1].url, **nats_options(tok))

        asyncio.run(check())
        assert not (open_dir / "access.db").exists()  # the hook never creates a store
    finally:
        for srv in servers:
            srv.close()
