"""Attacks on triggers (issue 10, points 1 and 2) against the services ``evfabric serve`` runs:
a broker with access control, the web service and the trigger runner, as ``serve`` starts them.

Each attack uses a plain HTTP client, raw nats-py or the CLI with a low-privilege token and is
refused; each has a positive control showing that the rightful user (or an administrator) works.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec
import nats
import pytest

import evfabric
from evfabric.access import AccessStore, nats_options
from evfabric.access.internal import service_url
from evfabric.broker.config import free_port
from evfabric.core.errors import AccessDenied
from evfabric.fabric.roundtrip import flush
from evfabric.testing import BrokerServer, wait_until
from evfabric.triggers import Triggers, make_spec
from evfabric.triggers import service as trigger_service
from evfabric.triggers.signing import TriggerKey
from evfabric.triggers.store import BUCKET
from evfabric.web.server import start_with_broker as start_web

pytestmark = [pytest.mark.broker, pytest.mark.timeout(90)]


class _Hook(http.server.BaseHTTPRequestHandler):
    """Records every POST; answers 204."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"] or 0))
        self.server.hits.append(json.loads(body))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class Served:
    broker: BrokerServer
    store: AccessStore
    web: str
    tokens: dict[str, str]
    runner: Any = None
    hooks: list[http.server.ThreadingHTTPServer] = field(default_factory=list)

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def hook(self, host: str = "127.0.0.1") -> tuple[str, list[dict[str, Any]]]:
        """A webhook receiver on ``host``; its URL and the bodies it received."""
        srv = http.server.ThreadingHTTPServer((host, 0), _Hook)
        srv.hits = []  # type: ignore[attr-defined]
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.hooks.append(srv)
        return f"http://{host}:{srv.server_address[1]}/hook", srv.hits  # type: ignore[attr-defined]



@pytest.fixture
def served(broker: BrokerServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    """The broker with identities root (admin), alice and bob, the web service and the trigger
    runner started as ``evfabric serve`` starts them. Webhooks may reach 127.0.0.2 only."""
    monkeypatch.setenv("EVFABRIC_WEBHOOK_ALLOW", "127.0.0.2/32")
    store = AccessStore.in_dir(broker.data_dir)
    store.create_identity("root", admin=True)
    for name in ("alice", "bob"):
        store.create_identity(name)
    tokens = {n: store.issue_token(n).secret for n in ("root", "alice", "bob")}
    url = service_url(broker.url, broker.data_dir)
    port = free_port()
    stop_web = start_web(url, monitor_url=broker.monitor_url, servers=[broker], port=port)
    stop_runner: Callable[[], None] | None = None
    s = Served(broker, store, f"http://127.0.0.1:{port}", tokens)
    try:
        deadline = time.monotonic() + 15
        while stop_runner is None:  # until the broker's reload admits serve's session token
            try:
                stop_runner = trigger_service.start_with_broker(url, servers=[broker])
                s.runner = stop_runner.__self__  # type: ignore[attr-defined]  # the RunnerThread
            except evfabric.BrokerUnavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield s
    finally:
        if stop_runner is not None:
            stop_runner()
        stop_web()
        for h in s.hooks:
            h.shutdown()


def _try(fn: Callable[[], Any]) -> bool:
    """True if ``fn()`` ran (the broker may still be reloading a new grant)."""
    try:
        fn()
    except Exception:
        return False
    return True


def _name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def _body(name: str, pattern: str, action: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "pattern": pattern, "action": action, **extra}


# -- 10.1: shell and python actions are an administrator's decision --------------------------------


def test_an_ordinary_user_cannot_create_code_actions_over_rest(served: Served) -> None:
    for kind, target in (("shell", "id > /tmp/pwned"), ("python", "os:system")):
        r = httpx.post(f"{served.web}/triggers", headers=served.auth("alice"),
                       json=_body(_name("x"), "users.alice.*", {"kind": kind, "target": target}))
        assert r.status_code == 403 and "administrators" in r.json()["detail"], r.text
    # nor turn her own webhook trigger into one
    name = _name("w")
    r = httpx.post(f"{served.web}/triggers", headers=served.auth("alice"),
                   json=_body(name, "users.alice.*", {"kind": "webhook", "target": "https://example.org/h"}))
    assert r.status_code == 201, r.text
    r = httpx.patch(f"{served.web}/triggers/{name}", headers=served.auth("alice"),
                    json={"action": {"kind": "shell", "target": "id"}})
    assert r.status_code == 403
    # positive control: the administrator may
    r = httpx.post(f"{served.web}/triggers", headers=served.auth("root"),
                   json=_body(_name("adm"), "runs.*", {"kind": "python", "target": "evfabric.triggers.builtin:noop"}))
    assert r.status_code == 201, r.text


def test_an_ordinary_user_cannot_create_triggers_from_python_or_the_cli(served: Served,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    with evfabric.connect(served.broker.url, token=served.tokens["alice"], auto_topics=False) as alice:
        with pytest.raises(AccessDenied) as err:
            Triggers(alice).create(_name("p"), "users.alice.*", "os:system")
    assert "\n" not in str(err.value) and "administrators" in str(err.value)

    from typer.testing import CliRunner

    from evfabric.cli import app

    monkeypatch.setenv("EVFABRIC_TOKEN", served.tokens["alice"])
    r = CliRunner().invoke(app, ["trigger", "create", _name("c"), "--pattern", "users.alice.*", "--shell", "id",
                                 "--url", served.broker.url, "-d", str(served.broker.data_dir)])
    assert r.exit_code == 1 and "administrators" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) <= 2, r.output
    # positive control: the administrator's CLI on the broker's host signs with the data directory's key
    monkeypatch.setenv("EVFABRIC_TOKEN", served.tokens["root"])
    name = _name("c")
    r = CliRunner().invoke(app, ["trigger", "create", name, "--pattern", "runs.*", "--python",
                                 "evfabric.triggers.builtin:noop", "--url", served.broker.url,
                                 "-d", str(served.broker.data_dir)])
    assert r.exit_code == 0, r.output
    assert wait_until(lambda: name in served.runner.runner.status()), served.runner.runner.failures()


# -- 10.2: the runner starts only definitions written through the service -------------------------


async def _raw_put(url: str, token: str, name: str, value: bytes) -> list[str]:
    """Put ``value`` under ``name`` in the definitions bucket with a raw nats-py connection
    (the ``$KV`` subject itself); the server's errors (permission violations) are returned."""
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    nc = await nats.connect(url, error_cb=on_error, connect_timeout=2, max_reconnect_attempts=1, **nats_options(token))
    try:
        await nc.publish(f"$KV.{BUCKET}.{name}", value)
        try:
            await nc.jetstream().key_value(BUCKET)
        except Exception as exc:  # refused: the request times out or answers an error
            errors.append(f"{type(exc).__name__}: {exc}")
        await flush(nc)
    finally:
        await nc.close()
    return errors


def _planted(name: str, url: str, **spec: Any) -> bytes:
    return msgspec.json.encode(make_spec(name, "runs.*", {"kind": "webhook", "target": url}, **spec))


def test_planted_definitions_never_run(served: Served) -> None:
    url, hits = served.hook("127.0.0.2")
    runner = served.runner.runner
    key = TriggerKey.in_dir(served.broker.data_dir)
    names = {p: _name(p) for p in ("bob", "plain", "forged", "moved", "norunas", "actas")}

    async def plant() -> None:
        # a low-privilege user's raw KV put is refused by the broker
        errors = await _raw_put(served.broker.url, served.tokens["bob"], names["bob"],
                                _planted(names["bob"], url, run_as="root"))
        assert any("permissions violation" in e.lower() for e in errors), errors
        # bytes that got in anyway (as a stream's republish would put them), straight into the bucket
        nc = await nats.connect(served.broker.url, **nats_options(served.tokens["root"]))
        try:
            kv = await nc.jetstream().key_value(BUCKET)
            await kv.put(names["plain"], _planted(names["plain"], url, run_as="root"))  # unsigned
            forged = key.seal(names["forged"], "root", _planted(names["forged"], url, run_as="root"))
            await kv.put(names["forged"], msgspec.json.encode(msgspec.structs.replace(forged, mac="0" * 64)))
            moved = key.seal("elsewhere", None, _planted(names["moved"], url, run_as="root"))  # signed for another key
            await kv.put(names["moved"], msgspec.json.encode(moved))
            await kv.put(names["norunas"], msgspec.json.encode(key.seal(names["norunas"], None, _planted(names["norunas"], url))))
            # a creator who could not act as its run_as (as if alice's REST call had named root)
            actas = key.seal(names["actas"], "alice", _planted(names["actas"], url, run_as="root"))
            await kv.put(names["actas"], msgspec.json.encode(actas))
        finally:
            await nc.close()

    with evfabric.connect(served.broker.url, token=served.tokens["root"]) as root:
        reports: list[Any] = []
        root.subscribe("cca.trigger.failed", listener=reports.append)
        root.create_topic("runs")
        asyncio.run(plant())
        planted = [names[p] for p in ("plain", "forged", "moved", "norunas", "actas")]
        assert wait_until(lambda: set(planted) <= set(runner.failures()))
        why = runner.failures()
        for p in ("plain", "forged", "moved"):
            assert "signature does not verify" in why[names[p]], why
        assert "no run_as" in why[names["norunas"]] and "may not act as 'root'" in why[names["actas"]]
        assert wait_until(lambda: set(planted) <= {e.body["trigger"] for e in reports})  # reported on the fabric
        assert names["bob"] not in why and not set(planted) & set(runner.status())
        # positive control: the same webhook trigger written through the service runs
        good = _name("good")
        r = httpx.post(f"{served.web}/triggers", headers=served.auth("root"),
                       json=_body(good, "runs.*", {"kind": "webhook", "target": url}))
        assert r.status_code == 201, r.text
        assert wait_until(lambda: good in runner.status())
        root.publish("runs.r1", {"i": 1}, delivery="reliable")
        assert wait_until(lambda: len(hits) >= 1)
        assert wait_until(lambda: runner.status()[good]["ok"] == 1)
    assert len(hits) == 1, hits  # only the signed trigger acted; the planted ones never did
    assert runner.counts["refused"] >= 5


# -- 10.2: webhooks cannot reach loopback, link-local or special addresses --------------------------


def test_webhooks_cannot_reach_loopback_or_follow_a_redirect_there(served: Served) -> None:
    inside, inside_hits = served.hook("127.0.0.1")  # e.g. an admin service on the server's loopback

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(307)
            self.send_header("location", inside)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    redirector = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Redirect)
    threading.Thread(target=redirector.serve_forever, daemon=True).start()
    served.hooks.append(redirector)
    outside, outside_hits = served.hook("127.0.0.2")  # allowed by the server option
    targets = {"loop": inside, "localhost": inside.replace("127.0.0.1", "localhost"),
               "meta": "http://169.254.169.254/latest/meta-data/", "v6": "http://[fe80::1]:9/x",
               "redir": f"http://127.0.0.2:{redirector.server_address[1]}/r", "ok": outside}
    names = {k: _name(f"{k}-") for k in targets}
    served.store.register_topic("users.alice.jobs", "alice")
    with evfabric.connect(served.broker.url, token=served.tokens["alice"], auto_topics=False) as alice:
        assert wait_until(lambda: _try(lambda: alice.create_topic("users.alice.jobs")))
    for k, target in targets.items():
        r = httpx.post(f"{served.web}/triggers", headers=served.auth("alice"),
                       json=_body(names[k], "users.alice.*", {"kind": "webhook", "target": target},
                                  retries=0, timeout=3))
        assert r.status_code == 201, r.text
    runner = served.runner.runner
    with evfabric.connect(served.broker.url, token=served.tokens["alice"], auto_topics=False) as alice:
        assert wait_until(lambda: set(names.values()) <= set(runner.status()), 30), runner.failures()
        alice.publish("users.alice.jobs.j1", {"i": 1}, delivery="reliable")
        assert wait_until(lambda: len(outside_hits) == 1)  # positive control: an allowed host is reached
        for k in ("loop", "localhost", "meta", "v6", "redir"):
            assert wait_until(lambda k=k: runner.status()[names[k]]["dead_lettered"] == 1, 20), k
            errors = [i.error or "" for i in runner.recent if i.trigger == names[k] and i.status != "not_started"]
            assert errors and all("may not reach" in e for e in errors), (k, errors)
    assert inside_hits == []  # nothing reached the loopback service, directly or by redirect

