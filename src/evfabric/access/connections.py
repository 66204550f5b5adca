"""The connection quota: no identity keeps more than ``Quotas.connections`` connections per server.

nats-server limits connections per *account* (``accounts.<A>.limits.max_connections``: the
extra connection gets ``-ERR 'maximum account active connections exceeded'`` at connect) and
server-wide, never per user; evfabric keeps every identity in one account (one subject space:
docs/security.md), so that limit cannot be per identity. :class:`ConnectionQuota` therefore

* refuses at connect for evfabric clients: a client with a token asks the topic service
  (``$EVF.API.CONN.CHECK.<token id>``) right after connecting, the service counts the identity's
  connections on that server (:meth:`~ConnectionQuota.check`) and answers
  :class:`~evfabric.core.errors.QuotaExceeded` naming the figures; the client closes and raises it;
* closes the extra connections of any other client (raw nats-py...) at once: a system account
  (user ``evfabric-sys``, a random secret that lives only in this process; the config holds its
  bcrypt hash) listens to each server's ``$SYS.ACCOUNT.*.CONNECT`` events and, :data:`GRACE`
  seconds after one (the time a well-behaved client takes to leave), :meth:`~ConnectionQuota.enforce`
  reads ``/connz?auth=true``, counts the connections of every identity (its tokens are NATS
  users) and closes the newest ones beyond the quota with the server's ``KICK`` request. The
  server's log and evfabric's log name the identity and the figures.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import ssl
import threading
from collections.abc import Callable, Iterable
from typing import Any

import nats

from evfabric.access.store import AccessStore
from evfabric.access.tokens import bcrypt_hash
from evfabric.broker.server import BrokerServer
from evfabric.core.errors import QuotaExceeded

__all__ = ["GRACE", "SYSTEM_ACCOUNT", "SYSTEM_USER", "ConnectionQuota"]

log = logging.getLogger("evfabric.access")

SYSTEM_ACCOUNT = "SYS"
SYSTEM_USER = "evfabric-sys"
#: Seconds between a connect event and the closing of the connections beyond the quota.
GRACE = 0.3


class ConnectionQuota:
    """Keeps every non-administrator identity within ``limit`` connections per server."""

    def __init__(self, store: AccessStore, limit: int) -> None:
        self.store = store
        self.limit = limit
        self.kicked = 0
        self.checks = 0  # completed enforcement passes: a test waits on them, not on the clock
        self._secret = secrets.token_urlsafe(32)
        self._hash = bcrypt_hash(self._secret)
        self._without: set[int] = set()  # settings of servers that run without our system account
        self._servers: list[BrokerServer] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listeners: list[Any] = []

    def running_without(self, server: BrokerServer) -> None:
        """``server`` already runs without the system account, which NATS cannot add on reload:
        leave its config alone (its connections are then not limited)."""
        self._without.add(id(server.settings))
        log.warning("access control: %s was started without access control; its connections per identity "
                    "are not limited until it restarts", server.name)

    def config_hook(self, settings: Any, conf: dict[str, Any]) -> None:
        """Add the system account (unless the config defines accounts of its own)."""
        if "accounts" in conf or "system_account" in conf or id(settings) in self._without:
            return
        conf["accounts"] = {SYSTEM_ACCOUNT: {"users": [{"user": SYSTEM_USER, "password": self._hash}]}}
        conf["system_account"] = SYSTEM_ACCOUNT

    def over_quota(self, connections: Iterable[dict[str, Any]]) -> list[tuple[str, int]]:
        """``(identity, cid)`` of the connections beyond the quota (the newest ones), given
        ``/connz?auth=true`` rows."""
        snap = self.store.snapshot()
        owner = {t.id: t.identity for t, _ in self.store.nats_users()}
        per: dict[str, list[int]] = {}
        for c in connections:
            ident = owner.get(str(c.get("authorized_user") or ""))
            if ident is not None and not snap.is_admin(ident):
                per.setdefault(ident, []).append(int(c["cid"]))
        return [(ident, cid) for ident, cids in per.items() for cid in sorted(cids)[self.limit:]]

    def _count(self, server: BrokerServer, identity: str) -> int:
        owner = {t.id: t.identity for t, _ in self.store.nats_users()}
        rows = server.monitor("connz?auth=true&limit=100000").get("connections") or []
        return sum(owner.get(str(c.get("authorized_user") or "")) == identity for c in rows)

    def check(self, server_id: str, identity: str) -> None:
        """:class:`QuotaExceeded` when ``identity`` (just connected to the server ``server_id``)
        holds more connections there than the quota; administrators have none."""
        if self.store.snapshot().is_admin(identity):
            return
        for srv in list(self._servers):
            if srv.running and id(srv.settings) not in self._without and str(srv.varz().get("server_id")) == server_id:
                held = self._count(srv, identity)
                if held > self.limit:
                    raise QuotaExceeded(f"{identity!r} has {held - 1} connections to server {srv.name} already; the "
                                        f"quota is {self.limit} per server (close one, or ask an administrator)")
                return

    def listen(self, server: BrokerServer, on_connect: Callable[[], None]) -> None:
        """Call ``on_connect()`` :data:`GRACE` seconds after each client connect to ``server``
        (its ``$SYS.ACCOUNT.*.CONNECT`` events), from a background thread."""
        if server not in self._servers:
            self._servers.append(server)
        if id(server.settings) in self._without:
            return
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            threading.Thread(target=self._loop.run_forever, name="evfabric-connections", daemon=True).start()
        loop = self._loop

        async def later() -> None:
            await asyncio.sleep(GRACE)
            on_connect()

        async def connected(_msg: Any) -> None:
            loop.create_task(later())

        async def start() -> None:
            nc = await self._connect(server, allow_reconnect=True, max_reconnect_attempts=-1)
            await nc.subscribe("$SYS.ACCOUNT.*.CONNECT", cb=connected)
            self._listeners.append(nc)

        try:
            asyncio.run_coroutine_threadsafe(start(), loop).result(10)
        except Exception as exc:  # the poll still enforces, a second later
            log.warning("access control: cannot listen to connect events of %s: %s", server.name, exc)

    def close(self) -> None:
        """Stop listening."""
        loop, self._loop = self._loop, None
        if loop is None:
            return

        async def stop() -> None:
            for nc in self._listeners:
                await nc.close()
            self._listeners.clear()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        try:
            asyncio.run_coroutine_threadsafe(stop(), loop).result(5)
        except Exception as exc:
            log.debug("access control: closing the connect-event listeners: %s", exc)
        loop.call_soon_threadsafe(loop.stop)

    async def _connect(self, server: BrokerServer, **options: Any) -> Any:
        tls = None
        if server.settings.tls_cert is not None:  # the server's own certificate (self-signed or not)
            tls = ssl.create_default_context(cafile=str(server.settings.tls_cert))
        return await nats.connect(server.url, user=SYSTEM_USER, password=self._secret, connect_timeout=2,
                                  tls=tls, **options)

    def enforce(self, servers: Iterable[BrokerServer]) -> int:
        """Close the connections beyond the quota on every running server; how many were closed."""
        closed = 0
        for srv in servers:
            if not srv.running or id(srv.settings) in self._without:
                continue
            rows = srv.monitor("connz?auth=true&limit=100000").get("connections") or []
            extra = self.over_quota(rows)
            if extra:
                server_id = str(srv.varz().get("server_id"))
                asyncio.run(self._kick(srv, server_id, [cid for _, cid in extra]))
                for ident, cid in extra:
                    log.warning("access control: closed connection %d of %r on %s: over its quota of %d "
                                "connections", cid, ident, srv.name, self.limit)
                closed += len(extra)
        self.kicked += closed
        self.checks += 1
        return closed

    async def _kick(self, server: BrokerServer, server_id: str, cids: list[int]) -> None:
        nc = await self._connect(server, allow_reconnect=False, max_reconnect_attempts=1)
        try:
            for cid in cids:
                await nc.request(f"$SYS.REQ.SERVER.{server_id}.KICK", json.dumps({"cid": cid}).encode(), timeout=2)
        finally:
            await nc.close()
