"""What a client needs to connect with a token: ``nats.connect(url, **nats_options(token))``.

The broker knows a token as the NATS user named by the token's id, with the whole token as its
password; replies (JetStream acks, API answers, pulled events) must come to inboxes under
``_INBOX.<token id>``, the only inboxes that token may read, so that no one reads another's
replies. nats-py's ``inbox_prefix`` does that. Works the same for ``evfabric.connect(url, **...)``,
which passes extra keywords to nats-py.
"""

from __future__ import annotations

from typing import Any

from evfabric.access.tokens import parse_token

__all__ = ["inbox_prefix", "nats_options"]


def inbox_prefix(token: str) -> str:
    """The reply-inbox prefix a connection with ``token`` must use: ``_INBOX.<token id>``."""
    return f"_INBOX.{parse_token(token)}"


def nats_options(token: str) -> dict[str, Any]:
    """Keyword arguments for ``nats.connect`` that authenticate with ``token``.

    Raises :class:`~evfabric.core.errors.AccessDenied` if ``token`` is not a well-formed token.
    """
    token = token.strip()
    return {"user": parse_token(token), "password": token, "inbox_prefix": inbox_prefix(token)}
