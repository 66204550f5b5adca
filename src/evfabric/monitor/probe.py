"""Reading a NATS server's HTTP monitoring endpoints (``/varz``, ``/connz``, ``/jsz``, ``/healthz``).

:class:`BrokerProbe` fetches the raw JSON documents the server publishes; it interprets nothing
(that is :mod:`evfabric.monitor.sample`'s job). One probe keeps one HTTP connection pool, so a
sample every second costs a few local requests and no new TCP handshakes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from evfabric.core.errors import BrokerUnavailable

__all__ = ["BrokerProbe", "RawSample"]

# connz: per-subscription message counts; jsz: every stream and consumer with its config
# (the config carries the evfabric topic name in the stream's metadata).
_CONNZ = "/connz?subs=detail&limit=1024"
_JSZ = "/jsz?streams=true&consumers=true&config=true&limit=1024"


@dataclass
class RawSample:
    """The monitoring documents read at one instant; ``healthy`` is ``/healthz`` answering 200."""

    varz: dict[str, Any]
    connz: dict[str, Any]
    jsz: dict[str, Any]
    healthy: bool
    health_error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class BrokerProbe:
    """Fetches monitoring documents from one server's monitoring URL (``http://host:port``).

    Raises :class:`BrokerUnavailable` when ``/varz`` does not answer; a failing ``/jsz`` (a server
    without JetStream) gives an empty document instead.
    """

    def __init__(self, monitor_url: str, timeout: float = 2.0) -> None:
        self.monitor_url = monitor_url.rstrip("/")
        self._http = httpx.Client(base_url=self.monitor_url, timeout=timeout)

    def _get(self, path: str) -> dict[str, Any]:
        try:
            resp = self._http.get(path)
            resp.raise_for_status()
            return resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise BrokerUnavailable(f"monitoring endpoint {self.monitor_url}{path}: {exc}") from exc

    def read(self) -> RawSample:
        """Fetch varz, connz, jsz and healthz once."""
        varz = self._get("/varz")
        connz = self._get(_CONNZ)
        try:
            jsz = self._get(_JSZ)
        except BrokerUnavailable:
            jsz = {}
        try:
            resp = self._http.get("/healthz")
            healthy, error = resp.status_code == 200, "" if resp.status_code == 200 else resp.text[:200]
        except httpx.HTTPError as exc:
            healthy, error = False, str(exc)
        return RawSample(varz, connz, jsz, healthy, error)

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._http.close()
