"""``TcpRelay``: a TCP forwarder whose link can be cut and healed, to simulate a network outage.

Used between a leaf node and its hub so that both servers keep running while the link between
them is down (the realistic outage for an edge site), which stopping the hub cannot show.
Threads, not asyncio, so it works beside any event loop a test runs.
"""

from __future__ import annotations

import socket
import threading

from evfabric.broker.config import free_port


class TcpRelay:
    """Listen on ``host:port`` (0 = a free port) and forward every connection to ``target``.

    :meth:`cut` closes all forwarded connections and refuses new ones (they are accepted and
    closed at once) until :meth:`heal`. The listening port stays the same throughout.
    """

    def __init__(self, target: tuple[str, int], host: str = "127.0.0.1", port: int = 0) -> None:
        self.target = target
        self.host = host
        self.port = port or free_port(host)
        self._cut = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._listener = socket.create_server((host, self.port))
        self._listener.settimeout(0.2)
        self._thread = threading.Thread(target=self._accept_loop, name="evfabric-relay", daemon=True)
        self._thread.start()

    @property
    def is_cut(self) -> bool:
        """True while the link is cut."""
        return self._cut.is_set()

    def cut(self) -> None:
        """Drop every forwarded connection now and refuse new ones until :meth:`heal`."""
        self._cut.set()
        with self._lock:
            conns, self._conns = self._conns, set()
        for s in conns:
            _close(s)

    def heal(self) -> None:
        """Forward new connections again."""
        self._cut.clear()

    def close(self) -> None:
        """Stop listening and drop every connection."""
        self._closed.set()
        self.cut()
        _close(self._listener)
        self._thread.join(2)

    def __enter__(self) -> TcpRelay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._cut.is_set():
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=2)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._conns.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            # one side gone: drop both, as a broken link would
            _close(src)
            _close(dst)
            with self._lock:
                self._conns.discard(src)
                self._conns.discard(dst)


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass
