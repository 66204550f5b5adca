"""PEs that meet through the broker fabric (``evfabric.fabric``): loosely coupled, across sites.

PE ``r`` of run ``RUN`` listens on topic ``coord.RUN.peR``; a message is an event whose body
carries the sender, a per-pair sequence number and the pickled payload. The broker's
best-effort delivery keeps no order promise through the client's dispatch threads, so the
transport restores FIFO per sender from the sequence numbers. Before the run, a handshake
makes sure every peer is subscribed (messages published earlier would be lost).
"""

from __future__ import annotations

import logging
import pickle
import queue
import threading
import time
from typing import TYPE_CHECKING, Any

from evfabric.coord.transport import Transport
from evfabric.core.errors import BrokerUnavailable

_log = logging.getLogger(__name__)

__all__ = ["FabricTransport"]

_HELLO, _ACK, _DATA = 0, 1, 2

if TYPE_CHECKING:
    from evfabric.bus import Bus
    from evfabric.core.event import Event


class FabricTransport(Transport):
    """PE ``rank`` of ``size`` for run ``run`` over a connected fabric ``client`` (any :class:`~evfabric.bus.Bus`)."""

    def __init__(self, client: Bus, run: str, rank: int, size: int, handshake_timeout: float = 30.0) -> None:
        super().__init__(rank, size)
        self._client, self._run = client, run
        self._q: queue.SimpleQueue[tuple[int, Any]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._next_out = [0] * size
        self._next_in = [0] * size
        self._held: list[dict[int, Any]] = [{} for _ in range(size)]
        self._acked: set[int] = set()
        self._sub = client.subscribe(self._topic(rank), listener=self._on_event)
        self._handshake(handshake_timeout)

    def _topic(self, pe: int) -> str:
        return f"coord.{self._run}.pe{pe}"

    def _publish(self, peer: int, kind: int, seq: int, payload: bytes) -> None:
        self._client.publish(self._topic(peer), {"src": self.rank, "kind": kind, "seq": seq, "msg": payload})

    def _on_event(self, event: Event) -> None:
        body = event.body
        src, kind = body["src"], body["kind"]
        if kind == _HELLO:
            self._publish(src, _ACK, 0, b"")
            return
        if kind == _ACK:
            with self._lock:
                self._acked.add(src)
            return
        with self._lock:  # restore the sender's order
            self._held[src][body["seq"]] = body["msg"]
            while self._next_in[src] in self._held[src]:
                payload = self._held[src].pop(self._next_in[src])
                self._next_in[src] += 1
                self._q.put((src, pickle.loads(payload)))

    def _handshake(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        peers = {p for p in range(self.size) if p != self.rank}
        while True:
            with self._lock:
                missing = peers - self._acked
            if not missing:
                return
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"PE {self.rank} of run {self._run!r}: no answer from PEs {sorted(missing)}")
            for p in missing:
                self._publish(p, _HELLO, 0, b"")
            time.sleep(0.05)

    def send(self, peer: int, msg: Any) -> None:
        with self._lock:
            seq = self._next_out[peer]
            self._next_out[peer] += 1
        self._publish(peer, _DATA, seq, pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL))

    def _recv(self, timeout: float | None) -> tuple[int, Any] | None:
        try:
            if timeout == 0:
                return self._q.get_nowait()
            return self._q.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        try:
            self._client.flush(5.0)
            self._sub.unsubscribe()
        except Exception as exc:  # the run is over: a broker gone now loses nothing
            _log.debug("fabric transport close: %r", exc)
