"""Issue #10 points 6 and 9: with a certificate (``serve --tls-cert/--tls-key``), routes and leaf
links are TLS too: the route and leaf secrets and the traffic never cross in clear. A server
that knows the route secret but speaks plaintext cannot join; a leaf that does not verify the
hub over TLS cannot link."""

from __future__ import annotations

from pathlib import Path

import pytest
from _attack import wait_until

from evfabric.access.tls import self_signed
from evfabric.broker.cluster import ROUTE_SECRET_FILE, BrokerCluster
from evfabric.broker.config import LEAF_USER, ClusterSettings, ServerSettings, with_userinfo
from evfabric.broker.server import BrokerServer

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]


def _routes(srv: BrokerServer) -> list[dict[str, object]]:
    return list(srv.monitor("routez").get("routes") or [])


def test_routes_are_tls_and_a_plaintext_server_with_the_secret_cannot_join(tmp_path: Path) -> None:
    files = self_signed(tmp_path / "tls")
    cl = BrokerCluster(2, base_dir=tmp_path / "cluster")
    for s in cl.servers:
        s.settings.tls_cert, s.settings.tls_key = files.cert, files.key
    secret = (tmp_path / "cluster" / ROUTE_SECRET_FILE).read_text().strip()
    intruder = None
    try:
        cl.start()
        assert wait_until(lambda: {r.get("remote_name") for r in _routes(cl[0])} == {"n2"}, 20)
        # the attack: a server that knows the route secret (stolen, say) but routes in plaintext
        intruder = BrokerServer(ServerSettings(
            data_dir=tmp_path / "intruder", server_name="intruder", jetstream=False,
            cluster=ClusterSettings(name="evfabric", routes=[with_userinfo(cl[0].route_url or "", "evfabric-route", secret)])))
        intruder.launch().wait_ready(20, meta_leader=False)
        # it tries (its log says the route attempt failed) and never gets a route
        assert not wait_until(lambda: bool(_routes(intruder)), 5)
        assert "error" in intruder.log_tail(80).lower() or "tls" in cl[0].log_tail(80).lower()
        assert {r.get("remote_name") for r in _routes(cl[0])} == {"n2"}
        conf = (cl[0].data_dir / "nats.conf").read_text()
        assert "ca_file" in conf and str(files.cert) in conf  # the cluster block verifies its peers
    finally:
        if intruder is not None:
            intruder.close()
        cl.close()


def test_leaf_links_are_tls(tmp_path: Path) -> None:
    files = self_signed(tmp_path / "tls")
    secret = "s3cret-leaf-credential-for-the-tls-test"
    hub = BrokerServer(data_dir=tmp_path / "hub", server_name="hub", domain="hub", leafnode_port=0)
    hub.settings.leaf_secret = secret
    hub.settings.tls_cert, hub.settings.tls_key = files.cert, files.key
    plain = good = None
    try:
        hub.start()
        url = with_userinfo(hub.leafnode_url or "", LEAF_USER, secret)
        # a leaf with the secret that does not speak TLS to the hub: refused
        plain = BrokerServer(data_dir=tmp_path / "plain", server_name="plain", domain="plain", leaf_of=url).start()
        # positive control: the leaf that verifies the hub's certificate links
        good = BrokerServer(data_dir=tmp_path / "good", server_name="good", domain="good", leaf_of=url)
        good.settings.leaf_ca = files.cert
        good.start()
        linked = wait_until(lambda: {x["name"] for x in hub.monitor("leafz").get("leafs") or []} == {"good"}, 20)
        assert linked, (hub.monitor("leafz"), good.log_tail(10), plain.log_tail(10))
        assert not wait_until(lambda: "plain" in {x["name"] for x in hub.monitor("leafz").get("leafs") or []}, 3)
    finally:
        for s in (good, plain, hub):
            if s is not None:
                s.close()


def test_serve_peers_with_a_certificate_configures_tls_routes(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from evfabric.cli import app

    files = self_signed(tmp_path / "tls")
    res = CliRunner().invoke(app, ["serve", "--peers", "2", "-d", str(tmp_path / "d"), "--port", "0", "--http-port",
                                   "0", "--cluster-port", "0", "--tls-cert", str(files.cert), "--tls-key",
                                   str(files.key), "--config-only", "--no-web"])
    assert res.exit_code == 0, res.output
    for member in ("n1", "n2"):
        conf = (tmp_path / "d" / member / "nats.conf").read_text()
        cluster = conf[conf.index("cluster: {"):]
        assert "tls: {" in cluster and f'ca_file: "{files.cert}"' in cluster, conf
