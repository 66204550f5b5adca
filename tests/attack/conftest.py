"""Independent attack suite: raw nats-py clients, hand-made bytes and headers, kill -9, forks.

Each test asserts the figure it measures (acked vs received, counted vs lost, garbage counted
and the client still serving). Servers come from tests/conftest.py; the raw wire publisher and
the wait helpers are tests/fabric's, shared rather than copied."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fabric"))
