"""Running the web service: uvicorn in a background thread, and the ``evfabric serve`` hook.

    web = start_web(create_app(store), port=0)     # 127.0.0.1, a free port
    print(web.url)
    web.stop()

:func:`start_with_broker` is what ``evfabric serve`` calls once its broker runs (see
``evfabric.cli.serve``). It builds the app on the access store of the broker's data directory,
and, when that store holds identities, enforces it on the broker (:class:`AccessControl`); the
monitoring routes get a monitor of the broker (``broker_url`` carries the credentials of
``evfabric-serve`` when access control is on, see :mod:`evfabric.access.internal`); the
trigger routes sign definitions with the data directory's trigger key, which serve's runner
verifies. Under access control the monitoring pages need a monitoring token unless
``open_monitoring`` (``$EVFABRIC_OPEN_MONITORING=1``). The port is ``$EVFABRIC_WEB_PORT``, else
8080, else a free one.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from fastapi import FastAPI

from evfabric.access.control import AccessControl
from evfabric.access.internal import access_enabled, service_url
from evfabric.access.store import AccessStore
from evfabric.broker.config import free_port
from evfabric.broker.server import BrokerServer
from evfabric.core.errors import BrokerUnavailable
from evfabric.web.app import create_app

__all__ = ["DEFAULT_WEB_PORT", "WebServer", "start_web", "start_with_broker"]

DEFAULT_WEB_PORT = 8080


def import_lazy_parts() -> None:
    """Import now, in the starting thread, what the request path would import on first use in
    the server's thread: anyio resolves its whole API lazily (``anyio.open_file`` when a static
    file is first served, ``anyio.to_thread``...). Python 3.11's compiler is not safe with two
    threads compiling at once (CI saw "SystemError: AST constructor recursion depth mismatch" when
    a request compiled anyio's file module beside another thread), so no request imports code."""
    import anyio

    for name in [n for n in dir(anyio) if not n.startswith("_")] + ["to_thread", "from_thread"]:
        with contextlib.suppress(ImportError, AttributeError):  # a part for another backend
            getattr(anyio, name)


class WebServer:
    """A uvicorn server running ``app`` in a daemon thread."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port or free_port(host)
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=self.port, log_level="warning",
                                                     lifespan="off"))
        self._thread: threading.Thread | None = None
        self.on_stop: list[Callable[[], None]] = []

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> WebServer:
        """Start serving; return once the port accepts requests (:class:`BrokerUnavailable` if not)."""
        import_lazy_parts()
        self._thread = threading.Thread(target=self._server.run, name="evfabric-web", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._server.started:
                return self
            if not self._thread.is_alive():
                break
            time.sleep(0.02)
        raise BrokerUnavailable(f"the web service did not start on {self.url}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving, then run the ``on_stop`` callbacks."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        for fn in self.on_stop:
            fn()
        self.on_stop.clear()


def start_web(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> WebServer:
    """Serve ``app`` on ``host:port`` (0 = a free port) in a background thread; return the server."""
    return WebServer(app, host, port).start()


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def start_with_broker(broker_url: str, *, monitor_url: str, servers: Sequence[BrokerServer] = (),
                      data_dir: str | os.PathLike[str] | None = None, host: str = "127.0.0.1",
                      port: int | None = None, open_monitoring: bool | None = None) -> Callable[[], None]:
    """Start the web service beside a running broker; return a function that stops it.

    ``servers``: the broker's servers (their access control, or one made here, reloads them
    before a changing ``/access`` request is answered); ``data_dir``: where the
    access store lives (default: the first server's data directory). ``open_monitoring``:
    monitoring pages without a token under access control (default ``$EVFABRIC_OPEN_MONITORING``).
    Prints the URL.
    """
    if open_monitoring is None:
        open_monitoring = os.environ.get("EVFABRIC_OPEN_MONITORING", "") not in ("", "0", "false", "no")
    if data_dir is None and servers:
        data_dir = servers[0].data_dir
    store = AccessStore.in_dir(Path(data_dir)) if data_dir is not None else None
    cleanups: list[Callable[[], None]] = []
    tap_url = broker_url
    key = None
    applied: Callable[[], None] | None = None
    if data_dir is not None and access_enabled(data_dir) and store is not None:
        from evfabric.triggers.signing import TriggerKey

        key = TriggerKey.in_dir(data_dir)
        guards = list({id(s.access): s.access for s in servers if s.access is not None}.values())
        if servers and not guards:  # servers started without access control: enforce it from here
            control = AccessControl(store)
            for srv in servers:
                control.attach(srv)
            cleanups.append(control.close)
            guards = [control]
        if guards:
            def applied() -> None:
                for guard in guards:
                    guard.reload()
        if urlsplit(broker_url).password is None:  # an older serve gave the bare URL
            tap_url = service_url(broker_url, data_dir)
        print(f"access control on: {len(store.list_identities())} identities in {store.path}")
        print("monitoring pages (/metrics, /monitor, /dashboard): " + (
            "open to anyone (EVFABRIC_OPEN_MONITORING)" if open_monitoring
            else "administrators and group 'monitoring' only; EVFABRIC_OPEN_MONITORING=1 opens them"))
    elif store is not None:
        print(f"access control off (no identities in {store.path}); `evfabric user create NAME --admin` turns it on")
    monitor: Any = None
    try:
        from evfabric.monitor import Monitor

        monitor = Monitor(monitor_url, tap_url)
        cleanups.append(getattr(monitor, "close", lambda: None))
    except ImportError:
        pass
    if port is None:
        env = os.environ.get("EVFABRIC_WEB_PORT")
        port = int(env) if env else (DEFAULT_WEB_PORT if _port_free(host, DEFAULT_WEB_PORT) else 0)
    app = create_app(store, monitor=monitor, open_monitoring=open_monitoring, applied=applied)
    try:
        from evfabric.triggers.api import use_triggers

        use_triggers(app, tap_url, key=key)  # the /triggers routes reach the broker as evfabric-serve
    except ImportError:
        pass
    web = start_web(app, host, port)
    web.on_stop += cleanups
    print(f"web service {web.url}  (API docs {web.url}/docs)")
    return web.stop
