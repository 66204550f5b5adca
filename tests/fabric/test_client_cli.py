"""The pub / sub / topic commands against a real broker."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from _fabric_helpers import unique
from typer.testing import CliRunner

from evfabric.cli import app

pytestmark = pytest.mark.broker


def test_topic_pub_sub_commands(broker_session) -> None:
    url = broker_session.url
    root = unique("cli")
    run = CliRunner().invoke
    r = run(app, ["topic", "create", root, "--partitions", "2", "--max-age", "600", "--url", url])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["partitions"] == 2
    assert root in run(app, ["topic", "list", "--url", url]).output
    for i in range(3):
        r = run(app, ["pub", f"{root}.x", json.dumps({"i": i, "hot": i > 0}), "--reliable", "--url", url])
        assert r.exit_code == 0, r.output
    assert json.loads(run(app, ["topic", "describe", root, "--url", url]).output)["messages"] == 3
    # sub in a real process: replay from the start, with a CEL filter
    out = subprocess.run(
        [sys.executable, "-m", "evfabric.cli", "sub", f"{root}.*", "--filter", "body.hot", "--start", "earliest",
         "--count", "2", "--timeout", "10", "--url", url],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [e["body"]["i"] for e in lines] == [1, 2]
    assert run(app, ["topic", "delete", root, "--url", url]).exit_code == 0
    r = run(app, ["topic", "describe", root, "--url", url])
    assert r.exit_code == 1 and "no such topic" in r.output
