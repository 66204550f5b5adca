"""A program that started a BrokerServer and is killed (SIGTERM skips atexit, SIGKILL skips
everything) leaves no nats-server behind: the server dies with the thread that launched it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from evfabric.testing import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60),
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")]

SRC = str(Path(__file__).resolve().parents[2] / "src")
PROGRAM = """
import sys, time
from evfabric.broker.server import BrokerServer
srv = BrokerServer().start()
print(srv._proc.pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie is dead
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_killed_program_leaves_no_nats_server(sig: signal.Signals) -> None:
    env = {**os.environ, "PYTHONPATH": SRC}
    prog = subprocess.Popen([sys.executable, "-c", PROGRAM], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert prog.stdout is not None
        server_pid = int(prog.stdout.readline())
        assert _alive(server_pid)
        prog.send_signal(sig)
        prog.wait(20)
        ended = wait_until(lambda: not _alive(server_pid), timeout=20)
        if not ended:  # clean up what the test started before failing
            os.kill(server_pid, signal.SIGKILL)
        assert ended, f"nats-server {server_pid} outlived the program killed by {sig.name}"
    finally:
        if prog.poll() is None:
            prog.kill()
