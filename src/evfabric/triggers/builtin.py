"""Ready-made trigger actions: ``evfabric.triggers.builtin:noop`` and ``...:log``."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("evfabric.triggers.builtin")


def noop(event: Any) -> None:
    """Do nothing (for measuring the trigger machinery itself)."""


def log_event(event: Any) -> None:
    """Log the event (or batch) at INFO level."""
    log.info("trigger got %r", event)
