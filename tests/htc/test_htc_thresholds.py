"""Threshold events with hysteresis: a crossing each way, nothing in between, nothing on jitter."""

import asyncio

import pytest

from evfabric.core.errors import ConfigError
from evfabric.htc import LocalHub, SimulatedMetrics, SimulatedRunner, Threshold, ThresholdSpec, Worker, WorkerConfig
from evfabric.testing import wait_until_async


def test_threshold_goes_high_at_high_and_normal_only_at_low():
    th = Threshold(ThresholdSpec("temp", high=70.0, low=60.0))
    seen = [th.update(v) for v in (50, 69.9, 70.0, 75, 65, 60.1, 69, 60.0, 59, 71)]
    assert seen == [None, None, "high", None, None, None, None, "normal", None, "high"]
    assert th.state == "high"


def test_jitter_around_one_level_gives_one_event():
    th = Threshold(ThresholdSpec("load", high=0.9, low=0.6))
    values = [0.89, 0.91, 0.88, 0.92, 0.87, 0.93, 0.89, 0.9] * 10
    crossings = [c for c in (th.update(v) for v in values) if c]
    assert crossings == ["high"]


def test_low_must_be_below_high():
    with pytest.raises(ConfigError):
        ThresholdSpec("mem", high=50.0, low=50.0)


def test_simulated_temperature_heats_with_load_and_cools_when_idle():
    util = [0.0]
    metrics = SimulatedMetrics(lambda: util[0], seed=3)
    cold = [metrics()["temp"] for _ in range(20)][-1]
    util[0] = 1.0
    hot = [metrics()["temp"] for _ in range(40)][-1]
    util[0] = 0.0
    cooled = [metrics()["temp"] for _ in range(40)][-1]
    assert cold < 45 < 70 < hot and cooled < 45


def test_worker_emits_metric_events_only_on_crossings():
    readings = iter([50, 65, 72, 74, 71, 66, 61, 59, 58, 64, 80] + [80] * 200)

    async def main() -> list[dict]:
        fabric = LocalHub()
        got: list[dict] = []
        cfg = WorkerConfig(emit="interval", heartbeat=0, metrics_every=0.01,
                           thresholds=(ThresholdSpec("temp", high=70.0, low=60.0),))
        worker = Worker("w0", "j", fabric.link("w0"), SimulatedRunner(0.0), cfg)
        reads = [0]

        def read() -> dict[str, float]:
            reads[0] += 1
            return {"temp": float(next(readings))}

        worker.read_metrics = read
        await fabric.link("c").subscribe("htc.j.up.?", lambda topic, body: got.append(body))
        await worker.start()
        # 30 readings: the 3 crossings (the 3rd at the 11th) and 19 steady ones after them
        assert await wait_until_async(lambda: reads[0] >= 30, timeout=20)
        await worker.stop()
        await fabric.service.drain()
        fabric.close()
        return got

    got = asyncio.run(main())
    assert [(b["k"], b["st"], b["v"]) for b in got] == [("metric", "high", 72), ("metric", "normal", 59),
                                                        ("metric", "high", 80)]
    assert [b["s"] for b in got] == [1, 2, 3]  # metric messages are numbered like task messages
