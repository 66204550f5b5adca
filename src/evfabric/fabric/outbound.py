"""Handing a batch to nats-py with its NATS header block serialized once, by the batcher.

``nc.publish(subject, payload, headers=...)`` checks and serializes every header of every message
(a regular expression per key): a few microseconds per message, which is most of the cost of a
message holding one or two events (events spread over many topics). :func:`header_block` writes
the block once per batch (docs/wire.md 2: the values are the batcher's own: content types, ids,
numbers, never a CR or LF), and :func:`publish_block` queues it with the same checks and errors
as ``nc.publish``. Where the nats-py internals it relies on are missing (another nats-py version)
it falls back to ``nc.publish``.
"""

from __future__ import annotations

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.protocol import command

__all__ = ["FAST", "header_block", "publish_block"]

#: nats-py has what :func:`publish_block` uses (else it calls ``nc.publish``)
FAST = (all(hasattr(NatsClient, name) for name in ("_send_command", "_flush_pending", "is_draining_pubs"))
        and hasattr(command, "hpub_cmd"))


def header_block(headers: dict[str, str]) -> bytes:
    """The NATS/1.0 header block of ``headers`` (names and values as they are)."""
    return ("NATS/1.0\r\n" + "".join([f"{k}: {v}\r\n" for k, v in headers.items()]) + "\r\n").encode()


async def publish_block(nc: NatsClient, subject: str, payload: bytes, block: bytes, headers: dict[str, str],
                        reply: str = "") -> None:
    """Publish ``payload`` with header ``block`` (made by :func:`header_block` from ``headers``);
    raises what ``nc.publish`` raises (closed, draining, outbound buffer full, max payload)."""
    if not FAST:
        await nc.publish(subject, payload, reply=reply, headers=headers)
        return
    if nc.is_closed:
        raise nats.errors.ConnectionClosedError
    if nc.is_draining_pubs:
        raise nats.errors.ConnectionDrainingError
    size = len(payload)
    if not nc.is_connected and (nc._max_pending_size <= 0 or size + nc._pending_data_size > nc._max_pending_size):
        raise nats.errors.OutboundBufferLimitError
    if size > nc._max_payload:
        raise nats.errors.MaxPayloadError
    nc.stats["out_msgs"] += 1
    nc.stats["out_bytes"] += size
    await nc._send_command(command.hpub_cmd(subject, reply, block, payload))
    if nc._flush_queue is not None and nc._flush_queue.empty():
        await nc._flush_pending()
