"""The broker's ``authorization`` section, generated from the access store.

Every valid token becomes one NATS user: the token id as user name, the token's bcrypt hash as
password (nats-server checks bcrypt hashes itself, so the config holds no usable secret), and the
:func:`~evfabric.access.policy.nats_permissions` of its identity, with reply inboxes under
``_INBOX.<token id>`` (or the shared ``_INBOX`` when ``private_inboxes`` is off).

Connections without a valid token are refused. When no token is valid, a single locked user
(a random, unprinted password) keeps the section non-empty: an empty user list would turn
authorization off.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

from evfabric.access.policy import nats_permissions
from evfabric.access.store import DB_NAME, AccessStore
from evfabric.access.tokens import bcrypt_hash

__all__ = ["LOCKED_USER", "authorization_section", "enforce_configured_store"]

LOCKED_USER = "evfabric-locked"
_LOCKED_HASH = bcrypt_hash("evf_" + secrets.token_urlsafe(32))


def authorization_section(store: AccessStore, *, now: float | None = None, private_inboxes: bool = True,
                          auth_timeout: float = 2.0) -> dict[str, Any]:
    """The NATS ``authorization`` block for the tokens valid at ``now``."""
    now = time.time() if now is None else now
    snap = store.snapshot()
    users: list[dict[str, Any]] = []
    for info, hashed in store.nats_users(now):
        if info.identity not in snap.identities:
            continue
        inbox = f"_INBOX.{info.id}" if private_inboxes else "_INBOX"
        user: dict[str, Any] = {"user": info.id, "password": hashed}
        perms = nats_permissions(snap, info.identity, inbox, info.id)
        if perms is not None:
            user["permissions"] = perms
        users.append(user)
    if not users:
        users.append({"user": LOCKED_USER, "password": _LOCKED_HASH,
                      "permissions": {"publish": {"deny": [">"]}, "subscribe": {"deny": [">"]}}})
    return {"users": users, "timeout": auth_timeout}


def enforce_configured_store(settings: Any, conf: dict[str, Any]) -> None:
    """A global config hook for ``evfabric serve``: a server whose data directory holds an
    access store with identities gets its ``authorization`` section from the very first start
    (no moment without authorization). Servers without a store are left alone; the store file
    is never created here."""
    path = Path(settings.data_dir) / DB_NAME
    if "authorization" in conf or not path.is_file():
        return
    store = AccessStore(path)
    if store.list_identities():
        conf["authorization"] = authorization_section(store)
