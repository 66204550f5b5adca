"""The client side of the topic service: how a client asks the broker's service to create,
change and delete topics (streams) and consumers when access control is on.

With access control, no user may call ``$JS.API.STREAM.CREATE``/``UPDATE``/``DELETE`` or
``$JS.API.CONSUMER.CREATE`` itself: the broker's topic service (run with administrative
credentials by ``evfabric serve`` / ``BrokerServer(access=...)``, see
:mod:`evfabric.access.topic_service`) does it from a validated request. A request goes to

    $EVF.API.<KIND>.<OP>.<token id>        e.g. $EVF.API.TOPIC.CREATE.0123456789abcdef

and the broker lets each token publish only on the subjects ending in its own token id, so the
service knows who asks without trusting the payload. Payloads and replies are JSON; a reply is
``{"ok": ...}`` or ``{"error": {"type": "AccessDenied", "message": ..., "err_code": ...}}``.

:func:`request` returns None when no service answers (a broker without access control): the
caller then uses the JetStream API directly.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote

import nats.errors

from evfabric.core import errors

__all__ = ["SERVICE_PREFIX", "ServiceError", "error_reply", "request", "service_subject", "token_id_of"]

SERVICE_PREFIX = "$EVF.API"
_TOKEN_ID_RE = re.compile(r"^[0-9a-f]{16}$")
_ERRORS: dict[str, type[errors.EvfabricError]] = {
    cls.__name__: cls for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, errors.EvfabricError)
}


class ServiceError(errors.ConfigError):
    """The topic service refused a request for a reason JetStream reports (``err_code`` kept)."""

    def __init__(self, message: str, err_code: int | None = None) -> None:
        super().__init__(message)
        self.err_code = err_code


def service_subject(kind: str, op: str, token_id: str) -> str:
    """The subject of one request: ``$EVF.API.<KIND>.<OP>.<token id>``."""
    return f"{SERVICE_PREFIX}.{kind.upper()}.{op.upper()}.{token_id}"


def token_id_of(nc: Any) -> str | None:
    """The access token id a nats-py connection authenticated with (its NATS user), or None."""
    user = (getattr(nc, "options", None) or {}).get("user")
    if not isinstance(user, str):
        uri = getattr(getattr(nc, "_current_server", None), "uri", None)
        user = unquote(uri.username) if uri is not None and uri.username else None
    return user if isinstance(user, str) and _TOKEN_ID_RE.match(user) else None


def error_reply(exc: BaseException) -> bytes:
    """The JSON reply that carries ``exc`` back to the client."""
    err: dict[str, Any] = {"type": type(exc).__name__ if isinstance(exc, errors.EvfabricError) else "ConfigError",
                           "message": str(exc)}
    code = getattr(exc, "err_code", None)
    if code is not None:
        err["err_code"] = code
    return json.dumps({"error": err}).encode()


async def request(nc: Any, kind: str, op: str, payload: dict[str, Any], timeout: float = 10.0) -> Any:
    """Ask the topic service; its ``ok`` answer, or None when no service answers (or the
    connection has no token). A refusal raises the evfabric error it names."""
    token_id = token_id_of(nc)
    if token_id is None:
        return None
    try:
        msg = await nc.request(service_subject(kind, op, token_id), json.dumps(payload).encode(), timeout=timeout)
    except nats.errors.NoRespondersError:
        return None
    except nats.errors.TimeoutError:
        raise errors.BrokerUnavailable(f"the topic service did not answer {kind} {op} within {timeout:.0f}s") from None
    reply = json.loads(msg.data)
    err = reply.get("error")
    if err is not None:
        if err.get("err_code") is not None:
            raise ServiceError(err.get("message", "refused"), int(err["err_code"]))
        cls = _ERRORS.get(err.get("type", ""), errors.ConfigError)
        raise cls(err.get("message", "refused"))
    return reply.get("ok")
