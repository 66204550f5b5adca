"""Triggers against a real broker: filters, each action kind, retries and dead letters, autoscaling,
management, and a replica killed in the middle of a stream."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

import evfabric
from evfabric.core.errors import AlreadyExists, ConfigError, InvalidFilter, InvalidPattern, NotFound
from evfabric.triggers import RunnerThread, Triggers, make_spec

pytestmark = pytest.mark.broker
HERE = Path(__file__).parent


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def wait_until(pred, timeout: float = 20.0, every: float = 0.05) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(every)
    return pred()


def started(runner, name: str) -> None:
    """Wait until the runner consumes for trigger ``name`` (its consumer starts at 'latest')."""
    assert wait_until(lambda: name in runner.status(), timeout=20), f"trigger {name} did not start"


def lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.fixture
def out(tmp_path, monkeypatch):
    path = tmp_path / "acted.jsonl"
    monkeypatch.setenv("EVF_TEST_OUT", str(path))
    monkeypatch.syspath_prepend(str(HERE))
    return path


@pytest.fixture
def fabric(broker_session):
    with evfabric.connect(broker_session.url, max_batch=50) as client:
        yield client


@pytest.fixture
def runner(broker_session, out):
    r = RunnerThread(broker_session.url, idle_timeout=0.3)
    yield r
    r.stop()


# -- definitions refused at creation ---------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(pattern="a..b", action="trigger_actions:record"), InvalidPattern, "a..b"),
        (dict(pattern="a.*", action="trigger_actions:record", filter="body.x >"), InvalidFilter, "does not compile"),
        (dict(pattern="a.*", action="no_such_module_xyz:f"), ConfigError, "cannot import module"),
        (dict(pattern="a.*", action="trigger_actions:nope"), ConfigError, "has no"),
        (dict(pattern="a.*", action="trigger_actions:NOT_CALLABLE"), ConfigError, "not callable"),
        (dict(pattern="a.*", action={"kind": "webhook", "target": "ftp://x"}), ConfigError, "http(s) URL"),
        (dict(pattern="a.*", action={"kind": "shell", "target": "  "}), ConfigError, "empty"),
        (dict(pattern="a.*", action="trigger_actions:record", batch_size=0), ConfigError, "batch_size"),
        (dict(pattern="a.*", action="trigger_actions:record", min_concurrency=5, max_concurrency=2), ConfigError, "max_concurrency"),
        (dict(pattern="a.*", action="trigger_actions:record", start="yesterday"), ConfigError, "start"),
        (dict(pattern="a.*", action="trigger_actions:record", surprise=1), ConfigError, "surprise"),
    ],
)
def test_bad_definitions_refused(out, kwargs, error, words):
    with pytest.raises(error) as err:
        make_spec("t1", **kwargs)
    assert words in str(err.value)


def test_bad_name_refused(out):
    with pytest.raises(ConfigError, match="trigger name"):
        make_spec("bad name!", "a.*", "trigger_actions:record")


# -- acting on events -------------------------------------------------------------------------------


def test_python_action_with_filter_acts_exactly_once(fabric, runner, out):
    root = unique("trg")
    admin = Triggers(fabric)
    admin.create(f"{root}-hot", f"{root}.sensor.*", "trigger_actions:record", filter="body.i % 2 == 0")
    started(runner, f"{root}-hot")
    fabric.publish_many(f"{root}.sensor.t", [{"i": i} for i in range(40)], delivery="reliable")
    fabric.flush()
    assert wait_until(lambda: len(lines(out)) >= 20)
    time.sleep(0.5)
    acted = sorted(rec["i"] for rec in lines(out))
    assert acted == list(range(0, 40, 2))  # the filter selects exactly these, each once
    assert wait_until(lambda: admin.describe(f"{root}-hot")["counters"].get("events", 0) == 20)


def test_batches_by_size_and_window(fabric, runner, out):
    root = unique("bat")
    admin = Triggers(fabric)
    admin.create(
        f"{root}-b", f"{root}.*",
        {"kind": "python", "target": "trigger_actions:record_batch", "pass_batch": True},
        batch_size=10, batch_window=0.3,
    )
    started(runner, f"{root}-b")
    fabric.publish_many(f"{root}.x", [{"i": i} for i in range(25)], delivery="reliable")
    fabric.flush()
    assert wait_until(lambda: len(lines(out)) == 25)
    sizes = sorted({rec["batch"] for rec in lines(out)})
    assert 10 in sizes and max(sizes) <= 10  # full batches of 10, the rest after the window


def test_shell_action_gets_event_json_and_env(fabric, runner, out, tmp_path):
    root = unique("sh")
    target = tmp_path / "shell.out"
    cmd = f'printf "%s %s " "$EVF_TOPIC" "$EVF_BATCH_SIZE" >> {target}; cat >> {target}; echo >> {target}'
    Triggers(fabric).create(f"{root}-sh", f"{root}.*", {"kind": "shell", "target": cmd})
    started(runner, f"{root}-sh")
    fabric.publish(f"{root}.run", {"i": 7}, delivery="reliable")
    assert wait_until(lambda: target.exists() and target.read_text().count("\n") >= 1)
    first = target.read_text().splitlines()[0]
    topic, size, payload = first.split(" ", 2)
    assert topic == f"{root}.run" and size == "1"
    ce = json.loads(payload)
    assert ce["subject"] == f"{root}.run" and ce["data"] == {"i": 7} and ce["specversion"] == "1.0"


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, dict]] = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["content-length"]))
        _Hook.received.append((self.headers["content-type"], json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_webhook_action_posts_cloudevents(fabric, runner, out):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        root = unique("wh")
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        Triggers(fabric).create(f"{root}-wh", f"{root}.*", url)
        started(runner, f"{root}-wh")
        for i in range(3):
            fabric.publish(f"{root}.e", {"i": i}, delivery="reliable")
        assert wait_until(lambda: len([r for r in _Hook.received if r[1]["subject"] == f"{root}.e"]) == 3)
        ctype, ce = next(r for r in _Hook.received if r[1]["subject"] == f"{root}.e")
        assert ctype == "application/cloudevents+json" and ce["type"] == "evfabric.event"
    finally:
        server.shutdown()


def test_failing_action_retries_then_dead_letters(fabric, runner, out):
    root = unique("fail")
    letters = []
    fabric.subscribe(f"cca.deadletter.{root}.*", delivery="reliable", listener=letters.append)
    admin = Triggers(fabric)
    admin.create(f"{root}-f", f"{root}.*", "trigger_actions:always_fails", retries=2, backoff=0.05)
    started(runner, f"{root}-f")
    fabric.publish(f"{root}.x", {"i": 1}, delivery="reliable")
    assert wait_until(lambda: len(letters) == 1)
    assert letters[0].body["event"]["body"] == {"i": 1} and "cannot handle" in letters[0].body["error"]
    assert wait_until(lambda: len(admin.logs(f"{root}-f")) == 3)
    statuses = [r["status"] for r in admin.logs(f"{root}-f")]
    assert statuses == ["failed", "failed", "dead_lettered"]
    assert [r["attempt"] for r in admin.logs(f"{root}-f")] == [1, 2, 3]


def test_autoscaling_up_to_max_and_back_down(fabric, runner, out, monkeypatch):
    monkeypatch.setenv("EVF_TEST_SLEEP", "0.3")
    root = unique("scale")
    Triggers(fabric).create(f"{root}-s", f"{root}.*", "trigger_actions:slow", min_concurrency=1, max_concurrency=6)
    started(runner, f"{root}-s")
    fabric.publish_many(f"{root}.x", [{"i": i} for i in range(30)], delivery="reliable")
    fabric.flush()
    status = lambda: runner.status()[f"{root}-s"]  # noqa: E731
    assert wait_until(lambda: status()["workers"] == 6, timeout=10)
    assert wait_until(lambda: len(lines(out)) == 30, timeout=20)
    assert wait_until(lambda: status()["workers"] == 1, timeout=10)
    assert status()["peak_workers"] == 6


def test_management_list_update_disable_delete(fabric, runner, out):
    root = unique("mgmt")
    admin = Triggers(fabric)
    admin.create(f"{root}-m", f"{root}.*", "trigger_actions:record")
    with pytest.raises(AlreadyExists):
        admin.create(f"{root}-m", f"{root}.*", "trigger_actions:record")
    assert f"{root}-m" in [t.name for t in admin.list()]
    updated = admin.update(f"{root}-m", filter="body.i > 5", max_concurrency=3)
    assert updated.filter == "body.i > 5" and updated.max_concurrency == 3
    with pytest.raises(InvalidFilter):
        admin.update(f"{root}-m", filter="((")
    admin.disable(f"{root}-m")
    assert wait_until(lambda: f"{root}-m" not in runner.status())
    fabric.publish(f"{root}.x", {"i": 9}, delivery="reliable")
    time.sleep(0.5)
    assert lines(out) == []  # disabled: nothing acted on
    admin.enable(f"{root}-m")
    assert wait_until(lambda: [r["i"] for r in lines(out)] == [9])  # the durable group resumed where it was
    admin.delete(f"{root}-m")
    with pytest.raises(NotFound):
        admin.get(f"{root}-m")
    assert wait_until(lambda: f"{root}-m" not in runner.status())


RUNNER_SCRIPT = """
import sys, time, signal
from evfabric.triggers import RunnerThread
r = RunnerThread(sys.argv[1], replica=sys.argv[2], idle_timeout=0.3)
print("ready", flush=True)
signal.sigwait({signal.SIGTERM})
r.stop()
"""


def test_killing_one_of_two_replicas_loses_nothing(broker_session, fabric, out):
    root = unique("ha")
    admin = Triggers(fabric)
    admin.create(f"{root}-ha", f"{root}.*", "trigger_actions:slow", timeout=1.0, ack_wait=2.0, max_concurrency=4)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]), "EVF_TEST_SLEEP": "0.05"}
    procs = [
        subprocess.Popen([sys.executable, "-c", RUNNER_SCRIPT, broker_session.url, f"r{k}"], env=env, stdout=subprocess.PIPE, text=True)
        for k in range(2)
    ]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready"
        n = 200
        fabric.publish_many(f"{root}.x", [{"i": i} for i in range(n)], delivery="reliable")
        fabric.flush()
        assert wait_until(lambda: len({r["pid"] for r in lines(out)}) == 2 or len(lines(out)) > n // 4, timeout=20)
        procs[0].send_signal(signal.SIGKILL)  # dies with events in flight
        procs[0].wait(5)
        assert wait_until(lambda: {r["i"] for r in lines(out)} == set(range(n)), timeout=30)
        # duplicates only for what the dead replica had in flight (at most its pull window)
        assert len(lines(out)) - n <= 64
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()


def test_cli_create_list_describe_delete(broker_session, out):
    from typer.testing import CliRunner

    from evfabric.cli import app

    cli = CliRunner()
    root = unique("cli")
    url = ["--url", broker_session.url]
    r = cli.invoke(app, ["trigger", "create", f"{root}-c", "--pattern", f"{root}.*", "--python", "trigger_actions:record",
                         "--filter", "body.i > 1", "--max-concurrency", "4", *url])
    assert r.exit_code == 0, r.output
    r = cli.invoke(app, ["trigger", "list", "--json", *url])
    assert any(t["name"] == f"{root}-c" and t["filter"] == "body.i > 1" for t in json.loads(r.output))
    r = cli.invoke(app, ["trigger", "describe", f"{root}-c", *url])
    assert json.loads(r.output)["definition"]["max_concurrency"] == 4
    r = cli.invoke(app, ["trigger", "create", f"{root}-bad", "--pattern", f"{root}.*", "--python", "nope_mod:f", *url])
    assert r.exit_code == 1 and "cannot import module" in r.output
    r = cli.invoke(app, ["trigger", "delete", f"{root}-c", *url])
    assert r.exit_code == 0
    r = cli.invoke(app, ["trigger", "describe", f"{root}-c", *url])
    assert r.exit_code == 1 and "no trigger named" in r.output
