"""Request/reply over the fabric: ``reply = client.request(topic, body, timeout=5)``.

A request is an ordinary best-effort event on ``topic`` whose header carries ``replyto``, a
private NATS inbox of the requester (under access control, one under ``_INBOX.<token id>``).
Any subscriber of the topic may answer with ``client.reply(request_event, body)``: the reply is an
event on the same topic, sent straight to that inbox (not to the topic's subscribers), whose
``inreplyto`` header is the request's id. The first reply wins; none within ``timeout`` raises
:class:`RequestTimeout`.

    # responder
    sub = client.subscribe("math.square")
    sub.add_listener(lambda ev: client.reply(ev, {"y": ev.body["x"] ** 2}))
    # requester
    client.request("math.square", {"x": 7}, timeout=2).body   # {"y": 49}
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import nats.errors

from evfabric.core.codec import decode_batch, encode_batch
from evfabric.core.errors import ConfigError, RequestTimeout
from evfabric.core.event import BEST_EFFORT, Body, Event
from evfabric.fabric.roundtrip import flush

if TYPE_CHECKING:
    from evfabric.fabric.aio import AsyncClient

__all__ = ["IN_REPLY_TO", "REPLY_TO", "reply", "request"]

log = logging.getLogger(__name__)

REPLY_TO = "replyto"  # header field of a request: the inbox its replies go to
IN_REPLY_TO = "inreplyto"  # header field of a reply: the request's id


async def request(client: AsyncClient, topic: str, body: Body | None = None, *, timeout: float = 5.0,
                  **header: Any) -> Event:
    """Publish a request on ``topic`` and return the first reply event (see module doc)."""
    nc = client.nc
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox, max_msgs=1)
    try:
        event = client.build(topic, body, {**header, REPLY_TO: inbox})
        await client.publish_event(event, delivery=BEST_EFFORT)
        await client.flush(timeout)
        try:
            msg = await sub.next_msg(timeout)
        except nats.errors.TimeoutError:
            raise RequestTimeout(f"no reply to the request {event.id} on {topic!r} within {timeout} s "
                                 "(is anyone subscribed and replying?)") from None
        return decode_batch(msg.data)[0]
    finally:
        try:
            await sub.unsubscribe()
        except nats.errors.Error as exc:  # the connection closed meanwhile: nothing left to undo
            log.debug("request inbox %s: unsubscribe failed: %s", inbox, exc)


async def reply(client: AsyncClient, request_event: Event, body: Body | None = None, **header: Any) -> Event:
    """Answer ``request_event`` (an event received with a ``replyto`` header); return the reply."""
    inbox = request_event.extra.get(REPLY_TO) if request_event.extra else None
    if not isinstance(inbox, str) or not inbox:
        raise ConfigError(f"event {request_event.id} on {request_event.topic!r} is not a request (no {REPLY_TO!r})")
    event = client.build(request_event.topic, body, {**header, IN_REPLY_TO: request_event.id})
    await client.nc.publish(inbox, encode_batch([event]))
    await flush(client.nc)
    return event
