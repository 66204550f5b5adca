"""Who this connection is to the broker, and why a connection was refused.

* :func:`identity_of`: the publisher identity the broker bound the connection to (docs/wire.md
  section 6), read from the server's user-info answer.
* :func:`check_admitted`: asks the broker's topic service whether this new connection is within
  its identity's connection quota (:class:`QuotaExceeded` if not; nothing to ask without access
  control).
* :func:`connect_error`: the one-line error for a failed connect: :class:`AccessDenied` when the
  server refused the credentials (or none were given), else :class:`BrokerUnavailable`. URLs are
  shown without their credentials.
"""

from __future__ import annotations

import json
import logging

import nats.errors
from nats.aio.client import Client as NatsClient

from evfabric.core import errors
from evfabric.core.errors import AccessDenied, BrokerUnavailable, EvfabricError
from evfabric.fabric.subjects import ANONYMOUS, PREFIX

__all__ = ["USER_INFO", "check_admitted", "connect_error", "identity_of"]

USER_INFO = "$SYS.REQ.USER.INFO"
log = logging.getLogger("evfabric.fabric")


async def identity_of(nc: NatsClient, timeout: float = 2.0) -> str:
    """The identity the broker bound this connection to (docs/wire.md section 6): the second
    token of its first ``evf.<identity>.`` publish permission in the server's user-info answer;
    ``_`` (anonymous) on a server without access control or when the answer has no permissions."""
    try:
        msg = await nc.request(USER_INFO, b"", timeout=timeout)
        data = json.loads(msg.data).get("data") or {}
    except (nats.errors.Error, TimeoutError, ValueError, AttributeError) as exc:
        log.debug("no user info from the broker (%r): publishing as %r", exc, ANONYMOUS)
        return ANONYMOUS
    allow = ((data.get("permissions") or {}).get("publish") or {}).get("allow") or []
    for filt in allow:
        parts = str(filt).split(".")
        if len(parts) >= 3 and parts[0] == PREFIX and parts[1] not in ("*", ">"):
            return parts[1]
    return ANONYMOUS


async def check_admitted(nc: NatsClient, timeout: float = 5.0) -> None:
    """:class:`~evfabric.core.errors.QuotaExceeded` (naming the figures) when the broker's topic
    service says this connection is beyond its identity's connection quota on the server it
    reached; nothing without a token or without a service (no access control)."""
    from evfabric.fabric.topic_api import request

    server_id = (getattr(nc, "_server_info", None) or {}).get("server_id")
    try:
        await request(nc, "conn", "check", {"server_id": server_id}, timeout=timeout)
    except errors.NotFound:
        pass  # a service from before the connection quota: it cannot tell
    except errors.BrokerUnavailable as exc:  # a busy service: the broker side still closes extras
        log.debug("no connection-quota answer: %s", exc)


def connect_error(exc: BaseException, servers: list[str], refusals: list[str], credentials: bool) -> EvfabricError:
    """The error to raise for a connect that failed with ``exc``, given the errors the servers sent
    while connecting (``refusals``, e.g. 'Authorization Violation') and whether credentials were given."""
    shown = ", ".join(u.rsplit("@", 1)[-1] for u in servers)  # never echo credentials
    if any("authorization violation" in r.lower() or "authentication" in r.lower() for r in refusals):
        why = "the token is unknown, revoked or expired" if credentials \
            else "no token given (set EVFABRIC_TOKEN or pass --token)"
        return AccessDenied(f"the broker at {shown} refused the connection: {why}")
    return BrokerUnavailable(f"no broker answers at {shown} ({type(exc).__name__}: {exc}); "
                             "start one with `evfabric serve`")
