"""Triggers against a real broker: filters, each action kind, retries and dead letters, autoscaling,
management, and a replica killed in the middle of a stream."""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import ClassVar

import nats
import pytest

import evfabric
from evfabric.core.errors import AlreadyExists, ConfigError, InvalidFilter, InvalidPattern, NotFound
from evfabric.fabric.subjects import stream_name
from evfabric.testing import wait_until
from evfabric.triggers import RunnerThread, Triggers, make_spec
from evfabric.triggers.runner import group_name

pytestmark = pytest.mark.broker
HERE = Path(__file__).parent


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def started(runner, name: str) -> None:
    """Wait until the runner consumes for trigger ``name`` (its consumer starts at 'latest')."""
    assert wait_until(lambda: name in runner.status(), timeout=20), f"trigger {name} did not start"


def settled(runner, name: str) -> bool:
    """Trigger ``name``'s consumers have nothing pending or unacknowledged (an event is
    acknowledged once its action returned): nothing more will be acted on."""
    rt = runner.runner.running.get(name)
    return rt is not None and asyncio.run_coroutine_threadsafe(rt.client.lag(rt.sub), runner.loop).result(10) == 0


def consumer_state(url: str, topic: str, trigger: str) -> tuple[int, int, int]:
    """(pending, unacknowledged, waiting pull requests) of trigger ``trigger``'s consumers on ``topic``."""
    async def main() -> tuple[int, int, int]:
        nc = await nats.connect(url)
        try:
            infos = [c async for c in _consumers(nc.jetstream(), stream_name(topic))]
        finally:
            await nc.close()
        mine = [c for c in infos if c.name.startswith(group_name(trigger) + "_")]
        assert mine, [c.name for c in infos]
        return (sum(c.num_pending or 0 for c in mine), sum(c.num_ack_pending or 0 for c in mine),
                sum(c.num_waiting or 0 for c in mine))

    return asyncio.run(main())


async def _consumers(js, stream: str):
    for c in await js.consumers_info(stream):
        yield c


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
    r = RunnerThread(broker_session.url, idle_timeout=0.3, accept_unsigned=True, webhook_allow=["127.0.0.0/8"])
    yield r
    r.stop()


# -- definitions refused at creation ---------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(pattern="a..b", action="trigger_actions:record"), InvalidPattern, "a..b"),
        (dict(pattern="a.*", action="trigger_actions:record", filter="body.x >"), InvalidFilter, "does not compile"),
        (dict(pattern="a.*", action={"kind": "python", "target": "no module:f"}), ConfigError, "package.module:function"),
        (dict(pattern="a.*", action={"kind": "python", "target": "mod:"}), ConfigError, "package.module:function"),
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


def test_creation_never_imports_the_action(out, monkeypatch):
    # validation is pure: a module that does not exist here (it may on the runner's host) is accepted,
    # and one that would run code at import is not imported by the creating process
    import sys as _sys

    spec = make_spec("t1", "a.*", "trigger_actions_import_bomb:f")
    assert spec.action.kind == "python" and "trigger_actions_import_bomb" not in _sys.modules
    assert make_spec("t2", "a.*", "no_such_module_xyz:f").action.target == "no_such_module_xyz:f"


def test_a_trigger_that_cannot_load_is_reported_once_and_the_others_run(fabric, runner, out, caplog):
    root = unique("imp")
    failed = []
    fabric.subscribe("cca.trigger.failed", listener=failed.append)
    admin = Triggers(fabric)
    admin.create(f"{root}-missing", f"{root}.*", "no_such_module_xyz:f")
    admin.create(f"{root}-missing-attr", f"{root}.*", "trigger_actions:nope")
    admin.create(f"{root}-ok", f"{root}.*", "trigger_actions:record")
    started(runner, f"{root}-ok")
    assert wait_until(lambda: {f"{root}-missing", f"{root}-missing-attr"} <= set(runner.runner.failures()))
    assert "cannot import module 'no_such_module_xyz'" in runner.runner.failures()[f"{root}-missing"]
    fabric.publish_many(f"{root}.x", [{"i": i} for i in range(5)], delivery="reliable")
    fabric.flush()
    assert wait_until(lambda: sorted(r["i"] for r in lines(out)) == list(range(5)))
    mine = lambda: [e for e in failed if e.body["trigger"].startswith(root)]  # noqa: E731
    assert wait_until(lambda: len(mine()) == 2)
    # its status is visible to whoever manages it, and it is reported once, not at every watch round
    assert wait_until(lambda: any(r["status"] == "not_started" for r in admin.logs(f"{root}-missing")))
    # a watch round: the failing definitions are written again, then one the runner starts; it
    # applies definitions in order, so once that runs it has seen the two again
    counts = dict(runner.runner.counts)
    admin.enable(f"{root}-missing")
    admin.enable(f"{root}-missing-attr")
    admin.create(f"{root}-after", f"{root}.later.*", "trigger_actions:record")
    started(runner, f"{root}-after")
    assert runner.runner.counts == counts  # not reported again (a report is counted when made)
    assert len(mine()) == 2
    assert len([r for r in caplog.records if f"{root}-missing " in r.getMessage()]) <= 1
    admin.delete(f"{root}-missing")
    admin.delete(f"{root}-missing-attr")
    admin.delete(f"{root}-ok")
    admin.delete(f"{root}-after")


def test_python_action_that_exits_never_stops_the_runner(fabric, runner, out):
    # sys.exit and KeyboardInterrupt in an action (sync or async) fail that invocation only
    root = unique("exit")
    admin = Triggers(fabric)
    admin.create(f"{root}-exit", f"{root}.*", "sys:exit", retries=0)
    admin.create(f"{root}-kbd", f"{root}.*", "trigger_actions:interrupt", retries=0)
    admin.create(f"{root}-aexit", f"{root}.*", "trigger_actions:async_exit", retries=0)
    admin.create(f"{root}-ok", f"{root}.*", "trigger_actions:record")
    for name in ("exit", "kbd", "aexit", "ok"):
        started(runner, f"{root}-{name}")
    for i in range(3):
        fabric.publish(f"{root}.x", {"i": i}, delivery="reliable")
    assert wait_until(lambda: sorted(r["i"] for r in lines(out)) == [0, 1, 2], 30), (lines(out), runner.status())
    for name, what in (("exit", "SystemExit"), ("kbd", "KeyboardInterrupt"), ("aexit", "SystemExit")):
        assert wait_until(lambda n=name: runner.status()[f"{root}-{n}"]["dead_lettered"] == 3, 30), runner.status()
        assert wait_until(lambda n=name, w=what: w in (admin.logs(f"{root}-{n}") or [{}])[-1].get("error", ""), 10), \
            admin.logs(f"{root}-{name}")
    assert runner.thread.is_alive() and runner.loop.is_running()
    fabric.publish(f"{root}.x", {"i": 3}, delivery="reliable")  # still acting after all that
    assert wait_until(lambda: 3 in [r["i"] for r in lines(out)])


def test_the_runner_imports_from_its_working_directory(broker_session, fabric, out, tmp_path, monkeypatch):
    # the documented `--python mylab.actions:f`, run from the folder that holds mylab
    pkg = tmp_path / "mylab_cwd_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "actions.py").write_text("import trigger_actions\ndef act(event):\n    trigger_actions.record(event)\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    root = unique("cwd")
    Triggers(fabric).create(f"{root}-c", f"{root}.*", "mylab_cwd_pkg.actions:act")
    r = RunnerThread(broker_session.url, idle_timeout=0.3, accept_unsigned=True)
    try:
        started(r, f"{root}-c")
        fabric.publish(f"{root}.x", {"i": 1}, delivery="reliable")
        assert wait_until(lambda: [x["i"] for x in lines(out)] == [1])
    finally:
        r.stop()
        Triggers(fabric).delete(f"{root}-c")


# -- acting on events -------------------------------------------------------------------------------


def test_python_action_with_filter_acts_exactly_once(fabric, runner, out):
    root = unique("trg")
    admin = Triggers(fabric)
    admin.create(f"{root}-hot", f"{root}.sensor.*", "trigger_actions:record", filter="body.i % 2 == 0")
    started(runner, f"{root}-hot")
    fabric.publish_many(f"{root}.sensor.t", [{"i": i} for i in range(40)], delivery="reliable")
    fabric.flush()
    assert wait_until(lambda: len(lines(out)) >= 20 and settled(runner, f"{root}-hot"))
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
    received: ClassVar[list[tuple[str, dict]]] = []

    def do_POST(self):
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


def test_management_list_update_disable_delete(broker_session, fabric, runner, out):
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
    fabric.flush()
    # disabled: stored, but its consumer has it pending, nobody holds it and nobody asks for it
    assert wait_until(lambda: consumer_state(broker_session.url, root, f"{root}-m") == (1, 0, 0)), \
        consumer_state(broker_session.url, root, f"{root}-m")
    assert lines(out) == []
    admin.enable(f"{root}-m")
    assert wait_until(lambda: [r["i"] for r in lines(out)] == [9])  # the durable group resumed where it was
    admin.delete(f"{root}-m")
    with pytest.raises(NotFound):
        admin.get(f"{root}-m")
    assert wait_until(lambda: f"{root}-m" not in runner.status())


def trigger_consumers(url: str, topic: str, trigger: str) -> list[str]:
    async def main() -> list[str]:
        nc = await nats.connect(url)
        try:
            return [c.name async for c in _consumers(nc.jetstream(), stream_name(topic))
                    if c.name.startswith(group_name(trigger) + "_")]
        finally:
            await nc.close()

    return asyncio.run(main())


def test_a_deleted_trigger_leaves_no_consumer_behind_a_replica_slow_to_see_it(
        broker_session, fabric, runner, out, monkeypatch):
    # the race a delete runs: the manager deletes the consumers while a replica has not yet seen
    # the definition go; the replica, still pulling, re-creates its consumer ("consumer deleted")
    root = unique("del")
    admin = Triggers(fabric)
    admin.create(f"{root}-d", f"{root}.*", "trigger_actions:record")
    started(runner, f"{root}-d")
    fabric.publish(f"{root}.x", {"i": 1}, delivery="reliable")
    assert wait_until(lambda: [r["i"] for r in lines(out)] == [1])
    apply = runner.runner._apply_safely

    async def late(name: str, data: bytes | None) -> None:
        if data is None:
            await asyncio.sleep(2.0)  # a replica on a busy host, or far away
        await apply(name, data)

    monkeypatch.setattr(runner.runner, "_apply_safely", late)
    admin.delete(f"{root}-d")
    assert wait_until(lambda: f"{root}-d" not in runner.status())
    assert wait_until(lambda: trigger_consumers(broker_session.url, root, f"{root}-d") == []), \
        trigger_consumers(broker_session.url, root, f"{root}-d")


RUNNER_SCRIPT = """
import sys, time, signal
from evfabric.triggers import RunnerThread
r = RunnerThread(sys.argv[1], replica=sys.argv[2], idle_timeout=0.3, accept_unsigned=True)
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
    r = cli.invoke(app, ["trigger", "create", f"{root}-bad", "--pattern", f"{root}.*", "--python", "nope mod:f", *url])
    assert r.exit_code == 1 and "package.module:function" in r.output
    r = cli.invoke(app, ["trigger", "delete", f"{root}-c", *url])
    assert r.exit_code == 0
    r = cli.invoke(app, ["trigger", "describe", f"{root}-c", *url])
    assert r.exit_code == 1 and "no trigger named" in r.output


def test_cli_run_refuses_to_start_without_a_key_or_an_explicit_choice(broker_session, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from evfabric.cli import app

    monkeypatch.setenv("EVFABRIC_TOKEN", "evf_0123456789abcdef_x")  # credentials, but no key to verify with
    r = CliRunner().invoke(app, ["trigger", "run", "--url", broker_session.url, "-d", str(tmp_path)])
    assert r.exit_code == 2 and "no trigger key" in r.output and "--accept-unsigned" in r.output


def test_the_trigger_key_is_private_and_binds_name_creator_and_definition(tmp_path):
    import stat

    import msgspec

    from evfabric.triggers.signing import KEY_FILE, TriggerKey

    key = TriggerKey.in_dir(tmp_path)
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600
    assert TriggerKey.in_dir(tmp_path).verifies("t", key.seal("t", "alice", b'{"x":1}'))  # the same key, reread
    sealed = key.seal("t", "alice", b'{"x":1}')
    assert key.verifies("t", sealed)
    assert not key.verifies("u", sealed)  # another name
    assert not key.verifies("t", msgspec.structs.replace(sealed, creator="root"))  # another creator
    assert not key.verifies("t", msgspec.structs.replace(sealed, spec='{"x":2}'))  # another definition
    assert not key.verifies("t", msgspec.structs.replace(sealed, mac=None))  # unsigned
    other = tmp_path / "other"
    other.mkdir()
    assert not TriggerKey.in_dir(other).verifies("t", sealed)  # another service's key
