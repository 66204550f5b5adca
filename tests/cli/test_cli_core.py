"""The command line: the demo runs, and the inproc benchmark prints DESIGN.md's JSON."""

import json
import subprocess
import sys

from typer.testing import CliRunner

from evfabric.cli import app

runner = CliRunner()


def test_demo_runs_and_reports_both_modes():
    result = runner.invoke(app, ["demo", "--steps", "10"])
    assert result.exit_code == 0, result.output
    assert "sync dispatch" in result.output and "threads dispatch" in result.output
    assert "dropped 12" in result.output


def test_bench_inproc_json_has_figures_and_ratios():
    result = subprocess.run(
        [sys.executable, "-m", "evfabric.cli", "bench", "inproc", "--json", "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["bench"] == "inproc"
    names = {f["name"] for f in data["figures"]}
    assert {"sync", "wildcard_10k", "threads"} <= names
    for f in data["figures"]:
        assert f["value"] > 0 and f["peer_value"] > 0 and f["ratio"] > 0 and f["peer"]


def test_bench_wire_json_has_figures_against_row_batches():
    result = subprocess.run([sys.executable, "-m", "evfabric.cli", "bench", "wire", "--json", "--quick"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    names = {f["name"] for f in data["figures"]}
    assert {"decode_columns_ns", "encode_columns_ns", "encode_parts_ns", "bytes_per_event_columns"} == names
    assert all(f["value"] > 0 and f["peer_value"] > 0 and f["peer"] for f in data["figures"])


def test_unknown_bench_is_a_clear_error():
    result = runner.invoke(app, ["bench", "no-such-bench"])
    assert result.exit_code != 0
    assert "no benchmark named 'no-such-bench'" in result.output
