"""What a newcomer sees when something is wrong: one line naming it, a non-zero exit, no hang.

Each test runs the real ``evfabric`` command in a process against a real broker (with access
control where it matters) and bounds the time it may take.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

import evfabric
from conftest import SRC, admitted, cli, one_line
from evfabric.core.errors import NotFound

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]


def test_missing_and_unknown_tokens_are_access_denied_not_no_broker(guarded: Any) -> None:
    url = guarded.server.url
    r = cli("pub", "users.alice.x", "{}", "--url", url)
    assert r.returncode == 1
    line = one_line(r.stderr)
    assert "AccessDenied" in line and "no token" in line and "no broker answers" not in line
    unknown = "evf_0123456789abcdef_" + "A" * 43
    r = cli("sub", "users.alice.*", "--url", url, "--count", "1", env={"EVFABRIC_TOKEN": unknown})
    assert r.returncode == 1
    line = one_line(r.stderr)
    assert "AccessDenied" in line and "unknown, revoked or expired" in line
    r = cli("pub", "x", "{}", "--url", url, "--token", "not-a-token")
    assert r.returncode == 1 and "malformed token" in one_line(r.stderr)


def test_sub_without_rights_and_reliable_partial_grant_end_in_one_access_denied_line(guarded: Any) -> None:
    url = guarded.server.url
    guarded.store.register_topic("experiments", "alice")
    guarded.store.grant("experiments.?", "bob", ["subscribe"], granted_by="alice")
    bob = guarded.store.issue_token("bob").secret
    admitted(url, bob)
    t0 = time.monotonic()
    r = cli("sub", "other.*", "--url", url, "--token", bob, timeout=30)
    assert r.returncode == 1, r.stdout
    assert "AccessDenied" in one_line(r.stderr) and "other" in r.stderr
    r = cli("sub", "experiments.?", "--reliable", "--url", url, "--token", bob, timeout=30)
    assert r.returncode == 1
    line = one_line(r.stderr)
    assert "AccessDenied" in line and "experiments" in line and "TimeoutError" not in line
    assert time.monotonic() - t0 < 25  # both, not a hang


def test_a_refused_best_effort_publish_is_an_error_not_an_id(guarded: Any) -> None:
    """bob may only read ``experiments.?``: his best-effort publish there is refused by the broker.
    Nothing waits for a best-effort publish, so the refusal comes with the flush (and close): the
    CLI says it in one line and exits 1, in the API flush() raises AccessDenied once."""
    url = guarded.server.url
    guarded.store.register_topic("experiments", "alice")
    guarded.store.grant("experiments.?", "bob", ["subscribe"], granted_by="alice")
    bob = guarded.store.issue_token("bob").secret
    admitted(url, bob)
    for extra in ([], ["--count", "3"]):
        r = cli("pub", "experiments.run1", '{"x": 1}', *extra, "--url", url, "--token", bob, timeout=30)
        assert r.returncode == 1 and r.stdout.strip() == "", (r.stdout, r.stderr)
        line = one_line(r.stderr)
        assert "AccessDenied" in line and "experiments.run1" in line, line
    with evfabric.connect(url, token=bob) as c:
        c.publish("experiments.run1", {"x": 1})
        with pytest.raises(evfabric.AccessDenied, match="refused 1 publish of"):
            c.flush(10)
        c.flush(10)  # told once
        c.publish("users.bob.notes", {"x": 2})  # positive control: his own namespace
        c.flush(10)


def test_status_follows_the_global_context_and_the_environment(tmp_path: Path) -> None:
    """``evfabric --context dead status``, a selected context, ``$EVFABRIC_URL``: status asks that
    broker, and says it does not answer, rather than report the default broker as healthy."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"nats://127.0.0.1:{s.getsockname()[1]}"
    cfg = {"EVFABRIC_CONFIG_DIR": str(tmp_path)}
    assert cli("context", "add", "dead", "--url", dead, env=cfg).returncode == 0
    for args, env in ((["--context", "dead", "status"], cfg), (["status"], {**cfg, "EVFABRIC_CONTEXT": "dead"}),
                      (["status"], {**cfg, "EVFABRIC_URL": dead})):
        r = cli(*args, env=env, timeout=30)
        assert r.returncode == 1 and "no broker answers" in one_line(r.stderr) and dead in r.stderr, (args, r.stderr)
    assert cli("context", "select", "dead", env=cfg).returncode == 0
    r = cli("status", env=cfg, timeout=30)
    assert r.returncode == 1 and dead in one_line(r.stderr)


@pytest.mark.parametrize("command", ["status", "top"])
def test_status_and_top_against_a_dead_server_fail_fast_in_one_line(command: str) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    r = cli(command, "--url", f"nats://127.0.0.1:{port}", *(["--once"] if command == "top" else []), timeout=30)
    assert r.returncode == 1
    assert "no broker answers" in one_line(r.stderr)
    assert time.monotonic() - t0 < 10


def test_top_names_another_broker_on_the_monitoring_port_instead_of_showing_it(broker: Any) -> None:
    """``top --url`` derives the monitoring URL from the host (port 8222): when that port belongs
    to another broker, top says so instead of drawing the other broker's figures."""
    from evfabric.cli.top import listening, other_server

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert other_server(broker.monitor_url, broker.url) is None
    assert other_server(broker.monitor_url, f"nats://127.0.0.1:{port}") == int(broker.url.rsplit(":", 1)[1])
    assert other_server("http://127.0.0.1:1", broker.url) is None  # nobody answers: the sample says so
    assert listening(broker.url) and not listening(f"nats://127.0.0.1:{port}")


def test_replaying_a_typo_pattern_does_not_create_a_topic(broker: Any) -> None:
    r = cli("sub", "experimentz.*", "--start", "earliest", "--url", broker.url, timeout=30)
    assert r.returncode == 1
    assert "NotFound" in one_line(r.stderr) and "evfabric topic create experimentz" in r.stderr
    with evfabric.connect(broker.url) as c:
        assert "experimentz" not in [t.config.name for t in c.list_topics()]
        with pytest.raises(NotFound):
            c.subscribe("experimentz.*", start="earliest")
        c.subscribe("livetopic.*", delivery="reliable")  # a live reliable subscription still creates it
        assert "livetopic" in [t.config.name for t in c.list_topics()]


def test_serve_bind_failure_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = cli("serve", "-d", str(tmp_path / "b"), "-p", str(port), "--http-port", "0", "--no-web", timeout=60)
    assert r.returncode == 2
    errors = [line for line in r.stdout.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "address already in use" in errors[0], r.stdout
    assert len(r.stdout.splitlines()) <= 5, r.stdout  # not the log dump


def _serve(tmp_path: Path) -> tuple[subprocess.Popen[str], psutil.Process]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "evfabric.cli", "serve", "-d", str(tmp_path / "b"), "-p", "0", "--http-port", "0",
         "--no-web"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": SRC}, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "Ctrl-C to stop" in line:
            break
    kids = [c for c in psutil.Process(proc.pid).children() if "nats-server" in c.name()]
    assert len(kids) == 1, "serve did not start one nats-server"
    return proc, kids[0]


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGHUP])
def test_serve_leaves_no_nats_server_behind(tmp_path: Path, how: signal.Signals) -> None:
    proc, nats_server = _serve(tmp_path)
    try:
        proc.send_signal(how)
        proc.wait(30)
        gone, alive = psutil.wait_procs([nats_server], timeout=15)
        assert gone and not alive, f"nats-server {nats_server.pid} outlived serve after {how.name}"
    finally:
        if proc.poll() is None:
            proc.kill()
        if nats_server.is_running():
            nats_server.kill()
