"""Credentials for the services ``evfabric serve`` runs beside its broker (triggers, monitoring).

When the broker's data directory holds an access store with identities, the broker refuses
anonymous connections, so the in-process services connect as the administrator service identity
``evfabric-serve`` with a session token made here. The token's secret lives only in this
process's memory (the store keeps its hashes, as always) and is revoked at exit. Session tokens
expire :data:`SESSION_TTL` seconds after they are made or last renewed; a daemon thread renews
them every third of that (the same token, so live connections keep it), so a process that dies
without revoking them (``kill -9``) leaves tokens that stop working within the hour.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from evfabric.access.model import IdentityKind
from evfabric.access.store import DB_NAME, AccessStore
from evfabric.core.errors import AlreadyExists, EvfabricError

__all__ = ["SERVICE_IDENTITY", "SESSION_TTL", "access_enabled", "identity_token", "renew_sessions", "service_url", "with_credentials"]

log = logging.getLogger("evfabric.access")

#: The administrator service identity of ``evfabric serve``'s own connections.
SERVICE_IDENTITY = "evfabric-serve"

#: Seconds a session token stays valid without renewal (renewed every third of it).
SESSION_TTL = 3600.0

_lock = threading.Lock()
_sessions: dict[Path, tuple[str, str]] = {}  # store path -> (token id, secret)
_renewer: threading.Thread | None = None


def _store_of(key: Path) -> Path:
    return key.with_name(key.name.split("#", 1)[0])  # identity sessions are keyed "<store>#<name>"


def renew_sessions() -> int:
    """Push every session's expiry :data:`SESSION_TTL` seconds ahead now; return how many were
    renewed (one revoked by an administrator stays revoked, and is logged)."""
    with _lock:
        sessions = list(_sessions.items())
    renewed = 0
    for key, (token_id, _) in sessions:
        path = _store_of(key)
        if not path.is_file():
            continue  # the data directory is gone (a test's temporary one)
        try:
            AccessStore(path).renew_token(token_id, SESSION_TTL)
            renewed += 1
        except (EvfabricError, OSError) as exc:
            log.warning("could not renew the evfabric serve session %s: %s", token_id, exc)
    return renewed


def _renew_loop() -> None:
    stop = threading.Event()  # never set: a daemon thread, it ends with the process
    while not stop.wait(SESSION_TTL / 3):
        renew_sessions()


def _issue(store: AccessStore, key: Path, identity: str, description: str) -> tuple[str, str]:
    """A new session of ``identity`` kept under ``key`` (the caller holds the lock)."""
    global _renewer
    issued = store.issue_token(identity, expires_in=SESSION_TTL, description=description)
    if not _sessions:
        atexit.register(_revoke_sessions)
    if _renewer is None or not _renewer.is_alive():
        _renewer = threading.Thread(target=_renew_loop, name="evfabric-session-renewal", daemon=True)
        _renewer.start()
    session = _sessions[key] = (issued.info.id, issued.secret)
    return session


def access_enabled(data_dir: str | os.PathLike[str]) -> bool:
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
        path = _store_of(key)
        if not path.is_file():
            continue  # the data directory is gone (a test's temporary one): nothing to revoke
        with contextlib.suppress(EvfabricError, OSError):
            AccessStore(path).revoke_token(token_id)
    _sessions.clear()


def identity_token(data_dir: str | os.PathLike[str], identity: str) -> str:
    """A session token of ``identity`` (made once per process and identity, revoked at exit):
    how ``evfabric serve``'s trigger runner acts as a trigger's ``run_as`` identity, so that the
    broker grants the trigger exactly that identity's rights. Connect with
    ``connect(url, token=...)``, which also sets the identity's private reply inboxes."""
    store = AccessStore.in_dir(data_dir)
    key = store.path.with_name(f"{store.path.name}#{identity}")
    with _lock:
        session = _sessions.get(key)
        if session is None:
            session = _issue(store, key, identity, "evfabric serve session (trigger run_as)")
    return session[1]


def service_url(url: str, data_dir: str | os.PathLike[str]) -> str:
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
            session = _issue(store, store.path, SERVICE_IDENTITY, "evfabric serve session")
    return with_credentials(url, *session)
