"""A round trip to the broker that comes back after everything written before it.

``nc.flush()`` is meant to return once the server has processed every command sent so far: it
sends a PING and waits for the PONG. nats-py (2.2 to 2.16 at least, ``Client._send_ping``) writes
that PING straight to the socket, while the SUBs and PUBs before it still wait in the client's
pending buffer for its flusher task. The server then answers the PING before it has seen them:
after ``await nc.subscribe(...); await nc.flush()`` a message another connection publishes can
reach the server before the SUB and be missed, and a refusal of the SUB comes after the PONG.

:func:`flush` queues the PING behind the pending commands instead (the flusher writes them in
order), so its PONG means what ``flush`` promises. Where the nats-py internals it uses are
missing (another nats-py version), it calls ``nc.flush``.
"""

from __future__ import annotations

import asyncio

import nats.errors
from nats.aio.client import PING_PROTO
from nats.aio.client import Client as NatsClient

__all__ = ["ORDERED", "flush"]

#: nats-py has what :func:`flush` uses to order its PING (else it calls ``nc.flush``)
ORDERED = all(hasattr(NatsClient, name) for name in ("_send_command", "_flush_pending", "_process_pong"))


async def flush(nc: NatsClient, timeout: float = 10.0) -> None:
    """Return once the server has processed every command ``nc`` sent before this call.

    Raises what ``nc.flush`` raises: ``ConnectionClosedError`` on a closed connection,
    ``FlushTimeoutError`` when no PONG comes within ``timeout`` seconds."""
    if timeout <= 0:
        raise nats.errors.BadTimeoutError
    if nc.is_closed:
        raise nats.errors.ConnectionClosedError
    if not ORDERED or not nc.is_connected or not isinstance(getattr(nc, "_pongs", None), list):
        await nc.flush(timeout=max(1, round(timeout)))
        return
    pong: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    nc._pongs.append(pong)
    await nc._send_command(PING_PROTO)
    await nc._flush_pending()
    try:
        # shielded: the read loop sets the result of the PONG's future even after a timeout
        await asyncio.wait_for(asyncio.shield(pong), timeout)
    except TimeoutError:
        raise nats.errors.FlushTimeoutError from None
