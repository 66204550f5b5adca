"""Invocation logs: every run of a trigger's action, kept in the fabric for a while.

Runners publish a JSON record per invocation (see
:class:`~evfabric.triggers.executor.Invocation`) on ``evf_trigger_log.<trigger>``, coalesced into
one JSON array per trigger every :data:`FLUSH_EVERY` seconds; the stream ``EVF_TRIGGER_LOG``
keeps the last :data:`KEEP_PER_TRIGGER` such messages of each trigger for a day.
Each record carries its replica's running totals, so the sum of the newest record per replica is
the trigger's count of invocations, successes, failures and dead letters.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import msgspec
import nats.js.errors as jserr
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy, StreamConfig

from evfabric.triggers.executor import Invocation

log = logging.getLogger("evfabric.triggers")

__all__ = ["KEEP_PER_TRIGGER", "ensure_log_stream", "publish_invocations", "read_log", "summarize"]

STREAM = "EVF_TRIGGER_LOG"
SUBJECT = "evf_trigger_log"
KEEP_PER_TRIGGER = 200
FLUSH_EVERY = 0.1


async def ensure_log_stream(js: JetStreamContext, replicas: int = 1) -> None:
    """Create the log stream if it does not exist."""
    try:
        await js.stream_info(STREAM)
    except jserr.NotFoundError:
        try:
            await js.add_stream(
                StreamConfig(
                    name=STREAM,
                    subjects=[f"{SUBJECT}.>"],
                    max_msgs_per_subject=KEEP_PER_TRIGGER,
                    max_age=86400.0,
                    num_replicas=replicas,
                    description="evfabric trigger invocations",
                )
            )
        except jserr.BadRequestError:
            pass  # another replica created it meanwhile


async def publish_invocations(nc: NatsClient, trigger: str, records: list[Invocation]) -> None:
    """Send records of one trigger as one message (fire and forget: the log is for people, not
    for delivery guarantees; runners coalesce records so a busy trigger costs few messages)."""
    await nc.publish(f"{SUBJECT}.{trigger}", msgspec.json.encode(records))


async def read_log(js: JetStreamContext, trigger: str, limit: int = 50, timeout: float = 2.0) -> list[dict[str, Any]]:
    """The newest ``limit`` records of ``trigger``, oldest first."""
    try:
        info = await js.stream_info(STREAM, subjects_filter=f"{SUBJECT}.{trigger}")
    except jserr.NotFoundError:
        return []
    count = (info.state.subjects or {}).get(f"{SUBJECT}.{trigger}", 0)
    if not count:
        return []
    sub = await js.subscribe(
        f"{SUBJECT}.{trigger}", ordered_consumer=True, deliver_policy=DeliverPolicy.ALL, stream=STREAM
    )
    records: list[dict[str, Any]] = []
    try:
        for _ in range(count):
            msg = await asyncio.wait_for(sub.next_msg(timeout), timeout + 1)
            records.extend(json.loads(msg.data))
    except Exception as exc:  # a partial log is still worth showing
        log.debug("reading the invocation log of %s stopped early: %r", trigger, exc)
    finally:
        await sub.unsubscribe()
    return records[-limit:]


def summarize(records: list[dict[str, Any]]) -> dict[str, int]:
    """Totals over replicas: the newest record of each replica carries its running totals."""
    newest: dict[str, dict[str, int]] = {}
    for rec in records:
        newest[rec["replica"]] = rec.get("totals", {})
    total: dict[str, int] = {}
    for counts in newest.values():
        for k, v in counts.items():
            total[k] = total.get(k, 0) + v
    return total
