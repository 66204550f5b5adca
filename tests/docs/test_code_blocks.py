"""Every ```python, ```console and ```bash block of README.md and docs/*.md runs as pasted.

The blocks of each file run, in order, against a real ``evfabric serve`` (broker, monitor and
web service on free ports) that this module starts for that file: the default addresses in the text (``127.0.0.1:4222``, ``:8222``,
``:8080``) are rewritten to that server's, and ``EVFABRIC_URL`` / ``EVFABRIC_WEB_URL`` point at it.

* A python block is written to a file and run as a script (``python block.py``), in a scratch
  directory that holds a stub ``mylab/actions.py`` (the user module the trigger examples name).
  It must exit 0 within the time limit, without a traceback, and print something if it calls
  ``print`` (a listener that never ran prints nothing).
* A console block runs each ``$ command`` line (other lines are its output); a bash block runs
  as a script. ``evfabric serve`` alone stands for the server the test already runs.
* A block that cannot run here says so inside itself, on a line
  ``# doc-test: skip <reason>`` (e.g. it needs a cluster, MPI ranks or a remote hub).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import SRC, serving

pytestmark = [pytest.mark.broker, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
LANGS = {"python": "python", "py": "python", "console": "console", "bash": "bash", "sh": "bash", "shell": "bash"}
SKIP = re.compile(r"#\s*doc-test:\s*skip\b\s*(?P<reason>.*)")
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[A-Za-z0-9_+-]*)[ \t]*$")
BLOCK_TIMEOUT = 180.0


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it is, its language, its text."""

    path: Path
    line: int
    lang: str
    text: str

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def blocks(path: Path) -> Iterator[Block]:
    """The runnable fenced blocks of ``path`` (indented fences, as in lists, included)."""
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        indent, lang, start, body = m["indent"], m["lang"], i + 1, []
        i += 1
        while i < len(lines) and not re.match(rf"^{re.escape(indent)}```\s*$", lines[i]):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i].lstrip())
            i += 1
        i += 1
        if lang in LANGS:
            yield Block(path, start, LANGS[lang], "\n".join(body) + "\n")


def all_blocks() -> list[Block]:
    docs = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    return [b for d in docs for b in blocks(d)]


BLOCKS = all_blocks()

MYLAB = '''
"""A stand-in for the user's module that the trigger examples name."""


def make_thumbnail(event):
    return None
'''


class _Servers:
    """One ``evfabric serve`` per documentation file (blocks of one file share it, in order; the
    next file gets a fresh one, so that files do not see each other's topics and triggers)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.current: tuple[Path, dict[str, str], contextlib.ExitStack] | None = None

    def get(self, doc: Path) -> dict[str, str]:
        if self.current is not None and self.current[0] == doc:
            return self.current[1]
        self.close()
        stack = contextlib.ExitStack()
        srv = stack.enter_context(serving(self.root / doc.stem / "broker"))
        addresses = {"url": srv.url, "web": srv.web_url, "monitor": srv.monitor_url}
        self.current = (doc, addresses, stack)
        return addresses

    def close(self) -> None:
        if self.current is not None:
            self.current[2].close()
            self.current = None


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Servers]:
    found = _Servers(tmp_path_factory.mktemp("docs"))
    try:
        yield found
    finally:
        found.close()


def _rewrite(text: str, server: dict[str, str]) -> str:
    host_port = server["url"].removeprefix("nats://")
    for default, real in (("127.0.0.1:4222", host_port), ("localhost:4222", host_port),
                          ("127.0.0.1:8222", server["monitor"].removeprefix("http://")),
                          ("127.0.0.1:8080", server["web"].removeprefix("http://")),
                          ("localhost:8080", server["web"].removeprefix("http://"))):
        text = text.replace(default, real)
    return text


def _commands(block: Block) -> list[str]:
    """The shell commands of a console block (``$ `` lines, with their ``\\`` continuations)."""
    out: list[str] = []
    lines = block.text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("$ "):
            cmd = line[2:]
            while cmd.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                cmd = cmd.rstrip()[:-1] + " " + lines[i].strip()
            out.append(cmd)
        i += 1
    return out


def _is_serve(cmd: str) -> bool:
    return re.fullmatch(r"evfabric serve\s*(#.*)?", cmd.strip()) is not None


def _run(args: list[str], cwd: Path, env: dict[str, str], what: str) -> str:
    """Run a block in its own process group; on timeout the whole group goes (a block may start
    servers of its own), then the test fails."""
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=BLOCK_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        pytest.fail(f"{what} did not finish within {BLOCK_TIMEOUT:.0f} s; output:\n{out}\n{err}")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # anything the block left running in its group
        except ProcessLookupError:
            pass  # the group is gone: nothing was left behind
    assert proc.returncode == 0, f"{what} failed (exit {proc.returncode}):\n{out}\n{err}"
    assert "Traceback (most recent call last)" not in err, f"{what} printed a traceback:\n{err}"
    return out


def test_the_docs_have_blocks_to_run() -> None:
    assert len(BLOCKS) > 10
    assert {b.lang for b in BLOCKS} >= {"python", "console"}


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.id)
def test_code_block_runs_as_pasted(block: Block, servers: _Servers, tmp_path: Path) -> None:
    m = SKIP.search(block.text)
    if m:
        reason = m["reason"].strip()
        assert reason, f"{block.id}: a skip marker needs a reason"
        pytest.skip(f"{block.id}: {reason}")
    server = servers.get(block.path)
    (tmp_path / "mylab").mkdir()
    (tmp_path / "mylab" / "__init__.py").write_text("")
    (tmp_path / "mylab" / "actions.py").write_text(textwrap.dedent(MYLAB))
    (tmp_path / "examples").symlink_to(REPO / "examples")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), SRC]), "EVFABRIC_URL": server["url"],
           "EVFABRIC_WEB_URL": server["web"], "EVFABRIC_CONFIG_DIR": str(tmp_path / "config")}
    env.pop("EVFABRIC_TOKEN", None)
    text = _rewrite(block.text, server)
    if block.lang == "python":
        script = tmp_path / "block.py"
        script.write_text(text)
        out = _run([sys.executable, str(script)], tmp_path, env, block.id)
        # a block that prints (often from a listener) must print: catches listeners that never ran
        assert "print(" not in text or out.strip(), f"{block.id} printed nothing (did its listeners run?)"
        return
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    commands = _commands(block) if block.lang == "console" else [text]
    assert commands, f"{block.id}: a console block without '$ ' commands"
    for cmd in commands:
        if _is_serve(cmd):
            cmd = f"evfabric status --url {server['monitor']}"  # the server this test runs stands in
        _run(["bash", "-e", "-o", "pipefail", "-c", cmd], tmp_path, env, f"{block.id}: $ {cmd}")
