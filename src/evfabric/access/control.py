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
* a token reaches its expiry (the reaper);

and closes the connections of identities beyond their connection quota
(:mod:`evfabric.access.connections`).

On reload nats-server re-checks every client connection: a connection whose user is gone (its
token revoked or expired) is closed with "Authorization Violation" and cannot reconnect;
connections that stay get their new permissions at once.

Pass it to the server explicitly, ``BrokerServer(access=AccessControl(store))`` (or
``BrokerCluster(n, access=...)``: one store for every member): the very first configuration
then has authorization, and once the server runs the control starts the
:class:`~evfabric.access.topic_service.TopicService` (with the administrative session of
``evfabric-serve``), through which users create topics and consumers.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from typing import Any

from evfabric.access.connections import ConnectionQuota
from evfabric.access.nats_config import authorization_section
from evfabric.access.quotas import Quotas
from evfabric.access.store import AccessStore
from evfabric.broker.config import ServerSettings
from evfabric.broker.server import BrokerServer

__all__ = ["AccessControl"]

log = logging.getLogger("evfabric.access")


class AccessControl:
    """Enforces ``store`` on the attached servers by generating their config and reloading it.

    ``private_inboxes``: each token may only read replies under ``_INBOX.<token id>`` (clients
    must connect with :func:`evfabric.access.nats_options`); False allows the shared
    ``_INBOX.>``, which any client uses by default but lets one token read others' replies.
    """

    def __init__(self, store: AccessStore, *, private_inboxes: bool = True, poll_interval: float = 1.0,
                 topic_service: bool = True, quotas: Quotas | None = None) -> None:
        self.store = store
        self.topic_service = topic_service
        self.quotas = quotas or Quotas()
        self.service: Any = None
        self.connections = ConnectionQuota(store, self.quotas.connections)
        self.private_inboxes = private_inboxes
        self.poll_interval = poll_interval
        self.reloads = 0
        self.last_error: Exception | None = None
        self._servers: list[BrokerServer] = []
        self._lock = threading.Lock()
        self._reloading = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._applied_version = -1
        self._applied_at = 0.0
        self._thread: threading.Thread | None = None
        store.on_change(self._on_change)

    # --- config ------------------------------------------------------------------------------

    def config_hook(self, settings: ServerSettings, conf: dict[str, Any]) -> None:
        """A :data:`~evfabric.broker.config.ConfigHook` writing the ``authorization`` section."""
        conf["authorization"] = authorization_section(self.store, private_inboxes=self.private_inboxes)
        self.connections.config_hook(settings, conf)

    # --- servers -----------------------------------------------------------------------------

    def attach(self, server: BrokerServer) -> None:
        """Enforce the store on ``server`` from now on (reloading it if it runs)."""
        if server.running:
            self.connections.running_without(server)
        if self.config_hook not in server.settings.hooks:
            server.settings.hooks.append(self.config_hook)
        with self._lock:
            self._servers.append(server)
        if server.running:
            self._applied_version = self.store.version()
            self._reload_one(server)
        self._ensure_thread()
        if server.running:
            self.server_started(server)

    @classmethod
    def for_dir(cls, data_dir: str | Any, **options: Any) -> AccessControl:
        """The control of the store in ``data_dir`` (``<data_dir>/access.db``)."""
        return cls(AccessStore.in_dir(data_dir), **options)

    def server_started(self, server: BrokerServer) -> None:
        """Called by a server once it is ready: start the topic service (once)."""
        if server not in self._servers:
            self.attach(server)
            return
        self.connections.listen(server, self._wake.set)  # extra connections closed at once, not at the next poll
        if not self.topic_service or (self.service is not None and self.service.running):
            return
        from evfabric.access.internal import service_url
        from evfabric.access.topic_service import TopicService

        with self._lock:
            urls = [s.url for s in self._servers]
        admin = [service_url(u, self.store.path.parent) for u in urls]
        if admin == urls:
            log.warning("access control: the store has no identities; the topic service does not run")
            return
        self.reload()  # the service's session token must be known to the broker before it connects
        tls = None
        if server.settings.tls_cert is not None:  # trust the server's own certificate (self-signed or not)
            tls = ssl.create_default_context()
            tls.load_verify_locations(cafile=str(server.settings.tls_cert))
        self.service = TopicService(self.store, admin, quotas=self.quotas, applied=self.reload, tls=tls,
                                    admission=self.connections.check).start()

    def server_stopping(self, server: BrokerServer) -> None:
        """Called by a server before it stops: the topic service stops with the last one."""
        with self._lock:
            others = [s for s in self._servers if s is not server and s.running]
        if not others and self.service is not None:
            self.service.stop()
            self.service = None

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
            with self._reloading:  # the watcher, the topic service and callers may reload at once
                server.reload(wait=True)
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
                with self._lock:
                    servers = list(self._servers)
                self.connections.enforce(servers)
            except Exception as exc:
                self.last_error = exc
                log.error("access control: %s", exc)

    def close(self) -> None:
        """Stop watching and stop the topic service (attached servers keep their current config)."""
        if self.service is not None:
            self.service.stop()
            self.service = None
        self._closed = True
        self._wake.set()
        self.connections.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> AccessControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
