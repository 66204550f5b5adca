"""Publishing on a raw topic (docs/wire.md 5): each event's body, alone, on the topic's own subject.

A raw topic is where foreign clients (MQTT devices, plain NATS clients) publish; what evfabric
publishes there must read the same to them. So every event is one message on its topic's subject
(``lab.probe.cmd``, which an MQTT subscriber of ``lab/probe/cmd`` gets): the body as JSON
(``Content-Type: application/json``), or a body ``{"data": <bytes>}`` as those bytes, as
received. Reliable events are stored by the raw topic's stream, each acknowledged, with the
event id as ``Nats-Msg-Id`` (a re-sent event is dropped as a duplicate); best-effort ones are
sent. No batching: the receivers of a foreign subject read one payload per message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import msgspec

from evfabric.core.event import RELIABLE, Event
from evfabric.fabric.batching import Ticket

__all__ = ["ForeignSender", "foreign_payload"]

_JSON = {"Content-Type": "application/json"}


def foreign_payload(event: Event) -> tuple[bytes, dict[str, str] | None]:
    """(payload, headers) of ``event`` on a raw topic: ``{"data": <bytes>}`` as the bytes, else JSON."""
    body = event.body
    if len(body) == 1 and isinstance(body.get("data"), (bytes, bytearray)):
        return bytes(body["data"]), None
    return msgspec.json.encode(body), _JSON


class ForeignSender:
    """Sends events to raw topics; :attr:`outstanding` counts those accepted and not yet done."""

    def __init__(self, nc: Any, js: Any, timeout: float, call_on_loop: Callable[..., None]) -> None:
        self.nc = nc
        self.js = js
        self.timeout = timeout
        self.call_on_loop = call_on_loop  # the client's: runs a callable on its loop, from any thread
        self.outstanding = 0  # changed on the loop only

    def send(self, events: list[Event], subject: str, delivery: str) -> Ticket:
        """A ticket for ``events`` on ``subject``, sent by a task on the client's loop (any thread)."""
        ticket = Ticket()
        ticket._seal(1)
        self.call_on_loop(self._start, events, subject, delivery, ticket)
        return ticket

    def _start(self, events: list[Event], subject: str, delivery: str, ticket: Ticket) -> None:
        self.outstanding += len(events)
        asyncio.get_running_loop().create_task(self._send(events, subject, delivery, ticket))

    async def _send(self, events: list[Event], subject: str, delivery: str, ticket: Ticket) -> None:
        error: BaseException | None = None
        try:
            if delivery == RELIABLE:
                await asyncio.gather(*(self._store(ev, subject) for ev in events))
            else:
                for ev in events:
                    payload, headers = foreign_payload(ev)
                    await self.nc.publish(subject, payload, headers=headers)
        except Exception as exc:  # the ticket's waiter gets it
            error = exc
        finally:
            self.outstanding -= len(events)
            ticket._part_done(error)

    async def _store(self, event: Event, subject: str) -> None:
        payload, headers = foreign_payload(event)
        await self.js.publish(subject, payload, timeout=self.timeout,
                              headers={**(headers or {}), "Nats-Msg-Id": event.id})
