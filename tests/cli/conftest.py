"""Fixtures for the command-line tests: the access tests' ``guarded`` broker, and helpers."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nats
import nats.errors

_spec = importlib.util.spec_from_file_location("_access_conftest", Path(__file__).parents[1] / "access" / "conftest.py")
assert _spec is not None and _spec.loader is not None
_access = importlib.util.module_from_spec(_spec)
sys.modules["_access_conftest"] = _access  # dataclasses look their module up
_spec.loader.exec_module(_access)
guarded = _access.guarded  # a broker with root, alice and bob enforced (tests/access/conftest.py)
Guarded = _access.Guarded

SRC = str(Path(__file__).resolve().parents[2] / "src")


def cli(*args: str, timeout: float = 60, env: dict[str, str] | None = None, stdin: str | None = None,
        ) -> subprocess.CompletedProcess[str]:
    """Run ``python -m evfabric.cli ARGS`` in a real process (its own environment, our sources)."""
    e = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    e.pop("EVFABRIC_TOKEN", None)
    e.pop("EVFABRIC_URL", None)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "evfabric.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=e, input=stdin if stdin is not None else "",
                          )


def admitted(url: str, token: str, timeout: float = 10.0) -> None:
    """Wait until the broker accepts ``token`` (the access control reloads it within a second)."""
    from evfabric.access import nats_options

    async def ok() -> bool:
        try:
            nc = await nats.connect(url, connect_timeout=1, allow_reconnect=False, max_reconnect_attempts=0,
                                    **nats_options(token))
        except (nats.errors.Error, OSError):
            return False
        await nc.close()
        return True

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if asyncio.run(ok()):
            return
        time.sleep(0.1)
    raise AssertionError(f"the broker did not admit the token within {timeout} s")


def one_line(text: str) -> str:
    """The single line of ``text`` (asserts there is exactly one, and no traceback)."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


__all__ = ["Guarded", "Served", "admitted", "cli", "free_port", "guarded", "one_line", "serving"]



@dataclass
class Served:
    """A real ``evfabric serve`` process: its broker URL, web URL, data directory."""

    proc: subprocess.Popen[str]
    url: str
    web_url: str
    data_dir: Path
    monitor_url: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(data_dir: Path, *, web: bool = True, timeout: float = 60.0) -> Iterator[Served]:
    """Run ``evfabric serve`` on free ports (broker, monitor, web) in ``data_dir``; stop it after."""
    port, web_port, http_port = free_port(), free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": SRC, "EVFABRIC_WEB_PORT": str(web_port)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "evfabric.cli", "serve", "-d", str(data_dir), "-p", str(port),
         "--http-port", str(http_port), *([] if web else ["--no-web"])],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, stdin=subprocess.DEVNULL)
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:  # in a thread, so that a serve that hangs cannot hang the test
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C to stop" in line:
                ready.set()
        ready.set()  # the output ended: serve exited

    threading.Thread(target=read, daemon=True).start()  # (and keeps its pipe drained afterwards)
    try:
        ready.wait(timeout)
        if proc.poll() is not None or not any("Ctrl-C to stop" in x for x in lines):
            state = f"exited with {proc.returncode}" if proc.poll() is not None else f"not ready after {timeout} s"
            raise AssertionError(f"evfabric serve did not start ({state}):\n" + "".join(lines))
        yield Served(proc, f"nats://127.0.0.1:{port}", f"http://127.0.0.1:{web_port}", data_dir,
                     f"http://127.0.0.1:{http_port}")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
