"""The commands a NATS CLI / kcat user expects, in real processes against a real broker:
sub --count/--raw/--json/--until-end/--last, pub from stdin and with a template, topic view,
request/reply, bench pub|sub, contexts (URL + token, file mode 0600), top with $EVFABRIC_TOKEN."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import SRC, admitted, cli, one_line

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]


def test_pub_template_and_stdin_then_sub_until_end_raw_json_last(broker: Any) -> None:
    url = broker.url
    assert cli("topic", "create", "runs", "--url", url).returncode == 0
    r = cli("pub", "runs.a", '{"i": {{i}}}', "--count", "5", "--reliable", "--url", url)
    assert r.returncode == 0, r.stderr
    r = cli("pub", "runs.b", "-", "--reliable", "--url", url, stdin='{"x": 1}\n\n{"x": 2}\n')
    assert r.returncode == 0, r.stderr
    r = cli("pub", "runs.c", "-", "--text", "--reliable", "--url", url, stdin="hello\n")
    assert r.returncode == 0, r.stderr
    t0 = time.monotonic()
    r = cli("sub", "runs.*", "--until-end", "--raw", "--url", url, timeout=60)  # like kcat -e: exits by itself
    assert r.returncode == 0, r.stderr
    assert [json.loads(line) for line in r.stdout.splitlines()] == \
        [{"i": 1}, {"i": 2}, {"i": 3}, {"i": 4}, {"i": 5}, {"x": 1}, {"x": 2}, {"text": "hello"}]
    assert time.monotonic() - t0 < 30
    r = cli("sub", "runs.*", "--until-end", "--json", "--url", url)
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(events) == 8 and events[0]["topic"] == "runs.a" and events[0]["id"]
    r = cli("sub", "runs.*", "--last", "3", "--until-end", "--raw", "--url", url)
    assert [json.loads(line) for line in r.stdout.splitlines()] == [{"x": 1}, {"x": 2}, {"text": "hello"}]
    r = cli("sub", "runs.a", "--start", "earliest", "--count", "2", "--raw", "--url", url)
    assert r.stdout.splitlines() == ['{"i": 1}', '{"i": 2}']
    r = cli("topic", "view", "runs", "--last", "2", "--raw", "--url", url)
    assert r.returncode == 0 and r.stdout.splitlines() == ['{"x": 2}', '{"text": "hello"}']
    r = cli("pub", "runs.a", "[1, 2]", "--url", url)
    assert r.returncode == 2 and "not an object" in r.stderr


def test_request_and_reply_commands_and_api(broker: Any) -> None:
    import evfabric
    from evfabric.core.errors import RequestTimeout

    env = {**os.environ, "PYTHONPATH": SRC}
    responder = subprocess.Popen([sys.executable, "-m", "evfabric.cli", "reply", "math.*", "--echo", "--count", "1",
                                  "--url", broker.url], stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert responder.stderr is not None
        assert "answering" in responder.stderr.readline()
        r = cli("request", "math.sq", '{"x": 7}', "--raw", "--url", broker.url, "--timeout", "10")
        assert r.returncode == 0 and json.loads(r.stdout) == {"x": 7}, r.stderr
        assert responder.wait(20) == 0
    finally:
        if responder.poll() is None:
            responder.kill()
    with evfabric.connect(broker.url, source="svc") as svc, evfabric.connect(broker.url, source="cli") as c:
        sub = svc.subscribe("square")
        sub.add_listener(lambda ev: svc.reply(ev, {"y": ev.body["x"] ** 2}))
        answer = c.request("square", {"x": 9}, timeout=5)
        assert answer.body == {"y": 81} and answer.source == "svc" and answer.extra["inreplyto"]
        with pytest.raises(RequestTimeout):
            c.request("nobody.home", {}, timeout=0.3)
    r = cli("request", "nobody.home", "--timeout", "0.3", "--url", broker.url)
    assert r.returncode == 1 and "RequestTimeout" in r.stderr


def test_bench_pub_and_sub_against_a_running_broker(broker: Any) -> None:
    r = cli("bench", "pub", "--msgs", "2000", "--size", "64", "--json", "--url", broker.url)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["side"] == "pub" and out["events"] == 2000 and out["events_per_s"] > 0
    r = cli("bench", "sub", "--with-pub", "--msgs", "2000", "--size", "64", "--reliable", "--json", "--url", broker.url)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["side"] == "sub" and out["events"] == 2000 and out["delivery"] == "reliable"


def test_contexts_hold_url_and_token_with_mode_0600(guarded: Any, tmp_path: Path) -> None:
    cfg = {"EVFABRIC_CONFIG_DIR": str(tmp_path / "cfg")}
    alice = guarded.store.issue_token("alice").secret
    admitted(guarded.server.url, alice)
    r = cli("context", "add", "lab", "--url", guarded.server.url, "--token", alice, "--select", env=cfg)
    assert r.returncode == 0, r.stderr
    path = tmp_path / "cfg" / "contexts.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert cli("context", "add", "other", "--url", "nats://127.0.0.1:1", env=cfg).returncode == 0
    ls = cli("context", "ls", env=cfg).stdout
    assert "* lab" in ls and "  other" in ls and alice not in ls  # tokens are masked
    # the selected context gives URL and token: alice may read her namespace (anonymous may not)
    r = cli("sub", "users.alice.*", "--timeout", "0.5", env=cfg)
    assert r.returncode == 0, r.stderr
    r = cli("sub", "users.alice.*", "--timeout", "0.5", "--url", guarded.server.url, env={"EVFABRIC_CONFIG_DIR": str(tmp_path / "none")})
    assert r.returncode == 1 and "AccessDenied" in r.stderr
    r = cli("pub", "users.alice.x", "{}", "--context", "other", env=cfg)
    assert r.returncode == 1 and "no broker answers at nats://127.0.0.1:1" in r.stderr
    assert cli("context", "select", "nope", env=cfg).returncode == 1
    r = cli("--context", "lab", "topic", "list", env=cfg)  # the root option works for any command
    assert r.returncode == 0, r.stderr


def test_top_honours_evfabric_token(guarded: Any) -> None:
    root = guarded.store.issue_token("root").secret
    admitted(guarded.server.url, root)
    args = ["top", "--once", "--url", guarded.server.url, "--monitor-url", guarded.server.monitor_url]
    r = cli(*args, env={"EVFABRIC_TOKEN": root}, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "healthy" in r.stdout and "evfabric top" in r.stdout
    r = cli(*args, env={"EVFABRIC_TOKEN": "garbage"}, timeout=60)
    assert r.returncode == 1 and "malformed token" in r.stderr
    alice = guarded.store.issue_token("alice").secret  # may not watch every topic: one line, at once
    admitted(guarded.server.url, alice)
    t0 = time.monotonic()
    r = cli(*args, env={"EVFABRIC_TOKEN": alice}, timeout=60)
    assert r.returncode == 1 and "refused the monitor's traffic tap" in one_line(r.stderr) and "administrator" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and "Task was destroyed" not in r.stderr and time.monotonic() - t0 < 20
    r = cli(*args, "--no-tap", env={"EVFABRIC_TOKEN": alice}, timeout=60)  # the broker's figures need no rights
    assert r.returncode == 0 and "healthy" in r.stdout, r.stderr


def test_topic_create_raw_stores_foreign_messages_for_view(broker: Any) -> None:
    import asyncio

    import nats

    url = broker.url
    r = cli("topic", "create", "probes", "--raw", "--max-events", "2", "--url", url)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["raw"] is True

    async def device() -> None:  # a plain NATS client, as a device gateway would be
        nc = await nats.connect(url)
        for t in (1, 2, 3):
            await nc.jetstream().publish("probes.temp", json.dumps({"t": t}).encode())
        await nc.close()

    asyncio.run(device())
    r = cli("topic", "view", "probes", "--raw", "--url", url)
    assert r.returncode == 0, r.stderr
    assert [json.loads(line) for line in r.stdout.splitlines()] == [{"t": 2}, {"t": 3}]  # 2 events kept
    described = json.loads(cli("topic", "describe", "probes", "--url", url).stdout)
    assert (described["raw"], described["messages"], described["stream"][:8]) == (True, 2, "EVF_RAW_")
