"""Where a webhook may go: never to loopback, link-local or other special addresses unless allowed.

A trigger's webhook is a request the runner's host makes on a user's behalf. Left unchecked, a
user could make the server call its own loopback services, the cloud metadata address
(169.254.169.254) or other hosts of the private network. :func:`guarded_client` returns an
``httpx.AsyncClient`` whose every TCP connection (the first request and any redirect) resolves
the host, checks **every** address it resolves to, and connects to a checked address (so a DNS
answer cannot change between the check and the connection). An address that is not globally
routable (loopback, link-local 169.254/16 and fe80::/10, private, shared, multicast, reserved,
unspecified, IPv4-mapped forms of those) is refused unless it lies in one of the ``allow``
networks (an explicit server option: ``evfabric trigger run --webhook-allow 10.0.0.0/8``, or
``EVFABRIC_WEBHOOK_ALLOW`` for ``evfabric serve``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from collections.abc import Iterable, Sequence
from typing import Any

import httpcore
import httpx

from evfabric.core.errors import ConfigError

__all__ = ["ALLOW_ENV", "WebhookGuard", "allowed_from_env", "guarded_client"]

#: Environment variable: comma-separated networks webhooks may reach although not global.
ALLOW_ENV = "EVFABRIC_WEBHOOK_ALLOW"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _networks(allow: Iterable[str]) -> tuple[Network, ...]:
    out = []
    for item in allow:
        try:
            out.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ConfigError(f"webhook allow {item!r} is not a network like 10.0.0.0/8 or ::1/128") from None
    return tuple(out)


def allowed_from_env() -> list[str]:
    """The networks named in ``$EVFABRIC_WEBHOOK_ALLOW`` (empty: none)."""
    return [x for x in os.environ.get(ALLOW_ENV, "").split(",") if x.strip()]


class WebhookGuard:
    """Decides which addresses webhooks may connect to."""

    def __init__(self, allow: Sequence[str] = ()) -> None:
        self.allow = _networks(allow)

    def why_refused(self, address: str) -> str | None:
        """None if ``address`` may be reached, else what kind of address it is."""
        ip: Address = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip.version == net.version and ip in net for net in self.allow):
            return None
        for kind in ("loopback", "link_local", "unspecified", "multicast", "private", "reserved"):
            if getattr(ip, f"is_{kind}"):
                return kind.replace("_", "-")
        return None if ip.is_global else "not global"

    async def resolve(self, host: str, port: int) -> str:
        """A checked address of ``host``; :class:`httpcore.ConnectError` if any address is refused."""
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses:
            raise httpcore.ConnectError(f"webhook host {host!r} does not resolve")
        for address in addresses:
            why = self.why_refused(address)
            if why is not None:
                raise httpcore.ConnectError(
                    f"webhook host {host!r} resolves to {address} ({why}), which webhooks may not reach; "
                    f"an administrator may allow it with --webhook-allow / ${ALLOW_ENV}")
        return addresses[0]


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, guard: WebhookGuard) -> None:
        self.guard = guard
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None, socket_options: Any = None) -> httpcore.AsyncNetworkStream:
        address = await self.guard.resolve(host, port)
        return await self.inner.connect_tcp(address, port, timeout, local_address, socket_options)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Any = None) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks may not connect to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, guard: WebhookGuard) -> None:
        super().__init__()
        # the same pool httpx makes, with every connection going through the guard
        self._pool = httpcore.AsyncConnectionPool(ssl_context=httpx.create_ssl_context(),
                                                  network_backend=_GuardedBackend(guard))


def guarded_client(guard: WebhookGuard, timeout: float) -> httpx.AsyncClient:
    """An HTTP client that reaches only what ``guard`` allows (redirects included, at most 5;
    proxies from the environment are ignored, as they would bypass the check)."""
    return httpx.AsyncClient(timeout=timeout, transport=_GuardedTransport(guard), follow_redirects=True,
                             max_redirects=5, trust_env=False)
