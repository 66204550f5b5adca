"""What a trigger is: a pattern, an optional CEL filter, an action, and how to run it.

A :class:`TriggerSpec` is validated completely when it is created (:func:`validate_spec`): the
pattern parses, the filter compiles, a Python action's ``package.module:function`` imports and
is callable, a shell command is not empty, a webhook URL is http(s). Bad definitions are refused
then, with :class:`~evfabric.core.errors.ConfigError` (or ``InvalidPattern`` / ``InvalidFilter``)
naming the field, never later inside the runner.
"""

from __future__ import annotations

import re
from typing import Literal

import msgspec

from evfabric.core.errors import ConfigError
from evfabric.core.filters import Filter
from evfabric.core.topics import Pattern

__all__ = ["ActionSpec", "TriggerSpec", "validate_spec"]

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ActionSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The action: ``python`` (``target`` = ``package.module:function``), ``shell`` (``target`` =
    a command line run by ``/bin/sh -c``), or ``webhook`` (``target`` = an http(s) URL)."""

    kind: Literal["python", "shell", "webhook"]
    target: str
    pass_batch: bool = False
    """python only: call the function once per batch with a list of events instead of per event."""


class TriggerSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A trigger definition, stored in the fabric so that every runner replica sees it."""

    name: str
    pattern: str
    action: ActionSpec
    filter: str | None = None
    batch_size: int = 1
    batch_window: float = 0.0
    """seconds to wait for a batch to fill before acting on what has come (0: act at once)."""
    start: str = "latest"
    """``latest``, ``earliest``, or an ISO 8601 time to start from."""
    timeout: float = 30.0
    """seconds one invocation may take before it counts as failed."""
    retries: int = 3
    """further attempts after a failure, with a growing delay, before the events are dead-lettered
    to ``cca.deadletter.<topic>``."""
    backoff: float = 0.5
    """seconds before the first retry; attempt n waits n times as long."""
    ack_wait: float | None = None
    """seconds the broker waits for an acknowledgement before redelivering to another replica
    (default ``2 * timeout + 5``)."""
    min_concurrency: int = 1
    max_concurrency: int = 8
    enabled: bool = True
    run_as: str | None = None
    """the service identity the trigger acts as (access control)."""


def validate_spec(spec: TriggerSpec) -> TriggerSpec:
    """Check every field (and that the action resolves); return the spec or raise naming the field."""
    from evfabric.triggers.actions import resolve_action  # imports the target: only at validation

    if not _NAME.fullmatch(spec.name or ""):
        raise ConfigError(f"trigger name {spec.name!r}: 1-64 letters, digits, '_' or '-'")
    Pattern(spec.pattern)
    if spec.filter is not None:
        Filter(spec.filter)
    for field, value, low in (
        ("batch_size", spec.batch_size, 1),
        ("min_concurrency", spec.min_concurrency, 1),
        ("max_concurrency", spec.max_concurrency, 1),
        ("retries", spec.retries, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"trigger {spec.name}: {field} must be an int >= {low}, got {value!r}")
    if spec.max_concurrency < spec.min_concurrency:
        raise ConfigError(f"trigger {spec.name}: max_concurrency ({spec.max_concurrency}) < min_concurrency ({spec.min_concurrency})")
    for field, value, allow_zero in (("batch_window", spec.batch_window, True), ("timeout", spec.timeout, False), ("backoff", spec.backoff, True)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (value == 0 and not allow_zero):
            raise ConfigError(f"trigger {spec.name}: {field} must be a {'non-negative' if allow_zero else 'positive'} number of seconds, got {value!r}")
    if spec.start not in ("latest", "earliest"):
        from datetime import datetime

        try:
            datetime.fromisoformat(spec.start.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"trigger {spec.name}: start must be 'latest', 'earliest' or an ISO 8601 time, got {spec.start!r}") from None
    if spec.ack_wait is not None and (isinstance(spec.ack_wait, bool) or not isinstance(spec.ack_wait, (int, float)) or spec.ack_wait <= spec.timeout):
        raise ConfigError(f"trigger {spec.name}: ack_wait must be a number of seconds above timeout ({spec.timeout}), got {spec.ack_wait!r}")
    resolve_action(spec.action)
    return spec
