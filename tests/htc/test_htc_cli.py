"""The commands: ``evfabric demo htc --json`` and the bench report's README and plots."""

import json
import subprocess
import sys
from pathlib import Path

from evfabric.cli.bench_report import plot_ratios, render_readme


def test_demo_htc_json_has_both_status_figures(tmp_path):
    plot = tmp_path / "staleness.png"
    result = subprocess.run(
        [sys.executable, "-m", "evfabric.cli", "demo", "htc", "--tasks", "300", "--workers", "4",
         "--task-time", "0.01", "--json", "--plot", str(plot)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    names = {f["name"]: f for f in data["figures"]}
    assert names["events_status_s"]["peer_value"] == names["polling_status_s"]["value"]
    assert data["runs"]["events"]["exact"] and data["runs"]["polling"]["exact"]
    assert plot.stat().st_size > 10_000 and plot.read_bytes()[:4] == b"\x89PNG"


def test_bench_report_writes_table_and_plots(tmp_path: Path):
    results = [
        {"bench": "htc", "seconds": 1.0, "figures": [
            {"name": "events_status_s", "unit": "s", "value": 0.1, "peer": "polling", "peer_value": 0.3, "ratio": 3.0}]},
        {"bench": "broken", "seconds": 0.1, "figures": [], "error": "RuntimeError: boom"},
    ]
    ratios = plot_ratios(results, tmp_path / "plots" / "ratios.png")
    text = render_readme(results, [ratios], tmp_path, quick=True)
    assert "| htc | events_status_s | 0.1 | s | polling | 0.3 | 3.000 | `evfabric bench htc --json --quick` |" in text
    assert "| broken | **failed**: RuntimeError: boom |" in text
    assert "![ratios](plots/ratios.png)" in text and ratios.read_bytes()[:4] == b"\x89PNG"
