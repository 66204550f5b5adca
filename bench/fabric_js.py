"""``best_effort_e2e_100B_vs_nats_js``: evfabric best effort end to end against nats.js batches.

Same broker, same run. evfabric: ``publish_many`` of 100 B events in one process, an evfabric
subscriber counting them in another (``bench/fabric.py``'s round). nats.js: the Node example
(``examples/js/cli.mjs bench-tx``) sends one pre-encoded columnar batch of 1000 100 B events
again and again; a second Node process (``bench-rx``) counts the events by ``Evf-Count``. Rate =
events received / (last arrival - first send). Without node or the example's npm packages the
figure is 0 with the reason in ``notes.skipped``.

``evfabric bench fabric`` includes it (:func:`figures`); ``evfabric bench fabric_js`` runs it alone.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

from evfabric.benchmarking import Figure, median_of, with_broker

JS_DIR = Path(__file__).resolve().parents[1] / "examples" / "js"
NAME = "best_effort_e2e_100B_vs_nats_js"
PEER = "nats.js (npm nats), pre-encoded batches of 1000 events, Evf-Count counted"


def why_not() -> str | None:
    """None when nats.js can run here; else the reason."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (JS_DIR / "node_modules" / "nats").is_dir():
        if shutil.which("npm") is None:
            return "npm is not installed"
        try:
            res = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=JS_DIR,
                                 capture_output=True, text=True, timeout=180)
        except subprocess.TimeoutExpired:
            return "npm install timed out"
        if res.returncode != 0:
            return f"npm install failed: {res.stderr.strip()[-200:]}"
    return None


def _js_round(url: str, n: int, subject: str) -> float:
    cli = str(JS_DIR / "cli.mjs")
    rx = subprocess.Popen(["node", cli, "bench-rx", "--url", url, "--events", str(n), "--subject", subject],
                          stdout=subprocess.PIPE, text=True)
    try:
        assert rx.stdout is not None
        if "ready" not in rx.stdout.readline():
            raise RuntimeError("nats.js bench receiver did not start")
        tx = subprocess.run(["node", cli, "bench-tx", "--url", url, "--events", str(n), "--subject", subject],
                            capture_output=True, text=True, timeout=300, check=True)
        sent = json.loads(tx.stdout.strip().splitlines()[-1])
        out, _ = rx.communicate(timeout=300)
    finally:
        if rx.poll() is None:
            rx.kill()  # our own child, by its handle
    got = json.loads(out.strip().splitlines()[-1])
    span = (got["last_ms"] - sent["t0_ms"]) / 1000
    return got["count"] / span if span > 0 else 0.0


def figures(url: str, quick: bool = False, evf_round: object = None) -> list[Figure]:
    """The figure against the broker at ``url``; ``evf_round(url, topic, n, size, mode)`` is
    ``bench/fabric.py``'s evfabric round (loaded here when not given)."""
    reason = why_not()
    if reason:
        return [Figure(NAME, "events/s", 0.0, PEER, 0.0, notes={"skipped": reason})]
    if evf_round is None:
        from evfabric.cli.bench import load

        evf_round = load("fabric")._evf_round
    reps = 1 if quick else 3
    n = 20_000 if quick else 200_000
    evf, js = [], []
    for i in range(reps):  # interleaved, so that load drifts hit both alike
        evf.append(evf_round(url, f"benchjs{i}x{int(time.time())}", n, 100, "best_effort")[1])  # type: ignore[operator]
        try:
            js.append(_js_round(url, n * 5, f"bench.js.r{i}"))
        except (subprocess.SubprocessError, RuntimeError, ValueError, KeyError) as exc:  # the rest of the bench goes on
            reason = f"nats.js round {i} failed: {type(exc).__name__}: {str(exc)[:160]}"
            return [Figure(NAME, "events/s", median_of(evf), PEER, 0.0, notes={"skipped": reason})]
    return [Figure(NAME, "events/s", median_of(evf), PEER, median_of(js), notes={"events": n, "peer_events": n * 5})]


def run(quick: bool = False) -> list[Figure]:
    """Start a broker, measure, stop it."""
    return with_broker(figures, quick)
