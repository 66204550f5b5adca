"""The web service under access control (issue 10, point 11; issue 15, offline ``/docs``):
monitoring pages need a monitoring token, serve's session tokens expire and are renewed, and
``/docs`` loads nothing from elsewhere. Plain HTTP clients against the service ``evfabric serve``
starts, on a real broker."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import nats
import pytest

from evfabric.access import AccessStore, internal
from evfabric.access.internal import service_url
from evfabric.broker.config import free_port
from evfabric.testing import BrokerServer
from evfabric.web.server import start_with_broker

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]

PAGES = ("/metrics", "/monitor/snapshot?history=5", "/dashboard")


@dataclass
class Web:
    url: str
    store: AccessStore
    tokens: dict[str, str]

    def get(self, path: str, who: str | None = None, **kw: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.get(self.url + path, headers=headers, timeout=15, **kw)  # type: ignore[arg-type]


def _serve(broker: BrokerServer, open_monitoring: bool | None = None) -> Iterator[Web]:
    store = AccessStore.in_dir(broker.data_dir)
    store.create_identity("root", admin=True)
    store.create_identity("alice")
    store.create_identity("prom")
    store.create_group("monitoring", members=["prom"])
    tokens = {n: store.issue_token(n).secret for n in ("root", "alice", "prom")}
    port = free_port()
    stop = start_with_broker(service_url(broker.url, broker.data_dir), monitor_url=broker.monitor_url,
                             servers=[broker], port=port, open_monitoring=open_monitoring)
    try:
        yield Web(f"http://127.0.0.1:{port}", store, tokens)
    finally:
        stop()


@pytest.fixture
def web(broker: BrokerServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Web]:
    monkeypatch.delenv("EVFABRIC_OPEN_MONITORING", raising=False)
    yield from _serve(broker)


def test_monitoring_pages_need_a_monitoring_token(web: Web) -> None:
    for path in PAGES:
        assert web.get(path).status_code == 401, path  # no token
        r = httpx.get(web.url + path, headers={"Authorization": "Bearer evf_0123456789abcdef_forged"}, timeout=10)
        assert r.status_code == 401, path  # a forged token
        r = web.get(path, "alice")  # an ordinary user
        assert r.status_code == 403 and "monitoring" in r.json()["detail"], path
    # positive controls: an administrator, and a member of the monitoring group (a Prometheus scraper)
    for who in ("root", "prom"):
        r = web.get("/metrics", who)
        assert r.status_code == 200 and "evfabric_server_up" in r.text, who
        assert web.get("/monitor/snapshot?history=5", who).json()["server"]["up"] in (True, 1)
        assert "<html" in web.get("/dashboard", who).text.lower()
    # the rest of the service is unchanged: health needs no token, the access API its own
    assert web.get("/healthz").status_code == 200


def test_the_dashboard_takes_its_token_once_and_keeps_it_in_a_cookie(web: Web) -> None:
    r = httpx.get(f"{web.url}/dashboard?token={web.tokens['alice']}", timeout=10)
    assert r.status_code == 403 and "set-cookie" not in r.headers
    with httpx.Client(base_url=web.url, timeout=10) as browser:
        r = browser.get(f"/dashboard?token={web.tokens['prom']}", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/dashboard"
        assert "HttpOnly" in r.headers["set-cookie"] and "SameSite=Strict" in r.headers["set-cookie"]
        # the page and its polls now carry the cookie
        assert browser.get("/dashboard").status_code == 200
        assert browser.get("/monitor/snapshot?history=1").status_code == 200
    with httpx.Client(base_url=web.url, timeout=10, cookies={"evf_token": "evf_0123456789abcdef_forged"}) as forger:
        assert forger.get("/monitor/snapshot").status_code == 401


def test_an_explicit_option_opens_the_monitoring_pages(broker: BrokerServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVFABRIC_OPEN_MONITORING", "1")
    for web in _serve(broker):
        for path in PAGES:
            assert web.get(path).status_code == 200, path
        assert web.get("/access/whoami").status_code == 401  # only monitoring is opened


def test_serve_sessions_expire_and_are_renewed(web: Web, broker: BrokerServer, monkeypatch: pytest.MonkeyPatch) -> None:
    sessions = [t for t in web.store.list_tokens("evfabric-serve", valid_only=True)]
    assert sessions, "serve made no session token"
    now = time.time()
    for tok in sessions:
        assert tok.expires is not None and now < tok.expires <= now + internal.SESSION_TTL + 1
    url = service_url(broker.url, broker.data_dir)
    password = url.split("//", 1)[1].split("@", 1)[0].split(":", 1)[1]

    async def connects() -> bool:
        from urllib.parse import unquote

        user = url.split("//", 1)[1].split(":", 1)[0]
        try:
            nc = await nats.connect(broker.url, user=unquote(user), password=unquote(password),
                                    connect_timeout=2, allow_reconnect=False)
        except Exception:
            return False
        await nc.close()
        return True

    assert asyncio.run(connects())
    before = {t.id: t.expires for t in sessions}
    monkeypatch.setattr(internal, "SESSION_TTL", internal.SESSION_TTL * 2)
    assert internal.renew_sessions() >= 1
    after = {t.id: t.expires for t in web.store.list_tokens("evfabric-serve", valid_only=True)}
    assert all(after[i] > before[i] for i in before)  # pushed ahead: the same token, still valid
    assert asyncio.run(connects())
    # a session an administrator revoked is not brought back by renewal
    for i in before:
        web.store.revoke_token(i)
    internal.renew_sessions()
    assert not web.store.list_tokens("evfabric-serve", valid_only=True)


def test_docs_load_nothing_from_elsewhere(web: Web) -> None:
    page = web.get("/docs")
    assert page.status_code == 200
    refs = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text) + re.findall(r"url: ?'([^']+)'", page.text)
    assert refs and all(ref.startswith("/") for ref in refs), refs  # no CDN, no other host
    for ref in refs:
        r = web.get(ref)
        assert r.status_code == 200 and len(r.content) > 100, ref
    assert "SwaggerUIBundle" in web.get("/docs-assets/swagger-ui-bundle.js").text


def test_docs_render_in_a_browser_cut_off_from_the_network(web: Web) -> None:
    chromium = "/usr/bin/chromium"
    if not os.path.exists(chromium):
        pytest.skip("chromium is not installed (tests/monitor's dashboard test installs it)")
    from playwright.sync_api import sync_playwright

    outside: list[str] = []

    def only_local(route: Any) -> None:
        if route.request.url.startswith(web.url):
            route.continue_()
        else:  # the offline machine: nothing else answers
            outside.append(route.request.url)
            route.abort()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.route("**/*", only_local)
            page.goto(web.url + "/docs")
            page.wait_for_selector(".swagger-ui .info .title", timeout=20000)
            assert "evfabric" in page.inner_text(".swagger-ui .info .title")
            page.wait_for_selector("text=/triggers", timeout=20000)  # the operations are listed
        finally:
            browser.close()
    assert outside == []


def test_the_web_service_imports_nothing_on_a_request() -> None:
    """anyio imports its API on first use; started, the web service has it all imported in the
    starting thread, so that no request compiles code beside another thread (Python 3.11's
    compiler is not thread-safe: a CI run failed serving /docs's assets that way)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from fastapi import FastAPI\n"
        "from evfabric.web.server import WebServer\n"
        "before = {m for m in sys.modules if m.startswith('anyio')}\n"
        "web = WebServer(FastAPI()).start()\n"
        "try:\n"
        "    after = {m for m in sys.modules if m.startswith('anyio')}\n"
        "    assert {'anyio._core._fileio', 'anyio.to_thread', 'anyio.from_thread'} <= after, sorted(after - before)\n"
        "finally:\n"
        "    web.stop()\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
