"""Fault-injection suite (issue #11 "Done when"): each test injects one fault with raw tools
(kill -9, network namespaces, poison bytes, raw nats-py floods, hundreds of clients) and asserts
the figure it measures: acknowledged vs received, counted vs lost. Each is bounded (~20 s).

The servers come from tests/conftest.py (``broker``, ``cluster3``); the raw wire publisher and
the wait helpers are tests/fabric's, shared rather than copied."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fabric"))
