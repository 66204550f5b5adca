"""``AccessControl``: keeps running brokers' authorization in step with the access store.

    control = AccessControl(AccessStore.in_dir(srv.data_dir))
    control.attach(srv)        # from now on every connection needs a valid token
    ...
    control.close()            # stops watching (the servers keep their last config)

:meth:`AccessControl.attach` adds a config hook to the server (only that server: other servers in
the same process stay open) that writes the ``authorization`` section
(:mod:`evfabric.access.nats_config`), and reloads it. A background thread then reloads the
server (``BrokerServer.reload``: rewrite the config, SIGHUP) when

* the store changes through this process (at once) or through another one, e.g. the
  ``evfabric`` CLI (noticed by polling the store's version every ``poll_interval`` seconds);
* a token reaches its expiry (the reaper).

On reload nats-server re-checks every client connection: a connection whose user is gone (its
token revoked or expired) is closed with "Authorization Violation" and cannot reconnect;
connections that stay get their new permissions at once.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from evfabric.access.nats_config import authorization_section
from evfabric.access.store import AccessStore
from evfabric.fabric.server import BrokerServer
from evfabric.fabric.server_config import ServerSettings

__all__ = ["AccessControl"]

log = logging.getLogger("evfabric.access")


class AccessControl:
    """Enforces ``store`` on the attached servers by generating their config and reloading it.

    ``private_inboxes``: each token may only read replies under ``_INBOX.<token id>`` (clients
    must connect with :func:`evfabric.access.nats_options`); False allows the shared
    ``_INBOX.>``, which any client uses by default but lets one token read others' replies.
    """

    def __init__(self, store: AccessStore, *, private_inboxes: bool = True, poll_interval: float = 1.0) -> None:
        self.store = store
        self.private_inboxes = private_inboxes
        self.poll_interval = poll_interval
        self.reloads = 0
        self.last_error: Exception | None = None
        self._servers: list[BrokerServer] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._applied_version = -1
        self._applied_at = 0.0
        self._thread: threading.Thread | None = None
        store.on_change(self._on_change)

    # --- config ------------------------------------------------------------------------------

    def config_hook(self, settings: ServerSettings, conf: dict[str, Any]) -> None:
        """A :data:`~evfabric.fabric.server_config.ConfigHook` writing the ``authorization`` section."""
        conf["authorization"] = authorization_section(self.store, private_inboxes=self.private_inboxes)

    # --- servers -----------------------------------------------------------------------------

    def attach(self, server: BrokerServer) -> None:
        """Enforce the store on ``server`` from now on (reloading it if it runs)."""
        if self.config_hook not in server.settings.hooks:
            server.settings.hooks.append(self.config_hook)
        with self._lock:
            self._servers.append(server)
        if server.running:
            self._applied_version = self.store.version()
            self._reload_one(server)
        self._ensure_thread()

    def detach(self, server: BrokerServer) -> None:
        """Stop enforcing on ``server``: the hook goes, and a running server is reloaded open."""
        with self._lock:
            if server in self._servers:
                self._servers.remove(server)
        if self.config_hook in server.settings.hooks:
            server.settings.hooks.remove(self.config_hook)
        if server.running:
            server.reload()

    def reload(self) -> None:
        """Rewrite and reload every attached running server now."""
        version = self.store.version()
        with self._lock:
            servers = list(self._servers)
        for srv in servers:
            if srv.running:
                self._reload_one(srv)
        self._applied_version = version

    def _reload_one(self, server: BrokerServer) -> None:
        try:
            server.reload()
            self.reloads += 1
            self._applied_at = time.time()
        except Exception as exc:  # keep watching: the next change may fix it
            self.last_error = exc
            log.error("access control: reloading %s failed: %s", server.name, exc)

    # --- watching ----------------------------------------------------------------------------

    def _on_change(self) -> None:
        if not self._closed:
            self._wake.set()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._watch, name="evfabric-access", daemon=True)
            self._thread.start()

    def _watch(self) -> None:
        while not self._closed:
            now = time.time()
            nxt = self.store.next_expiry(now)
            timeout = self.poll_interval if nxt is None else min(self.poll_interval, max(0.0, nxt - now) + 0.05)
            self._wake.wait(timeout)
            self._wake.clear()
            if self._closed:
                break
            try:
                expired = nxt is not None and time.time() >= nxt
                if expired or self.store.version() != self._applied_version:
                    self.reload()
            except Exception as exc:
                self.last_error = exc
                log.error("access control: %s", exc)

    def close(self) -> None:
        """Stop watching (attached servers keep their current config)."""
        self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> AccessControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
