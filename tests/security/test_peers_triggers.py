"""Triggers in ``serve --peers N``: the runner reads the one store of the cluster (its base
directory), not a member's empty data directory, so it verifies signatures and acts as each
trigger's ``run_as`` (issue #10, points 1-2, in peers mode)."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx
import msgspec
import nats
import pytest
from _attack import wait_until

import evfabric
from evfabric.access import AccessStore, nats_options
from evfabric.access.control import AccessControl
from evfabric.access.internal import service_url
from evfabric.broker.config import free_port
from evfabric.testing import running_cluster
from evfabric.triggers import make_spec
from evfabric.triggers import service as trigger_service
from evfabric.triggers.store import BUCKET
from evfabric.web.server import start_with_broker as start_web

pytestmark = [pytest.mark.broker, pytest.mark.timeout(150)]


def test_peers_runner_verifies_and_acts_as_run_as(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVFABRIC_WEBHOOK_ALLOW", "127.0.0.2/32")
    base = tmp_path / "cluster"
    store = AccessStore.in_dir(base)
    store.create_identity("root", admin=True)
    store.create_identity("alice")
    tokens = {n: store.issue_token(n).secret for n in ("root", "alice")}
    control = AccessControl(store, poll_interval=0.2)
    import http.server
    import threading

    hits: list[bytes] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hits.append(self.rfile.read(int(self.headers["content-length"] or 0)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    hook = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    hook_url = f"http://127.0.0.2:{hook.server_address[1]}/hook"
    try:
        with running_cluster(2, base, access=control) as cl:
            url = service_url(cl[0].url, base)
            port = free_port()
            stop_web = start_web(url, monitor_url=cl[0].monitor_url, servers=cl.servers, data_dir=base, port=port)
            stop_runner = None
            try:
                deadline = time.monotonic() + 20
                while stop_runner is None:  # as serve starts it: the servers, no data directory given
                    try:
                        stop_runner = trigger_service.start_with_broker(url, servers=cl.servers)
                    except evfabric.BrokerUnavailable:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.2)
                runner = stop_runner.__self__.runner  # type: ignore[attr-defined]
                # the runner verifies (the cluster's key) and acts as run_as (the cluster's store)
                assert runner.key is not None and runner.credentials is not None

                # alice's own webhook trigger, written through the web service, runs as alice
                with evfabric.connect(cl.urls, token=tokens["alice"]) as alice:
                    alice.create_topic("users.alice")
                name = f"a{uuid.uuid4().hex[:6]}"
                r = httpx.post(f"http://127.0.0.1:{port}/triggers", headers={"Authorization": f"Bearer {tokens['alice']}"},
                               json={"name": name, "pattern": "users.alice.*",
                                     "action": {"kind": "webhook", "target": hook_url}}, timeout=20)
                assert r.status_code == 201, r.text
                assert wait_until(lambda: name in runner.status(), 30), runner.failures()
                with evfabric.connect(cl.urls, token=tokens["alice"]) as alice:
                    alice.publish("users.alice.x", {"i": 1}, delivery="reliable")
                    assert wait_until(lambda: len(hits) >= 1, 30), runner.failures()

                # a definition planted unsigned in the bucket never runs
                planted = f"p{uuid.uuid4().hex[:6]}"

                async def plant() -> None:
                    nc = await nats.connect(cl[0].url, **nats_options(tokens["root"]))
                    try:
                        kv = await nc.jetstream().key_value(BUCKET)
                        spec = make_spec(planted, "users.alice.*", {"kind": "webhook", "target": hook_url},
                                         run_as="root")
                        await kv.put(planted, msgspec.json.encode(spec))
                    finally:
                        await nc.close()

                asyncio.run(plant())
                assert wait_until(lambda: planted in runner.failures(), 30)
                assert "signature does not verify" in runner.failures()[planted]
                assert planted not in runner.status()
            finally:
                if stop_runner is not None:
                    stop_runner()
                stop_web()
    finally:
        hook.shutdown()
        control.close()
