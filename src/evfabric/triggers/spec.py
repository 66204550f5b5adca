"""What a trigger is: a pattern, an optional CEL filter, an action, and how to run it.

A :class:`TriggerSpec` is validated when it is created (:func:`validate_spec`), and the
validation is pure: the pattern parses, the filter compiles, the numbers are possible, a Python
action's target has the ``package.module:function`` syntax, a shell command is not empty, a
webhook URL is http(s) with a host. Bad definitions are refused then, with
:class:`~evfabric.core.errors.ConfigError` (or ``InvalidPattern`` / ``InvalidFilter``) naming the
field. Nothing is imported in the creating process (nor on a REST request): only the runner
imports a Python action's module, and reports a trigger it cannot import as failed.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

import msgspec

from evfabric.core.errors import ConfigError
from evfabric.core.filters import Filter
from evfabric.core.topics import Pattern

__all__ = ["PRIVILEGED_KINDS", "ActionSpec", "TriggerSpec", "check_action", "validate_spec"]

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_PYTHON_TARGET = re.compile(f"({_DOTTED}):({_DOTTED})")

#: Action kinds that run code on the runner's host: administrators only.
PRIVILEGED_KINDS = frozenset({"python", "shell"})


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


def check_action(action: ActionSpec) -> ActionSpec:
    """Check an action's syntax without importing or contacting anything; :class:`ConfigError`."""
    if action.kind == "python":
        if not _PYTHON_TARGET.fullmatch(action.target.strip()):
            raise ConfigError(f"python action target {action.target!r} must look like 'package.module:function'")
    elif action.kind == "shell":
        if not action.target.strip():
            raise ConfigError("shell action target (the command) is empty")
    elif action.kind == "webhook":
        url = urlsplit(action.target)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError(f"webhook action target {action.target!r} must be an http(s) URL")
    else:
        raise ConfigError(f"action kind {action.kind!r} is unknown; choose python, shell or webhook")
    return action


def validate_spec(spec: TriggerSpec) -> TriggerSpec:
    """Check every field (pure: nothing imported); return the spec or raise naming the field."""
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
    seconds: tuple[tuple[str, float, bool], ...] = (
        ("batch_window", spec.batch_window, True), ("timeout", spec.timeout, False), ("backoff", spec.backoff, True))
    for field, secs, allow_zero in seconds:
        if isinstance(secs, bool) or not isinstance(secs, (int, float)) or secs < 0 or (secs == 0 and not allow_zero):
            raise ConfigError(f"trigger {spec.name}: {field} must be a {'non-negative' if allow_zero else 'positive'} number of seconds, got {secs!r}")
    if spec.start not in ("latest", "earliest"):
        from datetime import datetime

        try:
            datetime.fromisoformat(spec.start.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"trigger {spec.name}: start must be 'latest', 'earliest' or an ISO 8601 time, got {spec.start!r}") from None
    if spec.ack_wait is not None and (isinstance(spec.ack_wait, bool) or not isinstance(spec.ack_wait, (int, float)) or spec.ack_wait <= spec.timeout):
        raise ConfigError(f"trigger {spec.name}: ack_wait must be a number of seconds above timeout ({spec.timeout}), got {spec.ack_wait!r}")
    check_action(spec.action)
    return spec
