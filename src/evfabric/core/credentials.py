"""How a client presents an evfabric token to the broker: ``nats.connect(url, **nats_options(token))``.

A token is ``evf_<id>_<secret>`` (``id``: 16 hex digits, public; ``secret``: random, urlsafe
base64). The broker knows a token as the NATS user named by its id, with the whole token as its
password; replies (JetStream acks, API answers, pulled events) must come to inboxes under
``_INBOX.<token id>``, the only inboxes that token may read, so that no one reads another's
replies. nats-py's ``inbox_prefix`` does that. Works the same for ``evfabric.connect(url, **...)``,
which passes extra keywords to nats-py. How tokens are made and stored is
:mod:`evfabric.access.tokens`'s business; this module is what the fabric client needs of them.
"""

from __future__ import annotations

import re
from typing import Any

from evfabric.core.errors import AccessDenied

__all__ = ["TOKEN_PREFIX", "inbox_prefix", "nats_options", "parse_token"]

TOKEN_PREFIX = "evf"
_TOKEN_RE = re.compile(r"^evf_([0-9a-f]{16})_([A-Za-z0-9_-]{20,})$")


def parse_token(token: str) -> str:
    """The id of a well-formed token string; :class:`AccessDenied` if it is not one."""
    m = _TOKEN_RE.match(token.strip()) if isinstance(token, str) else None
    if m is None:
        raise AccessDenied("malformed token: expected evf_<16 hex digits>_<secret>")
    return m.group(1)


def inbox_prefix(token: str) -> str:
    """The reply-inbox prefix a connection with ``token`` must use: ``_INBOX.<token id>``."""
    return f"_INBOX.{parse_token(token)}"


def nats_options(token: str) -> dict[str, Any]:
    """Keyword arguments for ``nats.connect`` that authenticate with ``token``.

    Raises :class:`~evfabric.core.errors.AccessDenied` if ``token`` is not a well-formed token.
    """
    token = token.strip()
    return {"user": parse_token(token), "password": token, "inbox_prefix": inbox_prefix(token)}
