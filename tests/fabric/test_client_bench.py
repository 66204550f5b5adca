"""``bench/fabric.py`` runs (quick) and reports every named figure with a positive peer."""

from __future__ import annotations

import pytest

from evfabric.cli.bench import load

pytestmark = [pytest.mark.broker, pytest.mark.slow]

NAMES = {"best_effort_e2e_100B", "best_effort_e2e_1KB", "reliable_e2e_100B", "reliable_e2e_1KB",
         "latency_p50_us", "latency_p99_us"}


def test_fabric_bench_quick_reports_figures() -> None:
    figures = load("fabric").run(quick=True)
    by_name = {f.name: f for f in figures}
    assert NAMES <= set(by_name)
    for f in figures:
        assert f.value > 0 and f.peer_value > 0 and f.peer, f
        assert f.as_dict()["ratio"] > 0
