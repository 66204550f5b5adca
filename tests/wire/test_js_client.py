"""A second language: the Node client in examples/js/ (npm `nats` and `@msgpack/msgpack`) publishes
and subscribes evfabric events against a real server, best effort and reliable (JetStream), with
Python evfabric clients on the other side. Skips, saying why, without node/npm or the npm registry."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from _codec_helpers import unique, wait_until

import evfabric
from evfabric.fabric.subjects import pattern_filter

pytestmark = [pytest.mark.broker, pytest.mark.timeout(240)]

JS_DIR = Path(__file__).resolve().parents[2] / "examples" / "js"
CLI = JS_DIR / "cli.mjs"


def js_ready() -> str | None:
    """None when the example can run; else why not. Installs its npm packages into
    examples/js/node_modules (ignored by git) on first use."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node or npm is not installed"
    if not (JS_DIR / "node_modules" / "nats").is_dir() or not (JS_DIR / "node_modules" / "@msgpack").is_dir():
        try:
            res = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=JS_DIR,
                                 capture_output=True, text=True, timeout=180)
        except subprocess.TimeoutExpired:
            return "npm install timed out (no registry?)"
        if res.returncode != 0:
            return f"npm install failed (no registry?): {res.stderr.strip()[-300:]}"
    return None


@pytest.fixture(scope="module")
def node() -> list[str]:
    why = js_ready()
    if why:
        pytest.skip(why)
    draft = pattern_filter("x")[0].count("*") == 1  # this evfabric still writes evf.<partition>.<topic>
    return ["node", str(CLI), *(["--draft"] if draft else [])]


def run_js(node: list[str], *args: str, timeout: float = 60) -> list[dict]:
    res = subprocess.run([*node, *args], capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stderr[-2000:]
    return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]


class JsSubscriber:
    """``cli.mjs sub`` in the background: waits until it is subscribed, then collects its output."""

    def __init__(self, node: list[str], *args: str) -> None:
        self.proc = subprocess.Popen([*node, "sub", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        assert first and "ready" in json.loads(first), (first, self.proc.stderr.read() if self.proc.stderr else "")

    def events(self, timeout: float = 60) -> list[dict]:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # our own child, by its handle
            out, err = self.proc.communicate()
            raise AssertionError(f"the JS subscriber did not finish: {err[-1000:]}") from None
        assert self.proc.returncode == 0, err[-2000:]
        lines = [json.loads(line) for line in out.splitlines() if line.strip()]
        assert lines[-1].get("done") == len(lines) - 1
        return lines[:-1]


def test_js_publishes_best_effort_to_python(broker, node) -> None:
    topic = unique("js") + ".probe.temp"
    with evfabric.connect(broker.url, source="py-reader") as client:
        got: list = []
        sub = client.subscribe(topic, listener=got.append)
        assert run_js(node, "pub", "--url", broker.url, "--topic", topic, "--count", "25", "--batch", "10") == [
            {"published": 25}]
        assert wait_until(lambda: len(got) == 25), f"{len(got)} of 25; {sub.stats}"
        assert sub.stats.garbage == 0 and sub.stats.dropped == 0
    assert [ev.body["i"] for ev in got] == list(range(25))
    assert {(ev.topic, ev.source, ev.extra["run"], ev.publisher) for ev in got} == {(topic, "node-probe", "js1", None)}
    assert len({ev.id for ev in got}) == 25


def test_python_publishes_best_effort_to_js(broker, node) -> None:
    topic = unique("js") + ".probe.cmd"
    js = JsSubscriber(node, "--url", broker.url, "--topic", topic, "--count", "30")
    with evfabric.connect(broker.url, source="py-writer") as client:
        client.publish_many(topic, [{"i": i, "raw": b"\x00\x01"} for i in range(30)])
        client.flush()
    events = js.events()
    assert [e["body"]["i"] for e in events] == list(range(30))
    assert all(e["topic"] == topic and e["source"] == "py-writer" and e["body"]["raw"] == {"$bytes": "AAE="}
               for e in events)


def test_js_publishes_reliable_to_python(broker, node) -> None:
    root = unique("jsr")
    topic = f"{root}.jobs"
    with evfabric.connect(broker.url, source="py-worker") as client:
        client.create_topic(root)
        got: list = []
        sub = client.subscribe(topic, delivery="reliable", listener=got.append)
        assert run_js(node, "pub", "--url", broker.url, "--topic", topic, "--count", "40", "--batch", "8",
                      "--reliable") == [{"published": 40}]
        assert wait_until(lambda: len(got) == 40), f"{len(got)} of 40; {sub.stats}"
        assert sub.stats.garbage == 0
    assert sorted(ev.body["i"] for ev in got) == list(range(40))
    assert {ev.delivery for ev in got} == {"reliable"}


def test_python_publishes_reliable_to_js(broker, node) -> None:
    root = unique("jsr")
    topic = f"{root}.results"
    with evfabric.connect(broker.url, source="py-producer") as client:
        client.create_topic(root)
        for i in range(50):
            client.publish(topic, {"i": i}, delivery="reliable")
        client.flush()
        assert client.stats.stored == 50
    # stored before the JS consumer exists: it reads them from the stream and acknowledges each message
    js = JsSubscriber(node, "--url", broker.url, "--topic", topic, "--count", "50", "--reliable", "--durable", "jsw")
    events = js.events()
    assert sorted(e["body"]["i"] for e in events) == list(range(50))
    assert {e["delivery"] for e in events} == {"reliable"}


def test_js_client_decodes_the_test_vectors(node) -> None:
    """The vectors are usable from another language: the Node client decodes every evfabric batch
    vector to its JSON and refuses the garbage ones (CloudEvents and raw topics it does not read)."""
    res = subprocess.run(["node", str(JS_DIR / "check_vectors.mjs")], capture_output=True, text=True, timeout=60)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert res.returncode == 0 and out["failed"] == [], out
    assert out["checked"] >= 11, out
