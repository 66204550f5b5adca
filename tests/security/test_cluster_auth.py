"""Issue #10 point 6: authenticated routes and leaf links; one access store for every member;
``serve --peers N -d DIR`` with identities never starts a member without authorization."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import pytest
from _attack import Raw, eventually, wait_until
from typer.testing import CliRunner

from evfabric.access import AccessStore
from evfabric.access.control import AccessControl
from evfabric.broker.config import LEAF_USER, ClusterSettings, ServerSettings, with_userinfo
from evfabric.broker.server import BrokerServer
from evfabric.cli import app as cli_app
from evfabric.fabric.roundtrip import flush
from evfabric.testing import connection_refused as refused
from evfabric.testing import running_cluster

pytestmark = [pytest.mark.broker, pytest.mark.timeout(90)]


def _peers(srv: BrokerServer) -> set[str]:
    """Names of the servers ``srv`` has routes with."""
    return {r.get("remote_name") or r.get("remote_id") for r in srv.monitor("routez").get("routes") or []}


def test_a_bare_server_cannot_join_and_members_share_one_store(tmp_path: Path) -> None:
    store = AccessStore.in_dir(tmp_path / "cluster")
    store.create_identity("alice")
    tok = store.issue_token("alice").secret
    control = AccessControl(store, poll_interval=0.2)
    intruder = BrokerServer(ServerSettings(data_dir=tmp_path / "intruder", server_name="intruder", jetstream=False,
                                           cluster=ClusterSettings(name="evfabric")))
    try:
        with running_cluster(2, tmp_path / "cluster", access=control) as cl:
            assert wait_until(lambda: _peers(cl[0]) == {"n2"} and _peers(cl[1]) == {"n1"})  # members route to each other
            assert intruder.settings.cluster is not None
            intruder.settings.cluster.routes = [cl[0].route_url or ""]
            intruder.launch().wait_ready(20, meta_leader=False)
            # the member refuses the route: the intruder never gets one
            assert wait_until(lambda: "authorization" in intruder.log_tail(50).lower()
                              or "authorization" in cl[0].log_tail(50).lower(), 15)
            assert _peers(intruder) == set() and _peers(cl[0]) == {"n2"}

            async def main() -> None:
                for s in cl.servers:  # every member enforces the one store
                    assert await refused(s.url)
                a0 = await Raw().open(cl[0].url, tok)
                a1 = await Raw().open(cl[1].url, tok)
                got = await a0.collect("evf.*.*.users.alice.>")
                import nats
                raw = await nats.connect(intruder.url)  # open server: anyone may publish there
                await raw.publish("evf.alice.0.users.alice.x", b"injected")
                await flush(raw)
                await a1.nc.publish("evf.alice.0.users.alice.x", b"real")  # positive control across the route
                await flush(a1.nc)
                # the intruder has no route (asserted above), so nothing it publishes can follow
                assert await eventually(lambda: [m.data for m in got] == [b"real"])
                assert _peers(intruder) == set()
                await raw.close()
                await a0.close()
                await a1.close()

            asyncio.run(main())
    finally:
        intruder.close()
        control.close()


def test_serve_peers_with_identities_configures_every_member_with_authorization(tmp_path: Path) -> None:
    store = AccessStore.in_dir(tmp_path)
    store.create_identity("alice")
    res = CliRunner().invoke(cli_app, ["serve", "--peers", "2", "-d", str(tmp_path), "--port", "0",
                                       "--http-port", "0", "--cluster-port", "0", "--config-only", "--no-web"])
    assert res.exit_code == 0, res.output
    secret = (tmp_path / "cluster.secret").read_text().strip()
    assert stat.S_IMODE((tmp_path / "cluster.secret").stat().st_mode) == 0o600
    for member in ("n1", "n2"):
        conf = (tmp_path / member / "nats.conf").read_text()
        assert "authorization" in conf and "users" in conf  # the store's users, from the first start
        assert f"evfabric-route:{secret}@" in conf  # routes carry the cluster credentials
        assert stat.S_IMODE((tmp_path / member / "nats.conf").stat().st_mode) == 0o600
    assert secret not in res.output  # printed configs are redacted


def test_leaf_links_authenticate(tmp_path: Path) -> None:
    secret = "s3cret-leaf-credential-for-the-test"
    hub = BrokerServer(data_dir=tmp_path / "hub", server_name="hub", domain="hub", leafnode_port=0)
    hub.settings.leaf_secret = secret
    bare = good = None
    try:
        hub.start()
        url = hub.leafnode_url or ""
        bare = BrokerServer(data_dir=tmp_path / "bare", server_name="bare", domain="bare", leaf_of=url).start()
        assert wait_until(lambda: "authentication error" in hub.log_tail(50).lower(), 15)
        assert not hub.monitor("leafz").get("leafnodes")  # refused
        good = BrokerServer(data_dir=tmp_path / "good", server_name="good", domain="good",
                            leaf_of=with_userinfo(url, LEAF_USER, secret)).start()
        linked = wait_until(lambda: {x["name"] for x in hub.monitor("leafz").get("leafs") or []} == {"good"}, 15)
        assert linked, (hub.monitor("leafz"), good.log_tail(10))
        assert secret not in json.dumps(good.monitor("varz"))
    finally:
        for s in (good, bare, hub):
            if s is not None:
                s.close()
