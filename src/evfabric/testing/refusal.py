"""Whether a broker refuses a connection for its credentials, as access-control tests ask it."""

from __future__ import annotations

import asyncio
from typing import Any

import nats
import nats.errors

__all__ = ["connection_refused"]


async def connection_refused(url: str, attempts: int = 5, **options: Any) -> bool:
    """True when the server at ``url`` refuses a connection made with ``options`` (nats-py
    ``connect`` keywords: ``token``, ``user``/``password``...) for "Authorization Violation";
    False when it admits it (the connection is closed again). The server may close the socket
    before nats-py reads its error: a reset is asked again, at most ``attempts`` times, and
    counts as no answer (False) in the end."""
    for _ in range(attempts):
        try:
            nc = await nats.connect(url, connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=0, **options)
        except nats.errors.Error as exc:
            if "authorization violation" in str(exc).lower():
                return True
        except OSError:
            pass  # reset before the error arrived: ask again
        else:
            await nc.close()
            return False
        await asyncio.sleep(0.1)
    return False
