"""What the views show: the dashboard hides internal streams and shows lag early; the HTC
plot's legend is in ms; the bench ratio chart's axis is centred at 1 on a log scale."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from evfabric.cli.bench_report import plot_ratios, ratio_limits
from evfabric.htc.plot import legend_label

DASHBOARD = Path(__file__).resolve().parents[2] / "src" / "evfabric" / "monitor" / "dashboard.html"


def test_htc_legend_is_in_milliseconds() -> None:
    assert legend_label("events", 0.0013) == "events: median 1.3 ms"
    assert legend_label("polling", 0.120) == "polling: median 120 ms"


def test_ratio_axis_is_centred_at_one(tmp_path: Path) -> None:
    lo, hi = ratio_limits([0.06, 2.2, 38.0])
    assert math.isclose(lo * hi, 1.0) and hi > 38 and lo < 0.06
    assert ratio_limits([1.0]) == (0.5, 2.0)
    results = [{"bench": "b", "figures": [{"name": "x", "ratio": 0.5}, {"name": "y", "ratio": 3.0}]}]
    out = plot_ratios(results, tmp_path / "ratios.png")
    assert out is not None and out.stat().st_size > 1000


def test_dashboard_header_puts_lag_next_to_events() -> None:
    html = DASHBOARD.read_text()
    head = re.search(r'<table id="topics">.*?</tr></thead>', html, re.S)
    assert head is not None
    cols = re.findall(r"<th[^>]*>([^<]+)</th>", head.group(0))
    assert cols[:5] == ["topic", "kind", "events in/s", "lag events", "lag batches"], cols
    assert "stored batches" in cols and "msgs in/s" not in cols  # batches are called batches
    assert "stored events" in cols  # each figure named by its unit (docs/wire.md section 8)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_dashboard_hides_internal_streams_unless_asked() -> None:
    js = re.search(r"const INTERNAL = .*?\n}\n", DASHBOARD.read_text(), re.S)
    assert js is not None, "isInternal() not found in dashboard.html"
    rows = [{"topic": "KV_evf_triggers", "kind": "stream", "stream": "KV_evf_triggers"},
            {"topic": "EVF_TRIGGER_LOG", "kind": "stream", "stream": "EVF_TRIGGER_LOG"},
            {"topic": "cca.deadletter.jobs", "kind": "reliable", "stream": "EVF_cca_deadletter_jobs_1"},
            {"topic": "telemetry", "kind": "reliable", "stream": "EVF_telemetry_12345678"},
            {"topic": "alerts", "kind": "best_effort", "stream": ""},
            {"topic": "ORDERS", "kind": "stream", "stream": "ORDERS"}]
    script = js.group(0) + f"console.log(JSON.stringify({json.dumps(rows)}.map(isInternal)));"
    out = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=30, check=True)
    assert json.loads(out.stdout) == [True, True, True, False, False, False]
