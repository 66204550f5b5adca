"""Credentials for the services ``evfabric serve`` runs beside its broker (triggers, monitoring).

When the broker's data directory holds an access store with identities, the broker refuses
anonymous connections, so the in-process services connect as the administrator service identity
``evfabric-serve`` with a session token made here. The token's secret lives only in this
process's memory (the store keeps its hashes, as always) and is revoked at exit.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from evfabric.access.model import IdentityKind
from evfabric.access.store import DB_NAME, AccessStore
from evfabric.core.errors import AlreadyExists, EvfabricError

__all__ = ["SERVICE_IDENTITY", "access_enabled", "identity_token", "service_url", "with_credentials"]

#: The administrator service identity of ``evfabric serve``'s own connections.
SERVICE_IDENTITY = "evfabric-serve"

_lock = threading.Lock()
_sessions: dict[Path, tuple[str, str]] = {}  # store path -> (token id, secret)


def access_enabled(data_dir: str | Path) -> bool:
    """True when ``data_dir`` holds an access store with at least one identity (never creates it)."""
    path = Path(data_dir) / DB_NAME
    return path.is_file() and bool(AccessStore(path).list_identities())


def with_credentials(url: str, user: str, password: str) -> str:
    """``url`` with ``user:password@`` in it (nats-py reads credentials from the URL)."""
    parts = urlsplit(url)
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.hostname}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _revoke_sessions() -> None:
    for key, (token_id, _) in list(_sessions.items()):
        path = key.with_name(key.name.split("#", 1)[0])  # identity sessions are keyed "<store>#<name>"
        if not path.is_file():
            continue  # the data directory is gone (a test's temporary one): nothing to revoke
        with contextlib.suppress(EvfabricError, OSError):
            AccessStore(path).revoke_token(token_id)
    _sessions.clear()


def identity_token(data_dir: str | Path, identity: str) -> str:
    """A session token of ``identity`` (made once per process and identity, revoked at exit):
    how ``evfabric serve``'s trigger runner acts as a trigger's ``run_as`` identity, so that the
    broker grants the trigger exactly that identity's rights. Connect with
    ``connect(url, token=...)``, which also sets the identity's private reply inboxes."""
    store = AccessStore.in_dir(data_dir)
    key = store.path.with_name(f"{store.path.name}#{identity}")
    with _lock:
        session = _sessions.get(key)
        if session is None:
            issued = store.issue_token(identity, description="evfabric serve session (trigger run_as)")
            if not _sessions:
                atexit.register(_revoke_sessions)
            session = _sessions[key] = (issued.info.id, issued.secret)
    return session[1]


def service_url(url: str, data_dir: str | Path) -> str:
    """The URL the in-process services should use for the broker at ``url`` whose data
    directory is ``data_dir``: ``url`` itself when access control is off, else ``url`` with the
    session credentials of ``evfabric-serve`` (made once per process, revoked at exit)."""
    if not access_enabled(data_dir):
        return url
    store = AccessStore.in_dir(data_dir)
    with _lock:
        session = _sessions.get(store.path)
        if session is None:
            with contextlib.suppress(AlreadyExists):
                store.create_identity(SERVICE_IDENTITY, IdentityKind.SERVICE, admin=True,
                                      description="evfabric serve's own connections (triggers, monitoring)")
            issued = store.issue_token(SERVICE_IDENTITY, description="evfabric serve session")
            if not _sessions:
                atexit.register(_revoke_sessions)
            session = _sessions[store.path] = (issued.info.id, issued.secret)
    return with_credentials(url, *session)
